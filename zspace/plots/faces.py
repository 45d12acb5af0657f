"""Charts of face rates (:mod:`zspace.faces`) with their Wilson intervals drawn."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from zspace.plots.canvas import new_figure

RATE_LABEL = "face rate (one face found)"


def _errors(rates: Sequence[dict]) -> tuple[np.ndarray, np.ndarray]:
    """Centre values and the (2, n) distances to the interval ends, for errorbar."""
    centre = np.array([r["rate"] for r in rates])
    low = np.array([r["low"] for r in rates])
    high = np.array([r["high"] for r in rates])
    return centre, np.vstack([centre - low, high - centre]).clip(min=0)


def _seed_marks(axes, where: Sequence[float], rates: Sequence[dict], color,
                vertical: bool) -> None:
    """Each training seed's rate as a cross, where a rate is pooled over seeds."""
    for at, rate in zip(where, rates, strict=True):
        seeds = rate.get("seeds", ())
        if len(seeds) > 1:
            at_each = [at] * len(seeds)
            points = (at_each, seeds) if vertical else (seeds, at_each)
            axes.scatter(*points, marker="x", s=14, linewidths=0.8, color=color,
                         zorder=3)


def face_rate_curve(x: Sequence[float], series: dict[str, Sequence[dict]],
                    xlabel: str, log_x: bool = False,
                    reference: dict | None = None,
                    size: tuple[float, float] = (10.0, 3.0)) -> Figure:
    """Face rate against a swept value, one line per series, intervals as bars.

    Args:
        x: The swept values (an r_limit, a bound...).
        series: Per name, face-rate dicts (``rate``, ``low``, ``high``, ``n``)
            aligned with ``x``.
        xlabel: Label of the x axis.
        log_x: Logarithmic x axis.
        reference: A face-rate dict drawn as a horizontal band (real images).
        size: Figure size in inches.
    """
    figure = new_figure(*size)
    axes = figure.add_subplot()
    if reference is not None:
        axes.axhspan(reference["low"], reference["high"], color="0.85", zorder=0)
        axes.axhline(reference["rate"], color="0.5", lw=1, zorder=0,
                     label=f"real test images ({reference['rate']:.0%})")
    for name, rates in series.items():
        centre, errors = _errors(rates)
        line = axes.errorbar(x, centre, yerr=errors, marker="o", capsize=3,
                             label=name)
        _seed_marks(axes, x, rates, line.lines[0].get_color(), vertical=True)
    if log_x:
        axes.set_xscale("log")
    axes.set_ylim(-0.03, 1.03)
    axes.set_xlabel(xlabel)
    axes.set_ylabel(RATE_LABEL)
    n = sorted({r["n"] for rates in series.values() for r in rates})
    seeds = max((r.get("n_seeds", 1) for rates in series.values() for r in rates),
                default=1)
    pooled = f", pooled over {seeds} training seeds (x: each seed)" if seeds > 1 else ""
    axes.set_title(f"face rate with 95 % Wilson intervals ({' / '.join(map(str, n))} "
                   f"images per point{pooled})", fontsize="medium")
    axes.grid(alpha=0.3)
    axes.legend(fontsize="small")
    figure.tight_layout()
    return figure


def face_rate_bars(labels: Sequence[str], rates: Sequence[dict],
                   title: str | None = None,
                   size: tuple[float, float] | None = None) -> Figure:
    """Horizontal bars of face rates with their intervals, one per labelled set, and
    the rates in a column right of the frame (where a rate does not move its label).
    """
    height = 0.32 * len(labels) + 1.0
    figure = new_figure(*(size or (6.0, height)))
    axes = figure.add_subplot()
    centre, errors = _errors(rates)
    positions = np.arange(len(labels))[::-1]
    axes.barh(positions, centre, xerr=errors, capsize=3, color="#4a78c2",
              error_kw={"elinewidth": 1})
    _seed_marks(axes, positions, rates, "black", vertical=False)
    for y, rate in zip(positions, rates, strict=True):
        axes.annotate(f"{rate['rate']:.0%}", (1.0, y),
                      xycoords=("axes fraction", "data"), xytext=(4, 0),
                      textcoords="offset points", va="center", fontsize="x-small")
    axes.set_yticks(positions, labels, fontsize="small")
    axes.set_xlim(0, 1.0)
    seeds = max((r.get("n_seeds", 1) for r in rates), default=1)
    axes.set_xlabel(f"{RATE_LABEL}, 95 % Wilson interval"
                    # A second line: one line overran narrow figures.
                    + (f"\nx: each of {seeds} training seeds" if seeds > 1 else ""))
    axes.grid(axis="x", alpha=0.3)
    if title:
        axes.set_title(title, fontsize="medium")
    figure.tight_layout()
    return figure


def quality_variety(curves: dict[str, dict], real: dict, target: float | None = None,
                    size: tuple[float, float] = (7.0, 5.0)) -> Figure:
    """Face rate against variety along each sampler's temperature (figure C10).

    Both axes are fixed (variety in [0, 1], the face rate in [0, 1.05]), so no limit
    follows the data.

    Args:
        curves: Per sampler: ``label``, ``knob`` and ``points``, each point with its
            knob ``value``, ``faces`` (a face-rate dict), ``variety`` (None: too few
            faces, not drawn) and optionally its ``variety_interval`` (low, high).
        real: The reference point of real images (``faces``, ``variety`` and
            optionally ``variety_interval``).
        target: A face rate drawn as a dotted line.
        size: Figure size in inches.
    """
    figure = new_figure(*size)
    axes = figure.add_subplot()
    markers = ("o", "s", "D", "^", "v", "P")
    for curve, marker in zip(curves.values(), markers * 4, strict=False):
        # A point with too few faces for a variety has no place on this axis.
        points = [p for p in curve["points"] if p["variety"] is not None]
        if not points:
            continue
        centre, errors = _errors([p["faces"] for p in points])
        x = [p["variety"] for p in points]
        first, last = points[0]["value"], points[-1]["value"]
        axes.errorbar(x, centre, yerr=errors, xerr=_variety_errors(points),
                      marker=marker, markersize=5, capsize=2, lw=1.2,
                      label=f"{curve['label']}: {curve['knob']} {first:g} to {last:g}")
        # The warm end only: the cold ends crowd together at the top left.
        axes.annotate(f"{points[-1]['value']:g}", (points[-1]["variety"], centre[-1]),
                      xytext=(5, -9), textcoords="offset points", fontsize="x-small")
    axes.errorbar([real["variety"]], [real["faces"]["rate"]],
                  xerr=_variety_errors([real]), marker="*", markersize=14,
                  color="black", linestyle="none", label="real training images")
    if target is not None:
        axes.axhline(target, color="0.4", lw=1, linestyle=":")
    axes.set_xlim(0.0, 1.0)
    axes.set_ylim(0.0, 1.05)
    axes.set_xticks(np.linspace(0.0, 1.0, 6))
    axes.set_yticks(np.linspace(0.0, 1.0, 6))
    axes.set_xlabel("variety of the faces: 1 - mean multi-scale SSIM of random pairs")
    axes.set_ylabel(f"{RATE_LABEL}, 95 % interval")
    axes.set_title("quality against variety along each sampler's temperature",
                   fontsize="medium")
    axes.grid(alpha=0.3)
    axes.legend(fontsize="x-small", loc="lower left")
    figure.tight_layout()
    return figure


def _variety_errors(points: list[dict]) -> np.ndarray | None:
    """(2, n) distances from each variety to its interval's ends, or None where the
    points carry no interval."""
    if not all(p.get("variety_interval") for p in points):
        return None
    return np.array([[p["variety"] - p["variety_interval"][0] for p in points],
                     [p["variety_interval"][1] - p["variety"] for p in points]])
