"""z-vector samplers behind one interface: ``sample(n, rng) -> (n, z_dim) float32``.

- ``normal``: z ~ N(0, scale^2 I), what a VAE's decoder is trained for.
- ``uniform``: every component uniform in [-r_limit, r_limit].
- ``gaussian``: one full-covariance Gaussian fitted to z-points.
- ``gmm``: a Gaussian mixture fitted to z-points; the ex-post density estimation of
  Ghosh et al. (2020), "From variational to deterministic autoencoders".
- ``pca_ellipse``: the PCA-ellipse method (:mod:`zspace.latent.pca_ellipse`).

:func:`make_sampler` builds any of them by name, as configurations and notebooks do.
"""

from __future__ import annotations

import inspect

import numpy as np
from sklearn.mixture import GaussianMixture

from zspace.errors import ConfigError
from zspace.latent.pca_ellipse import PcaEllipseSampler, check_n_rng
from zspace.latent.stats import as_points, fit_mvn


def _positive(name: str, value: float) -> float:
    if not np.isfinite(value) or value <= 0:
        raise ConfigError(f"{name} must be a positive number, got {value}")
    return float(value)


def _cov_factor(cov: np.ndarray) -> np.ndarray:
    """A matrix L (d, d) with L L^T = cov; works for singular covariances too."""
    eigvals, eigvecs = np.linalg.eigh(cov)
    return eigvecs * np.sqrt(np.clip(eigvals, 0.0, None))


class NormalSampler:
    """z ~ N(0, scale^2 I) in z_dim dimensions."""

    def __init__(self, z_dim: int, scale: float = 1.0):
        self.z_dim = int(_positive("z_dim", z_dim))
        self.scale = _positive("scale", scale)

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Draw ``n`` vectors (n, z_dim), float32."""
        check_n_rng(n, rng)
        return (self.scale * rng.standard_normal((n, self.z_dim))).astype(np.float32)


class UniformSampler:
    """Every component independently uniform in [-r_limit, r_limit]."""

    def __init__(self, z_dim: int, r_limit: float = 1.0):
        self.z_dim = int(_positive("z_dim", z_dim))
        self.r_limit = _positive("r_limit", r_limit)

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Draw ``n`` vectors (n, z_dim), float32."""
        check_n_rng(n, rng)
        r = self.r_limit
        return rng.uniform(-r, r, size=(n, self.z_dim)).astype(np.float32)


class GaussianSampler:
    """One multivariate normal N(mean, cov), usually fitted to z-points."""

    def __init__(self, mean: np.ndarray, cov: np.ndarray):
        self.mean = np.asarray(mean, dtype=np.float64)
        self.cov = np.asarray(cov, dtype=np.float64)
        self.z_dim = len(self.mean)
        self._factor = _cov_factor(self.cov)  # (z_dim, z_dim)

    @classmethod
    def fit(cls, z_points: np.ndarray) -> GaussianSampler:
        """Fit mean and full covariance (ddof 1) to z-points (n, z_dim)."""
        return cls(*fit_mvn(z_points))

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Draw ``n`` vectors (n, z_dim), float32."""
        check_n_rng(n, rng)
        noise = rng.standard_normal((n, self.z_dim))
        return (self.mean + noise @ self._factor.T).astype(np.float32)

    def scaled(self, scale: float) -> GaussianSampler:
        """The same Gaussian with its standard deviations times ``scale`` (its
        temperature: near 0 every vector is the mean)."""
        scale = _positive("scale", scale)
        return GaussianSampler(self.mean, self.cov * scale**2)


class GmmSampler:
    """A Gaussian mixture with full covariances, fitted to z-points.

    Sampling uses the given generator (not scikit-learn's ``sample``, which has its own
    random state), so a fixed ``rng`` gives the same vectors every time.
    """

    def __init__(self, weights: np.ndarray, means: np.ndarray, covs: np.ndarray):
        self.weights = np.asarray(weights, dtype=np.float64)  # (c,)
        self.means = np.asarray(means, dtype=np.float64)  # (c, z_dim)
        self.covs = np.asarray(covs, dtype=np.float64)  # (c, z_dim, z_dim)
        self.z_dim = self.means.shape[1]
        self._factors = np.stack([_cov_factor(cov) for cov in self.covs])

    @classmethod
    def fit(
        cls,
        z_points: np.ndarray,
        n_components: int = 10,
        seed: int = 0,
        max_iter: int = 100,
        reg_covar: float = 1e-6,
    ) -> GmmSampler:
        """Fit a mixture with ``sklearn.mixture.GaussianMixture``.

        Args:
            z_points: z-points (n, z_dim), n >= n_components.
            n_components: Mixture components (10 in figure C9:
                ``analysis/70_sampler_comparison.ipynb``).
            seed: ``random_state`` of the k-means initialisation.
            max_iter: EM iterations at most.
            reg_covar: Added to each covariance's diagonal, keeping it invertible.

        Returns:
            The fitted sampler.

        Raises:
            ConfigError: If ``n_components`` is below 1 or above the number of points.
        """
        z = as_points(z_points)
        if not 1 <= int(n_components) <= len(z):
            raise ConfigError(
                f"n_components must be between 1 and {len(z)}, got {n_components}"
            )
        gmm = GaussianMixture(
            int(n_components),
            covariance_type="full",
            max_iter=max_iter,
            reg_covar=reg_covar,
            random_state=seed,
        )
        gmm.fit(z)
        return cls(gmm.weights_, gmm.means_, gmm.covariances_)

    def moments(self) -> tuple[np.ndarray, np.ndarray]:
        """Mean (z_dim,) and covariance (z_dim, z_dim) of the whole mixture."""
        mean = self.weights @ self.means
        second = np.einsum("c,cij->ij", self.weights, self.covs)
        second += np.einsum("c,ci,cj->ij", self.weights, self.means, self.means)
        return mean, second - np.outer(mean, mean)

    def scaled(self, scale: float) -> GmmSampler:
        """The same mixture with every component's standard deviations times
        ``scale`` (its temperature: near 0 every vector is a component's mean)."""
        scale = _positive("scale", scale)
        return GmmSampler(self.weights, self.means, self.covs * scale**2)

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Draw ``n`` vectors (n, z_dim), float32, in random component order."""
        check_n_rng(n, rng)
        counts = rng.multinomial(n, self.weights / self.weights.sum())
        parts = [
            mean + rng.standard_normal((count, self.z_dim)) @ factor.T
            for count, mean, factor in zip(
                counts, self.means, self._factors, strict=True
            )
        ]
        z = np.concatenate(parts)[rng.permutation(n)]
        return z.astype(np.float32)


def _z_dim(z_points: np.ndarray | None, z_dim: int | None) -> int:
    if z_dim is not None:
        return int(z_dim)
    if z_points is None:
        raise ConfigError("normal and uniform samplers need z_dim or z_points")
    return np.shape(z_points)[1]


def _fitted(name: str, z_points: np.ndarray | None) -> np.ndarray:
    if z_points is None:
        raise ConfigError(f"sampler {name!r} is fitted to z-points; pass z_points")
    return z_points


def _normal(z_points, z_dim=None, scale=1.0):
    return NormalSampler(_z_dim(z_points, z_dim), scale)


def _uniform(z_points, z_dim=None, r_limit=1.0):
    return UniformSampler(_z_dim(z_points, z_dim), r_limit)


def _gaussian(z_points):
    return GaussianSampler.fit(_fitted("gaussian", z_points))


def _gmm(z_points, n_components=10, seed=0, max_iter=100, reg_covar=1e-6):
    return GmmSampler.fit(
        _fitted("gmm", z_points), n_components, seed, max_iter, reg_covar
    )


def _pca_ellipse(
    z_points,
    n_components=50,
    level=2.35,
    fact=0.7,
    half_width="std",
    bins=60,
    fit_within=None,
):
    return PcaEllipseSampler.fit(
        _fitted("pca_ellipse", z_points),
        n_components,
        level,
        fact,
        half_width,
        bins,
        fit_within,
    )


_BUILDERS = {
    "normal": _normal,
    "uniform": _uniform,
    "gaussian": _gaussian,
    "gmm": _gmm,
    "pca_ellipse": _pca_ellipse,
}
SAMPLER_NAMES = tuple(_BUILDERS)


def make_sampler(name: str, z_points: np.ndarray | None = None, **params):
    """Build a sampler by name.

    Args:
        name: One of ``normal`` (params ``z_dim``, ``scale=1.0``), ``uniform``
            (``z_dim``, ``r_limit=1.0``), ``gaussian`` (none), ``gmm``
            (``n_components=10``, ``seed=0``, ``max_iter=100``, ``reg_covar=1e-6``),
            ``pca_ellipse`` (``n_components=50``, ``level=2.35``, ``fact=0.7``,
            ``half_width="std"``, ``bins=60``, ``fit_within=None``).
        z_points: z-points (n, z_dim) the fitted samplers are fitted to; for
            ``normal`` and ``uniform`` they only give z_dim when ``z_dim`` is absent.
        **params: The sampler's parameters, listed above.

    Returns:
        An object with ``sample(n, rng) -> (n, z_dim) float32`` and ``z_dim``.

    Raises:
        ConfigError: For an unknown name or parameter, a missing ``z_points`` or a
            parameter out of range.
    """
    if name not in _BUILDERS:
        raise ConfigError(f"unknown sampler {name!r}; choose one of {SAMPLER_NAMES}")
    builder = _BUILDERS[name]
    allowed = [p for p in inspect.signature(builder).parameters if p != "z_points"]
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise ConfigError(
            f"unknown parameter(s) {unknown} for sampler {name!r}; allowed: {allowed}"
        )
    return builder(z_points, **params)
