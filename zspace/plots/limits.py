"""Axis limits, ticks and colour-scale ends rounded to nice numbers, so that a
figure does not follow the last bits of its data.

Another CPU, BLAS or thread count changes a model's outputs in their last bits. A
figure must not follow them: an axis limit taken from the data's extremes moves the
ticks against the frame, ``tight_layout`` then moves the frame by a pixel, and the
figure diff reports a change. So every axis limit is rounded outward to a nice step
(:func:`nice_limits`, :func:`fix_axis`, :func:`fix_log_axis`), tick labels have a
fixed number of decimals, histogram edges lie between rounded limits
(:func:`nice_bins`), and colour scales end at rounded values (:func:`nice_ceiling`).
How the data themselves are drawn is :func:`zspace.plots.canvas.steady_drawing`'s
part.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from matplotlib import ticker
from matplotlib.axes import Axes

TICKS = 6  # an axis gets at most this many intervals between labelled ticks
# Tick steps are these times a power of ten.
_MANTISSAS = (1.0, 2.0, 2.5, 5.0, 10.0)
MINUS = "\N{MINUS SIGN}"  # as matplotlib writes negative tick labels


@dataclass(frozen=True)
class Limits:
    """Rounded axis limits and the step between their ticks.

    Attributes:
        low: The lower limit, a multiple of half the step.
        high: The upper limit, likewise.
        step: Between two ticks: 1, 2, 2.5 or 5 times a power of ten.
    """

    low: float
    high: float
    step: float

    @property
    def decimals(self) -> int:
        """Decimals that write every tick exactly (2.5 needs one, 0.25 two)."""
        for decimals in range(13):
            scaled = self.step * 10**decimals
            if abs(scaled - round(scaled)) <= 1e-9 * max(1.0, scaled):
                return decimals
        return 12

    @property
    def ticks(self) -> np.ndarray:
        """The multiples of ``step`` from ``low`` to ``high``."""
        first = math.ceil(self.low / self.step - 1e-9)
        last = math.floor(self.high / self.step + 1e-9)
        return np.round(np.arange(first, last + 1) * self.step, self.decimals + 3)


def _finite(values: Iterable) -> np.ndarray:
    parts = [np.ravel(np.asarray(v, dtype=np.float64)) for v in values]
    flat = np.concatenate(parts) if parts else np.zeros(0)
    return flat[np.isfinite(flat)]


def nice_step(span: float, ticks: int = TICKS) -> float:
    """The smallest 1, 2, 2.5 or 5 x 10^k step that cuts ``span`` into at most
    ``ticks`` intervals (1 for an empty or non-finite span)."""
    if not (span > 0 and math.isfinite(span)):
        return 1.0
    raw = span / ticks
    power = 10.0 ** math.floor(math.log10(raw))
    return next(m * power for m in _MANTISSAS if m * power >= raw * (1 - 1e-9))


def nice_limits(values: Iterable, *, margin: float | tuple[float, float] = 0.05,
                ticks: int = TICKS, include: Sequence[float] = ()) -> Limits:
    """Limits around ``values``, widened by ``margin`` and rounded outward.

    The step is a nice number (:func:`nice_step`) for the widened span; the limits
    are the nearest multiples of half the step outside it. Only a value crossing a
    multiple of that step changes them, which the last bits of a number do not.

    Args:
        values: Arrays or numbers to show; non-finite ones are left out.
        margin: Room beyond the data as a share of its span, below and above (one
            number: both).
        ticks: At most this many tick intervals.
        include: Values the limits must reach as well, e.g. 0 below bars (with
            no margin below, the limit is then 0 itself).

    Returns:
        The limits; (0, 1) in steps of 0.2 when there is no finite value.
    """
    data = _finite([*values, list(include)])
    if data.size == 0:
        return Limits(0.0, 1.0, 0.2)
    below, above = margin if isinstance(margin, tuple) else (margin, margin)
    low, high = float(data.min()), float(data.max())
    span = high - low
    if span == 0:  # one value: a span around it
        span = abs(low) * 0.2 or 1.0
        below = above = 0.5
    low, high = low - below * span, high + above * span
    step = nice_step(high - low, ticks)
    half = step / 2
    return Limits(math.floor(low / half + 1e-9) * half,
                  math.ceil(high / half - 1e-9) * half, step)


def set_limits(axes: Axes, which: str, limits: Limits) -> Limits:
    """Give the ``which`` axis (``"x"`` or ``"y"``) of ``axes`` these limits, ticks
    at every step and labels with a fixed number of decimals."""
    axis = axes.xaxis if which == "x" else axes.yaxis
    (axes.set_xlim if which == "x" else axes.set_ylim)(limits.low, limits.high)
    axis.set_major_locator(ticker.FixedLocator(limits.ticks))
    decimals = limits.decimals

    def label(value, _position=None):
        text = f"{value:.{decimals}f}"
        if float(text) == 0:
            text = f"{0.0:.{decimals}f}"  # no "-0.0"
        return text.replace("-", MINUS)

    axis.set_major_formatter(ticker.FuncFormatter(label))
    return limits


def fix_axis(axes: Axes, which: str, values: Iterable, **kwargs) -> Limits:
    """:func:`nice_limits` of ``values`` (keyword arguments passed on), set on the
    ``which`` axis of ``axes`` with :func:`set_limits`."""
    return set_limits(axes, which, nice_limits(values, **kwargs))


def fix_log_axis(axes: Axes, which: str, values: Iterable,
                 margin: float = 0.05) -> tuple[float, float]:
    """Logarithmic ``which`` axis of ``axes`` between 1, 2 or 5 x 10^k limits.

    Args:
        axes: The axes.
        which: ``"x"`` or ``"y"``.
        values: What is shown; only finite positive values count.
        margin: Room beyond the data in decades, before rounding outward.

    Returns:
        The limits.
    """
    data = _finite(values)
    data = data[data > 0]
    if data.size == 0:
        low, high = 0.1, 10.0
    else:
        low = nice_floor(float(data.min()) / 10**margin)
        high = nice_ceiling(float(data.max()) * 10**margin)
    (axes.set_xscale if which == "x" else axes.set_yscale)("log")
    (axes.set_xlim if which == "x" else axes.set_ylim)(low, high)
    return low, high


def nice_bins(values: np.ndarray, bins: int) -> np.ndarray:
    """``bins`` equal histogram bins between rounded limits of ``values``.

    Returns:
        The edges (bins + 1,): the data's range rounded outward to half of a
        1, 2, 2.5 or 5 x 10^k step of about a twentieth of it, cut into ``bins``.
    """
    limits = nice_limits([values], margin=0.0, ticks=4 * TICKS)
    return np.linspace(limits.low, limits.high, int(bins) + 1)


def nice_ceiling(value: float) -> float:
    """The smallest 1, 2 or 5 x 10^k at or above ``value`` (> 0), e.g. for the end
    of a colour scale; 1 for anything else."""
    if not (value > 0 and math.isfinite(value)):
        return 1.0
    power = 10.0 ** math.floor(math.log10(value))
    return next(m * power for m in (1.0, 2.0, 5.0, 10.0)
                if m * power >= value * (1 - 1e-12))


def nice_floor(value: float) -> float:
    """The largest 1, 2 or 5 x 10^k at or below ``value`` (> 0); 1 for anything
    else."""
    if not (value > 0 and math.isfinite(value)):
        return 1.0
    power = 10.0 ** math.floor(math.log10(value))
    return next(m * power for m in (10.0, 5.0, 2.0, 1.0, 0.5)
                if m * power <= value * (1 + 1e-12))
