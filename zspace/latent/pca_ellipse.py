"""The PCA-ellipse sampler and a check of its pairwise conditions
(``articles/C-fragmentation.md``, "Vectors inside every ellipse").

In the PCA coordinates of an AE's z-points, every pair of components (i, j) has an
axis-aligned confidence ellipse with half-axes a_i = level * sigma_i and
a_j = level * sigma_j. A generated vector v must lie, for every pair, inside that
ellipse shrunk by ``fact``:

    (v_i / (fact * a_i))^2 + (v_j / (fact * a_j))^2 <= 1,

which is the seed's |v_j| <= fact * a_j * sqrt(1 - v_i^2 / (fact * a_i)^2). Written in
the scaled coordinates u_i = v_i / (fact * a_i), all k (k - 1) / 2 conditions read
u_i^2 + u_j^2 <= 1, and they all hold exactly when the two largest u_i^2 sum to at
most 1.
"""

from __future__ import annotations

import numpy as np
from sklearn.decomposition import PCA

from zspace.errors import ConfigError
from zspace.latent.pca import fit_pca
from zspace.latent.stats import as_points

HALF_WIDTHS = ("std", "half_max")
# Full width at half maximum of a normal density, in standard deviations: 2.3548.
FWHM_PER_SIGMA = 2.0 * np.sqrt(2.0 * np.log(2.0))
# Histogram smoothing for the half-maximum estimate, and its variance in squared bins.
_SMOOTHING = np.array([1.0, 2.0, 3.0, 2.0, 1.0]) / 9.0
_SMOOTHING_VARIANCE = float(_SMOOTHING @ np.square(np.arange(-2, 3)))


def check_n_rng(n: int, rng: np.random.Generator) -> None:
    """Raise ConfigError unless ``n`` is a count >= 0 and ``rng`` a numpy Generator."""
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 0:
        raise ConfigError(f"n must be an integer >= 0, got {n!r}")
    if not isinstance(rng, np.random.Generator):
        raise ConfigError(f"rng must be a numpy.random.Generator, got {type(rng)}")


def half_max_sigma(values: np.ndarray, bins: int = 60) -> float:
    """Standard deviation estimated from a histogram's full width at half maximum.

    The histogram spans the central 99.8 % of the values (outliers would only widen
    the bins) and is smoothed with the kernel [1, 2, 3, 2, 1] / 9, which keeps the
    noise of single bins from setting the maximum. From the highest bin, the crossings
    of half its height are found on both sides by linear interpolation between bin
    centres; their distance (the FWHM) divided by 2 sqrt(2 ln 2) is sigma for a normal
    distribution. The kernel's own variance (4/3 of a squared bin width) is then taken
    off. The resolution is about one bin: a component much narrower than a bin (a
    spike on broad tails) comes out too wide.

    Args:
        values: One component's values (n,).
        bins: Histogram bins.

    Returns:
        The estimated sigma.
    """
    low, high = np.quantile(values, [0.001, 0.999])
    counts, edges = np.histogram(values, bins=bins, range=(low, high))
    counts = np.convolve(counts, _SMOOTHING, mode="same")
    width = edges[1] - edges[0]
    peak = int(np.argmax(counts))
    half = counts[peak] / 2.0

    def crossing(step: int) -> float:
        """Position of the half-height crossing left (step -1) or right (+1)."""
        i = peak
        while 0 <= i + step < bins and counts[i + step] >= half:
            i += step
        if not 0 <= i + step < bins:
            return float(edges[0] if step < 0 else edges[-1])
        frac = (counts[i] - half) / (counts[i] - counts[i + step])
        return float(edges[i] + width / 2 + step * frac * width)

    sigma = (crossing(1) - crossing(-1)) / FWHM_PER_SIGMA
    return float(np.sqrt(max(sigma**2 - _SMOOTHING_VARIANCE * width**2, 0.0)))


def max_pair_sum(v: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """Largest (v_i / b_i)^2 + (v_j / b_j)^2 over all pairs i != j, per vector.

    Args:
        v: PCA-space vectors (n, k), k >= 2.
        bounds: Per-component bounds b (k,), i.e. fact * a for the sampler.

    Returns:
        float64 array (n,); every pairwise elliptic condition of a vector holds exactly
        when its value is <= 1.
    """
    u2 = np.square(np.asarray(v, dtype=np.float64) / bounds)
    two_largest = -np.partition(-u2, 1, axis=1)[:, :2]
    return two_largest.sum(axis=1)


def satisfies_pairwise(
    v: np.ndarray, bounds: np.ndarray, tolerance: float = 1e-9
) -> np.ndarray:
    """Boolean (n,): whether each vector meets every pairwise elliptic condition."""
    return max_pair_sum(v, bounds) <= 1.0 + tolerance


class PcaEllipseSampler:
    """z-vectors inside every pairwise confidence ellipse in PCA space.

    Half-widths: a_i = level * sigma_i for each kept PCA component i, where sigma_i is
    the standard deviation of the z-points' i-th PCA coordinate (``half_width="std"``)
    or that standard deviation estimated from the histogram's full width at half
    maximum (``"half_max"``, :func:`half_max_sigma`; the seed's numerical method).
    With the default level 2.35, a_i is the full width at half maximum of a normal
    component. The bounds are b_i = fact * a_i.

    Enforcement: for each vector, the k components are visited once, in an order drawn
    at random per vector (so every pair is met in random order). The first is uniform
    in [-b, b]; each next one, j, is uniform in [-c_j, c_j] with
    c_j = b_j * sqrt(1 - max_i (v_i / b_i)^2) over the components i drawn before it: the
    tightest of its conditions with all earlier components. Then every condition with
    an earlier component holds, and since each pair has an earlier member, all k (k-1)/2
    conditions hold; no rejection, no second pass. The loop runs over the k positions
    and is vectorised over the n vectors. The result goes back to z-space with the
    inverse PCA.

    Attributes:
        pca: The fitted sklearn PCA (k components).
        sigmas: Per-component spreads sigma_i (k,).
        half_axes: a_i = level * sigma_i (k,).
        bounds: b_i = fact * a_i (k,); pass them to :func:`satisfies_pairwise`.
        z_dim: Dimension of the z-vectors.
    """

    def __init__(self, pca: PCA, sigmas: np.ndarray, level: float, fact: float):
        if not (level > 0 and fact > 0):
            raise ConfigError(f"level and fact must be positive, got {level}, {fact}")
        self.pca, self.level, self.fact = pca, float(level), float(fact)
        self.sigmas = np.asarray(sigmas, dtype=np.float64)
        self.half_axes = self.level * self.sigmas
        self.bounds = self.fact * self.half_axes
        self.z_dim = int(pca.n_features_in_)
        self.n_components = len(self.sigmas)

    @classmethod
    def fit(
        cls,
        z_points: np.ndarray,
        n_components: int = 50,
        level: float = 2.35,
        fact: float = 0.7,
        half_width: str = "std",
        bins: int = 60,
        fit_within: float | None = None,
    ) -> PcaEllipseSampler:
        """Fit the PCA and the half-widths to z-points.

        Args:
            z_points: z-points (n, z_dim) of the training images.
            n_components: PCA components kept, k (50 to 120 in the seed).
            level: Half-axes in sigmas (2.35: the seed's value).
            fact: Shrink factor of the ellipses (0.6 to 0.8 in the seed).
            half_width: ``"std"`` or ``"half_max"``; see the class docstring.
            bins: Histogram bins for ``"half_max"``.
            fit_within: If given, the PCA is fitted a second time to only those
                z-points whose kept PCA coordinates all lie within ``fit_within``
                standard deviations (the seed fitted to points within 3 sigma).

        Returns:
            The fitted sampler.

        Raises:
            ConfigError: For an unknown ``half_width`` or a value out of range.
        """
        if half_width not in HALF_WIDTHS:
            raise ConfigError(
                f"half_width must be one of {HALF_WIDTHS}, got {half_width!r}"
            )
        z = as_points(z_points)
        pca = fit_pca(z, n_components)
        if fit_within is not None:
            coords = pca.transform(z) / np.sqrt(pca.explained_variance_)
            z = z[np.all(np.abs(coords) <= fit_within, axis=1)]
            if len(z) <= int(n_components):
                raise ConfigError(
                    f"only {len(z)} z-points lie within fit_within="
                    f"{fit_within} sigma; too few for the PCA"
                )
            pca = fit_pca(z, n_components)
        if half_width == "std":
            sigmas = np.sqrt(pca.explained_variance_)
        else:
            coords = pca.transform(z)
            sigmas = np.array([half_max_sigma(c, bins) for c in coords.T])
        return cls(pca, sigmas, level, fact)

    def sample_pca(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Draw ``n`` PCA-space vectors (n, k), float64, before the inverse PCA.

        Every row satisfies every pairwise condition (see the class docstring).
        """
        check_n_rng(n, rng)
        k = self.n_components
        order = np.argsort(rng.random((n, k)), axis=1)  # (n, k): a permutation per row
        draws = 2.0 * rng.random((n, k)) - 1.0  # (n, k) uniform in [-1, 1)
        rows = np.arange(n)
        u = np.empty((n, k))  # scaled coordinates v / bounds
        tightest = np.zeros(n)  # max u_i^2 over the components drawn so far
        for step in range(k):
            value = draws[:, step] * np.sqrt(1.0 - tightest)
            u[rows, order[:, step]] = value
            np.maximum(tightest, np.square(value), out=tightest)
        return u * self.bounds

    def to_z(self, v: np.ndarray) -> np.ndarray:
        """z-vectors (n, z_dim), float32, from PCA-space vectors (n, k): inverse PCA.

        Lets a notebook show the same vectors in both coordinate systems (figures C5
        and C6): ``v = sampler.sample_pca(n, rng)``, then ``sampler.to_z(v)``.
        """
        # sklearn's inverse_transform (no whitening), which also accepts n = 0.
        z = np.asarray(v) @ self.pca.components_ + self.pca.mean_  # (n, z_dim)
        return z.astype(np.float32)

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Draw ``n`` z-vectors (n, z_dim), float32: :meth:`sample_pca`, then to_z."""
        return self.to_z(self.sample_pca(n, rng))
