"""Statistics of a z-point cloud: per-component moments, histograms, correlations, MVN.

All functions take z-points as an array (n, z_dim) and return plain numpy arrays or
dicts of them, ready for a notebook to plot or to write to a results file. Confidence
ellipses of component pairs are in :mod:`zspace.latent.ellipses`.
"""

from __future__ import annotations

import numpy as np
from scipy import stats as sps

from zspace.errors import DataError


def as_points(z: np.ndarray, min_points: int = 2) -> np.ndarray:
    """Return ``z`` as a float64 array (n, dim), checking its shape.

    Args:
        z: Array-like (n, dim).
        min_points: Fewest rows accepted.

    Returns:
        float64 array (n, dim).

    Raises:
        DataError: If ``z`` is not 2-d, has fewer than ``min_points`` rows or is not
            finite.
    """
    z = np.asarray(z, dtype=np.float64)
    if z.ndim != 2 or len(z) < min_points:
        raise DataError(
            f"expected points of shape (n >= {min_points}, dim), got {z.shape}"
        )
    if not np.isfinite(z).all():
        raise DataError("points contain NaN or infinite values")
    return z


def describe_components(z: np.ndarray) -> dict[str, np.ndarray]:
    """Moments and a normality test for every component of the z-points.

    Args:
        z: z-points (n, z_dim); the normality test needs n >= 8.

    Returns:
        Dict of float64 arrays (z_dim,): ``mean``, ``std`` (ddof 1), ``skew``,
        ``kurtosis`` (excess: 0 for a normal distribution), ``normality_p`` (p-value
        of D'Agostino and Pearson's test, ``scipy.stats.normaltest``; small values
        reject normality).
    """
    z = as_points(z, min_points=8)
    return {
        "mean": z.mean(axis=0),
        "std": z.std(axis=0, ddof=1),
        "skew": sps.skew(z, axis=0),
        "kurtosis": sps.kurtosis(z, axis=0, fisher=True),
        "normality_p": sps.normaltest(z, axis=0).pvalue,
    }


def histogram_with_normal(
    values: np.ndarray, bins: int | np.ndarray = 60, num_curve_points: int = 200
) -> dict[str, np.ndarray | float]:
    """Histogram of one component as a density, with the normal fitted to its moments.

    Args:
        values: One component's values (n,).
        bins: Number of histogram bins over the data range, or the bin edges
            (figures pass edges between rounded limits, which the last bits of
            the data do not move).
        num_curve_points: Points of the fitted normal's curve.

    Returns:
        Dict with ``edges`` (bins + 1,), ``density`` (bins,), the fit's ``mean`` and
        ``std``, and the curve ``x``, ``pdf`` (num_curve_points,), drawn over the
        data range widened to at least 4 standard deviations either side.
    """
    values = as_points(np.ravel(values)[:, None])[:, 0]
    density, edges = np.histogram(values, bins=bins, density=True)
    mean, std = float(values.mean()), float(values.std(ddof=1))
    low = min(edges[0], mean - 4 * std)
    high = max(edges[-1], mean + 4 * std)
    x = np.linspace(low, high, num_curve_points)
    pdf = sps.norm.pdf(x, loc=mean, scale=std) if std > 0 else np.zeros_like(x)
    return {
        "edges": edges,
        "density": density,
        "mean": mean,
        "std": std,
        "x": x,
        "pdf": pdf,
    }


def correlation_matrix(z: np.ndarray) -> np.ndarray:
    """Pearson correlation matrix (z_dim, z_dim) of the components.

    A component that never varies has no defined correlation; its row and column are
    0 with 1 on the diagonal, instead of NaN.
    """
    z = as_points(z)
    std = z.std(axis=0)
    safe = np.where(std > 0, std, 1.0)
    centred = (z - z.mean(axis=0)) / safe
    corr = centred.T @ centred / len(z)
    corr[:, std == 0] = 0.0
    corr[std == 0, :] = 0.0
    np.fill_diagonal(corr, 1.0)
    return np.clip(corr, -1.0, 1.0)


def fit_mvn(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fit a multivariate normal distribution by its sample moments.

    Args:
        z: z-points (n, z_dim).

    Returns:
        ``(mean, cov)``: float64 arrays (z_dim,) and (z_dim, z_dim); the covariance is
        the unbiased one (ddof 1), i.e. the maximum-likelihood fit up to n / (n - 1).
    """
    z = as_points(z)
    return z.mean(axis=0), np.cov(z, rowvar=False, ddof=1).reshape(z.shape[1], -1)


def radii(z: np.ndarray, center: np.ndarray | None = None) -> np.ndarray:
    """Euclidean length of each z-point, from the origin or from ``center``.

    Args:
        z: z-points (n, z_dim).
        center: Point (z_dim,) to measure from; None means the origin, where the
            naive samplers (N(0, I), uniform) put their mass.

    Returns:
        float64 array (n,).
    """
    z = as_points(z, min_points=1)
    if center is not None:
        z = z - np.asarray(center, dtype=np.float64)
    return np.linalg.norm(z, axis=1)


def component_ranges(
    z: np.ndarray, quantiles: tuple[float, float] = (0.01, 0.99)
) -> dict[str, np.ndarray]:
    """Where each component's values lie: extremes and a robust central range.

    Args:
        z: z-points (n, z_dim).
        quantiles: Lower and upper quantile of the robust range.

    Returns:
        Dict of float64 arrays (z_dim,): ``min``, ``max``, ``low`` and ``high`` (the
        two quantiles).
    """
    z = as_points(z, min_points=1)
    low, high = np.quantile(z, quantiles, axis=0)
    return {"min": z.min(axis=0), "max": z.max(axis=0), "low": low, "high": high}
