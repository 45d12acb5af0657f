"""Nothing lost, whatever the command: ``clean`` and ``publish-models`` delete only
what zspace made, profile names are never paths, a model key is trained by one
process at a time, and a hung-up or killed build leaves nothing behind."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from zspace import lock, ownership, paths
from zspace.config import Config, load_config
from zspace.errors import BuildBusy, ConfigError, ForeignFolder
from zspace.pipeline import kernels, session


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(paths.ROOT / "pipeline.py"), *args],
                          capture_output=True, text=True, cwd=paths.ROOT, timeout=300)


def _snapshot(folder: Path) -> dict[str, str]:
    """Every entry under ``folder`` (hidden ones included) with its content's hash."""
    return {p.relative_to(folder).as_posix():
            hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "folder"
            for p in sorted(folder.rglob("*"))}


def _repository_copy(root: Path) -> None:
    (root / ".git" / "objects").mkdir(parents=True)
    (root / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (root / "README.md").write_text("# zspace\n")
    (root / "zspace").mkdir()
    (root / "zspace" / "__init__.py").write_text("")
    (root / "models" / "default").mkdir(parents=True)
    (root / "models" / "default" / "vae.json").write_text("{}")


def _home(root: Path) -> None:
    (root / "Documents").mkdir(parents=True)
    (root / ".bashrc").write_text("alias ll='ls -l'\n")
    (root / "Documents" / "notes.txt").write_text("notes\n")
    (root / "cache").mkdir()  # named like the build's cache, but not the build's
    (root / "cache" / "photos.db").write_text("photos\n")
    # Another tool's project with files named like a profile folder's.
    (root / "project").mkdir()
    (root / "project" / "state.json").write_text('{"theme": "dark"}')
    (root / "project" / "build.log").write_text("make: done\n")


def _unrelated(root: Path) -> None:
    (root / "precious").mkdir(parents=True)
    (root / "precious" / "thesis.tex").write_text("\\documentclass{article}\n")


@pytest.mark.parametrize("make", [_repository_copy, _home, _unrelated])
@pytest.mark.parametrize("everything", [False, True])
def test_clean_refuses_a_folder_no_build_made(tmp_path, make, everything):
    folder = tmp_path / "folder"
    make(folder)
    before = _snapshot(folder)
    result = run("clean", "--build-dir", str(folder), *(["--all"] * everything))
    assert result.returncode == 2
    assert f"{folder} is not a zspace build folder" in result.stderr
    assert "nothing was removed" in result.stderr
    assert _snapshot(folder) == before


def test_clean_removes_what_builds_made_and_keeps_the_rest(tmp_path):
    root = tmp_path / "build"
    ownership.claim(root)
    for name in ("smoke", "default"):
        ownership.claim_profile(root / name)
        (root / name / ".tmp").mkdir(parents=True)
        (root / name / "build.log").write_text("log\n")
    (root / "cache" / "models").mkdir(parents=True)
    (root / "archive" / "20250101").mkdir(parents=True)
    _unrelated(root)
    (root / "notes.txt").write_text("mine\n")
    (root / "papers").mkdir()  # a folder with no build's files: not a profile
    (root / "project").mkdir()  # a log of its own does not make it a profile
    (root / "project" / "build.log").write_text("my log\n")

    result = run("clean", "--build-dir", str(root))
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in root.iterdir()) == [
        ".zspace-build", "cache", "notes.txt", "papers", "precious", "project"]
    assert ("kept what no build made: notes.txt, papers, precious, project"
            in result.stdout)
    assert run("clean", "--all", "--build-dir", str(root)).returncode == 0
    assert sorted(p.name for p in root.iterdir()) == [
        ".zspace-build", "notes.txt", "papers", "precious", "project"]
    assert (root / "precious" / "thesis.tex").is_file()


def test_a_build_into_a_folder_of_other_files_does_not_make_it_cleanable(tmp_path):
    home = tmp_path / "home"
    _home(home)
    before = _snapshot(home)
    with session.open_session(home / "smoke"):
        pass
    assert not (home / ownership.MARKER).exists()
    with pytest.raises(ForeignFolder):
        ownership.check_build_root(home)
    # Even once the profile folder looks like a finished build's.
    (home / "smoke" / "build.log").write_text("log\n")
    (home / "smoke" / "state.json").write_text('{"data": {"key": "k"}}')
    with pytest.raises(ForeignFolder):
        ownership.check_build_root(home)
    assert {k: v for k, v in _snapshot(home).items()
            if not k.startswith("smoke")} == before


def test_an_empty_state_record_is_no_build(tmp_path):
    root = tmp_path / "scratch"
    (root / "x").mkdir(parents=True)
    (root / "x" / "build.log").write_text("log\n")
    (root / "x" / "state.json").write_text("{}")
    with pytest.raises(ForeignFolder):
        ownership.check_build_root(root)


def test_nohup_keeps_a_build_running_when_the_terminal_closes():
    from zspace import cli

    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        with cli._sigterm_as_interrupt():
            assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
            assert signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
        signal.signal(signal.SIGHUP, signal.SIG_DFL)
        with cli._sigterm_as_interrupt():
            assert signal.getsignal(signal.SIGHUP) not in (signal.SIG_IGN,
                                                           signal.SIG_DFL)
    finally:
        signal.signal(signal.SIGHUP, previous)


@pytest.mark.slow
def test_a_closed_pipe_ends_status_quietly(tmp_path):
    # A thousand sweep points: more rows than a pipe holds, so the writer is still
    # writing when the reader goes.
    sweep = (f"sweeps.big={{model='vae', kl_factor={list(range(1, 26))}, "
             f"z_dim={list(range(1, 41))}}}")
    reader = subprocess.Popen(
        [sys.executable, str(paths.ROOT / "pipeline.py"), "status", "--config",
         "smoke", "--build-dir", str(tmp_path / "build"), "--set", sweep,
         "--set", "build.max_sweep_points=1000"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=paths.ROOT)
    reader.stdout.readline()
    reader.stdout.close()  # as `| head -1` does
    assert reader.wait(timeout=120) == 141
    assert b"Traceback" not in reader.stderr.read()


def test_a_session_marks_its_build_root(tmp_path):
    root = tmp_path / "new"
    with session.open_session(root / "smoke"):
        pass
    assert (root / ownership.MARKER).is_file()
    assert (root / "smoke" / ownership.PROFILE_MARKER).is_file()
    assert ownership.made_by_build(root, caches=True) == [root / "smoke"]


def test_clean_refuses_under_a_running_build(tmp_path):
    root = tmp_path / "build"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom zspace.pipeline import "
         "session\nwith session.open_session(sys.argv[1]):\n    print('held', "
         "flush=True)\n    time.sleep(60)", str(root / "smoke")],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        result = run("clean", "--build-dir", str(root))
        assert result.returncode == 4
        assert f"pid {holder.pid}" in result.stderr
        assert (root / "smoke" / "build.log").is_file()
    finally:
        holder.kill()
        holder.wait()


@pytest.mark.parametrize("name", ["", "/tmp/x", "..", "../x", "a/b", ".",
                                  '<img src=x onerror="alert(1)">', "x" * 65])
def test_a_profile_name_that_is_not_a_slug_is_refused(name):
    with pytest.raises(ConfigError) as refused:
        load_config("smoke", [f"name={name}"])
    assert str(refused.value).startswith("name: expected 1 to 64 letters")
    assert repr(name) in str(refused.value)


def test_an_empty_name_exits_2_before_publish_models_touches_models(tmp_path):
    models = tmp_path / "models"
    (models / "default").mkdir(parents=True)
    (models / "default" / "vae.json").write_text("{}")
    (models / "celeba").mkdir()
    result = run("publish-models", "--config", "smoke", "--set", "name=",
                 "--set", f"build.models_dir={models}",
                 "--build-dir", str(tmp_path / "build"))
    assert result.returncode == 2
    assert "error: name: expected 1 to 64 letters" in result.stderr
    assert not (tmp_path / "build").exists()
    assert sorted(p.relative_to(models).as_posix() for p in models.rglob("*")) == [
        "celeba", "default", "default/vae.json"]


def test_paths_from_names_stay_inside_their_root(tmp_path):
    assert paths.profile_dir(tmp_path, "smoke") == tmp_path / "smoke"
    for name in ("..", "", "/tmp/x", "../sibling"):
        with pytest.raises(ConfigError, match="is not inside"):
            paths.profile_dir(tmp_path, name)
    with pytest.raises(ConfigError, match="is not inside"):
        paths.model_artifact(tmp_path, "../../vae", "0123")
    # A configuration made without load_config's checks still cannot reach out.
    from zspace.store import committed

    with pytest.raises(ConfigError, match="is not inside"):
        committed.folder_for(Config(name=""))


def test_the_committed_swap_replaces_only_a_folder_of_committed_models(tmp_path):
    from zspace.store import committed

    models = tmp_path / "models"
    (models / "default").mkdir(parents=True)
    (models / "default" / "vae.weights.bin").write_bytes(b"\0")
    (models / "celeba").mkdir()  # what an empty name once swapped out
    staging = tmp_path / ".staging"
    staging.mkdir()
    with pytest.raises(ForeignFolder, match="default, celeba|celeba, default"):
        committed.swap_folder(staging, models)
    assert (models / "default" / "vae.weights.bin").is_file()
    (models / "default" / "notes.md").write_text("mine\n")
    with pytest.raises(ForeignFolder, match=r"notes\.md"):
        committed.swap_folder(staging, models / "default")
    (models / "default" / "notes.md").unlink()
    (staging / "vae.json").write_text("{}")
    committed.swap_folder(staging, models / "default")
    assert sorted(p.name for p in (models / "default").iterdir()) == ["vae.json"]


HOLD_KEY = """
import sys, time
from pathlib import Path
from zspace.lock import key_lock
key_lock(Path(sys.argv[1]), "vae").acquire()
print("held", flush=True)
time.sleep(120)
"""


def test_a_key_another_process_trains_is_refused_and_its_checkpoint_untouched(
        tmp_path):
    from test_training import TINY, TRAIN, tiny_dataset

    from zspace.store import keys
    from zspace.training import train_or_load, trainer

    dataset = tiny_dataset()
    build = tmp_path / "build"
    variant = keys.ModelVariant("vae", TINY, TRAIN, None)
    job = trainer._Job.of(variant, dataset, build)
    partial = job.partial
    checkpoint = partial / "checkpoint" / "epoch-1.weights.h5"
    checkpoint.parent.mkdir(parents=True)
    checkpoint.write_bytes(b"the other process's epoch in flight")
    before = _snapshot(partial)
    holder = subprocess.Popen([sys.executable, "-c", HOLD_KEY, str(partial)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        for retrain in (False, True):
            with pytest.raises(BuildBusy) as refused:
                train_or_load("vae", TINY, TRAIN, dataset, build, progress=False,
                              retrain=retrain)
            message = str(refused.value)
            assert f"model vae under key {job.key} is being trained" in message
            assert f"pid {holder.pid}" in message
            assert refused.value.exit_code == 4
            assert _snapshot(partial) == before
    finally:
        holder.kill()
        holder.wait()
    assert not job.final.exists()


SLOW_DATA = """
import sys, time
from zspace import cli

def slow(config, args):
    print("working", flush=True)
    time.sleep(60)

cli.HANDLERS["data"] = slow
sys.exit(cli.main(["data", "--config", "smoke", "--build-dir", sys.argv[1]]))
"""


@pytest.mark.parametrize("signum, code, word", [(signal.SIGHUP, 129, "hung up"),
                                                (signal.SIGTERM, 143, "terminated")])
def test_sighup_stops_a_build_like_sigterm_leaving_nothing(tmp_path, signum, code,
                                                            word):
    root = tmp_path / "build"
    process = subprocess.Popen([sys.executable, "-c", SLOW_DATA, str(root)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, cwd=paths.ROOT)
    assert process.stdout.readline().strip() == "working"
    folder = root / "smoke"
    assert (folder / ".tmp").is_dir() and (folder / lock.LOCK_FILE).is_file()
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == code
    assert f"{word}: the published report is unchanged" in stderr
    assert not (folder / ".tmp").exists()
    assert not (folder / lock.LOCK_FILE).exists()


def test_the_next_build_removes_kernel_socket_folders_of_dead_builds(tmp_path,
                                                                      monkeypatch):
    system_tmp = tmp_path / "tmp"
    system_tmp.mkdir()
    monkeypatch.setattr("tempfile.tempdir", str(system_tmp))
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    dead = system_tmp / f"zspace-kernel-{ended.pid}-1"
    live = system_tmp / f"zspace-kernel-{os.getpid()}-1"
    older = system_tmp / "zspace-kernel-k3rn3l9x"  # before names carried a pid
    for folder in (dead, live, older):
        folder.mkdir()
        (folder / "kernel-1").write_text("")
    with session.open_session(tmp_path / "build" / "smoke"):
        assert not dead.exists()
        assert live.is_dir() and older.is_dir()
    # A new one skips the name a live folder has, and its sockets' paths are no
    # longer than they were with random names (a socket path has at most 107 bytes).
    folder = Path(kernels.Kernels(socket_dir=system_tmp).socket_folder())
    assert folder.parent == system_tmp and folder != live
    assert folder.name.startswith(f"zspace-kernel-{os.getpid()}-")
    assert len(str(folder / "k-4")) <= len(str(older / "kernel-4"))

