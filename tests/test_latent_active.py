import numpy as np
import pytest

from zspace.errors import DataError
from zspace.latent.active import (
    active_dimensions,
    active_units,
    encode_distribution,
    kl_per_dimension,
    top_share,
    traversal,
)


def _half_informative(n=500, z_dim=8, seed=0):
    """Encoder outputs where the first half of z describes the image (means spread
    over images, tight posteriors) and the second half is the prior, N(0, 1), for
    every image."""
    rng = np.random.default_rng(seed)
    half = z_dim // 2
    z_mean = np.zeros((n, z_dim), np.float32)
    z_log_var = np.zeros((n, z_dim), np.float32)
    z_mean[:, :half] = rng.normal(0.0, 1.0, (n, half))
    z_log_var[:, :half] = np.log(0.05)
    return z_mean, z_log_var


def test_the_counts_find_exactly_the_informative_half():
    z_mean, z_log_var = _half_informative()
    found = active_dimensions(z_mean, z_log_var)
    assert found["active_burda"] == 4 and found["active_kl"] == 4
    assert sorted(found["order"][:4]) == [0, 1, 2, 3]
    assert found["n_images"] == 500


def test_the_prior_dimensions_carry_no_kl_and_the_rest_add_up():
    z_mean, z_log_var = _half_informative()
    kl = kl_per_dimension(z_mean, z_log_var)
    np.testing.assert_array_equal(kl[4:], 0.0)
    # N(mu, 0.05) against N(0, 1): 0.5 * (mu^2 + 0.05 - ln 0.05 - 1), mu ~ N(0, 1).
    expected = 0.5 * (np.mean(np.square(z_mean[:, :4]), axis=0) + 0.05
                      - np.log(0.05) - 1.0)
    np.testing.assert_allclose(kl[:4], expected, rtol=1e-5)
    found = active_dimensions(z_mean, z_log_var)
    assert found["kl_sorted"] == sorted(found["kl_sorted"], reverse=True)
    assert found["total_kl"] == pytest.approx(kl.sum())
    assert found["top_share"] == pytest.approx(1.0)
    assert top_share(kl, k=2) == pytest.approx(np.sort(kl)[-2:].sum() / kl.sum())


def test_a_posterior_that_collapses_without_moving_is_not_burda_active():
    # The mean is the same for every image, yet the posterior differs from the
    # prior: KL counts it, Burda's variance criterion does not.
    z_mean = np.full((100, 2), 0.8)
    z_log_var = np.zeros((100, 2))
    assert active_units(z_mean) == 0
    assert active_dimensions(z_mean, z_log_var)["active_kl"] == 2


def test_mismatched_outputs_are_refused():
    with pytest.raises(DataError):
        kl_per_dimension(np.zeros((3, 4)), np.zeros((3, 5)))
    with pytest.raises(DataError):
        kl_per_dimension(np.zeros((0, 4)), np.zeros((0, 4)))


def test_traversal_moves_one_coordinate():
    z = traversal(5, 2, [-3.0, 0.0, 3.0])
    assert z.shape == (3, 5) and z.dtype == np.float32
    np.testing.assert_array_equal(z[:, 2], [-3.0, 0.0, 3.0])
    np.testing.assert_array_equal(np.delete(z, 2, axis=1), 0.0)
    start = np.arange(5, dtype=np.float32)
    moved = traversal(5, 0, [1.0, 2.0], start=start)
    np.testing.assert_array_equal(moved[:, 1:], np.tile(start[1:], (2, 1)))


def test_encoder_path_matches_the_vae_kl_loss():
    """A tiny untrained VAE encoder, in batches: per-dimension KL sums to the
    model's own KL loss."""
    from zspace.config import ModelConfig
    from zspace.networks import build_encoder
    from zspace.networks.autoencoders import kl_loss

    config = ModelConfig(kind="vae", z_dim=6, filters=(8, 16), kernels=(3, 3),
                         strides=(2, 2))
    encoder = build_encoder(config, (16, 16, 3))
    images = np.random.default_rng(1).integers(0, 256, (10, 16, 16, 3), np.uint8)
    z_mean, z_log_var = encode_distribution(encoder, images, batch_size=4)
    assert z_mean.shape == z_log_var.shape == (10, 6)
    whole_mean, whole_log_var = encoder(images.astype(np.float32) / 255.0)
    np.testing.assert_allclose(z_log_var, np.asarray(whole_log_var), atol=1e-5)
    expected = float(np.mean(kl_loss(whole_mean, whole_log_var)))
    assert kl_per_dimension(z_mean, z_log_var).sum() == pytest.approx(expected,
                                                                      rel=1e-4)


def test_an_ae_encoder_is_refused():
    def ae_encoder(batch, training=False):
        return np.zeros((len(batch), 3), np.float32)

    images = np.zeros((2, 4, 4, 3), np.uint8)
    with pytest.raises(DataError, match="z_mean, z_log_var"):
        encode_distribution(ae_encoder, images)
