import numpy as np
import pytest

from zspace.errors import ConfigError, DataError
from zspace.latent.sharpen import (
    checkerboard_energy,
    enlarge_crop,
    laplacian_variance,
    sharpen,
)


def _smooth_images(n=4, size=32, seed=0):
    """Soft blobs on a gradient: smooth images with some edges, uint8 (n, h, w, 3)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    images = []
    for _ in range(n):
        cy, cx, r = rng.uniform(0.3, 0.7, 3) * [1, 1, 0.5]
        blob = 1 / (1 + np.exp(((y - cy) ** 2 + (x - cx) ** 2 - r**2) * 60))
        colour = rng.uniform(0.2, 0.8, 3)
        images.append(0.3 * x[..., None] + blob[..., None] * colour)
    return (np.clip(np.stack(images), 0, 1) * 255).astype(np.uint8)


def _checkerboard(size=32):
    y, x = np.mgrid[0:size, 0:size]
    return ((x + y) % 2).astype(np.float64)


def test_factor_one_keeps_the_images_and_shapes_are_kept():
    images = _smooth_images()
    np.testing.assert_array_equal(sharpen(images, 1.0), images)
    single = sharpen(images[0], 3.0)
    assert single.shape == images[0].shape and single.dtype == np.uint8


def test_sharpness_measure_grows_with_the_factor():
    images = _smooth_images()
    scores = [laplacian_variance(sharpen(images, f)).mean() for f in (0, 1, 3, 6)]
    assert scores == sorted(scores) and scores[3] > 2 * scores[1]


def test_laplacian_variance_does_not_depend_on_dtype():
    images = _smooth_images()
    np.testing.assert_allclose(
        laplacian_variance(images), laplacian_variance(images / 255.0)
    )
    assert laplacian_variance(np.full((2, 8, 8, 3), 90, np.uint8)).tolist() == [0, 0]


def test_checkerboard_energy_of_known_patterns():
    board = np.repeat(_checkerboard()[None, ..., None], 3, axis=-1)
    assert checkerboard_energy(board)[0] == pytest.approx(1.0)
    stripes = np.repeat(np.tile([0.0, 1.0], (32, 16))[None, ..., None], 3, -1)
    assert checkerboard_energy(stripes)[0] == pytest.approx(1.0)
    noise = np.random.default_rng(1).random((20, 32, 32, 3))
    # 3 x 3 bins around each of 3 frequencies, of 32 x 32.
    assert checkerboard_energy(noise).mean() == pytest.approx(27 / 1024, rel=0.3)
    assert checkerboard_energy(np.full((1, 8, 8, 3), 0.3))[0] == 0.0


def test_checkerboard_energy_sees_an_added_artifact_and_its_sharpening():
    smooth = _smooth_images()
    artifact = np.clip(smooth + 6.0 * _checkerboard()[..., None], 0, 255)
    artifact = artifact.astype(np.uint8)
    clean_score = checkerboard_energy(smooth)
    score = checkerboard_energy(artifact)
    assert np.all(score > 100 * clean_score)
    assert np.all(checkerboard_energy(sharpen(artifact, 6.0)) > score)
    # A period-4 pattern is invisible at period 2 but counted at period 4.
    y, x = np.mgrid[0:32, 0:32]
    coarse = (((x // 2) + (y // 2)) % 2)[None, ..., None].repeat(3, -1) * 1.0
    assert checkerboard_energy(coarse, period=2)[0] < 1e-12
    assert checkerboard_energy(coarse, period=4)[0] == pytest.approx(1.0)


def test_enlarge_crop_repeats_pixels():
    images = np.arange(2 * 4 * 4 * 3, dtype=np.uint8).reshape(2, 4, 4, 3)
    crop = enlarge_crop(images, top=1, left=2, size=2, scale=3)
    assert crop.shape == (2, 6, 6, 3)
    np.testing.assert_array_equal(crop[:, ::3, ::3], images[:, 1:3, 2:4])


def test_bad_inputs_raise():
    with pytest.raises(ConfigError):
        sharpen(_smooth_images(), -1.0)
    with pytest.raises(DataError):
        sharpen(_smooth_images() / 255.0, 2.0)
    with pytest.raises(ConfigError):
        checkerboard_energy(_smooth_images(), period=1)
