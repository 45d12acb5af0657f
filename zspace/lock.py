"""One process at a time per build folder: a lock file that names its holder.

``build/<profile>/build.lock`` holds the holder's process id, host, command line and
start time as JSON, under an exclusive ``flock``. The operating system drops the
``flock`` when its process ends, however it ends; a lock file left behind by a killed
process is therefore recognised as stale (its lock is free) and taken over.

The lock is reentrant within a process: ``pipeline.py build`` takes it in the command
line and :func:`zspace.pipeline.engine.build` takes it again without blocking itself.

The same mechanism guards what profiles of one build root share: whoever trains a
model key holds :func:`key_lock` on that key's ``.partial`` folder, so a second
process never resumes from (or removes) another's checkpoint in flight.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from zspace.errors import BuildBusy

LOCK_FILE = "build.lock"

# The message of a refusal, given the holder's record.
Busy = Callable[[dict[str, Any]], str]

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
        file: The lock file's name in ``folder``.
        busy: The message of :class:`BuildBusy` given the holder's record (default:
            :func:`busy_message` of ``folder``).
    """

    def __init__(self, folder: Path, command: str | None = None, say=None, *,
                 file: str = LOCK_FILE, busy: Busy | None = None):
        self.path = Path(folder).resolve() / file
        self.command = command or " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])
        self.say = say or (lambda message: print(message, file=sys.stderr))
        self.busy = busy or (lambda info: busy_message(self.path.parent, info))
        # What the note on a stale lock names: the build folder, or the lock file.
        self.what = self.path.parent if file == LOCK_FILE else self.path

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
            descriptor, previous = _lock(self.path, self.busy)
            _held[self.path] = [descriptor, 1]
        if previous:
            self.say(f"note: took over the lock of {self.what}: "
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


def _lock(path: Path, busy: Busy) -> tuple[int, dict[str, Any]]:
    """Lock ``path``; return the descriptor and what a previous holder left in it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read(descriptor)
            os.close(descriptor)
            raise BuildBusy(busy(holder)) from None
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


def key_lock(partial: Path, name: str) -> BuildLock:
    """The lock of one model key's ``partial`` folder (checkpoints in flight), shared
    by every profile of a build root: ``<name>-<key>.partial.lock`` beside it.

    Args:
        partial: The key's partial folder, ``cache/models/<name>-<key>.partial``.
        name: The model's name, for the message.
    """
    key = partial.name.removesuffix(".partial").removeprefix(f"{name}-")

    def busy(info: dict[str, Any]) -> str:
        return (f"model {name} under key {key} is being trained by another process: "
                f"{describe(info)}; its checkpoints are in {partial}. Wait for it to "
                "finish (this build then loads the model from the cache) or stop it")

    return BuildLock(partial.parent, file=f"{partial.name}.lock", busy=busy)


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
    if isinstance(pid, int) and is_running(pid):
        return "which no longer holds it"
    return "which is no longer running"


def is_running(pid: int) -> bool:
    """Whether a process ``pid`` runs on this host (one of another user's counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
