"""What surrounds a build: its lock, its log, its scratch folder and a quiet terminal.

A session (:func:`open_session`) holds the build folder's lock, writes
``build/<profile>/build.log`` (the previous one is kept as ``build.previous.log``), and
gives the build a scratch folder, ``build/<profile>/.tmp/``, that is the temporary
folder of the process and of every notebook kernel for as long as it runs and is
removed when it ends, however it ends. Opening a session also marks the build root as
zspace's (:mod:`zspace.ownership`) and removes the kernel socket folders that killed
builds left in the system's temporary folder.

With ``capture``, the process's own standard output and error, at the level of file
descriptors, go to the log: TensorFlow's C++ start-up notices (absl, oneDNN) are
written there before Python could filter them. The terminal keeps the build's progress
lines, the progress bars, and the messages of zspace's own loggers.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from zspace import ownership
from zspace.lock import BuildLock
from zspace.pipeline.kernels import remove_orphans

LOG_FILE = "build.log"
PREVIOUS_LOG = "build.previous.log"
SCRATCH = ".tmp"

# Lines of captured output that say nothing about a failure: TensorFlow's absl
# start-up preamble and its INFO lines (oneDNN, CPU features).
NOISE = (
    re.compile(r"^WARNING: All log messages before absl::InitializeLog\(\) is called"),
    re.compile(r"^I\d{4} [\d:.]+\s+\d+ [\w.]+:\d+\] "),
    re.compile(r"^(This TensorFlow binary is optimized|To enable the following "
               r"instructions)"),
)


def relevant_lines(text: str, limit: int = 20) -> list[str]:
    """The last ``limit`` lines of captured output that are not known noise."""
    lines = [line.rstrip() for line in text.replace("\r", "\n").splitlines()]
    kept = [line for line in lines
            if line.strip() and not any(p.search(line) for p in NOISE)]
    return kept[-limit:]


class BuildLog:
    """``build.log`` of one build: timestamped lines, thread-safe appends.

    Args:
        path: The log file; an existing one is renamed to ``build.previous.log``.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists():
            os.replace(self.path, self.path.with_name(PREVIOUS_LOG))
        self._stream = open(self.path, "a", buffering=1, encoding="utf-8")  # noqa: SIM115
        self._lock = threading.Lock()

    def fileno(self) -> int:
        return self._stream.fileno()

    def line(self, message: str) -> None:
        """Append one message with the time of day."""
        self.write(f"[{time.strftime('%H:%M:%S')}] {message}\n")

    def write(self, text: str) -> None:
        with self._lock:
            self._stream.write(text)
            self._stream.flush()

    def append_output(self, source: str, file: Path) -> None:
        """Append a captured output file, each line prefixed with ``[source]``."""
        try:
            text = file.read_text(errors="replace")
        except OSError:
            return
        self.append_text(source, text)

    def append_text(self, source: str, text: str) -> None:
        """Append captured output, each line prefixed with ``[source]``."""
        lines = [line.rstrip() for line in text.replace("\r", "\n").splitlines()]
        body = "".join(f"[{source}] {line}\n" for line in lines if line.strip())
        self.write(body or f"[{source}] (no output)\n")

    def close(self) -> None:
        self._stream.close()


@dataclass
class Session:
    """An open build session (see :func:`open_session`).

    Attributes:
        folder: The build folder (``build/<profile>/``).
        log: Its build log.
        scratch: The scratch folder (``.tmp``): kernels' temporary files and output.
        system_tmp: The temporary folder before the session replaced it (short
            paths for the kernels' sockets).
        capture_kernels: Kernel output goes to the log (False: to the terminal).
    """

    folder: Path
    log: BuildLog
    scratch: Path
    system_tmp: Path
    capture_kernels: bool = True


@contextlib.contextmanager
def open_session(folder: Path, *, capture: bool = False, verbose: bool = False,
                 quiet: bool = False) -> Iterator[Session]:
    """Lock ``folder``, open its log and scratch folder; undo all of it on exit.

    Args:
        folder: The build folder (``build/<profile>/``).
        capture: Send this process's standard output and error (file descriptors 1
            and 2) to the log, keeping progress and zspace's messages on the terminal.
            Only for a process that owns its terminal (the command line).
        verbose: Show everything live: no capture, kernel output on the terminal.
        quiet: zspace's messages below warnings are not shown (the ``-q`` option).

    Raises:
        BuildBusy: Another process holds the folder's lock.
    """
    folder = Path(folder)
    notes: list[str] = []
    ownership.claim(folder.parent)  # the build root: ``clean`` may empty it
    ownership.claim_profile(folder)
    with BuildLock(folder, say=notes.append):
        log = BuildLog(folder / LOG_FILE)
        log.line(f"pid {os.getpid()}: {' '.join(sys.argv)}")
        for note in notes:
            print(note, file=sys.stderr, flush=True)
            log.line(note)
        try:
            with _scratch(folder / SCRATCH) as (scratch, system_tmp), \
                    _terminal(log, capture and not verbose, verbose, quiet):
                yield Session(folder, log, scratch, system_tmp,
                              capture_kernels=not verbose)
        finally:
            log.close()


@contextlib.contextmanager
def _scratch(folder: Path) -> Iterator[tuple[Path, Path]]:
    """Make ``folder/tmp`` the temporary folder of this process and its children."""
    shutil.rmtree(folder, ignore_errors=True)  # a killed run's (we hold the lock)
    (folder / "tmp").mkdir(parents=True)
    system_tmp = Path(tempfile.gettempdir())
    remove_orphans(system_tmp)  # kernel socket folders of builds that were killed
    saved_env, saved_tempdir = os.environ.get("TMPDIR"), tempfile.tempdir
    os.environ["TMPDIR"] = tempfile.tempdir = str(folder / "tmp")
    try:
        yield folder, system_tmp
    finally:
        tempfile.tempdir = saved_tempdir
        if saved_env is None:
            os.environ.pop("TMPDIR", None)
        else:
            os.environ["TMPDIR"] = saved_env
        shutil.rmtree(folder, ignore_errors=True)


class _TerminalFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.levelno >= logging.WARNING:
            return f"  {record.levelname.lower()}: {message}"
        return f"  {message}"


@contextlib.contextmanager
def _terminal(log: BuildLog, capture: bool, verbose: bool,
              quiet: bool) -> Iterator[None]:
    """Route output: zspace's messages to the terminal, everything to the log.

    With ``capture``, file descriptors 1 and 2 point at the log while Python's
    ``sys.stdout`` and ``sys.stderr`` keep writing to the terminal.
    """
    saved_streams = sys.stdout, sys.stderr
    saved_fds: list[int] = []
    if capture:
        for stream in saved_streams:
            with contextlib.suppress(AttributeError, ValueError, OSError):
                stream.flush()
        saved_fds = [os.dup(1), os.dup(2)]
        sys.stdout = _text_stream(saved_fds[0])
        sys.stderr = _text_stream(saved_fds[1])
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
    to_log = logging.StreamHandler(_LogStream(log))
    to_log.setFormatter(logging.Formatter("[%(asctime)s] %(levelname)s %(name)s: "
                                          "%(message)s", "%H:%M:%S"))
    to_terminal = logging.StreamHandler(sys.stderr)
    to_terminal.setFormatter(_TerminalFormatter())
    to_terminal.setLevel(logging.WARNING if quiet else logging.INFO)
    ours, root = logging.getLogger("zspace"), logging.getLogger()
    saved_level, saved_propagate = ours.level, ours.propagate
    ours.setLevel(logging.INFO)
    ours.addHandler(to_terminal)
    root.addHandler(to_log)
    if verbose:  # every logger live; zspace's own are shown by ``to_terminal``
        everything = logging.StreamHandler(sys.stderr)
        everything.addFilter(lambda record: not record.name.startswith("zspace"))
        root.addHandler(everything)
    saved_showwarning = warnings.showwarning
    if capture:
        def showwarning(message, category, filename, lineno, file=None, line=None):
            log.write(warnings.formatwarning(message, category, filename, lineno, line))
        warnings.showwarning = showwarning
    try:
        yield
    finally:
        warnings.showwarning = saved_showwarning
        root.removeHandler(to_log)
        if verbose:
            root.removeHandler(everything)
        ours.removeHandler(to_terminal)
        ours.setLevel(saved_level)
        ours.propagate = saved_propagate
        if capture:
            for stream in (sys.stdout, sys.stderr):
                with contextlib.suppress(OSError, ValueError):
                    stream.flush()
            os.dup2(saved_fds[0], 1)
            os.dup2(saved_fds[1], 2)
            for stream in (sys.stdout, sys.stderr):
                with contextlib.suppress(OSError, ValueError):
                    stream.close()  # closes the duplicated descriptors
            sys.stdout, sys.stderr = saved_streams


def _text_stream(descriptor: int) -> io.TextIOWrapper:
    return io.TextIOWrapper(open(descriptor, "wb", buffering=0),  # noqa: SIM115
                            encoding="utf-8", errors="replace", line_buffering=True,
                            write_through=True)


class _LogStream:
    """A file-like view of a :class:`BuildLog` for ``logging.StreamHandler``."""

    def __init__(self, log: BuildLog):
        self.log = log

    def write(self, text: str) -> None:
        self.log.write(text)

    def flush(self) -> None:
        pass


@contextlib.contextmanager
def interrupt_deferred() -> Iterator[None]:
    """Hold back Ctrl-C, SIGTERM and SIGHUP until the block ends: for renames that
    must pair up.

    A signal received meanwhile is delivered when the block ends. Outside the main
    thread signals cannot be handled, and nothing is held back.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    numbers = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {number: signal.signal(number, lambda n, frame: received.append(n))
                for number in numbers}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        if received:
            handler = previous[received[0]]
            if callable(handler):
                handler(received[0], None)
            elif handler == signal.SIG_DFL:
                os.kill(os.getpid(), received[0])
