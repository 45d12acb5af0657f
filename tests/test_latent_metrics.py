import keras
import numpy as np
import pytest

from zspace.errors import ConfigError
from zspace.latent.metrics import (
    compute_features,
    frechet_distance,
    precision_recall,
    quality,
)


def _gaussian(n, dim=4, shift=0.0, scale=1.0, seed=0):
    return np.random.default_rng(seed).normal(shift, scale, (n, dim))


def test_frechet_distance_is_zero_for_identical_sets():
    a = _gaussian(500, dim=6) @ np.random.default_rng(1).normal(size=(6, 6))
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)


def test_frechet_distance_of_a_mean_shift_is_its_squared_length():
    a = _gaussian(500, dim=6)
    distances = []
    for step in (0.5, 1.0, 2.0):
        delta = step * np.arange(1, 7) / 6
        distances.append(frechet_distance(a, a + delta))
        assert distances[-1] == pytest.approx(np.sum(delta**2), rel=1e-6)
    # Twice the shift, four times the distance.
    assert distances[2] == pytest.approx(4 * distances[1], rel=1e-6)


def test_frechet_distance_of_scaled_normals_matches_the_closed_form():
    # N(0, I) against N(0, s^2 I) in d dims: d (1 - s)^2, up to sampling error.
    a, b = _gaussian(20000, seed=1), _gaussian(20000, scale=2.0, seed=2)
    assert frechet_distance(a, b) == pytest.approx(4 * (1 - 2.0) ** 2, rel=0.05)


def test_frechet_distance_with_fewer_points_than_dimensions():
    a, b = _gaussian(10, dim=30, seed=3), _gaussian(10, dim=30, shift=1.0, seed=4)
    distance = frechet_distance(a, b)
    assert np.isfinite(distance) and distance > 15


def test_precision_and_recall_near_one_for_one_distribution():
    precision, recall = precision_recall(
        _gaussian(2000, seed=5), _gaussian(2000, seed=6)
    )
    assert precision > 0.9 and recall > 0.9


def test_precision_and_recall_near_zero_for_disjoint_sets():
    real, fake = _gaussian(1000, seed=7), _gaussian(1000, shift=20.0, seed=8)
    assert precision_recall(real, fake, k=3) == (0.0, 0.0)


def test_collapsed_fakes_are_precise_but_do_not_recall():
    real = _gaussian(2000, seed=9)
    fake = _gaussian(2000, scale=0.1, seed=10)  # all fakes near the real mode
    precision, recall = precision_recall(real, fake)
    assert precision > 0.95 and recall < 0.2


def test_quality_compares_equal_sample_sizes():
    real, fake = _gaussian(900, seed=11), _gaussian(300, shift=0.5, seed=12)
    result = quality(real, fake, k=3, rng=0)
    assert set(result) == {"frechet", "precision", "recall", "n"}
    assert result["n"] == 300
    assert result["frechet"] == pytest.approx(4 * 0.25, abs=0.3)
    assert result == quality(real, fake, k=3, rng=np.random.default_rng(0))
    assert quality(real, fake, max_n=100)["n"] == 100


def test_compute_features_in_batches():
    images = np.random.default_rng(13).integers(0, 256, (9, 6, 6, 3), np.uint8)
    inputs = keras.Input((6, 6, 3))
    extractor = keras.Model(inputs, keras.layers.GlobalMaxPooling2D()(inputs))
    features = compute_features(extractor, images, batch_size=4)
    assert features.shape == (9, 3) and features.dtype == np.float32
    np.testing.assert_allclose(features, images.max(axis=(1, 2)) / 255.0, atol=1e-6)


def test_mismatched_inputs_raise_config_errors():
    with pytest.raises(ConfigError, match="widths"):
        frechet_distance(_gaussian(10, dim=3), _gaussian(10, dim=4))
    with pytest.raises(ConfigError, match="k must"):
        precision_recall(_gaussian(3), _gaussian(3), k=3)
