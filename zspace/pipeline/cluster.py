"""Connecting a build to its Dask cluster, and checking that it can build there.

:func:`connect` reaches the scheduler of ``build.scheduler`` or
``DASK_SCHEDULER_ADDRESS`` within :data:`CONNECT_SECONDS` (else
:class:`SchedulerUnreachable`, exit 5), or starts a ``LocalCluster`` of
``build.parallel_notebooks`` worker processes with one thread each, which keep this
process's environment (Dask's one-thread defaults for OpenMP and BLAS are left out:
the kernels and the set makers set their own thread count, and a training process
then has this one's, as in the local executor). :func:`probe` checks that every
worker sees the build folder (else :class:`UnsharedFolder`, exit 2).
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
from collections.abc import Iterator
from typing import Any

from zspace.errors import ConfigError, SchedulerUnreachable, UnsharedFolder
from zspace.pipeline import tasks
from zspace.pipeline.runner import Build

CONNECT_SECONDS = 10  # to reach a scheduler before the build gives up
ADDRESS_VARIABLE = "DASK_SCHEDULER_ADDRESS"
INSTALL = 'pip install -e ".[dask]"'


def require() -> None:
    """Refuse the Dask executor where ``dask.distributed`` is not installed.

    Raises:
        ConfigError: Naming the extra to install.
    """
    try:
        import distributed  # noqa: F401
    except ImportError as error:
        raise ConfigError('build.executor = "dask" needs dask.distributed, which '
                          f"does not import ({error}): {INSTALL}") from None


@contextlib.contextmanager
def connect(b: Build) -> Iterator[tuple[Any, bool]]:
    """A client of the configured scheduler, or of a new local cluster; and whether
    the cluster is this build's own.

    Raises:
        SchedulerUnreachable: The scheduler did not answer.
    """
    import dask
    from distributed import Client, LocalCluster

    address = b.config.build.scheduler or os.environ.get(ADDRESS_VARIABLE, "")
    if address:
        with _quiet(), _reach(b, address) as client:
            b.say(f"dask: scheduler {address}, {len(_workers(client))} workers")
            yield client, False
        return
    workers = b.config.build.parallel_notebooks
    if b.config.build.gpus_per_training:
        b.say("dask: a local cluster's workers declare no GPUs; "
              "build.gpus_per_training applies to a scheduler's workers")
    system_tmp = b.session.system_tmp if b.session is not None else None
    settings = {"distributed.scheduler.allowed-failures": 1,
                "distributed.nanny.pre-spawn-environ": {}}
    with dask.config.set(settings), _quiet(), LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True,
            # HTTP routes on a free local port, without the dashboard
            dashboard_address="127.0.0.1:0", scheduler_kwargs={"dashboard": False},
            silence_logs=logging.WARNING,
            env=_local_environment(system_tmp)) as cluster, \
            Client(cluster) as client:
        b.say(f"dask: a local cluster of {workers} worker processes")
        yield client, True


def _reach(b: Build, address: str):
    """A client of the scheduler at ``address``.

    Raises:
        SchedulerUnreachable: It did not answer within :data:`CONNECT_SECONDS`.
    """
    from distributed import Client

    try:
        return Client(address, timeout=f"{CONNECT_SECONDS}s")
    except (OSError, TimeoutError) as error:
        where = "build.scheduler" if b.config.build.scheduler else ADDRESS_VARIABLE
        raise SchedulerUnreachable(
            f"the Dask scheduler at {address} ({where}) did not answer within "
            f"{CONNECT_SECONDS} s: {error}. Start it (dask scheduler) or correct the "
            "address") from None


def _local_environment(system_tmp) -> dict[str, str]:
    """What a local worker's environment changes: the temporary folder from before
    the session (short paths for kernel sockets), TensorFlow's C++ notices off."""
    env = {"TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2")}
    if system_tmp is not None:
        env["TMPDIR"] = str(system_tmp)
    return env


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Dask's own notices (a worker started, a client connected) stay out of the
    build log; its warnings and errors go in."""
    logger = logging.getLogger("distributed")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def _workers(client) -> dict[str, Any]:
    return client.scheduler_info(n_workers=-1)["workers"]


def probe(client, b: Build) -> str:
    """Check that every worker sees the build folder; return the probe's token.

    The client writes a token file into the build folder; each worker writes a
    reply beside it naming itself, and the client reads every reply. A task checks
    the token before it runs, for workers that join later.

    Raises:
        UnsharedFolder: A worker's reply is not where the client looks.
    """
    token = secrets.token_hex(8)
    folder = b.root / tasks.PROBE_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    (folder / token).write_text("written by the client\n")
    if not _workers(client):
        client.wait_for_workers(1)
    replies = client.run(tasks.probe, str(b.root), token)
    unseen = [address for address, name in replies.items()
              if not _reply_is(folder / name, address)]
    if unseen:
        raise UnsharedFolder(
            f"the Dask worker(s) {', '.join(sorted(unseen))} do not see the build "
            f"folder {b.root}: each wrote its probe file into {folder} as it sees "
            "it, and the file is not here. Put the build folder on a file system "
            "every worker mounts at the same path (--build-dir)")
    return token


def _reply_is(path, address: str) -> bool:
    try:
        return path.read_text() == address
    except OSError:
        return False
