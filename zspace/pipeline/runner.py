"""Running the notebooks of a build: several kernels at once, each notebook in a
folder of its own that is renamed into place only when it succeeded.

:class:`Build` is one build folder while it is being built: its configuration, its
record of finished stages, its session (lock, log, scratch folder) and progress lines.
"""

from __future__ import annotations

import queue
import shutil
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zspace import paths
from zspace.config import Config
from zspace.errors import BuildError
from zspace.files import write_json_atomic
from zspace.notebook import RESULTS_FILE
from zspace.pipeline import notebooks as nb
from zspace.pipeline.kernels import Kernels
from zspace.pipeline.plan import NotebookStage, analysis_dir, templates_dir
from zspace.pipeline.session import Session
from zspace.pipeline.state import BuildState

INPUTS_FILE = "inputs.json"
_say_lock = threading.Lock()


@dataclass
class Build:
    """One build folder (``build/<profile>/``) and what is known about it."""

    config: Config
    build_root: Path  # the top build folder, where the shared caches live
    progress: bool = True
    timings: dict[str, float] = field(default_factory=dict)
    card: dict[str, Any] = field(default_factory=dict)  # the dataset card, once known
    session: Session | None = None  # the lock, log and scratch folder, while building
    models_made: list[str] = field(default_factory=list)  # trained or loaded anew

    @property
    def root(self) -> Path:
        return paths.profile_dir(self.build_root, self.config.name)

    @property
    def analysis(self) -> Path:
        return analysis_dir(self.config)

    @property
    def templates(self) -> Path:
        return templates_dir(self.config)

    @property
    def state(self) -> BuildState:
        return BuildState(self.root / "state.json")

    def say(self, message: str) -> None:
        """A progress line: on the terminal (unless quiet) and in the build log."""
        if self.session is not None:
            self.session.log.line(message)
        if self.progress:
            with _say_lock:  # one write per line: notebook threads print at once
                sys.stderr.write(message + "\n")
                sys.stderr.flush()

    def kernels(self) -> Kernels:
        """Kernels that use the session's scratch folder and capture their output."""
        if self.session is None:
            return Kernels(threads=self.config.build.kernel_threads)
        return Kernels(self.session.scratch, self.session.capture_kernels,
                       self.session.system_tmp, self.config.build.kernel_threads)


def expected_cost(state, stage: NotebookStage) -> float:
    """How long notebook ``stage`` should take, to order the runs: its last run's
    seconds in this build folder (whatever its key was then), else, in a new folder,
    the number of models and sets it reads (notebook 90 reads the sweeps' models)."""
    seconds = state.previous(stage.name).get("seconds")
    return float(seconds) if seconds else float(len(stage.models) + len(stage.sets))


def run_notebooks(build: Build, jobs: list[tuple[NotebookStage, dict[str, Any]]]
                  ) -> list[BuildError]:
    """Execute notebooks, several at once, the longest first; return the failures
    (others are recorded).

    Args:
        build: The build.
        jobs: Each notebook's stage and its inputs manifest (from the plan), written
            into its folder as ``inputs.json`` and handed to it as ``inputs_file``.

    On Ctrl-C every kernel is killed, the unfinished notebooks' working folders are
    removed, and ``KeyboardInterrupt`` is raised again within seconds; notebooks that
    finished before it are recorded and will not run again.
    """
    state = build.state
    failures: list[BuildError] = []
    crashes: list[BaseException] = []
    kernels = build.kernels()
    pending: queue.SimpleQueue = queue.SimpleQueue()
    # The longest first: a long notebook started last runs on alone at the end.
    for job in sorted(jobs, key=lambda job: -expected_cost(state, job[0])):
        pending.put(job)

    def one(job):
        stage, inputs = job
        spec = stage.spec
        build.say(f"  notebook {spec.name}: running")
        started = time.perf_counter()
        try:
            final = run_notebook(spec, stage.parameters, inputs,
                                 build.root / "notebooks", kernels)
        except BuildError as error:
            if kernels.stopped:  # interrupted: no record, no .failed folder
                return
            failures.append(error)
            build.say(f"  notebook {spec.name}: FAILED")
            return
        finally:
            _log_kernel_output(build, kernels, spec.name)
        seconds = time.perf_counter() - started
        state.record(stage.name, stage.key, seconds,
                     kernel_start=kernel_start_seconds(final / spec.path.name))
        build.timings[f"notebook {spec.name}"] = seconds
        build.say(f"  notebook {spec.name}: done in {seconds:.1f} s")

    def worker():
        while not kernels.stopped:
            try:
                job = pending.get_nowait()
            except queue.Empty:
                return
            try:
                one(job)
            except BaseException as error:  # a bug: re-raised in the main thread
                crashes.append(error)
                return

    workers = max(1, min(build.config.build.parallel_notebooks, len(jobs)))
    # Daemon threads: a kernel that will not die cannot keep the process alive.
    threads = [threading.Thread(target=worker, daemon=True,
                                name=f"zspace-notebooks-{i}") for i in range(workers)]
    try:
        start_and_wait(threads)
    except KeyboardInterrupt:
        _stop(build, kernels, threads)
        raise
    finally:
        kernels.close()
    if crashes:
        raise crashes[0]
    return failures


def run_notebook(spec: nb.NotebookSpec, parameters: dict[str, Any],
                 inputs: dict[str, Any], folder: Path, kernels: Kernels) -> Path:
    """Execute one notebook in ``folder/<name>.running``, renamed to
    ``folder/<name>`` when it succeeded and to ``<name>.failed`` when it failed.

    Args:
        spec: The notebook.
        parameters: Its resolved parameters (the reserved ones are added here).
        inputs: Its inputs manifest, written beside it as ``inputs.json``.
        folder: The build's ``notebooks/`` folder.
        kernels: The kernels to run it with; once stopped, an unfinished notebook's
            folder is removed instead of kept as ``.failed``.

    Returns:
        The notebook's folder.

    Raises:
        BuildError: The notebook failed (the message names its ``.failed`` folder).
    """
    final = folder / spec.name
    running = final.with_name(spec.name + ".running")
    failed = final.with_name(spec.name + ".failed")
    for stale in (running, failed):
        shutil.rmtree(stale, ignore_errors=True)
    running.mkdir(parents=True)
    # The manifest stays beside the executed notebook: the record of what it read.
    write_json_atomic(running / INPUTS_FILE, inputs)
    injected = {"inputs_file": str(running / INPUTS_FILE), "output_dir": str(running)}
    try:
        nb.execute(spec, {**parameters, **injected}, running / spec.path.name, kernels)
        _check_figures(spec, running)
    except BuildError as error:
        if kernels.stopped:
            shutil.rmtree(running, ignore_errors=True)
            raise
        running.rename(failed)
        raise BuildError(str(error).replace(str(running), str(failed))) from None
    shutil.rmtree(final, ignore_errors=True)
    running.rename(final)
    return final


def start_and_wait(threads: list[threading.Thread]) -> None:
    """Start ``threads`` and wait for them all, in short waits: Ctrl-C is seen between
    them (a thread's ``join`` with no timeout would hold it back)."""
    for thread in threads:
        thread.start()
    for thread in threads:
        while thread.is_alive():
            thread.join(0.2)


def _stop(build: Build, kernels: Kernels, threads: list[threading.Thread]) -> None:
    """Kill the kernels, wait briefly for the workers, remove unfinished folders."""
    kernels.stop()
    deadline = time.monotonic() + 15
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    for running in (build.root / "notebooks").glob("*.running"):
        shutil.rmtree(running, ignore_errors=True)


def _log_kernel_output(build: Build, kernels: Kernels, name: str) -> None:
    captured = kernels.output_file(name)
    if captured is None or not captured.exists():
        return
    if build.session is not None:
        build.session.log.append_output(f"notebook {name}", captured)
    captured.unlink(missing_ok=True)


def _check_figures(spec: nb.NotebookSpec, folder: Path) -> None:
    missing = [f for f in spec.figures.values() if not (folder / f).is_file()]
    if missing or not (folder / RESULTS_FILE).is_file():
        raise BuildError(f"notebook {spec.name} finished without writing "
                         f"{', '.join(missing) or RESULTS_FILE}; the executed "
                         f"notebook is kept at {folder / spec.path.name}")


def kernel_start_seconds(executed: Path) -> float | None:
    """Time from papermill's start to the first cell's start: mostly kernel start-up."""
    import datetime

    import nbformat

    notebook = nbformat.read(executed, as_version=4)
    try:
        started = notebook.metadata.papermill.start_time
        first = next(c.metadata.papermill.start_time for c in notebook.cells
                     if c.metadata.get("papermill", {}).get("start_time"))
    except (AttributeError, StopIteration):
        return None
    parse = datetime.datetime.fromisoformat
    return round((parse(first) - parse(started)).total_seconds(), 2)
