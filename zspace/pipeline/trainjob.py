"""One training of a Dask build, in a process of its own.

``python -m zspace.pipeline.trainjob JOB RESULT WORKER_PID`` makes the model stage
that ``JOB`` (a pickle written by :func:`zspace.pipeline.tasks.train`) describes and
writes ``RESULT``: ``{"cached": ..., "resumed_from_epoch": ...}``, or ``{"error":
..., "exit_code": ...}`` for a zspace error.

Why a process: a Dask worker runs threads besides its task's (its event loop, its
heartbeats) that draw from Python's global random numbers, from which Keras seeds
its weight initialisers. A model trained in the worker's own process would start
from other weights than in a local build, and from other weights on each run. Here,
as in the local executor, the training is the process's only work, and the same
configuration gives the same model with either executor. The process also gives a
GPU back whole when it ends, and dies with its worker (Linux: ``PR_SET_PDEATHSIG``).

Fault injection for the tests: with ``ZSPACE_FAULT_KILL_TRAINING_ONCE=<file>`` in
the environment, the first training to finish an epoch (and its checkpoint) while
``<file>`` does not exist creates it and kills its worker, as a crash or an
out-of-memory kill would, and itself with it.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import pickle
import signal
import sys
from pathlib import Path

from zspace.errors import ZspaceError
from zspace.files import write_json_atomic

FAULT_KILL_TRAINING_ONCE = "ZSPACE_FAULT_KILL_TRAINING_ONCE"
PR_SET_PDEATHSIG = 1  # prctl(2)


def main(argv: list[str]) -> int:
    """Train one model stage; return 0, or 1 after writing a zspace error."""
    job_file, result_file, worker = Path(argv[0]), Path(argv[1]), int(argv[2])
    _die_with(worker)
    logging.basicConfig(level=logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    job = pickle.loads(job_file.read_bytes())
    try:
        trained = _train(**job, callbacks=_fault_callbacks(worker))
    except ZspaceError as error:
        write_json_atomic(result_file, {"error": str(error),
                                        "exit_code": error.exit_code})
        return 1
    write_json_atomic(result_file, {
        "cached": trained.loaded_from_cache,
        "resumed_from_epoch": trained.meta.get("resumed_from_epoch")})
    return 0


def _train(stage, config: dict, build_root: str, committed_dir: str | None,
           callbacks: list):
    from zspace.config import config_from_dict
    from zspace.data import load_dataset
    from zspace.training.trainer import make_model

    resolved = config_from_dict(config)
    dataset = load_dataset(resolved.data, Path(build_root), False)
    return make_model(stage, dataset, Path(build_root), progress=False,
                      committed_dir=Path(committed_dir) if committed_dir else None,
                      callbacks=callbacks)


def _die_with(worker: int) -> None:
    """Be killed when the worker process that started this one ends (Linux)."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != worker:  # it died before the request above
        os._exit(1)


def _fault_callbacks(worker: int) -> list:
    marker = os.environ.get(FAULT_KILL_TRAINING_ONCE)
    if not marker:
        return []
    import keras

    class KillOnce(keras.callbacks.Callback):
        """Kills the worker after the first epoch's checkpoint, once."""

        def on_epoch_end(self, epoch, logs=None):
            try:
                descriptor = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                return
            os.write(descriptor, str(worker).encode())
            os.close(descriptor)
            os.kill(worker, signal.SIGKILL)
            os._exit(70)

    return [KillOnce()]


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
