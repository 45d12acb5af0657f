"""What a Dask worker runs for a build (:mod:`zspace.pipeline.distributed`).

Each function here is one stage of the plan, run in a worker process; it reads and
writes the build folder, which every worker must see at the client's path, and
returns a small record (the worker, the seconds, its log) that the client writes
into the build log under the stage's name. The client records what finished: a
worker never touches the build's record or the published site.

- :func:`train`: one model stage, in a process of its own
  (:mod:`zspace.pipeline.trainjob`, which says why); TensorFlow picks its speed
  options for the device it finds there (``devices.training_device``). The key's
  lock (:func:`zspace.lock.key_lock`) is an ``flock``, which the operating system
  drops when that process dies with its worker, so the retry resumes from the
  checkpoints the dead one left.
- :func:`make_set`: one sample set, handed to the worker's set maker, a
  ``python -m zspace.pipeline.setmaker --serve`` process that keeps the data set,
  the models and the judge loaded between sets, with the kernels' thread count (as
  the local executor's workers).
- :func:`run_notebook`: one notebook, with papermill kernels started by the worker.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import pickle
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from zspace.errors import UnsharedFolder, ZspaceError
from zspace.files import write_json_atomic
from zspace.pipeline.session import SCRATCH

# In build/<profile>/: the client's probe token, the workers' replies (in the
# session's scratch folder, removed when the build ends).
PROBE_FOLDER = f"{SCRATCH}/probe"
TAIL_LINES = 20  # of a failed process's output, in the error
# The longest temporary folder for kernel sockets: a socket path has at most 107
# bytes, and the kernel's folder and file names take about 40 of them.
SOCKET_DIR_CHARACTERS = 60

_makers_lock = threading.Lock()
_makers: dict[str, _SetMaker] = {}  # this process's set makers, by inputs file


class StageFailed(ZspaceError):
    """A stage failed on a worker: the error's message and exit code, and what the
    worker logged meanwhile (sent back to the client, which names the stage)."""

    def __init__(self, message: str, log: str = "", exit_code: int = 3):
        super().__init__(message, log, exit_code)
        self.log = log
        self.exit_code = exit_code

    def __str__(self) -> str:
        return self.args[0]


def seen(folder: str) -> Path:
    """``folder`` as this worker sees it: the same path (a test's worker plugin
    replaces this function to play a worker that mounts another file system)."""
    return Path(folder)


def probe(profile_folder: str, token: str, dask_worker=None) -> str:
    """Reply to the client's probe: write ``.probe/<token>.<pid>`` holding this
    worker's address into the build folder; return the file's name."""
    address = dask_worker.address if dask_worker is not None else ""
    folder = seen(profile_folder) / PROBE_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    reply = folder / f"{token}.{os.getpid()}"
    reply.write_text(address)
    return reply.name


def check_folder(profile_folder: str, token: str) -> None:
    """Refuse to run where the client's probe token is not in the build folder: a
    worker that joined after the probe, on a machine that does not share it.

    Raises:
        UnsharedFolder: Naming the folder and this worker's host.
    """
    if not (seen(profile_folder) / PROBE_FOLDER / token).is_file():
        import socket

        raise UnsharedFolder(
            f"the Dask worker on {socket.gethostname()} (pid {os.getpid()}) does not "
            f"see the build folder {profile_folder}: put it on a file system every "
            "worker mounts at the same path")


def train(stage, config: dict[str, Any], build_root: str, token: str,
          committed_dir: str | None, inputs: list | None = None) -> dict[str, Any]:
    """Make one model stage (``zspace.pipeline.plan.ModelStage``) as the plan says,
    in a process of its own (:mod:`zspace.pipeline.trainjob`).

    Args:
        stage: The stage.
        config: The resolved configuration (``Config.to_dict``).
        build_root: The build root (the caches).
        token: The client's probe token.
        committed_dir: ``models/<profile>/``, where the plan looked.
        inputs: The records of the tasks this one waits for (unused).
    """
    profile = str(Path(build_root) / config["name"])
    check_folder(profile, token)
    folder = _scratch(profile) / f"train-{stage.key}"
    folder.mkdir(parents=True, exist_ok=True)
    job, result, output = (folder / "job.pickle", folder / "result.json",
                           folder / "output.txt")
    result.unlink(missing_ok=True)
    job.write_bytes(pickle.dumps({"stage": stage, "config": config,
                                  "build_root": str(seen(build_root)),
                                  "committed_dir": committed_dir}))
    started = time.perf_counter()
    with output.open("w") as out:
        code = subprocess.run(
            [sys.executable, "-m", "zspace.pipeline.trainjob", str(job), str(result),
             str(os.getpid())], stdout=out, stderr=subprocess.STDOUT,
            env={"TF_CPP_MIN_LOG_LEVEL": "2", **os.environ}).returncode
    log = output.read_text(errors="replace")
    outcome = json.loads(result.read_text()) if result.is_file() else {}
    if code or "error" in outcome:
        from zspace.pipeline.session import relevant_lines

        raise StageFailed(
            outcome.get("error") or f"the training process ended with exit {code}; "
            "its output ends:\n" + "\n".join(relevant_lines(log, TAIL_LINES)),
            log, outcome.get("exit_code", 6))
    return _record(started, io.StringIO(log), **outcome)


def make_set(job: dict[str, Any], inputs_file: str, profile_folder: str, token: str,
             threads: int, inputs: list | None = None) -> dict[str, Any]:
    """Make one sample set with this worker's set maker.

    Args:
        job: The set's job (``zspace.pipeline.sampling.jobs_file``).
        inputs_file: The build's set inputs (configuration, data set, models),
            written by the client into the build folder.
        profile_folder: ``build/<profile>/``.
        token: The client's probe token.
        threads: The kernels' thread count.
        inputs: The records of the tasks this one waits for (unused).
    """
    check_folder(profile_folder, token)
    started = time.perf_counter()
    with _makers_lock:
        maker = _makers.get(inputs_file)
        if maker is None or not maker.alive():
            maker = _makers[inputs_file] = _SetMaker(
                seen(inputs_file), _scratch(profile_folder), threads)
        maker.make(job)
    return _record(started, io.StringIO())


def run_notebook(spec, parameters: dict[str, Any], manifest: dict[str, Any],
                 profile_folder: str, token: str, threads: int,
                 inputs: list | None = None) -> dict[str, Any]:
    """Execute one notebook into ``notebooks/<name>`` of the build folder.

    Args:
        spec: The notebook (``zspace.pipeline.notebooks.NotebookSpec``).
        parameters: Its resolved parameters.
        manifest: Its inputs manifest (``Plan.inputs``).
        profile_folder: ``build/<profile>/``.
        token: The client's probe token.
        threads: The kernels' thread count.
        inputs: The records of the tasks this one waits for (unused).
    """
    from zspace.pipeline.kernels import Kernels
    from zspace.pipeline.runner import kernel_start_seconds
    from zspace.pipeline.runner import run_notebook as run

    check_folder(profile_folder, token)
    kernels = Kernels(_scratch(profile_folder), True, _socket_dir(), threads)
    log = io.StringIO()
    started = time.perf_counter()
    try:
        with _failures_carry(log):
            folder = run(spec, parameters, manifest,
                         seen(profile_folder) / "notebooks", kernels)
    finally:
        captured = kernels.output_file(spec.name)
        if captured is not None and captured.exists():
            log.write(captured.read_text(errors="replace"))
            captured.unlink()
        kernels.close()
    record = _record(started, log)
    record["kernel_start"] = kernel_start_seconds(folder / spec.path.name)
    return record


def executing(dask_worker=None) -> list[str]:
    """The keys of the tasks this worker executes now."""
    return [str(task.key) for task in dask_worker.state.executing]


def close_set_makers() -> int:
    """End this worker's set makers (their standard input closes); return how many."""
    with _makers_lock:
        makers = list(_makers.values())
        _makers.clear()
    for maker in makers:
        maker.close()
    return len(makers)


class _SetMaker:
    """A ``setmaker --serve`` process: one JSON job per line in, ``made NAME`` out.

    It ends when its standard input closes, so a worker that dies takes it along
    once the set in hand is done.
    """

    def __init__(self, inputs_file: Path, scratch: Path, threads: int):
        from zspace.pipeline.kernels import Kernels

        self.output = scratch / f"sets-{os.getpid()}.txt"
        with self.output.open("w") as err:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "zspace.pipeline.setmaker", "--serve",
                 str(inputs_file), str(scratch / f"sets-{os.getpid()}")],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, text=True,
                env=Kernels(scratch, threads=threads).environment(None))

    def alive(self) -> bool:
        return self.process.poll() is None

    def make(self, job: dict[str, Any]) -> None:
        import json

        name = job["point"]["name"]
        self.process.stdin.write(json.dumps(job) + "\n")
        self.process.stdin.flush()
        for line in self.process.stdout:
            if line.strip() == f"made {name}":
                return
        self.process.wait()
        from zspace.pipeline.session import relevant_lines

        tail = relevant_lines(self.output.read_text(errors="replace"), TAIL_LINES)
        raise StageFailed(f"the set maker ended (exit {self.process.returncode}); "
                          "its output ends:\n" + "\n".join(tail))

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.process.stdin.close()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()


def _socket_dir() -> Path:
    """Where kernel sockets go: the temporary folder, unless its path is too long
    for a Unix socket's (a worker started inside a build's session has the build's
    scratch folder as its temporary folder)."""
    folder = Path(tempfile.gettempdir())
    if len(str(folder)) > SOCKET_DIR_CHARACTERS and Path("/tmp").is_dir():
        return Path("/tmp")
    return folder


def _scratch(profile_folder: str) -> Path:
    """This worker's scratch folder in the build's (removed with it)."""
    import socket

    folder = (seen(profile_folder) / SCRATCH
              / f"worker-{socket.gethostname()}-{os.getpid()}")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@contextlib.contextmanager
def _failures_carry(log: io.StringIO) -> Iterator[None]:
    """Raise an error as :class:`StageFailed` carrying the log and its exit code
    (a ``TrainingError`` still exits 3, a ``ModelError`` 2)."""
    try:
        yield
    except StageFailed:
        raise
    except Exception as error:
        code = error.exit_code if isinstance(error, ZspaceError) else 6
        message = str(error) if isinstance(error, ZspaceError) else (
            f"{type(error).__name__}: {error}")
        raise StageFailed(message, log.getvalue(), code) from None


def _record(started: float, log: io.StringIO, **extra: Any) -> dict[str, Any]:
    from distributed import get_worker

    return {"worker": get_worker().address, "seconds": time.perf_counter() - started,
            "log": log.getvalue(), **extra}


def write_set_inputs(profile_folder: Path, token: str,
                     inputs: dict[str, Any]) -> Path:
    """Write the sample sets' shared inputs (configuration, data set, models) where
    every worker reads them; return the file."""
    path = profile_folder / PROBE_FOLDER / f"set-inputs-{token}.json"
    write_json_atomic(path, {"inputs": inputs})
    return path
