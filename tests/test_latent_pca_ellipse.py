import itertools

import numpy as np
import pytest

from zspace.errors import ConfigError
from zspace.latent.pca_ellipse import (
    FWHM_PER_SIGMA,
    PcaEllipseSampler,
    half_max_sigma,
    max_pair_sum,
    satisfies_pairwise,
)


def _z_points(n=4000, dim=32, seed=0):
    """Correlated Gaussian z-points with spreads falling from 3 to 0.3."""
    rng = np.random.default_rng(seed)
    rotation, _ = np.linalg.qr(rng.standard_normal((dim, dim)))
    spreads = np.linspace(3.0, 0.3, dim)
    return (rng.standard_normal((n, dim)) * spreads) @ rotation.T + 1.5


def _violations_pair_by_pair(v, a, fact):
    """The seed's condition for every ordered pair, written out one pair at a time."""
    worst = 0.0
    for i, j in itertools.permutations(range(v.shape[1]), 2):
        inside = np.clip(1.0 - v[:, i] ** 2 / (fact * a[i]) ** 2, 0.0, None)
        excess = np.abs(v[:, j]) - a[j] * fact * np.sqrt(inside)
        worst = max(worst, excess.max())
    return worst


def test_every_sample_meets_every_pairwise_condition():
    sampler = PcaEllipseSampler.fit(_z_points(), n_components=12, level=2.35, fact=0.7)
    v = sampler.sample_pca(500, np.random.default_rng(1))
    assert v.shape == (500, 12)
    assert _violations_pair_by_pair(v, sampler.half_axes, 0.7) <= 1e-9
    assert satisfies_pairwise(v, sampler.bounds).all()


def test_samples_are_spread_and_symmetric():
    sampler = PcaEllipseSampler.fit(_z_points(), n_components=20)
    v = sampler.sample_pca(5000, np.random.default_rng(2))
    assert len(np.unique(v[:, 0])) == 5000
    scaled = v / sampler.bounds
    # Each component covers most of its allowed range, on both sides of 0.
    assert np.all(scaled.max(axis=0) > 0.9) and np.all(scaled.min(axis=0) < -0.9)
    np.testing.assert_allclose(scaled.mean(axis=0), 0.0, atol=0.03)
    # The random visiting order treats all components alike.
    spread = scaled.std(axis=0)
    assert spread.max() / spread.min() < 1.1


def test_samples_go_back_to_z_space_through_the_inverse_pca():
    z = _z_points()
    sampler = PcaEllipseSampler.fit(z, n_components=10)
    rng_a, rng_b = np.random.default_rng(3), np.random.default_rng(3)
    out = sampler.sample(100, rng_a)
    assert out.shape == (100, 32) and out.dtype == np.float32
    v = sampler.sample_pca(100, rng_b)
    expected = sampler.pca.inverse_transform(v)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(sampler.to_z(v), out)
    # The z-vectors sit around the z-points' centre, not around the origin.
    np.testing.assert_allclose(out.mean(axis=0), z.mean(axis=0), atol=0.4)


def test_max_pair_sum_is_the_worst_pair():
    v = np.array([[0.5, -0.8, 0.1], [0.0, 0.0, 1.0]])
    bounds = np.array([1.0, 1.0, 0.5])
    np.testing.assert_allclose(max_pair_sum(v, bounds), [0.25 + 0.64, 4.0])
    assert satisfies_pairwise(v, bounds).tolist() == [True, False]


def test_half_widths_from_std_and_from_half_maximum_agree_on_gaussians():
    z = _z_points(n=20000, dim=8)
    by_std = PcaEllipseSampler.fit(z, n_components=8, level=2.0, fact=0.5)
    by_half_max = PcaEllipseSampler.fit(z, 8, 2.0, 0.5, half_width="half_max")
    np.testing.assert_allclose(by_half_max.sigmas, by_std.sigmas, rtol=0.08)
    np.testing.assert_allclose(by_std.half_axes, 2.0 * by_std.sigmas)
    np.testing.assert_allclose(by_std.bounds, 0.5 * 2.0 * by_std.sigmas)


def test_half_max_sigma_of_a_known_normal():
    values = np.random.default_rng(4).normal(10.0, 3.0, 50000)
    assert half_max_sigma(values) == pytest.approx(3.0, rel=0.05)
    assert FWHM_PER_SIGMA == pytest.approx(2.3548, abs=1e-4)


def test_fit_within_drops_outlying_points():
    z = _z_points(n=3000, dim=6)
    z[:30] *= 40.0  # far outliers inflate the spread of a plain fit
    plain = PcaEllipseSampler.fit(z, n_components=3)
    trimmed = PcaEllipseSampler.fit(z, n_components=3, fit_within=3.0)
    assert trimmed.sigmas[0] < 0.5 * plain.sigmas[0]


def test_bad_parameters_raise_config_errors():
    z = _z_points(n=200, dim=6)
    with pytest.raises(ConfigError, match="half_width"):
        PcaEllipseSampler.fit(z, 3, half_width="fwhm")
    with pytest.raises(ConfigError, match="fact"):
        PcaEllipseSampler.fit(z, 3, fact=0.0)
    sampler = PcaEllipseSampler.fit(z, 3)
    with pytest.raises(ConfigError, match="rng"):
        sampler.sample(5, 42)
    with pytest.raises(ConfigError, match="n must"):
        sampler.sample(-1, np.random.default_rng())
