"""One process at a time per build folder: a lock file that names its holder.

``build/<profile>/build.lock`` holds the holder's process id, host, command line and
start time as JSON, under an exclusive ``flock``. The operating system drops the
``flock`` when its process ends, however it ends; a lock file left behind by a killed
process is therefore recognised as stale (its lock is free) and taken over.

The lock is reentrant within a process: ``pipeline.py build`` takes it in the command
line and :func:`zspace.pipeline.engine.build` takes it again without blocking itself.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from zspace.errors import BuildBusy

LOCK_FILE = "build.lock"

# Locks this process holds: lock path -> [open descriptor, depth].
_held: dict[Path, list[int]] = {}
_guard = threading.Lock()


class BuildLock:
    """The lock of one build folder; use as a context manager.

    Args:
        folder: The build folder (``build/<profile>/``); created if missing.
        command: What the holder is doing, for the message another process shows
            (default: this process's command line).
        say: Where the note about taking over a stale lock goes (default: stderr).
    """

    def __init__(self, folder: Path, command: str | None = None, say=None):
        self.path = Path(folder).resolve() / LOCK_FILE
        self.command = command or " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])
        self.say = say or (lambda message: print(message, file=sys.stderr))

    def __enter__(self) -> BuildLock:
        self.acquire()
        return self

    def __exit__(self, *exc_info) -> None:
        self.release()

    def acquire(self) -> None:
        """Take the lock, or raise :class:`BuildBusy` naming the live holder."""
        with _guard:
            if self.path in _held:
                _held[self.path][1] += 1
                return
            descriptor, previous = _lock(self.path)
            _held[self.path] = [descriptor, 1]
        if previous:
            self.say(f"note: took over the lock of {self.path.parent}: "
                     f"{describe(previous)}, {_why_free(previous)}")
        info = {"pid": os.getpid(), "host": socket.gethostname(),
                "command": self.command,
                "started": datetime.now(UTC).astimezone().isoformat(timespec="seconds")}
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, json.dumps(info, indent=1).encode(), 0)

    def release(self) -> None:
        with _guard:
            entry = _held.get(self.path)
            if entry is None:
                return
            entry[1] -= 1
            if entry[1] > 0:
                return
            del _held[self.path]
            # Remove the file while still holding it, then let go: a process that
            # opened the old file meanwhile notices it is no longer the lock file.
            self.path.unlink(missing_ok=True)
            os.close(entry[0])


def _lock(path: Path) -> tuple[int, dict[str, Any]]:
    """Lock ``path``; return the descriptor and what a previous holder left in it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read(descriptor)
            os.close(descriptor)
            raise BuildBusy(busy_message(path.parent, holder)) from None
        try:
            same = os.path.samestat(os.fstat(descriptor), os.stat(path))
        except FileNotFoundError:
            same = False
        if same:
            return descriptor, _read(descriptor)
        os.close(descriptor)  # the holder removed it as we opened it: try afresh


def _read(descriptor: int) -> dict[str, Any]:
    try:
        text = os.pread(descriptor, 65536, 0).decode()
        return json.loads(text) if text.strip() else {}
    except (OSError, ValueError):
        return {"pid": "?", "command": "an unreadable lock file"}


def holder(folder: Path) -> dict[str, Any] | None:
    """Who holds the lock of ``folder`` now, or None (without taking it)."""
    path = Path(folder).resolve() / LOCK_FILE
    with _guard:
        if path in _held:
            return None  # this process
    try:
        descriptor = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(descriptor, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return _read(descriptor) or {"pid": "?"}
    finally:
        os.close(descriptor)
    return None


def describe(info: dict[str, Any]) -> str:
    """``pid 123 on host h (pipeline.py build), started 2025-01-01T10:00:00+00:00``."""
    text = f"pid {info.get('pid', '?')}"
    if info.get("host"):
        text += f" on {info['host']}"
    if info.get("command"):
        text += f" ({info['command']})"
    if info.get("started"):
        text += f", started {info['started']}"
    return text


def busy_message(folder: Path, info: dict[str, Any]) -> str:
    return (f"{folder} is in use by another build: {describe(info)}. Wait for it to "
            "finish or stop it, or build into another folder with --build-dir")


def _why_free(info: dict[str, Any]) -> str:
    pid = info.get("pid")
    if info.get("host", socket.gethostname()) != socket.gethostname():
        return "whose lock was no longer held"
    if isinstance(pid, int) and _alive(pid):
        return "which no longer holds it"
    return "which is no longer running"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
