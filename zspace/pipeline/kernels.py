"""Notebook kernels: private sockets, a fixed thread count, captured output, and a
switch that kills them all.

jupyter_client starts each kernel in a session of its own and, by default, on TCP
ports that two kernels started at once can both pick. The manager here gives every
kernel a private folder of Unix sockets, the build's scratch folder as ``TMPDIR``, a
fixed number of compute threads (so figures do not depend on the machine's cores) and
a file for its output; :class:`Kernels` remembers the process groups so that Ctrl-C
can kill them within seconds. A socket folder's name carries the build's process id
(``zspace-kernel-<pid>-*``), so folders that a killed build left behind are found
and removed by the next (:func:`remove_orphans`).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import signal
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import Any

from jupyter_client.manager import AsyncKernelManager
from traitlets import default

from zspace.lock import is_running

# Kernel socket folders: ``zspace-kernel-<pid of the build>-<number>``.
SOCKET_PREFIX = "zspace-kernel-"
_numbers = itertools.count(1)

# What sets the size of each compute thread pool in a kernel: TensorFlow's two pools,
# OpenMP (oneDNN, scikit-learn's extensions), and the BLAS under NumPy and SciPy.
THREAD_VARIABLES = ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS",
                    "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
# NumPy advises the kernel to back each large array with huge pages. Where the
# kernel then compacts memory at the first touch (transparent huge pages with
# ``defrag = madvise``, as on our build machines), each new 100 MB array stalls for
# about half a second: a quarter of notebook 90's time went there. Off in every
# process the build starts, unless the caller set it (benchmarks/hugepages.py).
HUGEPAGE_VARIABLE = "NUMPY_MADVISE_HUGEPAGE"


class Kernels:
    """The notebook kernels of one build: where they write, and a switch to stop them.

    Args:
        scratch: A folder for the kernels' temporary files (``tmp/``, their
            ``TMPDIR``) and captured output (``<notebook>.out``); None: the system's
            temporary folder, and nothing captured.
        capture: Write each kernel's standard output and error (TensorFlow's C++
            notices, ipykernel's log) to a file instead of this process's terminal.
        socket_dir: Where the per-kernel folders of Unix sockets go; a socket path
            has at most 107 bytes, so a short one (default: the temporary folder).
        threads: Compute threads of each kernel (TensorFlow, OpenMP, BLAS); None:
            the libraries' own choice, the machine's core count.
    """

    def __init__(self, scratch: Path | None = None, capture: bool = True,
                 socket_dir: Path | None = None, threads: int | None = None):
        self.scratch = scratch
        self.threads = threads
        self.capture = capture and scratch is not None
        self.socket_dir = socket_dir
        self.stopped = False
        self._lock = threading.Lock()
        self._pids: set[int] = set()
        self._socket_folders: set[str] = set()
        if scratch is not None:
            (scratch / "tmp").mkdir(parents=True, exist_ok=True)

    def output_file(self, name: str) -> Path | None:
        """The file that captures notebook ``name``'s kernel output, if captured."""
        return self.scratch / f"{name}.out" if self.capture else None

    def manager_class(self, notebook: str) -> type[AsyncKernelManager]:
        """The kernel manager class for notebook ``notebook`` (papermill takes a class,
        not an instance): its kernel uses these settings and this output file."""
        return type("IsolatedKernelManager", (IsolatedKernelManager,),
                    {"kernels": self, "output_file": self.output_file(notebook)})

    def environment(self, env: dict[str, str] | None) -> dict[str, str]:
        env = dict(os.environ if env is None else env)
        if self.scratch is not None:
            env["TMPDIR"] = str(self.scratch / "tmp")
        # Read by TensorFlow's C++ side as it loads; absl prints its preamble anyway.
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        env.setdefault(HUGEPAGE_VARIABLE, "0")
        if self.threads is not None:
            # Read once, as the libraries load: the kernel's process is new.
            for name in THREAD_VARIABLES:
                env[name] = str(self.threads)
        return env

    def socket_folder(self) -> str:
        """A new private folder for one kernel's sockets, named after this process.

        Numbered rather than random: a socket path has at most 107 bytes, and the
        process id already takes some of them.
        """
        parent = Path(self.socket_dir or tempfile.gettempdir())
        while True:
            folder = parent / f"{SOCKET_PREFIX}{os.getpid()}-{next(_numbers)}"
            try:
                folder.mkdir(mode=0o700)
                break
            except FileExistsError:  # a dead build's with the same id, say
                continue
        folder = str(folder)
        with self._lock:
            self._socket_folders.add(folder)
        return folder

    def started(self, pid: int) -> None:
        with self._lock:
            if self.stopped:
                _kill_group(pid)
            else:
                self._pids.add(pid)

    def ended(self, pid: int | None, socket_folder: str | None) -> None:
        with self._lock:
            self._pids.discard(pid)
            self._socket_folders.discard(socket_folder)
        if socket_folder:
            shutil.rmtree(socket_folder, ignore_errors=True)

    def stop(self) -> None:
        """Kill every running kernel (with its children) and any started later."""
        with self._lock:
            self.stopped = True
            pids = list(self._pids)
        for pid in pids + _session_children():
            _kill_group(pid)

    def close(self) -> None:
        """Remove the socket folders of kernels that did not clean up after
        themselves; after :meth:`stop`, kill any kernel still alive."""
        if self.stopped:
            # A kernel launched in the instant of Ctrl-C may not have been counted;
            # left alive, it would write its connection file into the scratch folder
            # after the build removed it.
            for pid in _session_children():
                _kill_group(pid)
        with self._lock:
            folders, self._socket_folders = self._socket_folders, set()
        for folder in folders:
            shutil.rmtree(folder, ignore_errors=True)


def remove_orphans(folder: Path) -> list[Path]:
    """Remove the kernel socket folders in ``folder`` whose build no longer runs.

    A build killed with SIGKILL (or whose kernels outlived it) cannot remove its
    own; the process id in each name says whose it is. Folders of running builds,
    and older folders without an id, stay.

    Returns:
        The folders removed.
    """
    removed = []
    for path in Path(folder).glob(f"{SOCKET_PREFIX}*-*"):
        pid = path.name.removeprefix(SOCKET_PREFIX).split("-", 1)[0]
        if pid.isdigit() and not is_running(int(pid)) and path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def _session_children() -> list[int]:
    """This process's children that lead a session of their own: its kernels.

    jupyter_client starts every kernel with ``start_new_session``; the data set's
    worker processes and other helpers stay in this process's session. Linux only
    (``/proc``); elsewhere the kernels counted by :meth:`Kernels.started` are all.
    """
    me, found = os.getpid(), []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # pid (comm) state ppid pgrp session ...; comm may hold spaces.
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        pid = int(stat.parent.name)
        if int(fields[1]) == me and int(fields[3]) == pid:
            found.append(pid)
    return found


def _kill_group(pid: int) -> None:
    # jupyter_client starts each kernel in a session of its own: its process group
    # holds the kernel and whatever it started.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


class IsolatedKernelManager(AsyncKernelManager):
    """A kernel that talks over Unix sockets in a private folder, not TCP ports.

    Kernels started at the same moment pick their TCP ports independently and can
    collide; with IPC sockets in a fresh folder per kernel there is nothing to share.
    The folder is removed when the kernel is cleaned up. :func:`execute` subclasses
    it per notebook (:meth:`Kernels.manager_class`) to set ``kernels`` and
    ``output_file``.
    """

    kernels: Kernels | None = None
    output_file: Path | None = None
    _socket_folder: str | None = None

    @default("transport")
    def _default_transport(self) -> str:
        return "ipc"

    @default("ip")
    def _default_ip(self) -> str:
        self._socket_folder = (self.kernels or Kernels()).socket_folder()
        return os.path.join(self._socket_folder, "k")  # short: see socket_folder

    async def _async_launch_kernel(self, kernel_cmd: list[str], **kw: Any) -> None:
        kernels = self.kernels or Kernels()
        kw["env"] = kernels.environment(kw.get("env"))
        stream = None
        if self.output_file is not None:
            stream = open(self.output_file, "ab")  # noqa: SIM115 (the child's copy)
            kw.update(stdout=stream, stderr=subprocess.STDOUT)
        try:
            await super()._async_launch_kernel(kernel_cmd, **kw)
        finally:
            if stream is not None:
                stream.close()
        kernels.started(self.provisioner.pid)

    async def _async_interrupt_kernel(self) -> None:
        # jupyter_client interrupts (SIGINT) every kernel before shutting it down, in
        # case a cell is still running. papermill shuts a kernel down only after its
        # last cell, so the signal finds it idle or handling the shutdown request,
        # and ipykernel logs "KeyboardInterrupt caught in kernel" on a good build.
        if self.shutting_down:
            return
        await super()._async_interrupt_kernel()

    async def _async_cleanup_resources(self, restart: bool = False) -> None:
        pid = getattr(self.provisioner, "pid", None)
        await super()._async_cleanup_resources(restart=restart)
        if not restart:
            (self.kernels or Kernels()).ended(pid, self._socket_folder)
