"""pipeline.py as a user runs it: exit codes, messages, the data step."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import write_celeba_tree
from zspace import paths


def run(*args: str, cwd=paths.ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(paths.ROOT / "pipeline.py"), *args],
                          capture_output=True, text=True, cwd=cwd, timeout=300)


def test_help_lists_the_commands():
    result = run("--help")
    assert result.returncode == 0
    for command in ("build", "data", "train", "clean"):
        assert command in result.stdout


def test_data_step_prepares_and_reports_the_data_set(tmp_path):
    write_celeba_tree(tmp_path / "celeba")
    args = ["data", "--build-dir", str(tmp_path / "build"),
            "--set", "data.source=celeba",
            "--set", f"data.path={tmp_path / 'celeba'}", "--set", "data.image_size=16",
            "--set", "data.num_train=0", "--set", "data.num_test=0"]
    result = run(*args)
    assert result.returncode == 0, result.stderr
    assert ("10 train + 2 test + 0 validation images at 16 px, 3 skipped"
            in result.stdout)
    assert "celeba train" in result.stderr  # the progress bar
    again = run(*args, "--quiet")
    assert again.returncode == 0 and "celeba train" not in again.stderr


def test_bad_data_path_exits_2_and_names_it(tmp_path):
    result = run("data", "--set", "data.source=folder",
                 "--set", f"data.path={tmp_path / 'nope'}",
                 "--build-dir", str(tmp_path / "build"))
    assert result.returncode == 2
    assert f"{tmp_path / 'nope'}" in result.stderr
    assert "expected a folder holding" in result.stderr
    assert "Traceback" not in result.stderr


def test_unknown_key_exits_2(tmp_path):
    result = run("--set", "train.epochs=3", "data")
    assert result.returncode == 2
    assert "unknown configuration key train.epochs" in result.stderr


def test_missing_profile_exits_2():
    result = run("data", "--config", "nosuch")
    assert result.returncode == 2 and "configuration file not found" in result.stderr


def test_clean_keeps_caches_unless_told(tmp_path):
    build = tmp_path / "build"
    (build / "cache" / "data").mkdir(parents=True)
    (build / "smoke").mkdir()
    # A build made before the marker: its log and its record of stages.
    (build / "smoke" / "build.log").write_text("[10:00:00] pid 1: pipeline.py\n")
    (build / "smoke" / "state.json").write_text('{"data": {"key": "0123"}}')
    result = run("clean", "--build-dir", str(build))
    assert result.returncode == 0
    assert (build / "cache").exists() and not (build / "smoke").exists()
    assert (build / ".zspace-build").is_file()  # marked as it was recognised
    run("clean", "--all", "--build-dir", str(build))
    assert not (build / "cache").exists()


def test_a_nonsense_learning_rate_exits_2_naming_the_key(tmp_path):
    result = run("train", "--config", "smoke", "--set", "train.learning_rate=-1",
                 "--build-dir", str(tmp_path / "build"))
    assert result.returncode == 2
    assert "train.learning_rate: expected a positive learning rate" in result.stderr
    assert not (tmp_path / "build" / "cache").exists()


def test_an_exploding_loss_exits_3_and_caches_nothing(tmp_path):
    build = tmp_path / "build"
    result = run("train", "--config", "smoke", "--set", "train.learning_rate=1000.0",
                 "--build-dir", str(build), "-q")
    assert result.returncode == 3, result.stderr
    assert "model ae:" in result.stderr and "in epoch 1, step" in result.stderr
    assert "train.learning_rate" in result.stderr and "Traceback" not in result.stderr
    assert list((build / "cache" / "models").iterdir()) == []
