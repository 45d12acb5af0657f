"""Charts and panel layout used by several notebooks, and the rounding that keeps
figures independent of the last bits of their data.

Another CPU, BLAS or thread count changes a model's outputs in their last bits. A
figure must not follow them: an axis limit taken from the data's extremes moves the
ticks against the frame, ``tight_layout`` then moves the frame by a pixel, and the
figure diff reports a change. So every axis limit here is rounded outward to a nice
step (:func:`nice_limits`, :func:`fix_axis`, :func:`fix_log_axis`), tick labels have a
fixed number of decimals, histogram edges lie between rounded limits
(:func:`nice_bins`), and colour scales end at rounded values (:func:`nice_ceiling`).
When a figure is drawn, its data are drawn where they lie rather than on whole pixels
(:func:`steady_drawing`). What still moves with the data is the data itself: a point,
a bar, a number in a label.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from matplotlib import ticker
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import PathCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.markers import MarkerStyle
from matplotlib.transforms import IdentityTransform, blended_transform_factory

from zspace.latent.grids import DPI

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


def new_figure(width: float, height: float) -> Figure:
    """An empty figure of ``width`` x ``height`` inches on the Agg canvas."""
    figure = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(figure)
    return figure


def steady_drawing(figure: Figure) -> Figure:
    """Draw the data of ``figure`` where they lie, not on whole pixels.

    Agg snaps straight horizontal and vertical edges (bars, histogram steps, error
    bars, bands) to the pixel grid, and stamps every marker of a line or of a
    one-colour scatter at a whole pixel: a value that moves by a hundredth of a pixel
    can move a bar's edge or a marker by a whole one. Here snapping is turned off for
    everything drawn in the axes, a line's markers become a scatter of their own, and
    a one-colour scatter gets a colour per point; such collections are drawn
    antialiased at their exact positions. Frames, ticks and grid lines stay crisp:
    the layout places them, not the data; so do axes drawn without their axis
    (diagrams, image grids), whose contents the layout places too. Safe to call more
    than once.

    Returns:
        ``figure``, changed in place.
    """
    for axes in figure.axes:
        if not axes.axison:
            continue
        for line in list(axes.lines):
            line.set_snap(False)
            _markers_as_scatter(axes, line)
        for artist in [*axes.collections, *axes.patches]:
            artist.set_snap(False)
            if isinstance(artist, PathCollection) and artist.get_array() is None:
                _colour_per_point(artist)
    return figure


def _markers_as_scatter(axes: Axes, line: Line2D) -> None:
    marker = line.get_marker()
    if marker in (None, "None", "none", " ", "") or line.get_markersize() <= 0:
        return
    points = np.column_stack([line.get_xdata(orig=False), line.get_ydata(orig=False)])
    style = MarkerStyle(marker, line.get_fillstyle())
    count = max(len(points), 2)  # two colours or more: never stamped
    edge = np.repeat([line.get_markeredgecolor()], count, axis=0)
    face = (np.repeat([line.get_markerfacecolor()], count, axis=0)
            if style.is_filled() else "none")
    markers = PathCollection(
        [style.get_path().transformed(style.get_transform())],
        sizes=[line.get_markersize() ** 2], offsets=points,
        offset_transform=line.get_transform(), facecolors=face, edgecolors=edge,
        linewidths=[line.get_markeredgewidth()], alpha=line.get_alpha(),
        zorder=line.get_zorder(), clip_on=line.get_clip_on(), snap=False)
    markers.set_transform(IdentityTransform())  # sizes are in points, as scatter's
    axes.add_collection(markers, autolim=False)
    line.set_marker("None")


def _colour_per_point(collection: PathCollection) -> None:
    count = max(len(collection.get_offsets()), 2)
    for get, set_ in ((collection.get_facecolor, collection.set_facecolor),
                      (collection.get_edgecolor, collection.set_edgecolor)):
        colours = np.asarray(get())
        if len(colours) == 1:
            set_(np.repeat(colours, count, axis=0))


def rasterize(figure: Figure) -> np.ndarray:
    """The figure as an RGB uint8 array (height, width, 3), as it would be saved
    (after :func:`steady_drawing`)."""
    steady_drawing(figure)
    figure.canvas.draw()
    return np.asarray(figure.canvas.buffer_rgba())[..., :3].copy()


def stack(panels: Sequence[Figure | np.ndarray], title: str | None = None) -> Figure:
    """Put finished figures (or RGB arrays) one below the other in one figure.

    Panels keep their own pixel size; narrower ones are centred on white.
    """
    images = [p if isinstance(p, np.ndarray) else rasterize(p) for p in panels]
    width = max(image.shape[1] for image in images)
    padded = []
    for image in images:
        left = (width - image.shape[1]) // 2
        canvas = np.full((image.shape[0], width, 3), 255, np.uint8)
        canvas[:, left:left + image.shape[1]] = image
        padded.append(canvas)
    pixels = np.concatenate(padded, axis=0)
    title_px = 40 if title else 0
    figure = new_figure(width / DPI, (pixels.shape[0] + title_px) / DPI)
    axes = figure.add_axes((0, 0, 1, pixels.shape[0] / (pixels.shape[0] + title_px)))
    axes.imshow(pixels, interpolation="nearest")
    axes.set_axis_off()
    if title:
        figure.suptitle(title, y=1 - 8 / (pixels.shape[0] + title_px), va="top")
    return figure


def curves(x: Sequence[float], series: dict[str, Sequence[float]], xlabel: str,
           ylabel: str, title: str | None = None, log_x: bool = False,
           size: tuple[float, float] = (6.0, 3.2), marker: str = "o") -> Figure:
    """A line chart with one line per named series, sharing the x values."""
    figure = new_figure(*size)
    axes = figure.add_subplot()
    for name, values in series.items():
        axes.plot(x, values, marker=marker, label=name)
    if log_x:
        axes.set_xscale("log")
    fix_axis(axes, "y", series.values())
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    axes.grid(alpha=0.3)
    if len(series) > 1:
        axes.legend(fontsize="small")
    if title:
        axes.set_title(title)
    figure.tight_layout()
    return figure


def quality_panels(x: Sequence[float], metrics: dict[str, dict[str, Sequence[float]]],
                   xlabel: str, log_x: bool = False) -> Figure:
    """Three charts side by side: Frechet distance, precision and recall against x.

    Args:
        x: The swept value (an r_limit, a bound...).
        metrics: Per series name, ``{"frechet": [...], "precision": [...],
            "recall": [...]}`` aligned with ``x``.
        xlabel: Label of the x axis.
        log_x: Logarithmic x axis.
    """
    figure = new_figure(10.0, 3.0)
    names = (("frechet", "Frechet distance (lower is better)"),
             ("precision", "precision (k = 3)"), ("recall", "recall (k = 3)"))
    for index, (key, label) in enumerate(names, 1):
        axes = figure.add_subplot(1, 3, index)
        for series, values in metrics.items():
            axes.plot(x, values[key], marker="o", label=series)
        if log_x:
            axes.set_xscale("log")
        if key == "frechet":
            fix_axis(axes, "y", [values[key] for values in metrics.values()])
        else:
            axes.set_ylim(-0.03, 1.03)
        axes.set_xlabel(xlabel)
        axes.set_title(label, fontsize="medium")
        axes.grid(alpha=0.3)
        if len(metrics) > 1 and index == 1:
            axes.legend(fontsize="small")
    figure.tight_layout()
    return figure


def bars(labels: Sequence[str], metrics: dict[str, Sequence[float]],
         title: str | None = None, log_scale: Sequence[str] = (),
         value_labels: bool = False) -> Figure:
    """One bar chart per metric, the same labels on each.

    Args:
        labels: One per bar.
        metrics: Chart title -> one value per label.
        title: Above all charts.
        log_scale: Chart titles of ``metrics`` drawn on a logarithmic axis.
        value_labels: Write each bar's value in a row above the frame, where
            the value does not move its label: two decimals below 10, three
            significant digits from there.
    """
    figure = new_figure(3.4 * len(metrics), 3.4)
    for index, (metric, values) in enumerate(metrics.items(), 1):
        axes = figure.add_subplot(1, len(metrics), index)
        axes.bar(range(len(labels)), values, color="#4a78c2")
        axes.set_xticks(range(len(labels)), labels, rotation=40, ha="right",
                        fontsize="small")
        if metric in log_scale:
            fix_log_axis(axes, "y", [values])
        else:
            fix_axis(axes, "y", [values], include=[0.0], margin=(0.0, 0.05))
        if value_labels:
            # A label at its bar's top would move with the value, a pixel at a time.
            above = blended_transform_factory(axes.transData, axes.transAxes)
            for x, value in enumerate(values):
                # Two decimals would print a share of 1e-4 as 0.00.
                text = (f"{value:.2f}" if 0.01 <= abs(value) < 10 or value == 0
                        else f"{value:.3g}")
                axes.annotate(text, (x, 1.0), xycoords=above, xytext=(0, 2),
                              textcoords="offset points", ha="center", va="bottom",
                              fontsize="x-small")
        axes.set_title(metric, fontsize="medium", pad=14 if value_labels else 6)
        axes.grid(axis="y", alpha=0.3)
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    return figure


def spread_figure(clouds: dict[str, np.ndarray]) -> Figure:
    """Where z-point clouds live: per-component ranges and the radii of the points.

    Args:
        clouds: Per name, z-points (n, z_dim), e.g. the AE's and the VAE's training
            z-points and a sample of N(0, I) for scale.

    Left: for each component (sorted by standard deviation) the band from the 1st to
    the 99th percentile and the standard deviation. Right: histograms of |z|.
    """
    from zspace.latent.stats import radii

    figure = new_figure(11.0, 3.6)
    left, right = figure.add_subplot(1, 2, 1), figure.add_subplot(1, 2, 2)
    shown, edges, counts = [], [], []
    for index, (name, z) in enumerate(clouds.items()):
        color = f"C{index}"
        order = np.argsort(z.std(axis=0))[::-1]
        low, high = np.percentile(z[:, order], [1, 99], axis=0)
        component = np.arange(z.shape[1])
        left.fill_between(component, low, high, color=color, alpha=0.25,
                          label=f"{name}: 1st-99th percentile")
        left.plot(component, z[:, order].std(axis=0), color=color, lw=1.2,
                  label=f"{name}: standard deviation")
        r = radii(z)
        edges.append(nice_bins(r, 50))
        counts.append(right.hist(r, bins=edges[-1], color=color, alpha=0.55,
                                 label=name)[0])
        shown += [low, high]
    fix_axis(left, "y", shown)
    fix_axis(right, "x", edges, margin=0.02)
    fix_axis(right, "y", counts, include=[0.0], margin=(0.0, 0.05))
    left.set_xlabel("component (sorted by standard deviation)")
    left.set_ylabel("z value")
    left.grid(alpha=0.3)
    left.legend(fontsize="x-small")
    right.set_xlabel("|z| (distance from the origin)")
    right.set_ylabel("points")
    right.legend(fontsize="small")
    right.grid(alpha=0.3)
    figure.tight_layout()
    return figure
