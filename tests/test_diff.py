"""The figure diff: statuses, distances, reasons, sides, outputs and exit codes.

Most tests write figure folders and manifests directly; one diffs two real builds of
the tiny two-notebook project of test_build.py.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests import test_build as tiny
from zspace import paths
from zspace.diff import (
    DEFAULT_TOLERANCE,
    DiffError,
    figure_diff,
    manifest_changes,
    open_side,
    summary_text,
)
from zspace.pipeline import engine

PROVENANCE = {"notebook": "first", "parameters": {"points": 5}, "models": {"vae": "k1"},
              "dataset": "d1", "code": "c1"}


def picture(seed: int = 0, size: tuple[int, int] = (48, 32)) -> np.ndarray:
    """A smooth RGB image, (height, width, 3) uint8, like a plot more than noise."""
    rng = np.random.default_rng(seed)
    small = Image.fromarray(rng.integers(0, 256, (4, 4, 3), dtype=np.uint8))
    return np.asarray(small.resize(size, Image.Resampling.BICUBIC))


def write_figures(folder: Path, figures: dict[str, np.ndarray | bytes],
                  **provenance) -> Path:
    """Write PNGs and a manifest; ``provenance`` maps a figure id to entry overrides."""
    folder.mkdir(parents=True, exist_ok=True)
    manifest = {}
    for figure_id, content in figures.items():
        file = folder / f"{figure_id}-plot.png"
        if isinstance(content, bytes):
            file.write_bytes(content)
        else:
            Image.fromarray(content).save(file)
        manifest[figure_id] = {"file": file.name, **PROVENANCE,
                               "sha256": hashlib.sha256(file.read_bytes()).hexdigest(),
                               **provenance.get(figure_id, {})}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def diff_folders(tmp_path: Path, old: Path, new: Path, **kwargs):
    return figure_diff(str(old), str(new), repo=tmp_path, build_root=tmp_path / "build",
                       **kwargs)


def statuses(result) -> dict[str, str]:
    return {f.figure_id: f.status for f in result.figures}


def test_identical_folders_have_no_change(tmp_path):
    figures = {"X1": picture(1), "X2": picture(2)}
    old = write_figures(tmp_path / "a", figures)
    new = write_figures(tmp_path / "b", figures)
    result, page = diff_folders(tmp_path, old, new)
    assert statuses(result) == {"X1": "unchanged", "X2": "unchanged"}
    assert result.exit_code == 0 and not result.changed
    assert all(f.reason == "identical files" and f.distance is None
               for f in result.figures)
    assert page == tmp_path / "build" / "diff" / "a-vs-b" / "index.html"
    assert "2 unchanged figures" in page.read_text()


def test_changed_parameter_flags_its_figure_and_names_the_parameter(tmp_path):
    old = write_figures(tmp_path / "a", {"X1": picture(1), "X2": picture(2)})
    moved = picture(2).copy()
    moved[8:20, 10:30] = 0
    new = write_figures(tmp_path / "b", {"X1": picture(1), "X2": moved},
                        X2={"parameters": {"points": 6}})
    result, page = diff_folders(tmp_path, old, new)
    assert statuses(result) == {"X1": "unchanged", "X2": "changed"}
    changed = result.figures[1]
    assert changed.manifest == {"parameters": {"points": {"old": 5, "new": 6}}}
    assert changed.why == ["parameters: points 5 -> 6"]
    d = changed.distance
    assert d.rms > DEFAULT_TOLERANCE and d.max > 0.1 and d.ssim < 0.99
    assert d.phash >= 0 and not d.resized
    assert "parameters: points 5 -> 6" in summary_text(result)
    html = page.read_text()
    assert 'id="fig-X2"' in html and 'id="fig-X1"' not in html
    assert (page.parent / "heat" / "X2-plot.png").is_file()
    assert (page.parent / "style.css").is_file()


def test_manifest_changes_name_models_data_and_code():
    new = {**PROVENANCE, "models": {"vae": "k2", "ae": "k3"}, "dataset": "d2",
           "code": "c2", "parameters": {"points": 5.0}}
    changes = manifest_changes(PROVENANCE, new)
    assert changes["models"] == {"ae": {"new": "k3"}, "vae": {"old": "k1", "new": "k2"}}
    assert changes["dataset"] == {"old": "d1", "new": "d2"}
    assert changes["code"] == {"old": "c1", "new": "c2"}
    # 5 and 5.0 read alike in Python but not in the manifest a user compares.
    assert changes["parameters"] == {"points": {"old": 5, "new": 5.0}}
    assert "notebook" not in changes and manifest_changes(new, new) == {}


def test_added_and_removed_figures(tmp_path):
    old = write_figures(tmp_path / "a", {"X1": picture(1), "X2": picture(2)})
    new = write_figures(tmp_path / "b", {"X1": picture(1), "X3": picture(3)})
    result, page = diff_folders(tmp_path, old, new)
    assert statuses(result) == {"X1": "unchanged", "X2": "removed", "X3": "added"}
    assert result.exit_code == 1
    assert result.counts() == {"changed": 0, "unreadable": 0, "added": 1,
                               "removed": 1, "unchanged": 1}
    assert (page.parent / "a" / "X2-plot.png").is_file()
    assert (page.parent / "b" / "X3-plot.png").is_file()


def test_figures_of_different_sizes(tmp_path):
    old = write_figures(tmp_path / "a", {"X1": picture(1, (48, 32))})
    new = write_figures(tmp_path / "b", {"X1": picture(1, (96, 64))})
    result, _ = diff_folders(tmp_path, old, new)
    figure = result.figures[0]
    assert figure.status == "changed"
    assert figure.distance.size_a == (48, 32) and figure.distance.size_b == (96, 64)
    assert figure.distance.resized
    assert "size 48x32 -> 96x64; B resized" in figure.reason
    # The same smooth picture at twice the size: similar after resizing.
    assert figure.distance.ssim > 0.8 and figure.distance.phash <= 10


def test_corrupt_png_is_reported_not_a_crash(tmp_path):
    png = (write_figures(tmp_path / "src", {"X1": picture(1)}) / "X1-plot.png")
    old = write_figures(tmp_path / "a", {"X1": picture(1), "X2": picture(2)})
    new = write_figures(tmp_path / "b", {"X1": png.read_bytes()[:100],
                                         "X2": b"not a png"})
    result, page = diff_folders(tmp_path, old, new)
    assert statuses(result) == {"X1": "unreadable", "X2": "unreadable"}
    assert result.exit_code == 1
    assert result.figures[0].reason.startswith("B: cannot decode X1-plot.png")
    assert "unreadable" in summary_text(result)
    # The page shows A's version and no broken image for B.
    assert not (page.parent / "b" / "X1-plot.png").exists()
    assert 'src="a/X1-plot.png"' in page.read_text()


def test_file_missing_from_its_folder_is_unreadable(tmp_path):
    old = write_figures(tmp_path / "a", {"X1": picture(1)})
    new = write_figures(tmp_path / "b", {"X1": picture(1)})
    (new / "X1-plot.png").unlink()
    result, _ = diff_folders(tmp_path, old, new)
    assert result.figures[0].status == "unreadable"
    assert result.figures[0].reason == "B: X1-plot.png is missing"


def test_noise_below_the_tolerance_is_unchanged(tmp_path):
    noisy = picture(1).astype(int)
    noisy[0, :5] += 1  # one grey level on five pixels: another machine's rounding
    old = write_figures(tmp_path / "a", {"X1": picture(1)})
    new = write_figures(tmp_path / "b", {"X1": np.clip(noisy, 0, 255).astype(np.uint8)})
    result, _ = diff_folders(tmp_path, old, new)
    figure = result.figures[0]
    assert figure.status == "unchanged" and result.exit_code == 0
    assert 0 < figure.distance.rms <= DEFAULT_TOLERANCE
    assert "within tolerance" in figure.reason
    strict, _ = diff_folders(tmp_path, old, new, tolerance=0.0)
    assert strict.figures[0].status == "changed" and strict.exit_code == 1


def test_tiny_images_have_no_ssim_but_do_not_fail(tmp_path):
    old = write_figures(tmp_path / "a", {"X1": picture(1, (2, 2)),
                                         "X2": picture(1, (5, 4))})
    new = write_figures(tmp_path / "b", {"X1": picture(2, (2, 2)),
                                         "X2": picture(2, (5, 4))})
    result, _ = diff_folders(tmp_path, old, new)
    assert result.figures[0].distance.ssim is None
    assert result.figures[1].distance.ssim is not None


def test_bad_sides_name_what_is_wrong(tmp_path):
    good = write_figures(tmp_path / "good", {"X1": picture(1)})
    (tmp_path / "empty").mkdir()
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "manifest.json").write_text("{not json")
    (tmp_path / "escape").mkdir()
    (tmp_path / "escape" / "manifest.json").write_text('{"X1": {"file": "../x.png"}}')
    cases = {"nowhere": "'nowhere' is not a folder with a manifest.json",
             str(tmp_path / "empty"): "has no manifest.json in it",
             str(tmp_path / "broken"): "is not valid JSON",
             str(tmp_path / "escape"): "figure X1 in .* has no plain 'file' name"}
    for side, message in cases.items():
        with pytest.raises(DiffError, match=message) as error:
            diff_folders(tmp_path, good, Path(side))
        assert error.value.exit_code == 2
    with pytest.raises(DiffError, match="tolerance -1"):
        diff_folders(tmp_path, good, good, tolerance=-1)
    with pytest.raises(DiffError, match="holds other files .X1-plot.png."):
        diff_folders(tmp_path, good, good, page_folder=good)
    assert (good / "X1-plot.png").is_file() and not (good / "index.html").exists()


def test_same_pixels_from_new_code_are_unchanged_with_the_reason_kept(tmp_path):
    old = write_figures(tmp_path / "a", {"X1": picture(1)})
    new = write_figures(tmp_path / "b", {"X1": picture(1)}, X1={"code": "c2"})
    result, page = diff_folders(tmp_path, old, new)
    assert result.exit_code == 0
    assert result.figures[0].why == ["code: c1 -> c2"]
    assert "code: c1 -&gt; c2" in page.read_text()  # in the folded table


def test_build_and_site_folders_lead_to_their_figures(tmp_path):
    write_figures(tmp_path / "build" / "smoke" / "site" / "figures", {"X1": picture(1)})
    for name in ("build/smoke", "build/smoke/site", "build/smoke/site/figures"):
        with open_side(str(tmp_path / name), repo=tmp_path,
                       build_root=tmp_path / "build") as side:
            assert side.folder == tmp_path / "build" / "smoke" / "site" / "figures"
            assert side.kind == "folder" and side.slug == "smoke"


def test_archived_builds_by_id_prefix_latest_and_previous(tmp_path):
    archive = tmp_path / "build" / "archive"
    first = write_figures(archive / "smoke" / "20240101-120000-aaaaaaaa",
                          {"X1": picture(1)})
    second = write_figures(archive / "smoke" / "20240102-120000-bbbbbbbb",
                           {"X1": picture(2)})
    write_figures(archive / "default" / "20240102-130000-cccccccc", {"X1": picture(3)})
    found = {}
    for argument in ("20240101-120000-aaaaaaaa", "20240102-12", "latest", "previous",
                     "default/20240102-130000-cccccccc"):
        with open_side(argument, repo=tmp_path, build_root=tmp_path / "build",
                       profile="smoke") as side:
            assert side.kind == "archive"
            found[argument] = side.folder
    assert found["20240101-120000-aaaaaaaa"] == found["previous"] == first
    assert found["20240102-12"] == found["latest"] == second
    with pytest.raises(DiffError, match="'20240102' matches several archived builds"):
        figure_diff("20240102", str(first), repo=tmp_path,
                    build_root=tmp_path / "build")
    with pytest.raises(DiffError, match="profile celeba has 0 archived builds"):
        figure_diff("latest", str(first), repo=tmp_path,
                    build_root=tmp_path / "build", profile="celeba")


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True,
                          capture_output=True, text=True).stdout.strip()


@pytest.fixture
def repository(tmp_path):
    """A git repository with figures/ committed twice, X2 changed by ``points``."""
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    git(repo, "config", "user.email", "test@example.org")
    git(repo, "config", "user.name", "test")
    write_figures(repo / "figures", {"X1": picture(1), "X2": picture(2)})
    git(repo, "add", "figures")
    git(repo, "commit", "-q", "-m", "first figures")
    write_figures(repo / "figures", {"X1": picture(1), "X2": picture(3)},
                  X2={"parameters": {"points": 7}})
    git(repo, "commit", "-q", "-am", "X2 with seven points")
    return repo


def test_git_revisions_and_the_working_tree(repository, tmp_path):
    build = tmp_path / "build"
    result, page = figure_diff("HEAD~1", "HEAD", repo=repository, build_root=build)
    assert statuses(result) == {"X1": "unchanged", "X2": "changed"}
    assert result.figures[1].why == ["parameters: points 5 -> 7"]
    assert result.a.kind == "revision" and "HEAD~1 (" in result.a.description
    assert page.parent.name == "HEAD_1-vs-HEAD"
    assert (page.parent / "a" / "X2-plot.png").is_file()  # outlives the temporary copy
    clean, _ = figure_diff(repo=repository, build_root=build)
    assert clean.exit_code == 0 and clean.b.kind == "working"
    write_figures(repository / "figures", {"X1": picture(4), "X2": picture(3)},
                  X2={"parameters": {"points": 7}})
    dirty, _ = figure_diff(repo=repository, build_root=build)
    assert statuses(dirty) == {"X1": "changed", "X2": "unchanged"}
    with pytest.raises(DiffError, match="'nosuch' is not a folder .* or a revision"):
        figure_diff("nosuch", repo=repository, build_root=build)
    git(repository, "rm", "-q", "-r", "-f", "figures")
    git(repository, "commit", "-q", "-m", "no figures")
    with pytest.raises(DiffError, match=r"revision HEAD \(\w+\) has no "
                                        "figures/manifest.json"):
        figure_diff("HEAD", "HEAD~1", repo=repository, build_root=build)


def pipeline(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(paths.ROOT / "pipeline.py"), "diff",
                           *args], capture_output=True, text=True, timeout=120)


def test_cli_exit_codes_table_and_json(tmp_path):
    old = write_figures(tmp_path / "a", {"X1": picture(1), "X2": picture(2)})
    new = write_figures(tmp_path / "b", {"X1": picture(1), "X2": picture(3)})
    common = ["--build-dir", str(tmp_path / "build"), "--html", str(tmp_path / "page")]
    same = pipeline(str(old), str(old), *common)
    assert same.returncode == 0, same.stderr
    assert "2 unchanged" in same.stdout
    changed = pipeline(str(old), str(new), *common, "--json", str(tmp_path / "d.json"))
    assert changed.returncode == 1, changed.stderr
    assert "X2      changed" in changed.stdout
    assert f"page: {tmp_path / 'page' / 'index.html'}" in changed.stdout
    summary = json.loads((tmp_path / "d.json").read_text())
    assert summary["counts"]["changed"] == 1 and summary["changed"] is True
    assert [f["status"] for f in summary["figures"]] == ["unchanged", "changed"]
    missing = pipeline(str(old), str(tmp_path / "nope"), *common)
    assert missing.returncode == 2
    assert f"'{tmp_path / 'nope'}' is not a folder" in missing.stderr
    assert "Traceback" not in missing.stderr


@pytest.fixture
def tiny_project(tmp_path, monkeypatch):
    """test_build.py's two notebooks (X1 from ``first``, X2 from ``second``)."""
    tiny.two_notebooks(tmp_path, monkeypatch)
    tiny._templates(tmp_path / "templates")
    return tmp_path


def build_tiny(project: Path, *overrides: str) -> Path:
    return engine.build(tiny._config(project, *overrides), project / "build",
                       progress=False)


def test_two_real_builds_differ_in_one_notebook_parameter(tiny_project):
    build_tiny(tiny_project)
    build_tiny(tiny_project, "notebooks.second.bars=5")
    result, page = figure_diff("previous", "latest", repo=tiny_project,
                               build_root=tiny_project / "build", profile="smoke")
    assert statuses(result) == {"X1": "unchanged", "X2": "changed"}
    assert result.figures[1].why == ["parameters: bars 3 -> 5"]
    assert result.figures[0].reason == "identical files"
    assert result.a.kind == result.b.kind == "archive"
    assert (page.parent / "heat" / "X2-bars.png").is_file()
