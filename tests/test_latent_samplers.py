import numpy as np
import pytest

from zspace.errors import ConfigError, ZspaceError
from zspace.latent.pca_ellipse import PcaEllipseSampler
from zspace.latent.samplers import (
    SAMPLER_NAMES,
    GaussianSampler,
    GmmSampler,
    make_sampler,
)


def _two_clusters(n=6000, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.multivariate_normal(
        [3, 0, 1], [[1, 0.5, 0], [0.5, 1, 0], [0, 0, 0.2]], n // 2
    )
    b = rng.multivariate_normal([-3, 2, 0], np.diag([0.3, 0.5, 1.0]), n // 2)
    return np.vstack([a, b])


@pytest.mark.parametrize("name", SAMPLER_NAMES)
def test_every_sampler_gives_float32_vectors_of_z_dim(name):
    params = {"n_components": 2} if name in ("gmm", "pca_ellipse") else {}
    sampler = make_sampler(name, _two_clusters(600), **params)
    z = sampler.sample(50, np.random.default_rng(0))
    assert z.shape == (50, 3) and z.dtype == np.float32 and sampler.z_dim == 3
    again = sampler.sample(50, np.random.default_rng(0))
    np.testing.assert_array_equal(z, again)
    assert sampler.sample(0, np.random.default_rng(0)).shape == (0, 3)


def test_normal_and_uniform_have_their_scale_and_limit():
    rng = np.random.default_rng(1)
    z = make_sampler("normal", z_dim=16, scale=2.0).sample(20000, rng)
    assert z.std() == pytest.approx(2.0, rel=0.02)
    z = make_sampler("uniform", z_dim=16, r_limit=2.5).sample(20000, rng)
    assert np.abs(z).max() <= 2.5 and np.abs(z).max() > 2.49
    # Uniform in [-r, r] has standard deviation r / sqrt(3).
    assert z.std() == pytest.approx(2.5 / np.sqrt(3), rel=0.02)


def test_gaussian_samples_match_the_fitted_moments():
    z_points = _two_clusters()
    sampler = GaussianSampler.fit(z_points)
    z = sampler.sample(40000, np.random.default_rng(2))
    np.testing.assert_allclose(z.mean(axis=0), z_points.mean(axis=0), atol=0.05)
    np.testing.assert_allclose(
        np.cov(z, rowvar=False), np.cov(z_points, rowvar=False), atol=0.1
    )


def test_gmm_samples_match_the_mixture_and_the_data():
    z_points = _two_clusters()
    sampler = GmmSampler.fit(z_points, n_components=2, seed=0)
    mean, cov = sampler.moments()
    z = sampler.sample(40000, np.random.default_rng(3))
    np.testing.assert_allclose(z.mean(axis=0), mean, atol=0.05)
    np.testing.assert_allclose(np.cov(z, rowvar=False), cov, atol=0.1)
    np.testing.assert_allclose(mean, z_points.mean(axis=0), atol=0.02)
    np.testing.assert_allclose(cov, np.cov(z_points, rowvar=False), atol=0.05)
    # Unlike one Gaussian, the mixture leaves the gap between the clusters empty.
    assert np.mean(np.abs(z[:, 0]) < 0.5) < 0.01


def test_make_sampler_passes_pca_ellipse_parameters():
    sampler = make_sampler(
        "pca_ellipse",
        _two_clusters(),
        n_components=3,
        level=2.0,
        fact=0.6,
        half_width="half_max",
    )
    assert isinstance(sampler, PcaEllipseSampler)
    np.testing.assert_allclose(sampler.bounds, 0.6 * 2.0 * sampler.sigmas)


def test_make_sampler_rejects_bad_names_and_parameters():
    with pytest.raises(ConfigError, match="unknown sampler 'gauss'"):
        make_sampler("gauss", _two_clusters(100))
    with pytest.raises(ConfigError, match="r_lim"):
        make_sampler("uniform", z_dim=4, r_lim=2.0)
    with pytest.raises(ConfigError, match="z_points"):
        make_sampler("gmm")
    with pytest.raises(ConfigError, match="scale"):
        make_sampler("normal", z_dim=4, scale=-1.0)
    with pytest.raises(ZspaceError, match="n_components"):
        make_sampler("gmm", _two_clusters(10), n_components=20)
