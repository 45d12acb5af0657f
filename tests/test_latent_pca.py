import numpy as np
import pytest

from zspace.errors import ConfigError
from zspace.latent import pca as latent_pca


def _low_rank(n=2000, dim=12, rank=4, seed=0):
    rng = np.random.default_rng(seed)
    basis = rng.standard_normal((rank, dim))
    return rng.standard_normal((n, rank)) * [5, 3, 2, 1] @ basis + 3.0


def test_round_trip_is_exact_with_enough_components():
    z = _low_rank()
    pca = latent_pca.fit_pca(z, n_components=4)
    v = latent_pca.transform(pca, z)
    assert v.shape == (2000, 4) and v.dtype == np.float32
    back = latent_pca.inverse_transform(pca, v)
    assert back.shape == z.shape and back.dtype == np.float32
    np.testing.assert_allclose(back, z, atol=1e-3)


def test_fewer_components_lose_the_dropped_variance():
    z = _low_rank()
    pca = latent_pca.fit_pca(z, n_components=2)
    back = latent_pca.inverse_transform(pca, latent_pca.transform(pca, z))
    lost = np.square(back - z).sum(axis=1).mean()
    full = latent_pca.fit_pca(z)
    assert lost == pytest.approx(full.explained_variance_[2:].sum(), rel=0.01)


def test_explained_variance_ratios_and_cumulative_share():
    pca = latent_pca.fit_pca(_low_rank())
    ev = latent_pca.explained_variance(pca)
    assert ev["cumulative"][3] == pytest.approx(1.0)
    assert np.all(np.diff(ev["variance"]) <= 1e-9)
    np.testing.assert_allclose(np.cumsum(ev["ratio"]), ev["cumulative"])


def test_pca_coordinates_are_uncorrelated():
    v = latent_pca.transform(latent_pca.fit_pca(_low_rank(), 4), _low_rank())
    cov = np.cov(v, rowvar=False)
    off_diagonal = cov - np.diag(np.diag(cov))
    assert np.abs(off_diagonal).max() < 1e-3 * np.diag(cov).max()


def test_too_many_components_is_a_config_error():
    with pytest.raises(ConfigError, match="n_components"):
        latent_pca.fit_pca(_low_rank(n=50), n_components=13)
