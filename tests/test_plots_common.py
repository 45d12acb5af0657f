"""The shared charts, drawn steadily: a value moving by a fraction of a pixel moves
the picture by as little."""

from __future__ import annotations

import numpy as np

from zspace.plots.canvas import rasterize, steady_drawing
from zspace.plots.common import bars, curves


def rms(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(np.mean((a / 255.0 - b / 255.0) ** 2)))


def test_a_value_moving_across_a_pixel_moves_the_picture_smoothly():
    """Agg stamps markers and snaps bar edges to whole pixels, so somewhere in a
    pixel a tiny move would jump them by a whole one; drawn steadily, every step of
    a twentieth of a pixel changes the picture by about a twentieth as much."""
    pixel = 0.6 / 256  # either y axis spans about 0.6 over about 256 px

    def line(value):
        return rasterize(curves([0, 1, 2, 3], {"a": [0.1, value, 0.3, 0.5],
                                               "b": [0.4] * 4}, "x", "y"))

    def chart(value):
        return rasterize(bars(["p", "q"], {"share": [0.5, value]}))

    for draw, start in ((line, 0.2), (chart, 0.3)):
        pictures = [draw(start + k * pixel / 20) for k in range(25)]
        steps = [rms(a, b) for a, b in zip(pictures, pictures[1:], strict=False)]
        # Steadily drawn, a step is about 0.001 here; snapped, the one where a
        # marker jumps a pixel is 0.005, where a bar's edge does 0.016.
        assert 0 < max(steps) < 0.0025, (draw.__name__, max(steps))


def test_steady_drawing_keeps_the_legend_and_can_run_twice():
    figure = curves([0, 1, 2], {"a": [1.0, 2.0, 3.0], "b": [2.0, 2.0, 2.0]}, "x",
                    "y")
    first = rasterize(figure)
    steady_drawing(figure)
    assert np.array_equal(first, rasterize(figure))
    axes = figure.axes[0]
    assert [line.get_marker() for line in axes.lines] == ["None", "None"]
    assert len(axes.collections) == 2  # the markers, one collection per line
    handles = axes.get_legend().legend_handles
    assert [h.get_marker() for h in handles] == ["o", "o"]
