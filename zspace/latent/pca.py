"""PCA of z-points (scikit-learn): explained variance, transform and its inverse.

In PCA coordinates the z-point cloud of an AE is close to a centred Gaussian whose
components are uncorrelated, so the confidence ellipses of component pairs are aligned
with the axes (``articles/C-fragmentation.md``, "Principal axes"). Keeping k < z_dim
components and transforming back gives points close to the original ones when the
dropped components carry little variance.
"""

from __future__ import annotations

import numpy as np
import sklearn
from sklearn.decomposition import PCA

from zspace.errors import ConfigError
from zspace.latent.stats import as_points

# The covariance eigensolver (scikit-learn >= 1.5) is several times faster than a full
# SVD when there are many more z-points than dimensions, and just as deterministic.
_MAJOR_MINOR = tuple(int(part) for part in sklearn.__version__.split(".")[:2])
_FAST_SOLVER = "covariance_eigh" if _MAJOR_MINOR >= (1, 5) else "full"


def fit_pca(z: np.ndarray, n_components: int | None = None) -> PCA:
    """Fit a PCA with ``n_components`` components to z-points.

    Args:
        z: z-points (n, z_dim).
        n_components: Components kept; None keeps min(n, z_dim).

    Returns:
        The fitted ``sklearn.decomposition.PCA``. The solver is deterministic: an
        eigendecomposition of the covariance when n >= z_dim (scikit-learn >= 1.5),
        else a full SVD.

    Raises:
        ConfigError: If ``n_components`` is not in 1..min(n, z_dim).
    """
    z = as_points(z)
    limit = min(z.shape)
    if n_components is not None and not 1 <= int(n_components) <= limit:
        raise ConfigError(
            f"n_components must be between 1 and {limit} for {z.shape[0]} points of "
            f"dimension {z.shape[1]}, got {n_components}"
        )
    solver = _FAST_SOLVER if z.shape[0] >= z.shape[1] else "full"
    return PCA(n_components=n_components, svd_solver=solver).fit(z)


def explained_variance(pca: PCA) -> dict[str, np.ndarray]:
    """Variance per component and its share, individually and cumulated.

    Returns:
        Dict of float64 arrays (k,): ``variance``, ``ratio`` (share of the total
        variance of all z_dim components), ``cumulative`` (running sum of ``ratio``).
    """
    ratio = np.asarray(pca.explained_variance_ratio_, dtype=np.float64)
    return {
        "variance": np.asarray(pca.explained_variance_, dtype=np.float64),
        "ratio": ratio,
        "cumulative": np.cumsum(ratio),
    }


def transform(pca: PCA, z: np.ndarray) -> np.ndarray:
    """PCA coordinates (n, k), float32, of z-points (n, z_dim)."""
    return pca.transform(np.asarray(z, dtype=np.float64)).astype(np.float32)


def inverse_transform(pca: PCA, v: np.ndarray) -> np.ndarray:
    """z-vectors (n, z_dim), float32, from PCA coordinates (n, k)."""
    return pca.inverse_transform(np.asarray(v, dtype=np.float64)).astype(np.float32)
