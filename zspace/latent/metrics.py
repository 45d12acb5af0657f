"""Measured image quality in the judge network's feature space (the judge:
``zspace/networks/judge.py``).

- Frechet distance between Gaussians fitted to two feature sets (the FID formula, with
  our judge's features instead of Inception's):
  |m_a - m_b|^2 + Tr(C_a + C_b - 2 (C_a C_b)^(1/2)).
- Improved precision and recall (Kynkaanniemi et al. 2019): each real feature vector
  gets a ball reaching its k-th nearest real neighbour; precision is the share of fake
  vectors inside at least one real ball (fakes look real), recall the share of real
  vectors inside at least one fake ball, built the same way (reals are covered).

Both depend on the sample size, so :func:`quality` compares equal numbers of vectors.
"""

from __future__ import annotations

import numpy as np
from scipy import linalg

from zspace.errors import ConfigError
from zspace.latent.stats import as_points
from zspace.latent.zpoints import predict_in_batches

# Rows of the distance matrix computed at once: bounds memory at CHUNK x n floats.
_CHUNK = 1024


def compute_features(
    extractor, images: np.ndarray, batch_size: int = 256
) -> np.ndarray:
    """Judge-network features of uint8 images, computed in batches.

    Args:
        extractor: ``keras.Model`` mapping float32 images in [0, 1] (n, h, w, 3) to
            features (n, d).
        images: uint8 images (n, h, w, 3); a read-only memmap is fine.
        batch_size: Images converted and passed at once.

    Returns:
        float32 array (n, d).
    """
    return predict_in_batches(extractor, images, batch_size)


def frechet_distance(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """Frechet distance between normal fits of two feature sets (n_a, d), (n_b, d).

    The matrix square root comes from ``scipy.linalg.sqrtm``. Rounding can leave it
    with tiny imaginary parts, which are dropped; if the product of the covariances is
    singular (fewer vectors than dimensions) and the root is not finite, 1e-6 is added
    to both diagonals first, as the reference FID code does.

    Returns:
        The distance (>= 0; tiny negative rounding is clipped to 0).
    """
    a, b = as_points(features_a), as_points(features_b)
    if a.shape[1] != b.shape[1]:
        raise ConfigError(f"feature widths differ: {a.shape[1]} and {b.shape[1]}")
    mean_a, mean_b = a.mean(axis=0), b.mean(axis=0)
    cov_a = np.atleast_2d(np.cov(a, rowvar=False))
    cov_b = np.atleast_2d(np.cov(b, rowvar=False))
    root = linalg.sqrtm(cov_a @ cov_b)
    if not np.isfinite(root).all():
        offset = 1e-6 * np.eye(len(cov_a))
        root = linalg.sqrtm((cov_a + offset) @ (cov_b + offset))
    root = np.real(root)
    trace = np.trace(cov_a) + np.trace(cov_b) - 2.0 * np.trace(root)
    return max(float(np.sum(np.square(mean_a - mean_b)) + trace), 0.0)


def _squared_distances(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Squared Euclidean distances (len(x), len(y)), clipped at 0 against rounding."""
    d2 = (np.square(x).sum(1)[:, None] + np.square(y).sum(1)[None, :]) - 2.0 * x @ y.T
    return np.maximum(d2, 0.0)


def _kth_radii_sq(x: np.ndarray, k: int) -> np.ndarray:
    """Squared distance (n,) from each vector to its k-th nearest other one in ``x``."""
    radii = np.empty(len(x))
    for start in range(0, len(x), _CHUNK):
        d2 = _squared_distances(x[start : start + _CHUNK], x)
        # Column k of the sorted row: column 0 is the vector itself (distance 0).
        radii[start : start + _CHUNK] = np.partition(d2, k, axis=1)[:, k]
    return radii


def _coverage(manifold: np.ndarray, radii_sq: np.ndarray, probes: np.ndarray) -> float:
    """Share of ``probes`` inside at least one ball (manifold vector, radius)."""
    inside = np.empty(len(probes), dtype=bool)
    for start in range(0, len(probes), _CHUNK):
        d2 = _squared_distances(probes[start : start + _CHUNK], manifold)
        inside[start : start + _CHUNK] = (d2 <= radii_sq[None, :]).any(axis=1)
    return float(inside.mean())


def precision_recall(
    real_features: np.ndarray, fake_features: np.ndarray, k: int = 3
) -> tuple[float, float]:
    """Improved precision and recall (Kynkaanniemi et al. 2019).

    Args:
        real_features: Features of real images (n_real, d).
        fake_features: Features of generated images (n_fake, d).
        k: Neighbour that sets each ball's radius (3 in the paper).

    Returns:
        ``(precision, recall)``, each in [0, 1].

    Raises:
        ConfigError: If ``k`` is not in 1..n-1 for either set or widths differ.
    """
    real, fake = as_points(real_features), as_points(fake_features)
    if real.shape[1] != fake.shape[1]:
        raise ConfigError(f"feature widths differ: {real.shape[1]} and {fake.shape[1]}")
    if not 1 <= int(k) < min(len(real), len(fake)):
        raise ConfigError(f"k must be in 1..{min(len(real), len(fake)) - 1}, got {k}")
    precision = _coverage(real, _kth_radii_sq(real, k), fake)
    recall = _coverage(fake, _kth_radii_sq(fake, k), real)
    return precision, recall


def quality(
    real_features: np.ndarray,
    fake_features: np.ndarray,
    k: int = 3,
    rng: np.random.Generator | int = 0,
    max_n: int | None = None,
) -> dict[str, float | int]:
    """Frechet distance, precision and recall on equal numbers of real and fake vectors.

    Args:
        real_features: Features of real images (n_real, d).
        fake_features: Features of generated images (n_fake, d).
        k: Neighbour for precision and recall.
        rng: Generator, or seed of one, choosing the subsample of the larger set.
        max_n: If given, use at most this many vectors from each set.

    Returns:
        ``{"frechet": float, "precision": float, "recall": float, "n": int}``, n being
        the number of vectors taken from each set.
    """
    rng = np.random.default_rng(rng)
    n = min(len(real_features), len(fake_features))
    if max_n is not None:
        n = min(n, int(max_n))

    def subsample(features: np.ndarray) -> np.ndarray:
        if len(features) == n:
            return np.asarray(features)
        return np.asarray(features)[
            np.sort(rng.choice(len(features), n, replace=False))
        ]

    real, fake = subsample(real_features), subsample(fake_features)
    precision, recall = precision_recall(real, fake, k)
    return {
        "frechet": frechet_distance(real, fake),
        "precision": precision,
        "recall": recall,
        "n": int(n),
    }
