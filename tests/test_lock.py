"""The build folder's lock, between real processes: refusal, stale takeover, reentry."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from zspace import lock
from zspace.errors import BuildBusy

HOLD = """
import sys, time
from zspace.lock import BuildLock
BuildLock(sys.argv[1], command="the holder of this test").acquire()
print("held", flush=True)
time.sleep(120)
"""


@pytest.fixture
def holder_process(tmp_path):
    process = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path / "smoke")],
                               stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "held"
    yield process
    process.kill()
    process.wait()


def test_a_second_process_is_refused_with_the_holder_named(tmp_path, holder_process):
    folder = tmp_path / "smoke"
    with pytest.raises(BuildBusy) as refused:
        lock.BuildLock(folder).acquire()
    message = str(refused.value)
    assert f"pid {holder_process.pid}" in message
    assert "the holder of this test" in message and "in use by another build" in message
    assert refused.value.exit_code == 4
    assert lock.holder(folder)["pid"] == holder_process.pid


def test_the_lock_of_a_killed_process_is_taken_over_with_a_note(tmp_path,
                                                                holder_process):
    folder = tmp_path / "smoke"
    os.kill(holder_process.pid, signal.SIGKILL)
    holder_process.wait()
    assert (folder / lock.LOCK_FILE).exists()  # left behind, but no longer held
    assert lock.holder(folder) is None
    notes = []
    with lock.BuildLock(folder, command="the new build", say=notes.append):
        assert len(notes) == 1
        assert f"pid {holder_process.pid}" in notes[0]
        assert "no longer running" in notes[0]
        mine = json.loads((folder / lock.LOCK_FILE).read_text())
        assert mine["pid"] == os.getpid() and mine["command"] == "the new build"
    assert not (folder / lock.LOCK_FILE).exists()


def test_the_lock_is_reentrant_within_a_process(tmp_path):
    folder = tmp_path / "smoke"
    outer, inner = lock.BuildLock(folder), lock.BuildLock(folder)
    with outer:
        with inner:
            pass
        assert (folder / lock.LOCK_FILE).exists()  # the outer holder still has it
    assert not (folder / lock.LOCK_FILE).exists()
