"""The analysis notebooks: what each declares, checking parameters, running papermill.

Each notebook in ``analysis/`` has a first cell tagged ``parameters`` and, in its
metadata under ``zspace``, the figures it writes and the models it needs::

    {"zspace": {"figures": {"A4": "A4-vae-normal-samples.png"}, "models": ["vae"]}}

and optionally ``"site": ["explorer"]``: folders of its output that the report
publishes into the site as they are.

The pipeline injects three reserved parameters into every notebook: ``config_file``
(the resolved configuration as JSON), ``build_dir`` and ``output_dir`` (where the
notebook writes its figures and ``results.json``).
"""

from __future__ import annotations

import ast
import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
import papermill
from jupyter_client.manager import AsyncKernelManager
from traitlets import default

from zspace.build.session import relevant_lines
from zspace.errors import BuildError, ConfigError

RESERVED = ("config_file", "build_dir", "output_dir")
RESULTS_FILE = "results.json"


@dataclass(frozen=True)
class NotebookSpec:
    """One analysis notebook as the pipeline sees it.

    Attributes:
        path: The notebook file.
        figures: Catalogue id -> file name of each figure it writes.
        models: Names of the models it needs (``ae``, ``vae``, ``wide_ae``, ``judge``).
        defaults: Its parameters and their default values (reserved ones excluded).
        site: Folders of its output published into the site (e.g. ``explorer``).
    """

    path: Path
    figures: dict[str, str]
    models: tuple[str, ...]
    defaults: dict[str, Any]
    site: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return self.path.stem


def read_spec(path: Path) -> NotebookSpec:
    """Read a notebook's declared figures, models and parameter defaults.

    Raises:
        BuildError: The notebook has no ``parameters`` cell, no ``zspace`` metadata,
            lacks a reserved parameter, or has a default that is not a Python literal.
    """
    notebook = nbformat.read(path, as_version=4)
    meta = notebook.metadata.get("zspace")
    if not meta or "figures" not in meta:
        raise BuildError(f"{path.name}: no 'zspace' metadata naming its figures")
    tags = [cell.metadata.get("tags", ()) for cell in notebook.cells]
    if not any("parameters" in cell_tags for cell_tags in tags):
        raise BuildError(f"{path.name}: no cell tagged 'parameters'")
    declared = papermill.inspect_notebook(str(path))
    cell = next(c for c, t in zip(notebook.cells, tags, strict=True)
                if "parameters" in t)
    unparsed = sorted(_assigned_names(cell.source) - set(declared))
    if unparsed:
        # papermill skips a line it cannot parse with a mere warning; the parameter
        # would then be impossible to override, so it is an error here.
        raise BuildError(f"{path.name}: papermill cannot read parameter(s) "
                         f"{', '.join(unparsed)} of the parameters cell (keep one "
                         "plain 'name = literal' per line)")
    absent = [name for name in RESERVED if name not in declared]
    if absent:
        raise BuildError(f"{path.name}: its parameters cell must declare "
                         f"{', '.join(absent)} (the pipeline sets them)")
    defaults = {}
    for name, info in declared.items():
        if name in RESERVED:
            continue
        try:
            defaults[name] = ast.literal_eval(info["default"])
        except (ValueError, SyntaxError):
            raise BuildError(f"{path.name}: parameter {name} = {info['default']} is "
                             "not a literal; the pipeline cannot check it") from None
    return NotebookSpec(path, dict(meta["figures"]), tuple(meta.get("models", ())),
                        defaults, tuple(meta.get("site", ())))


def _assigned_names(source: str) -> set[str]:
    try:
        tree = ast.parse(source)
    except SyntaxError as error:
        raise BuildError(f"the parameters cell is not valid Python: {error}") from None
    names = set()
    for node in tree.body:
        if isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(t.id for t in targets if isinstance(t, ast.Name))
    return names


def resolve_parameters(spec: NotebookSpec, overrides: dict[str, Any]) -> dict[str, Any]:
    """The notebook's defaults with ``overrides`` applied, after checking them.

    Raises:
        ConfigError: An override names a parameter the notebook does not have, or its
            type differs from the default's (an int is accepted for a float).
    """
    resolved = dict(spec.defaults)
    for name, value in overrides.items():
        key = f"notebooks.{spec.name}.{name}"
        if name not in spec.defaults:
            known = ", ".join(sorted(spec.defaults)) or "none"
            raise ConfigError(f"unknown notebook parameter {key} "
                              f"(parameters of {spec.path.name}: {known})")
        resolved[name] = _check_type(value, spec.defaults[name], key)
    return resolved


def _check_type(value: Any, default: Any, key: str) -> Any:
    if isinstance(default, bool) or isinstance(value, bool):
        if isinstance(default, bool) and isinstance(value, bool):
            return value
    elif isinstance(default, float) and isinstance(value, int | float):
        return float(value)
    elif isinstance(default, list | tuple) and isinstance(value, list | tuple):
        if all(_same_kind(v, default[0]) for v in value) if default else True:
            return list(value)
    elif type(value) is type(default):
        return value
    raise ConfigError(f"{key}: expected {type(default).__name__} like the notebook's "
                      f"default {default!r}, got {value!r}")


def _same_kind(value: Any, example: Any) -> bool:
    if isinstance(example, float):
        return isinstance(value, int | float) and not isinstance(value, bool)
    return type(value) is type(example)


# What sets the size of each compute thread pool in a kernel: TensorFlow's two pools,
# OpenMP (oneDNN, scikit-learn's extensions), and the BLAS under NumPy and SciPy.
THREAD_VARIABLES = ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS",
                    "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


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

    def environment(self, env: dict[str, str] | None) -> dict[str, str]:
        env = dict(os.environ if env is None else env)
        if self.scratch is not None:
            env["TMPDIR"] = str(self.scratch / "tmp")
        # Read by TensorFlow's C++ side as it loads; absl prints its preamble anyway.
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        if self.threads is not None:
            # Read once, as the libraries load: the kernel's process is new.
            for name in THREAD_VARIABLES:
                env[name] = str(self.threads)
        return env

    def socket_folder(self) -> str:
        folder = tempfile.mkdtemp(prefix="zspace-kernel-", dir=self.socket_dir)
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
    it per notebook to set ``kernels`` and ``output_file``.
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
        return os.path.join(self._socket_folder, "kernel")

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


def execute(spec: NotebookSpec, parameters: dict[str, Any], output: Path,
            kernels: Kernels | None = None) -> None:
    """Run one notebook with papermill; the executed copy is written to ``output``.

    No working folder is passed: papermill changes the process's working folder for
    that, which races when notebooks run in parallel threads. Notebooks write only to
    the absolute ``output_dir`` they are given.

    Args:
        spec: The notebook.
        parameters: Its parameters, reserved ones included.
        output: Where the executed notebook goes.
        kernels: The build's kernels (scratch folder, output capture, stop switch);
            None: a kernel with the system's temporary folder, output not captured.

    Raises:
        BuildError: A cell failed; the message names the notebook, the cell and the
            error, points at the executed notebook kept for inspection, and quotes
            the kernel's last lines of captured output that are not known noise.
    """
    output.parent.mkdir(parents=True, exist_ok=True)
    kernels = kernels or Kernels()
    captured = kernels.output_file(spec.name)
    manager = type("IsolatedKernelManager", (IsolatedKernelManager,),
                   {"kernels": kernels, "output_file": captured})
    try:
        papermill.execute_notebook(
            str(spec.path), str(output), parameters=parameters,
            kernel_name="python3", progress_bar=False,
            kernel_manager_class=manager)
    except papermill.PapermillExecutionError as error:
        number, first_line = _source_cell(output, error.cell_index)
        raise BuildError(
            f"notebook {spec.path.name} failed in cell {number} ({first_line!r}): "
            f"{error.ename}: {error.evalue}\n"
            f"  the executed notebook is kept at {output}"
            f"{_kernel_output(captured)}") from None
    except Exception as error:  # the kernel died or could not start
        raise BuildError(f"notebook {spec.path.name} could not run: "
                         f"{type(error).__name__}: {error}\n"
                         f"  the executed notebook is kept at {output}"
                         f"{_kernel_output(captured)}") from None


def _kernel_output(captured: Path | None) -> str:
    """The kernel's last relevant lines of output, indented, for an error message."""
    if captured is None or not captured.is_file():
        return ""
    lines = relevant_lines(captured.read_text(errors="replace"))
    if not lines:
        return ""
    return ("\n  the kernel's last lines of output (all of it is in build.log):\n"
            + "\n".join(f"    {line}" for line in lines))


def _source_cell(executed: Path, index: int) -> tuple[int, str]:
    """The failing cell's 1-based position in the source notebook and its first line.

    papermill inserts an ``injected-parameters`` cell, so the executed notebook's cell
    index is one more than the user's own notebook shows after the parameters cell;
    the error banners it adds afterwards are not counted in ``index``.
    """
    cells = [cell for cell in nbformat.read(executed, as_version=4).cells
             if "papermill-error-cell-tag" not in cell.metadata.get("tags", ())]
    injected = sum(1 for cell in cells[:index]
                   if "injected-parameters" in cell.metadata.get("tags", ()))
    lines = [line for line in cells[index].source.splitlines() if line.strip()]
    return index - injected + 1, lines[0].strip() if lines else ""
