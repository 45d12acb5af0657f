"""The rounding that keeps figures off their data's last bits."""

from __future__ import annotations

import numpy as np
import pytest

from zspace.plots.canvas import new_figure
from zspace.plots.limits import (
    fix_axis,
    fix_log_axis,
    nice_bins,
    nice_ceiling,
    nice_floor,
    nice_limits,
    nice_step,
)


@pytest.mark.parametrize(("span", "step"), [(1.0, 0.2), (29.0, 5.0), (30.1, 10.0),
                                            (0.0712, 0.02), (1.4, 0.25),
                                            (332.0, 100.0), (0.0, 1.0)])
def test_nice_step(span, step):
    assert nice_step(span, 6) == pytest.approx(step)


def test_limits_are_rounded_outward_and_ignore_the_last_bits():
    limits = nice_limits([[2403.7, 2705.2]])
    assert (limits.low, limits.high, limits.step) == (2350.0, 2750.0, 100.0)
    assert list(limits.ticks) == [2400.0, 2500.0, 2600.0, 2700.0]
    rng = np.random.default_rng(0)
    values = rng.normal(size=1000)
    for _ in range(20):
        noisy = values * (1 + 1e-6 * rng.standard_normal(values.shape))
        assert nice_limits([noisy]) == nice_limits([values])
        np.testing.assert_array_equal(nice_bins(noisy, 60), nice_bins(values, 60))


def test_limits_reach_what_they_must_include_and_skip_non_finite_values():
    limits = nice_limits([[0.29, 115.3, np.nan]], include=[0.0], margin=(0.0, 0.12))
    assert limits.low == 0.0 and limits.high >= 115.3 * 1.1
    assert nice_limits([[np.inf]]).ticks.tolist() == pytest.approx(
        [0.0, 0.2, 0.4, 0.6, 0.8, 1.0])
    one = nice_limits([[3.0, 3.0]])
    assert one.low < 3.0 < one.high


def test_tick_labels_have_fixed_decimals_and_a_real_minus():
    figure = new_figure(3, 3)
    axes = figure.add_subplot()
    limits = fix_axis(axes, "y", [[-0.5, 0.6]])
    assert (limits.low, limits.high, limits.step) == (-0.625, 0.75, 0.25)
    assert limits.decimals == 2
    figure.canvas.draw()
    labels = [t.get_text() for t in axes.get_yticklabels()]
    assert labels == ["\N{MINUS SIGN}0.50", "\N{MINUS SIGN}0.25", "0.00", "0.25",
                      "0.50", "0.75"]
    assert axes.get_ylim() == (limits.low, limits.high)


def test_log_limits_and_nice_numbers():
    figure = new_figure(3, 3)
    axes = figure.add_subplot()
    assert fix_log_axis(axes, "y", [[0.3, 110.4, 0.0]]) == (0.2, 200.0)
    assert axes.get_yscale() == "log"
    assert [nice_ceiling(v) for v in (37, 100, 101, 0)] == [50.0, 100.0, 200.0, 1.0]
    assert [nice_floor(v) for v in (0.3, 1.0, 4.99, 5.0)] == [0.2, 1.0, 2.0, 5.0]
