"""Nothing lost, whatever goes wrong (issue 26, items 4, 5, 6 and 8): one exit code
per kind of failure, limits refused before any work, a report that is fresh only while
every file it published is whole, and user strings escaped in the Markdown."""

from __future__ import annotations

import errno
import html
import json
import logging
import os
import re
import tempfile
import time
from pathlib import Path

import markdown
import numpy as np
import pytest
from PIL import Image

from tests.test_build import _build, _config, project  # noqa: F401 (a fixture)
from zspace import cli, paths
from zspace import config as config_module
from zspace.config import DataConfig, load_config
from zspace.data import cache, folder, load_dataset
from zspace.errors import ConfigError, DataError, FileSystemFailure
from zspace.files import write_json_atomic
from zspace.pipeline import engine
from zspace.pipeline.plan import make_plan
from zspace.pipeline.state import BuildState
from zspace.site import publish
from zspace.site.templates import template_environment

# --- item 4: one exit code per kind of failure ---------------------------------------


@pytest.fixture
def own_temp(tmp_path, monkeypatch):
    """The system's temporary folder, for traceback files, inside the test's."""
    folder = tmp_path / "system-tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def _boom(*args, **kwargs):
    raise RuntimeError("boom\nsecond line")


def test_an_unexpected_error_in_build_exits_6_with_the_traceback_in_the_log(
        tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(engine, "build", _boom)
    code = cli.main(["build", "--config", "smoke", "--build-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 6  # never 1, diff's "a figure changed"
    assert "error: unexpected RuntimeError: boom\n" in err
    assert "Traceback" not in err and "second line" not in err
    log = tmp_path / "smoke" / "build.log"
    assert str(log) in err
    assert "Traceback" in log.read_text() and "second line" in log.read_text()


def test_an_unexpected_error_in_diff_exits_6_not_1(monkeypatch, capsys, own_temp):
    monkeypatch.setattr("zspace.diff.figure_diff", _boom)
    code = cli.main(["diff", "--markdown", "/proc/x.md"])
    err = capsys.readouterr().err
    assert code == 6
    [written] = own_temp.glob("zspace-diff-*.log")
    assert str(written) in err and "Traceback" in written.read_text()


@pytest.mark.parametrize("number, cause", [
    (errno.ENOSPC, "the disk is full"),
    (errno.EROFS, "the file system is read-only"),
    (errno.EACCES, "permission denied"),
    (errno.ENAMETOOLONG, "the name is too long"),
])
def test_file_system_failures_name_the_path_and_the_cause(tmp_path, monkeypatch,
                                                          capsys, number, cause):
    where = str(tmp_path / "smoke" / "site" / "index.html")

    def refused(*args, **kwargs):
        raise OSError(number, os.strerror(number), where)

    monkeypatch.setattr(engine, "build", refused)
    code = cli.main(["build", "--config", "smoke", "--build-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 7
    assert f"error: {where}: {cause}" in err and "Traceback" not in err


def test_a_full_disk_on_a_write_names_the_build_folder(tmp_path, monkeypatch,
                                                       capsys):
    def full(*args, **kwargs):  # a write() into a full disk names no file
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(engine, "build", full)
    code = cli.main(["build", "--config", "smoke", "--build-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 7 and f"error: {tmp_path / 'smoke'}: the disk is full" in err


def test_a_build_folder_that_is_a_file_exits_7_naming_it(tmp_path, capsys):
    file = tmp_path / "build"
    file.write_text("not a folder")
    code = cli.main(["data", "--config", "smoke", "--build-dir", str(file)])
    err = capsys.readouterr().err
    assert code == 7 and str(file) in err and "Traceback" not in err


def test_a_name_too_long_for_the_file_system_exits_7(tmp_path, capsys):
    long = tmp_path / ("x" * 300)
    code = cli.main(["data", "--config", "smoke", "--build-dir", str(long)])
    assert code == 7 and "too long" in capsys.readouterr().err


@pytest.mark.parametrize("script", [
    "exit 1",  # fails without a word
    "exit 0",  # claims success, writes nothing
])
def test_a_silently_failing_compiler_is_an_environment_problem(tmp_path, monkeypatch,
                                                               script):
    from test_speed import expect_environment_problem

    compiler = tmp_path / "c++"
    compiler.write_text(f"#!/bin/sh\n{script}\n")
    compiler.chmod(0o755)
    expect_environment_problem(monkeypatch, compiler, tmp_path / "kernels")
    assert not list((tmp_path / "kernels").glob("*.so"))


def _checkpointed_model(folder: Path):
    import keras

    from zspace.training.callbacks import EpochCheckpoint

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    model.compile(optimizer="adam", loss="mse")
    checkpoint = EpochCheckpoint(folder, {})
    checkpoint.set_model(model)
    return model, checkpoint


def test_a_full_disk_stops_a_checkpoint_before_it_is_written(tmp_path, monkeypatch):
    from zspace.training import callbacks

    _, checkpoint = _checkpointed_model(tmp_path / "checkpoint")
    checkpoint.on_epoch_end(0, {"loss": 1.0})  # room: epoch 1 is saved
    usage = callbacks.shutil.disk_usage(tmp_path)
    monkeypatch.setattr(callbacks.shutil, "disk_usage",
                        lambda path: usage._replace(free=1024))
    with pytest.raises(FileSystemFailure, match="the disk is full"):
        checkpoint.on_epoch_end(1, {"loss": 0.5})
    record = json.loads((tmp_path / "checkpoint" / callbacks.RECORD).read_text())
    assert record["epochs_done"] == 1  # the run resumes from the last whole epoch
    assert [p.name for p in (tmp_path / "checkpoint").glob("*.h5")] == [
        "epoch-0001.weights.h5"]


def test_a_failing_checkpoint_write_is_a_clear_error(tmp_path, monkeypatch):
    model, checkpoint = _checkpointed_model(tmp_path / "checkpoint")

    def full(path, *args, **kwargs):
        Path(path).write_bytes(b"half")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(model, "save_weights", full)
    with pytest.raises(FileSystemFailure, match="checkpoint failed"):
        checkpoint.on_epoch_end(0, {"loss": 1.0})
    assert not list((tmp_path / "checkpoint").glob("*.h5"))  # no half file kept


# --- item 5: limits before work ------------------------------------------------------


@pytest.mark.parametrize("override, key", [
    ("train.num_epochs=0", "train.num_epochs"),
    ("models.ae.filters=[]", "models.ae.filters"),
    ("data.num_test=0", "data.num_test"),
    ("data.num_train=100", "data.num_train"),
    ("train.batch_size=512", "data.num_train"),  # 384 images: not one batch
    ("data.image_size=100000", "data.image_size"),
    ("sweeps.big={model = 'vae', kl_factor = [1, 2, 3, 4, 5, 6, 7, 8, 9], "
     "z_dim = [8, 16, 32, 64, 128, 256, 512, 1024]}", "build.max_sweep_points"),
])
def test_settings_that_cannot_work_are_refused_naming_the_key(override, key):
    with pytest.raises(ConfigError, match=re.escape(key)):
        load_config("smoke", [override])


def test_the_refusal_says_how_many_images_are_needed():
    with pytest.raises(ConfigError, match="at least 256 training images"):
        load_config("smoke", ["data.num_train=100"])
    with pytest.raises(ConfigError, match="at least 16 test images"):
        load_config("smoke", ["data.num_test=0"])


@pytest.mark.parametrize("overrides", [
    ["models.ae.num_epochs=0", "judge.num_epochs=0"],  # 0: use train.num_epochs
    ["data.source=folder", "data.num_train=0", "data.num_test=0"],  # 0: all
    ["data.source=celeba", "data.num_train=0", "data.num_test=0"],
    ["sweeps.kl.kl_factor=[1, 2, 3, 4, 5, 6, 7, 8, 9]", "build.max_sweep_points=9"],
])
def test_what_keeps_its_meaning_is_accepted(overrides):
    load_config("smoke", overrides)


def test_images_larger_than_the_memory_available_are_refused(monkeypatch):
    monkeypatch.setattr(config_module, "available_memory", lambda: 2**20)
    with pytest.raises(ConfigError, match="data.image_size.*GiB"):
        load_config("smoke")
    monkeypatch.setattr(config_module, "available_memory", lambda: None)
    load_config("smoke")  # a system that does not say is not refused


def test_a_folder_of_three_images_is_refused_before_training(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    for i in range(3):
        Image.new("RGB", (20, 20), (i, i, i)).save(images / f"{i}.png")
    config = DataConfig(source="folder", path=str(images), image_size=16,
                        num_train=0, num_test=0, workers=1)
    needed = folder.images_needed(config)
    assert needed > 256 + 16
    with pytest.raises(DataError, match=f"holds 3 images; the build needs at least "
                                        f"256 training .* {needed} readable images"):
        load_dataset(config, tmp_path / "build", progress=False)


def test_status_rows_keep_a_readable_width(monkeypatch, capsys):
    long = "sweep big (" + "x" * 5000 + ")"
    monkeypatch.setattr(engine, "status",
                        lambda *a: [("data", "fresh"), (long, "stale"),
                                    ("report", "fresh")])
    assert cli.main(["status", "--config", "smoke"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "data".ljust(cli.STATUS_WIDTH) + "  fresh"
    assert lines[1] == long  # a line of its own, padding no other row
    assert all(len(line) < 60 for line in lines if line != long)


def test_a_large_sweep_is_abbreviated_in_its_status_row():
    values = ", ".join(str(v) for v in range(1, 41))
    config = load_config("smoke", [f"sweeps.kl.kl_factor=[{values}]"])
    rows = dict(make_plan(config, Path(tempfile.gettempdir()) / "nowhere").rows())
    [name] = [name for name in rows if name.startswith("sweep kl")]
    assert name == "sweep kl (vae at kl_factor=1, kl_factor=2, ..., kl_factor=40)"
    assert len(rows[name]) < 100


# --- item 6: fresh means present and whole -------------------------------------------


def test_a_deleted_published_figure_makes_the_report_stale(project, executed):  # noqa: F811
    site = _build(project)
    figure = site / "figures" / "X1-line.png"
    figure.unlink()
    statuses = dict(engine.status(_config(project), project / "build"))
    assert statuses["report"] == "stale: site/figures/X1-line.png is missing"
    executed.clear()
    _build(project)
    assert executed == [] and figure.is_file()  # rendered again, nothing re-run
    (site / "index.html").write_text("edited")
    statuses = dict(engine.status(_config(project), project / "build"))
    assert statuses["report"] == ("stale: site/index.html differs from what the "
                                  "report published")


def test_a_damaged_state_file_is_named_and_rebuilt(project, executed, caplog):  # noqa: F811
    _build(project)
    state = project / "build" / "smoke" / "state.json"
    state.write_text('{"report": {"key": ')  # cut short
    executed.clear()
    with caplog.at_level(logging.WARNING, logger="zspace"):
        _build(project)
    assert f"{state} is damaged" in caplog.text
    assert sorted(executed) == ["first", "second"]
    assert set(BuildState(state).stages) >= {"notebook first", "report"}


def test_the_repository_copy_is_part_of_the_published_report(tmp_path, monkeypatch):
    root, repository = tmp_path / "build" / "default", tmp_path / "repository"
    for file in (root / "site" / "index.html", repository / "figures" / "A1.png",
                 repository / "articles" / "index.md"):
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(file.name)
    monkeypatch.setattr(paths, "ROOT", repository)
    monkeypatch.setattr(paths, "FIGURES", repository / "figures")
    monkeypatch.setattr(paths, "ARTICLES", repository / "articles")
    write_json_atomic(root / publish.PUBLISHED, publish.published_files(root, True))
    assert publish.published_damage(root) == ""
    (repository / "articles" / "index.md").write_text("edited by hand")
    assert publish.published_damage(root) == (
        "articles/index.md (in the repository) differs from what the report published")
    (repository / "articles" / "index.md").write_text("index.md")
    (repository / "figures" / "A1.png").unlink()
    assert publish.published_damage(root) == (
        "figures/A1.png (in the repository) is missing")
    (root / publish.PUBLISHED).write_text("{")
    assert "no readable record" in publish.published_damage(root)


def test_a_data_file_damaged_at_the_same_size_is_prepared_again(tmp_path):
    config = DataConfig(image_size=16, num_train=20, num_test=6, workers=1)
    first = load_dataset(config, tmp_path, progress=False)
    train = Path(first.train.filename)
    expected = np.array(first.train)
    time.sleep(0.05)  # past the file system's clock tick: the write shows in mtime
    with open(train, "r+b") as stream:  # zero a stretch, keeping the size
        stream.seek(200)
        stream.write(bytes(1000))
    cache._CHECKED.clear()  # as a new process would
    with pytest.raises(cache.DamagedEntry, match="train.npy differs"):
        cache.open_entry(train.parent)
    again = load_dataset(config, tmp_path, progress=False)
    np.testing.assert_array_equal(again.train, expected)


# --- item 8: user strings in the Markdown --------------------------------------------

HOSTILE = '/data/"><img src=x onerror=alert(1)>_*faces*_|`x`'


def _render_index(as_html: bool) -> str:
    smoke = load_config("smoke", [f"data.path={HOSTILE}"]).to_dict()
    dataset = {"source": "folder", "location": HOSTILE, "num_train": 300,
               "num_test": 30, "image_size": 32, "num_skipped": 0,
               "attribute_names": [], "content_hash": "0" * 64, "preparation": "-"}
    final = {"val_total_loss": 1.0}
    context = {
        "results": {"training": {m: {"epochs": 1, "final": final, "seconds": 1.0}
                                 for m in ("AE", "VAE", "wide AE")},
                    "sampler_comparison": {}, "sampler_ordering": [],
                    "sampler_variety": {}, "dataset": {"num_train": 300,
                                                       "image_size": 32},
                    "z_dims": {"AE": 8, "VAE": 8, "wide AE": 16},
                    "face_judge": {"name": "dlib"},
                    "variety_settings": {"min_faces": 50}},
        "provenance": {"config": smoke, "dataset": dataset, "python": "3.11",
                       "platform": "linux", "timings": {}, "packages": {}}}
    env = template_environment(paths.REPORT_TEMPLATES, autoescape=as_html)
    env.globals.update(page_name=str, articles={"A": "A"}, explorer_href="x",
                       suffix=".html" if as_html else ".md")
    text = env.get_template("index.md.j2").render(**context)
    return markdown.markdown(text, extensions=["tables", "md_in_html"]) \
        if as_html else text


def test_a_hostile_data_path_reaches_the_markdown_escaped():
    text = _render_index(as_html=False)
    # Inside a code span Markdown shows HTML as text; outside, it must be escaped.
    outside = re.sub(r"(`+).+?\1", "", text)
    assert "<img" not in outside
    assert "&lt;img" in outside  # the configuration table shows it, as text
    assert "\\_\\*faces\\*\\_\\|" in outside  # no emphasis, no extra cell
    assert "| location | `` /data/\"><img src=x onerror=alert(1)>_*faces*_\\|`x` `` |" \
        in text  # one code span, whole


def test_code_spans_in_the_html_are_escaped_once():
    page = _render_index(as_html=True)
    assert "<img" not in page
    assert "&amp;#34;" not in page and "&amp;gt;" not in page  # not twice
    spans = [html.unescape(s) for s in re.findall(r"<code>(.*?)</code>", page)]
    assert HOSTILE in spans  # the location table cell shows the path as it is
