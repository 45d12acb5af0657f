"""The build as a graph of stages: data, models, notebooks, report.

Every stage is keyed by its code, parameters and inputs (:mod:`zspace.build.state`).
A stage whose key is unchanged and whose outputs exist is skipped; a changed one runs,
and because its outputs feed the keys of later stages, so does everything after it.
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
from zspace.build import notebooks as nb
from zspace.build.session import Session
from zspace.build.state import BuildState, StageKey, describe_change
from zspace.config import Config
from zspace.errors import BuildError, ConfigError
from zspace.versioning import code_digest

# The library code a notebook's figures depend on; a change re-runs the notebooks.
# The code a notebook runs: the whole package but the build engine, the figure diff,
# the command line and the opt-in training speed-ups (which change no notebook's
# result: a model trained with them has a key of its own).
NOTEBOOK_CODE_EXCLUDED = ("zspace/build/", "zspace/diff/", "zspace/cli.py",
                          "zspace/models/speed.py")


def notebook_code() -> list[Path]:
    """The package's source files that notebooks import, in a stable order."""
    files = sorted((paths.ROOT / "zspace").rglob("*.py"))
    return [f for f in files if not f.relative_to(paths.ROOT).as_posix().startswith(
        NOTEBOOK_CODE_EXCLUDED)]


REPORT_STAGE = "report"
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
        return paths.build_dir(self.build_root) / self.config.name

    @property
    def analysis(self) -> Path:
        return Path(self.config.build.analysis_dir or paths.ANALYSIS)

    @property
    def templates(self) -> Path:
        return Path(self.config.build.templates_dir or paths.REPORT_TEMPLATES)

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

    def kernels(self) -> nb.Kernels:
        """Kernels that use the session's scratch folder and capture their output."""
        if self.session is None:
            return nb.Kernels(threads=self.config.build.kernel_threads)
        return nb.Kernels(self.session.scratch, self.session.capture_kernels,
                          self.session.system_tmp, self.config.build.kernel_threads)


def discover(config: Config, folder: Path) -> list[nb.NotebookSpec]:
    """Every notebook of ``folder``, checking that configured overrides name them.

    Raises:
        ConfigError: ``notebooks.NAME`` names no notebook in the folder, or the folder
            holds no notebook.
    """
    if not folder.is_dir() or not any(folder.glob("*.ipynb")):
        raise ConfigError(f"build.analysis_dir: no notebooks (*.ipynb) in {folder}")
    specs = [nb.read_spec(path) for path in sorted(folder.glob("*.ipynb"))]
    names = {spec.name for spec in specs}
    for name in config.notebooks:
        if name not in names:
            raise ConfigError(f"notebooks.{name}: no notebook {name}.ipynb in {folder} "
                              f"(notebooks: {', '.join(sorted(names))})")
    return specs


def notebook_key(spec: nb.NotebookSpec, parameters: dict[str, Any],
                 dataset_hash: str, model_keys: dict[str, str],
                 threads: int) -> StageKey:
    return StageKey({
        "notebook": code_digest(spec.path),
        "code": code_digest(*notebook_code()),
        "parameters": parameters,
        "threads": threads,
        "inputs": {"dataset": dataset_hash,
                   **{f"model {name}": model_keys[name] for name in spec.models}},
    })


def notebook_outputs_exist(build: Build, spec: nb.NotebookSpec) -> bool:
    folder = build.root / "notebooks" / spec.name
    return (folder / nb.RESULTS_FILE).is_file() and all(
        (folder / file).is_file() for file in spec.figures.values()) and all(
        (folder / name).is_dir() for name in spec.site)


def run_notebooks(build: Build, jobs: list[tuple[nb.NotebookSpec, dict, StageKey]],
                  config_file: Path) -> list[BuildError]:
    """Execute notebooks, several at once; return the failures (others are recorded).

    On Ctrl-C every kernel is killed, the unfinished notebooks' working folders are
    removed, and ``KeyboardInterrupt`` is raised again within seconds; notebooks that
    finished before it are recorded and will not run again.
    """
    state = build.state
    failures: list[BuildError] = []
    crashes: list[BaseException] = []
    kernels = build.kernels()
    pending: queue.SimpleQueue = queue.SimpleQueue()
    for job in jobs:
        pending.put(job)

    def one(job):
        spec, parameters, key = job
        final = build.root / "notebooks" / spec.name
        running = final.with_name(spec.name + ".running")
        failed = final.with_name(spec.name + ".failed")
        for stale in (running, failed):
            shutil.rmtree(stale, ignore_errors=True)
        running.mkdir(parents=True)
        build.say(f"  notebook {spec.name}: running")
        started = time.perf_counter()
        injected = {"config_file": str(config_file), "build_dir": str(build.build_root),
                    "output_dir": str(running)}
        try:
            nb.execute(spec, {**parameters, **injected}, running / spec.path.name,
                       kernels)
            _check_figures(spec, running)
        except BuildError as error:
            if kernels.stopped:  # interrupted: no record, no .failed folder
                shutil.rmtree(running, ignore_errors=True)
                return
            running.rename(failed)
            failures.append(BuildError(str(error).replace(str(running), str(failed))))
            build.say(f"  notebook {spec.name}: FAILED")
            return
        finally:
            _log_kernel_output(build, kernels, spec.name)
        shutil.rmtree(final, ignore_errors=True)
        running.rename(final)
        seconds = time.perf_counter() - started
        state.record(f"notebook {spec.name}", key, seconds,
                     kernel_start=_kernel_start_seconds(final / spec.path.name))
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
        for thread in threads:
            thread.start()
        for thread in threads:
            while thread.is_alive():  # short waits: Ctrl-C is seen between them
                thread.join(0.2)
    except KeyboardInterrupt:
        _stop(build, kernels, threads)
        raise
    finally:
        kernels.close()
    if crashes:
        raise crashes[0]
    return failures


def _stop(build: Build, kernels: nb.Kernels, threads: list[threading.Thread]) -> None:
    """Kill the kernels, wait briefly for the workers, remove unfinished folders."""
    kernels.stop()
    deadline = time.monotonic() + 15
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    for running in (build.root / "notebooks").glob("*.running"):
        shutil.rmtree(running, ignore_errors=True)


def _log_kernel_output(build: Build, kernels: nb.Kernels, name: str) -> None:
    captured = kernels.output_file(name)
    if captured is None or not captured.exists():
        return
    if build.session is not None:
        build.session.log.append_output(f"notebook {name}", captured)
    captured.unlink(missing_ok=True)


def _check_figures(spec: nb.NotebookSpec, folder: Path) -> None:
    missing = [f for f in spec.figures.values() if not (folder / f).is_file()]
    if missing or not (folder / nb.RESULTS_FILE).is_file():
        raise BuildError(f"notebook {spec.name} finished without writing "
                         f"{', '.join(missing) or nb.RESULTS_FILE}; the executed "
                         f"notebook is kept at {folder / spec.path.name}")


def _kernel_start_seconds(executed: Path) -> float | None:
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


def stage_status(build: Build, stage: str, key: StageKey, outputs: bool) -> str:
    """``fresh`` or ``stale: why`` for one stage."""
    previous = build.state.previous(stage)
    if previous.get("key") == key.digest and outputs:
        return "fresh"
    return "stale: " + describe_change(key, previous)
