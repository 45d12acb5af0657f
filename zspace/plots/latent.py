"""Figures of article C: how an AE's z-points are distributed, and what the
samplers built on that knowledge produce.

Builders take plain arrays (z-points, statistics, metric values) and return a
``matplotlib.figure.Figure`` on the Agg canvas; notebooks save them with
``run.save_figure``. Image grids come from :func:`zspace.plots.grids.image_grid`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from matplotlib import ticker
from matplotlib.figure import Figure

from zspace.latent import ellipses, stats
from zspace.plots.canvas import new_figure
from zspace.plots.common import bars, stack
from zspace.plots.grids import image_grid
from zspace.plots.limits import (
    fix_axis,
    fix_log_axis,
    nice_bins,
    nice_ceiling,
    nice_limits,
    set_limits,
)

# Colours of the 1, 2, 3 ... sigma contours; a fourth level reuses the first.
_LEVEL_COLOURS = ("#d62728", "#ff7f0e", "#2ca02c")
_CLOUD = "#7f7f7f"
_GENERATED = "#ff7f0e"


def components_for_share(cumulative: np.ndarray, share: float) -> int:
    """How many leading PCA components explain at least ``share`` of the variance.

    Args:
        cumulative: Running sum of the explained-variance ratios (k,), ascending.
        share: Wanted share in (0, 1].

    Returns:
        The smallest count m with cumulative[m - 1] >= share; k when even all k fall
        short (rounding can leave the full sum a hair below 1).
    """
    index = int(np.searchsorted(np.asarray(cumulative), share, side="left"))
    return min(index + 1, len(cumulative))


def _panel_grid(figure: Figure, count: int, columns: int):
    rows = -(-count // columns)
    return [figure.add_subplot(rows, columns, i + 1) for i in range(count)]


def component_histograms(
    z: np.ndarray, components: Sequence[int], bins: int = 60, columns: int = 4
) -> Figure:
    """Histograms of single z-components with the normal fitted to their moments.

    Args:
        z: z-points (n, z_dim).
        components: Component indices, one panel each.
        bins: Histogram bins per panel, between rounded limits of the component.
        columns: Panels per row.

    Returns:
        The figure; each panel's title gives skewness and excess kurtosis, which are 0
        for a normal distribution.
    """
    columns = min(columns, len(components))
    rows = -(-len(components) // columns)
    figure = new_figure(2.9 * columns, 2.5 * rows + 0.5)
    for index, axes in zip(components, _panel_grid(figure, len(components), columns),
                           strict=True):
        values = np.asarray(z)[:, index]
        fit = stats.histogram_with_normal(values, bins=nice_bins(values, bins))
        axes.stairs(fit["density"], fit["edges"], fill=True, color="#9ecae1",
                    label="z-points")
        axes.plot(fit["x"], fit["pdf"], color="#d62728", lw=1.3,
                  label=f"normal fit, sd {fit['std']:.2f}")
        moments = stats.describe_components(values[:, None])
        axes.set_title(f"z[{index}]: skew {moments['skew'][0]:+.2f}, "
                       f"kurt. {moments['kurtosis'][0]:+.2f}", fontsize="small")
        fix_axis(axes, "x", [fit["edges"], fit["x"]], margin=0.0)
        fix_axis(axes, "y", [fit["density"], fit["pdf"]], include=[0.0],
                 margin=(0.0, 0.05))
        axes.set_xlabel("component value")
        axes.set_ylabel("density")
        axes.legend(fontsize="x-small", loc="upper left")
        axes.grid(alpha=0.3)
    figure.suptitle("Single AE z-components against normal fits")
    figure.tight_layout()
    return figure


def correlation_figure(corr: np.ndarray) -> Figure:
    """The correlation matrix of the z-components as a heatmap, with a histogram of
    its off-diagonal coefficients (which a heatmap of 256 x 256 cells hides).

    Args:
        corr: Pearson correlation matrix (z_dim, z_dim).
    """
    corr = np.asarray(corr)
    figure = new_figure(11.0, 4.6)
    heat = figure.add_subplot(1, 2, 1)
    image = heat.imshow(corr, cmap="RdBu_r", vmin=-1, vmax=1, interpolation="nearest")
    figure.colorbar(image, ax=heat, label="correlation coefficient r")
    heat.set_xlabel("component j")
    heat.set_ylabel("component i")
    heat.set_title("correlation matrix of the z-components", fontsize="medium")
    spread = figure.add_subplot(1, 2, 2)
    off = corr[~np.eye(len(corr), dtype=bool)]
    counts = spread.hist(off, bins=80, range=(-1, 1), color="#4a78c2")[0]
    set_limits(spread, "x", nice_limits([[-1.0, 1.0]], margin=0.0))
    fix_log_axis(spread, "y", counts)
    spread.set_xlabel("correlation coefficient r (i != j)")
    spread.set_ylabel("component pairs (both orders)")
    spread.set_title(f"off-diagonal: max |r| {np.abs(off).max():.2f}, "
                     f"mean |r| {np.abs(off).mean():.3f}", fontsize="medium")
    spread.grid(alpha=0.3)
    figure.tight_layout()
    return figure


def pair_density_ellipses(
    z: np.ndarray,
    pairs: Sequence[Sequence[int]],
    sigma_levels: Sequence[float] = (1.0, 2.0, 3.0),
    gridsize: int = 40,
    columns: int = 3,
) -> Figure:
    """Point density of component pairs with their normal-fit confidence ellipses.

    Each pair gets its own mean and covariance; the legend compares the share of
    points inside each ellipse with the share a normal distribution puts there.

    Args:
        z: z-points (n, z_dim).
        pairs: Component index pairs (i, j), one panel each.
        sigma_levels: Mahalanobis radii of the drawn ellipses.
        gridsize: Hexagons across each panel.
        columns: Panels per row.
    """
    z = np.asarray(z, dtype=np.float64)
    columns = min(columns, len(pairs))
    rows = -(-len(pairs) // columns)
    figure = new_figure(3.8 * columns, 4.4 * rows + 0.5)
    for (i, j), axes in zip(pairs, _panel_grid(figure, len(pairs), columns),
                            strict=True):
        points = z[:, [i, j]]
        mean, cov = points.mean(axis=0), np.cov(points, rowvar=False)
        outlines = [ellipses.ellipse_polygon(mean, cov, level)
                    for level in sigma_levels]
        # The hexagons' grid spans rounded limits, not the points' own extremes.
        x, y = (nice_limits([points[:, k], *(o[:, k] for o in outlines)])
                for k in (0, 1))
        hexes = axes.hexbin(points[:, 0], points[:, 1], gridsize=gridsize,
                            bins="log", cmap="Blues", mincnt=1, linewidths=0.0,
                            extent=(x.low, x.high, y.low, y.high))
        hexes.set_clim(1, nice_ceiling(float(hexes.get_array().max())))
        set_limits(axes, "x", x)
        set_limits(axes, "y", y)
        for number, (level, outline) in enumerate(zip(sigma_levels, outlines,
                                                      strict=True)):
            inside = ellipses.share_inside(points, mean, cov, level)
            expected = float(ellipses.expected_share(level))
            axes.plot(outline[:, 0], outline[:, 1], lw=1.4,
                      color=_LEVEL_COLOURS[number % len(_LEVEL_COLOURS)],
                      label=f"{level:g} sigma: {inside:.1%} in ({expected:.1%})")
        axes.set_xlabel(f"z[{i}]")
        axes.set_ylabel(f"z[{j}]")
        r = cov[0, 1] / np.sqrt(cov[0, 0] * cov[1, 1])
        axes.set_title(f"z[{i}] against z[{j}], r = {r:+.2f}", fontsize="medium")
        # Below the panel: inside it would cover the outer ellipse.
        axes.legend(fontsize="small", loc="upper center", bbox_to_anchor=(0.5, -0.2),
                    frameon=False)
    figure.suptitle("Point density (log colour scale) and normal-fit ellipses; "
                    "legend: measured share inside (normal's share)",
                    fontsize="medium")
    figure.tight_layout()
    return figure


def explained_variance_figure(
    ratio: np.ndarray, thresholds: Sequence[float] = (0.9, 0.95, 0.99)
) -> Figure:
    """Explained-variance share per PCA component and cumulated.

    Args:
        ratio: Explained-variance ratio per component (k,), descending.
        thresholds: Cumulative shares marked with the component count that reaches
            them.
    """
    ratio = np.asarray(ratio, dtype=np.float64)
    cumulative = np.cumsum(ratio)
    component = np.arange(1, len(ratio) + 1)
    figure = new_figure(11.0, 3.8)
    single, total = figure.add_subplot(1, 2, 1), figure.add_subplot(1, 2, 2)
    single.plot(component, ratio, color="#4a78c2", lw=1.4)
    fix_log_axis(single, "y", ratio)
    single.set_xlabel("PCA component")
    single.set_ylabel("share of the total variance")
    single.set_title("explained variance per component", fontsize="medium")
    single.grid(alpha=0.3, which="both")
    total.plot(component, cumulative, color="#4a78c2", lw=1.6, label="cumulative share")
    for number, share in enumerate(thresholds):
        needed = components_for_share(cumulative, share)
        colour = _LEVEL_COLOURS[number % len(_LEVEL_COLOURS)]
        total.axhline(share, color=colour, lw=0.8, ls="--")
        total.axvline(needed, color=colour, lw=0.8, ls=":")
        total.plot([needed], [cumulative[needed - 1]], "o", color=colour,
                   label=f"{share:.0%} with {needed} components")
    total.set_xlabel("number of leading PCA components")
    total.set_ylabel("cumulative share of the variance")
    total.set_title("cumulative explained variance", fontsize="medium")
    # From 0.9 x the first share rounded down to a tenth (at most 0.5) to above 1.
    bottom = min(math.floor(9 * cumulative[0]) / 10, 0.5)
    total.set_ylim(bottom, 1.01)
    total.yaxis.set_major_locator(ticker.MultipleLocator(0.1))
    total.yaxis.set_major_formatter(ticker.StrMethodFormatter("{x:.1f}"))
    total.grid(alpha=0.3)
    total.legend(fontsize="small", loc="lower right")
    figure.tight_layout()
    return figure


def pair_scatter(
    points: np.ndarray,
    generated: np.ndarray,
    pairs: Sequence[Sequence[int]],
    mean: np.ndarray,
    cov: np.ndarray,
    level: float,
    axis_name: str = "z",
    title: str | None = None,
    columns: int = 4,
) -> Figure:
    """Generated vectors over the z-point cloud in coordinate pairs, with an ellipse.

    Used in PCA coordinates (figure C5: ``mean`` zero, ``cov`` the diagonal of the
    component variances) and in the original latent coordinates (C6: the z-points'
    mean and covariance), so the same vectors can be followed from one to the other.

    Args:
        points: The cloud (n, d) in the shown coordinates.
        generated: Generated vectors (m, d) in the same coordinates.
        pairs: Coordinate index pairs (i, j), one panel each.
        mean: Centre (d,) of the drawn ellipses.
        cov: Covariance (d, d) whose pair blocks give the ellipses.
        level: Mahalanobis radius of the ellipses.
        axis_name: Coordinate name on the axes (``"z"``, ``"PCA"``).
        title: Figure title.
        columns: Panels per row.
    """
    points, generated = np.asarray(points), np.asarray(generated)
    mean, cov = np.asarray(mean, dtype=np.float64), np.asarray(cov, dtype=np.float64)
    columns = min(columns, len(pairs))
    rows = -(-len(pairs) // columns)
    figure = new_figure(3.3 * columns, 3.2 * rows + (0.9 if title else 0.5))
    for (i, j), axes in zip(pairs, _panel_grid(figure, len(pairs), columns),
                            strict=True):
        axes.scatter(points[:, i], points[:, j], s=1, color=_CLOUD, alpha=0.25,
                     linewidths=0, label=f"{len(points):,} training z-points")
        outline = ellipses.ellipse_polygon(mean[[i, j]], cov[np.ix_([i, j], [i, j])],
                                           level)
        fix_axis(axes, "x", [points[:, i], generated[:, i], outline[:, 0]])
        fix_axis(axes, "y", [points[:, j], generated[:, j], outline[:, 1]])
        axes.plot(outline[:, 0], outline[:, 1], color="#d62728", lw=1.4,
                  label=f"{level:g}-sigma ellipse")
        axes.scatter(generated[:, i], generated[:, j], s=22, color=_GENERATED,
                     edgecolors="black", linewidths=0.5,
                     label=f"{len(generated)} generated vectors")
        axes.set_xlabel(f"{axis_name}[{i}]")
        axes.set_ylabel(f"{axis_name}[{j}]")
        axes.grid(alpha=0.3)
    # One legend for all panels, in a strip below them where it covers no points.
    handles, names = figure.axes[0].get_legend_handles_labels()
    figure.legend(handles, names, loc="lower center", ncols=3, frameon=False,
                  markerscale=2.0)
    if title:
        figure.suptitle(title, fontsize="medium")
    figure.tight_layout(rect=(0, 0.4 / figure.get_size_inches()[1], 1, 1))
    return figure


def sampler_comparison_figure(
    rows: Sequence[np.ndarray],
    labels: Sequence[str],
    metrics: dict[str, Sequence[float]],
    title: str | None = None,
    log_scale: Sequence[str] = (),
) -> Figure:
    """One row of decoded images per sampler above bar charts of its measured quality.

    Args:
        rows: Images (k, h, w, 3) per sampler.
        labels: Sampler names, one per row and per bar.
        metrics: Chart title -> one value per sampler, e.g.
            ``{"Frechet distance (lower is better)": [...], ...}``.
        title: Title above the image grid.
        log_scale: Chart titles of ``metrics`` drawn on a logarithmic axis: pixel
            noise's Frechet distance is tens of times the others', which would flatten
            their bars on a linear one.

    Returns:
        The figure; every bar carries its value.
    """
    grid = image_grid(rows, row_labels=list(labels), title=title)
    return stack([grid, bars(list(labels), metrics, log_scale=log_scale,
                             value_labels=True)])


def mixture_scan_figure(scan: dict, thresholds: tuple[float, float] = (0.05, 4.0)
                        ) -> Figure:
    """Figure C12: one cloud or pockets, from :func:`zspace.latent.fragments.
    mixture_scan`'s result.

    Three panels against the number of mixture components k: the held-out and the
    training log-likelihood gain over one Gaussian (nats per point), the share of
    held-out points no component claims with 90 % or more, and the median distance
    between neighbouring components' means (Mahalanobis units).

    Args:
        scan: The dict of ``mixture_scan``.
        thresholds: The ambiguous share below which, and the separation above which,
            components count as apart; drawn as dashed lines.
    """
    ks = np.asarray(scan["ks"])
    single = scan["ks"].index(1)
    heldout = np.asarray(scan["heldout_loglik"]) - scan["heldout_loglik"][single]
    train = np.asarray(scan["train_loglik"]) - scan["train_loglik"][single]
    mixed = [i for i, k in enumerate(scan["ks"]) if k > 1]
    figure = new_figure(12.0, 3.6)
    gain, ambiguous, apart = (figure.add_subplot(1, 3, n) for n in (1, 2, 3))
    gain.plot(ks, heldout, "o-", color="#4a78c2", lw=1.6, label="held-out points")
    gain.plot(ks, train, "s--", color=_CLOUD, lw=1.0, ms=4, label="training points")
    gain.axhline(0.0, color="black", lw=0.8)
    fix_axis(gain, "y", [*heldout, *train], include=[0.0])
    gain.set_ylabel("log-likelihood gain (nats per point)")
    gain.set_title("mixture against one Gaussian", fontsize="medium")
    gain.legend(fontsize="small", loc="best")
    _against_threshold(ambiguous, ks[mixed],
                       [scan["ambiguous_by_k"][i] for i in mixed], _GENERATED,
                       thresholds[0], f"pockets: below {thresholds[0]:.0%}",
                       "share of held-out points", "no component above 90 %")
    _against_threshold(apart, ks[mixed], [scan["separation_by_k"][i] for i in mixed],
                       "#9467bd", thresholds[1], f"pockets: above {thresholds[1]:g}",
                       "distance to the nearest component",
                       "how far apart the components are")
    for axes in (gain, ambiguous, apart):
        axes.set_xticks(ks)
        axes.set_xlabel("mixture components k")
        axes.grid(alpha=0.3)
    figure.suptitle(f"Gaussian mixtures on the leading {scan['dims']} principal "
                    "components of the AE's training encodings", fontsize="medium")
    figure.tight_layout()
    return figure


def _against_threshold(axes, x, values, color: str, threshold: float, label: str,
                       ylabel: str, title: str) -> None:
    """One panel of C12: a measure per k with the ledger's threshold dashed."""
    axes.plot(x, values, "o-", color=color, lw=1.6)
    axes.axhline(threshold, color="#2ca02c", lw=0.8, ls="--", label=label)
    set_limits(axes, "y", nice_limits([0.0, *values, threshold]))
    axes.set_ylabel(ylabel)
    axes.set_title(title, fontsize="medium")
    axes.legend(fontsize="small", loc="best")
