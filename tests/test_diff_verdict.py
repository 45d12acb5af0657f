"""The figure diff's verdict: a layout shift, a change of text, or of content."""

from __future__ import annotations

import hashlib
import json
import shutil

import numpy as np
from PIL import Image

from tests.test_diff import diff_folders, pipeline, write_figures
from zspace import paths
from zspace.diff.images import DEFAULT_TOLERANCE
from zspace.diff.verdict import CONTENT, LAYOUT_SHIFT, TEXT, classify
from zspace.plots.canvas import rasterize
from zspace.plots.common import curves
from zspace.plots.latent import pair_scatter


def chart(title: str = "faces 45%", values=(0.2, 0.5, 0.4, 0.9)) -> np.ndarray:
    """A real chart as the notebooks draw it, as an RGB uint8 array."""
    figure = curves([1, 2, 3, 4], {"decoded": list(values), "real": [0.6] * 4},
                    "factor", "share", title=title)
    return rasterize(figure)


def as_float(image: np.ndarray) -> np.ndarray:
    return image.astype(np.float64) / 255.0


def test_committed_figures_with_one_moved_by_a_pixel(tmp_path):
    copy = tmp_path / "figures"
    shutil.copytree(paths.FIGURES, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    file = copy / manifest["C5"]["file"]
    pixels = np.asarray(Image.open(file).convert("RGB"))
    moved = np.full_like(pixels, 255)
    moved[1:, :] = pixels[:-1, :]  # everything one pixel lower
    Image.fromarray(moved).save(file)
    manifest["C5"]["sha256"] = hashlib.sha256(file.read_bytes()).hexdigest()
    (copy / "manifest.json").write_text(json.dumps(manifest))
    done = pipeline(str(paths.FIGURES), str(copy), "--build-dir",
                    str(tmp_path / "build"), "--json", str(tmp_path / "d.json"))
    assert done.returncode == 1, done.stderr
    summary = json.loads((tmp_path / "d.json").read_text())
    figures = {f["id"]: f for f in summary["figures"]}
    assert figures["C5"]["status"] == "changed"
    assert figures["C5"]["verdict"] == LAYOUT_SHIFT
    assert "(0, +1) px" in figures["C5"]["verdict_detail"]
    assert all(f["status"] == "unchanged" and f["verdict"] is None
               for name, f in figures.items() if name != "C5")
    row = next(line for line in done.stdout.splitlines() if line.startswith("C5 "))
    assert "changed    layout shift" in row


def test_one_panel_moved_by_a_pixel_is_a_layout_shift():
    z = np.random.default_rng(0).standard_normal((2000, 4)) * [1.0, 2.0, 0.5, 3.0]

    def draw(nudge: bool) -> np.ndarray:
        figure = pair_scatter(z, z[:10], [(0, 1), (2, 3)], z.mean(0),
                              np.cov(z, rowvar=False), 2.2, title="pairs")
        if nudge:  # the second panel one pixel to the right, frame and content
            axes = figure.axes[1]
            box = axes.get_position()
            axes.set_position([box.x0 + 1 / (figure.get_figwidth() * figure.dpi),
                               box.y0, box.width, box.height])
        return as_float(rasterize(figure))

    verdict = classify(draw(False), draw(True), DEFAULT_TOLERANCE)
    assert verdict.kind == LAYOUT_SHIFT
    assert "(+1, 0) px" in verdict.detail


def test_a_number_changed_in_a_title_is_text(tmp_path):
    old = write_figures(tmp_path / "a", {"X1": chart("faces 45%")})
    new = write_figures(tmp_path / "b", {"X1": chart("faces 48%")})
    result, page = diff_folders(tmp_path, old, new)
    figure = result.figures[0]
    assert figure.status == "changed" and result.exit_code == 1
    assert figure.verdict.kind == TEXT
    assert "lies in text" in figure.verdict.detail
    assert "changed</span>: text</h2>" in page.read_text()


def test_changed_data_is_content(tmp_path):
    old = write_figures(tmp_path / "a", {"X1": chart(values=(0.2, 0.5, 0.4, 0.9))})
    new = write_figures(tmp_path / "b", {"X1": chart(values=(0.2, 0.7, 0.4, 0.9))})
    result, _ = diff_folders(tmp_path, old, new)
    assert result.figures[0].status == "changed"
    assert result.figures[0].verdict.kind == CONTENT


def test_unchanged_figures_have_no_verdict(tmp_path):
    old = write_figures(tmp_path / "a", {"X1": chart()})
    new = write_figures(tmp_path / "b", {"X1": chart()})
    result, _ = diff_folders(tmp_path, old, new)
    assert result.figures[0].status == "unchanged"
    assert result.figures[0].verdict is None
    assert result.figures[0].to_dict()["verdict"] is None


def test_a_taller_figure_is_judged_on_white_padding():
    image = as_float(chart())
    taller = np.concatenate([np.ones((2, image.shape[1], 3)), image])  # 2 px on top
    verdict = classify(image, taller, DEFAULT_TOLERANCE)
    assert verdict.kind == LAYOUT_SHIFT and "(0, +2) px" in verdict.detail
