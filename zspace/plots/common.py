"""Charts and panel layout used by several notebooks.

Their axes are rounded by :mod:`zspace.plots.limits`, so that a figure does not follow
the last bits of its data; what still moves with the data is the data itself: a
point, a bar, a number in a label.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.transforms import blended_transform_factory

from zspace.plots.canvas import DPI, new_figure, rasterize
from zspace.plots.limits import fix_axis, fix_log_axis, nice_bins


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


def reference_panels(x: Sequence[float], panels: dict[str, dict], xlabel: str,
                     label: str, reference_label: str = "real test images",
                     size: tuple[float, float] = (10.0, 3.0)) -> Figure:
    """Charts side by side, one measure each against a swept value: its values with
    their 95 % intervals as bars, and the reference's value as a grey line in its
    interval's band.

    Args:
        x: The swept values (an r_limit...).
        panels: Per chart title, ``{"values": [...], "reference": {...}, "key": k}``:
            dicts with ``k``, ``low`` and ``high`` aligned with ``x`` (None or a
            None value: not measured there), the reference's dict, and optionally
            ``"lines": {label: y}``, further dotted horizontal lines.
        xlabel: Label of the x axis.
        label: The series' name in the legend.
        reference_label: The reference's name in the legend.
        size: Figure size in inches.
    """
    figure = new_figure(*size)
    for index, (title, panel) in enumerate(panels.items(), 1):
        axes = figure.add_subplot(1, len(panels), index)
        key = panel["key"]

        def read(entry, field, key=key):
            return (np.nan if entry is None or entry.get(key) is None
                    else float(entry[field]))

        centre = np.array([read(v, key) for v in panel["values"]])
        low = np.array([read(v, "low") for v in panel["values"]])
        high = np.array([read(v, "high") for v in panel["values"]])
        shown = [centre, low, high]
        reference = panel.get("reference")
        if reference is not None and reference.get(key) is not None:
            axes.axhspan(reference["low"], reference["high"], color="0.85", zorder=0)
            axes.axhline(reference[key], color="0.5", lw=1, zorder=0,
                         label=f"{reference_label} ({reference[key]:.2f})")
            shown.append([reference["low"], reference["high"]])
        for line_label, y in panel.get("lines", {}).items():
            axes.axhline(y, color="0.3", lw=1, ls=":", zorder=0, label=line_label)
            shown.append([y])
        axes.errorbar(x, centre, yerr=np.vstack([centre - low, high - centre]),
                      marker="o", capsize=3, label=label)
        fix_axis(axes, "y", shown)
        axes.set_xlabel(xlabel)
        axes.set_title(title, fontsize="medium")
        axes.grid(alpha=0.3)
        axes.legend(fontsize="x-small")
    figure.tight_layout()
    return figure
