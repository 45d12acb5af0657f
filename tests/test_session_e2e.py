"""The real pipeline through its command line: a quiet terminal, damaged caches, Ctrl-C,
a second build on a busy folder, a stale lock, and nothing left behind.

Each test copies the session's smoke build (conftest.py) and changes one model, so
only that model trains and only its notebooks run.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from zspace import paths
from zspace.config import load_config
from zspace.pipeline.plan import make_plan
from zspace.store.artifacts import is_intact

pytestmark = pytest.mark.slow

# What a successful build may print: stage lines, zspace's own messages, progress bars.
EXPECTED = re.compile(
    r"^(prepared \d+ training|data: |model \w+: |notebooks: \d+ to run|"
    r"  notebook \w+: (running|done in)|report: |built in |note: took over|"
    r"  warning: |  \w+: |training \w+: |faces \d+px: |\s*$)")
NOISE = ("absl::InitializeLog", "oneDNN", "port.cc", "IPKernelApp", "KeyboardInterrupt",
         "Traceback", "cpu_feature_guard")
# Ctrl-C must end the build within seconds; this bound only keeps a hung test finite.
STOP_LIMIT = 30


def _as_in_a_terminal() -> None:
    # A suite started in the background (``nohup ... &``, CI without job control)
    # ignores SIGINT, children inherit that, and Python then installs no Ctrl-C
    # handler: the build would run on. A build in a terminal gets the default.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Pipeline:
    """``pipeline.py`` in a child process, its output collected as it comes."""

    def __init__(self, build_root: Path, temp: Path, *args: str):
        self.build_root = build_root
        env = {**os.environ, "TMPDIR": str(temp)}
        self.process = subprocess.Popen(
            [sys.executable, str(paths.ROOT / "pipeline.py"), "build", "--config",
             "smoke", "--build-dir", str(build_root), *args],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, cwd=paths.ROOT,
            preexec_fn=_as_in_a_terminal)
        self.chunks: list[bytes] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for chunk in iter(lambda: self.process.stdout.read1(4096), b""):
            self.chunks.append(chunk)

    @property
    def output(self) -> str:
        return b"".join(self.chunks).decode(errors="replace").replace("\r", "\n")

    def wait_for(self, ready, what: str, timeout: float = 240) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            assert self.process.poll() is None, f"ended before {what}:\n{self.output}"
            assert time.monotonic() < deadline, f"no {what} in {timeout} s"
            time.sleep(0.1)

    def interrupt(self) -> float:
        """Send Ctrl-C (SIGINT); return the seconds until the process ended."""
        started = time.monotonic()
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(STOP_LIMIT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            pytest.fail(f"the build did not stop within {STOP_LIMIT} s of Ctrl-C")
        self.reader.join(10)
        return time.monotonic() - started

    def finish(self, timeout: float = 600) -> int:
        code = self.process.wait(timeout)
        self.reader.join(10)
        return code


@pytest.fixture
def tree(smoke_build, tmp_path):
    """A copy of the session's smoke build, and an empty TMPDIR for its processes."""
    build_root, _ = smoke_build
    copy = tmp_path / "build"
    shutil.copytree(build_root, copy)
    temp = tmp_path / "tmp"
    temp.mkdir()
    return copy, temp


def _digests(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _processes_mentioning(text: str) -> list[int]:
    """Live processes whose environment names ``text`` (kernels inherit TMPDIR)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if text.encode() in (entry / "environ").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def _assert_nothing_left(build_root: Path, temp: Path) -> None:
    folder = build_root / "smoke"
    assert list(temp.iterdir()) == [], "files left in TMPDIR"
    assert not (folder / ".tmp").exists(), "scratch folder left"
    assert not (folder / "build.lock").exists(), "lock not released"
    assert not list((folder / "notebooks").glob("*.running")), "working folder left"
    assert not (folder / ".site.staging").exists()
    assert _processes_mentioning(str(temp.parent)) == [], "a kernel still runs"


def test_quiet_build_repairs_a_damaged_data_cache_and_model(tree):
    build_root, temp = tree
    plan = make_plan(load_config("smoke"), build_root, models=["wide_ae"])
    artifact = plan.models[0].folder
    (entry,) = (build_root / "cache" / "data").iterdir()
    train = entry / "train.npy"
    with open(train, "r+b") as stream:  # a copy cut short, as by a full disk
        stream.truncate(train.stat().st_size // 2)
    model_file = artifact / "model.keras"
    data = bytearray(model_file.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one byte changed in the middle
    model_file.write_bytes(bytes(data))

    run = Pipeline(build_root, temp, "--force", "--only", "50_latent_statistics")
    assert run.finish() == 0, run.output
    output = run.output
    assert "data cache entry" in output and "is damaged" in output
    assert "preparing it again" in output
    assert "model wide_ae: training (its cached artifact is damaged" in output
    assert "rebuilding corrupt artifact" in output
    assert "notebook 50_latent_statistics: done" in output
    assert is_intact(artifact)
    # Nothing but progress and our messages on the terminal.
    for noise in NOISE:
        assert noise not in output, noise
    unexpected = [line for line in output.splitlines() if not EXPECTED.match(line)]
    assert unexpected == []
    # The noise went to the log, with each kernel's output under its notebook's name.
    log = (build_root / "smoke" / "build.log").read_text()
    assert "[notebook 50_latent_statistics] " in log
    assert "model wide_ae: training" in log and "built in" in log
    _assert_nothing_left(build_root, temp)


def test_ctrl_c_stops_training_and_notebooks_and_the_next_build_resumes(tree):
    build_root, temp = tree
    site = build_root / "smoke" / "site"
    published = _digests(site)
    # wide_ae alone retrains, for enough epochs that the second build below is refused
    # while training still runs, even on an idle machine (an epoch takes about 1 s).
    epochs = 12
    change = ("--set", f"models.wide_ae.num_epochs={epochs}")
    models = build_root / "cache" / "models"

    # 1. Ctrl-C during training, once the first epoch is checkpointed. Meanwhile a
    # second build on the same folder is refused, naming the first.
    first = Pipeline(build_root, temp, *change)
    first.wait_for(lambda: "model wide_ae: training" in first.output, "training")
    second = subprocess.run(
        [sys.executable, str(paths.ROOT / "pipeline.py"), "build", "--config", "smoke",
         "--build-dir", str(build_root), *change],
        capture_output=True, text=True, timeout=120, env={**os.environ,
                                                          "TMPDIR": str(temp)})
    assert second.returncode == 4, second.stderr
    assert f"in use by another build: pid {first.process.pid}" in second.stderr
    assert first.process.poll() is None, f"training ended too soon:\n{first.output}"
    checkpoint = "wide_ae-*.partial/checkpoint/latest.json"
    first.wait_for(lambda: list(models.glob(checkpoint)), "a checkpoint")
    first.interrupt()
    assert first.process.returncode == 130, first.output
    assert "interrupted" in first.output
    assert _digests(site) == published
    _assert_nothing_left(build_root, temp)

    # 2. The next build resumes training; Ctrl-C once a notebook has finished.
    again = Pipeline(build_root, temp, *change)
    done = re.compile(r"notebook (\w+): done")
    again.wait_for(lambda: done.search(again.output), "a finished notebook")
    again.interrupt()
    assert again.process.returncode == 130, again.output
    resumed = re.search(rf"wide_ae: resuming after epoch (\d+) of {epochs}",
                        again.output)
    assert resumed and 1 <= int(resumed[1]) < epochs, again.output
    finished = set(done.findall(again.output))
    assert _digests(site) == published
    _assert_nothing_left(build_root, temp)

    # 3. A stale lock (its process is gone) is taken over; the last build runs only
    # the notebooks that had not finished.
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (build_root / "smoke" / "build.lock").write_text(json.dumps(
        {"pid": dead.pid, "host": os.uname().nodename, "command": "a killed build"}))
    last = Pipeline(build_root, temp, *change)
    assert last.finish() == 0, last.output
    assert f"took over the lock of {build_root.resolve() / 'smoke'}: pid {dead.pid}" \
        in last.output
    assert "model wide_ae" not in last.output  # trained to the end in step 2
    ran = set(re.findall(r"notebook (\w+): running", last.output))
    stale = {"10_data_and_training", "30_reconstructions", "80_explorer"}
    assert ran == stale - finished
    assert f"notebooks: {len(ran)} to run" in last.output
    assert _digests(site) != published
    _assert_nothing_left(build_root, temp)
