"""Confidence ellipses of component pairs under a multivariate normal fit.

What "k sigma" means here: the k-sigma ellipse of a pair of components is the
contour at Mahalanobis distance k from the mean, {x : (x - m)^T C^-1 (x - m) = k^2},
with m and C the pair's mean (2,) and covariance (2, 2). For normal data the squared
Mahalanobis distance in 2 dimensions is chi-square distributed with 2 degrees of
freedom, whose distribution function is 1 - exp(-d^2 / 2). So the k-sigma ellipse
holds the share 1 - exp(-k^2 / 2) of the points: 39.3 % at 1 sigma, 86.5 % at 2 and
98.9 % at 3; not the 68 / 95 / 99.7 % of one dimension. :func:`ellipse_share_table`
checks this on z-points.
"""

from __future__ import annotations

import numpy as np

from zspace.errors import DataError
from zspace.latent.stats import as_points


def _pair(mean2: np.ndarray, cov2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean2 = np.asarray(mean2, dtype=np.float64).ravel()
    cov2 = np.asarray(cov2, dtype=np.float64)
    if mean2.shape != (2,) or cov2.shape != (2, 2):
        raise DataError(
            f"expected a mean (2,) and a covariance (2, 2), got "
            f"{mean2.shape} and {cov2.shape}"
        )
    return mean2, cov2


def expected_share(k_sigma: float | np.ndarray) -> float | np.ndarray:
    """Share of 2-d normal points inside the k-sigma ellipse: 1 - exp(-k^2 / 2).

    Args:
        k_sigma: Mahalanobis radius k (scalar or array).

    Returns:
        The chi-square(2) probability of a squared distance at most k^2.
    """
    return 1.0 - np.exp(-np.square(k_sigma) / 2.0)


def confidence_ellipse(
    mean2: np.ndarray, cov2: np.ndarray, k_sigma: float
) -> tuple[float, float, float]:
    """Size and orientation of the k-sigma ellipse of a component pair.

    Args:
        mean2: The pair's mean (2,); the ellipse's centre (checked, not used for the
            size).
        cov2: The pair's covariance (2, 2).
        k_sigma: Mahalanobis radius of the contour.

    Returns:
        ``(width, height, angle_deg)`` as ``matplotlib.patches.Ellipse`` takes them:
        full length of the major axis, of the minor axis, and the major axis' angle
        to the first component's axis in degrees, in (-90, 90].
    """
    _, cov2 = _pair(mean2, cov2)
    eigvals, eigvecs = np.linalg.eigh(cov2)  # ascending eigenvalues
    eigvals = np.clip(eigvals, 0.0, None)
    major = eigvecs[:, 1]
    angle = float(np.degrees(np.arctan2(major[1], major[0])))
    # An axis has no sign: fold the angle into (-90, 90].
    if angle <= -90.0:
        angle += 180.0
    elif angle > 90.0:
        angle -= 180.0
    width, height = 2.0 * k_sigma * np.sqrt(eigvals[::-1])
    return float(width), float(height), angle


def ellipse_polygon(
    mean2: np.ndarray, cov2: np.ndarray, k_sigma: float, num_points: int = 101
) -> np.ndarray:
    """Points (num_points, 2) on the k-sigma ellipse; the first equals the last."""
    mean2, cov2 = _pair(mean2, cov2)
    eigvals, eigvecs = np.linalg.eigh(cov2)
    # Map the unit circle through C^(1/2): Mahalanobis distance 1, then scale by k.
    root = eigvecs * np.sqrt(np.clip(eigvals, 0.0, None))
    t = np.linspace(0.0, 2.0 * np.pi, num_points)
    circle = np.stack([np.cos(t), np.sin(t)])  # (2, num_points)
    return mean2 + k_sigma * (root @ circle).T


def mahalanobis_sq(points: np.ndarray, mean: np.ndarray, cov: np.ndarray) -> np.ndarray:
    """Squared Mahalanobis distance (n,) of each point from ``mean`` under ``cov``."""
    diff = np.asarray(points, dtype=np.float64) - np.asarray(mean, dtype=np.float64)
    # Solve rather than invert: cov (dim, dim) may be badly conditioned.
    solved = np.linalg.solve(np.asarray(cov, dtype=np.float64), diff.T)
    return np.einsum("ij,ji->i", diff, solved)


def share_inside(
    points2: np.ndarray, mean2: np.ndarray, cov2: np.ndarray, k_sigma: float
) -> float:
    """Share of the points (n, 2) inside or on the k-sigma ellipse of (mean2, cov2)."""
    mean2, cov2 = _pair(mean2, cov2)
    points2 = as_points(points2, min_points=1)
    return float(np.mean(mahalanobis_sq(points2, mean2, cov2) <= k_sigma**2))


def ellipse_share_table(
    z: np.ndarray,
    pairs: list[tuple[int, int]],
    k_sigmas: tuple[float, ...] = (1.0, 2.0, 3.0),
) -> list[dict[str, float | int]]:
    """Measured against expected share of z-points inside each pair's ellipses.

    Each pair gets its own normal fit (sample mean and covariance of its two columns).

    Args:
        z: z-points (n, z_dim).
        pairs: Component index pairs (i, j).
        k_sigmas: Ellipse radii to check.

    Returns:
        One dict per pair and radius: ``i``, ``j``, ``k_sigma``, ``measured``,
        ``expected`` (1 - exp(-k^2 / 2)).
    """
    z = as_points(z)
    rows = []
    for i, j in pairs:
        points2 = z[:, [i, j]]
        mean2, cov2 = points2.mean(axis=0), np.cov(points2, rowvar=False)
        for k in k_sigmas:
            rows.append(
                {
                    "i": int(i),
                    "j": int(j),
                    "k_sigma": float(k),
                    "measured": share_inside(points2, mean2, cov2, k),
                    "expected": float(expected_share(k)),
                }
            )
    return rows
