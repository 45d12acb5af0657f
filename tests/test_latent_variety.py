"""The variety measure on sets whose answer is known."""

import numpy as np
import pytest

from zspace.config import DataConfig
from zspace.data.synthetic import load_synthetic
from zspace.errors import DataError
from zspace.latent.variety import (
    MIN_SIDE,
    disjoint_pairs,
    ms_ssim,
    pairwise_ms_ssim,
    variety,
    variety_of_faces,
)


@pytest.fixture(scope="module")
def faces():
    config = DataConfig(image_size=32, num_train=64, num_test=16, workers=1)
    return load_synthetic(config, progress=False).train


def test_identical_images_give_one_and_noise_nearly_zero(faces):
    same = np.repeat(faces[:1], 20, axis=0)
    assert pairwise_ms_ssim(same, n_pairs=50) == pytest.approx(1.0)
    noise = np.random.default_rng(0).integers(0, 256, faces.shape, dtype=np.uint8)
    assert abs(pairwise_ms_ssim(noise, n_pairs=50)) < 0.15
    assert ms_ssim(faces[0], faces[0]) == pytest.approx(1.0)


def test_real_faces_lie_between_identical_images_and_noise(faces):
    noise = np.random.default_rng(1).integers(0, 256, faces.shape, dtype=np.uint8)
    real = pairwise_ms_ssim(faces, n_pairs=100)
    assert pairwise_ms_ssim(noise, n_pairs=100) < real < 0.9


def test_the_order_of_sets_is_stable_under_resampling(faces):
    rng = np.random.default_rng(2)
    # Less varied: the faces blended halfway toward their mean face.
    mean = faces.mean(axis=0)
    blended = (0.5 * faces + 0.5 * mean).astype(np.uint8)
    noise = rng.integers(0, 256, faces.shape, dtype=np.uint8)
    for seed in range(3):
        values = [pairwise_ms_ssim(s, n_pairs=100, rng=seed)
                  for s in (blended, faces, noise)]
        assert values == sorted(values, reverse=True), values


def test_too_few_or_too_small_images_are_refused(faces):
    with pytest.raises(DataError, match="at least two images"):
        pairwise_ms_ssim(faces[:1])
    small = np.zeros((4, MIN_SIDE - 1, MIN_SIDE - 1, 3), np.uint8)
    with pytest.raises(DataError, match=f"at least {MIN_SIDE} px"):
        pairwise_ms_ssim(small)


def test_variety_is_one_minus_the_similarity_with_an_interval(faces):
    measured = variety(faces, n_pairs=100, rng=4)
    assert measured["variety"] == pytest.approx(
        1 - pairwise_ms_ssim(faces, n_pairs=100, rng=4))
    assert measured["low"] < measured["variety"] < measured["high"]
    same = variety(np.repeat(faces[:1], 5, axis=0), n_pairs=20)
    assert same["variety"] == pytest.approx(0.0, abs=1e-9)


def test_a_temperature_near_zero_collapses_a_sampler_and_variety_shows_it(faces):
    from zspace.latent.samplers import make_sampler

    rng = np.random.default_rng(5)
    z = rng.standard_normal((200, 8)) * np.linspace(0.5, 2.0, 8)
    gaussian = make_sampler("gaussian", z)
    gmm = make_sampler("gmm", z, n_components=3, seed=0)
    # A fixed linear "decoder": each z moves the mean face along 8 real directions.
    mean = faces.mean(axis=0)
    directions = (faces[:8] - mean).reshape(8, -1) / 4

    def decoded(vectors):
        flat = mean.reshape(-1) + vectors @ directions
        return np.clip(flat, 0, 255).astype(np.uint8).reshape(-1, *faces.shape[1:])

    def cold_and_warm(sampler):
        return (variety(decoded(sampler.scaled(0.01).sample(40, rng)), n_pairs=60),
                variety(decoded(sampler.sample(40, rng)), n_pairs=60))

    # The Gaussian collapses to its mean: every image alike.
    cold, warm = cold_and_warm(gaussian)
    assert cold["variety"] < 0.05 < warm["variety"]
    assert cold["high"] < warm["low"]
    # The mixture collapses to its three means: less variety, not none.
    cold, warm = cold_and_warm(gmm)
    assert cold["high"] < warm["low"]


def test_variety_of_faces_leaves_out_the_images_without_one_face(faces):
    noise = np.random.default_rng(6).integers(0, 256, faces.shape, dtype=np.uint8)
    mixed = np.concatenate([faces, noise])
    # The judge found one face in each face, none in the noise.
    counts = np.array([1] * len(faces) + [0] * len(noise))
    measured = variety_of_faces(mixed, counts, n_pairs=80, rng=7, min_faces=10)
    assert measured["n_faces"] == len(faces)
    assert measured["variety"] == pytest.approx(
        variety(faces, n_pairs=80, rng=7)["variety"])
    # Over the whole set the noise would have raised it.
    assert variety(mixed, n_pairs=80, rng=7)["variety"] > measured["variety"]


def test_two_faces_in_one_image_do_not_count_as_a_face(faces):
    counts = np.array([1] * 20 + [2] * (len(faces) - 20))
    assert variety_of_faces(faces, counts, n_pairs=20, min_faces=5)["n_faces"] == 20


def test_too_few_faces_give_no_variety_and_say_how_many(faces):
    counts = np.array([1] * 9 + [0] * (len(faces) - 9))
    measured = variety_of_faces(faces, counts, n_pairs=20, min_faces=10)
    assert measured == {"variety": None, "low": None, "high": None, "n_pairs": 0,
                        "n_faces": 9}


def test_variety_of_faces_needs_a_count_per_image(faces):
    with pytest.raises(DataError, match="one face count per image"):
        variety_of_faces(faces, np.ones(len(faces) - 1))


def test_the_variety_filter_prints_the_interval_or_why_there_is_none():
    from zspace.site.templates import _variety

    assert _variety({"variety": 0.7771, "low": 0.7612, "high": 0.7934,
                     "n_faces": 980}) == "0.777 [0.761, 0.793]"
    assert _variety({"variety": None, "low": None, "high": None,
                     "n_faces": 12}) == "too few faces (12)"


def test_no_image_is_in_two_pairs_so_more_pairs_cannot_narrow_the_interval(faces):
    pairs = disjoint_pairs(11, 100, rng=3)
    assert pairs.shape == (5, 2)
    assert len(set(pairs.ravel())) == 10
    few, many = variety(faces, n_pairs=32, rng=8), variety(faces, n_pairs=1000, rng=8)
    assert few["n_pairs"] == many["n_pairs"] == len(faces) // 2
    assert few == many


def test_an_interval_needs_two_pairs(faces):
    with pytest.raises(DataError, match="at least four images"):
        variety(faces[:3])


def test_one_scale_of_the_multiscale_formula_is_scikit_images_ssim():
    """Wang et al.'s formula reduced to one scale is plain SSIM: with scikit-image's
    Gaussian window (11 px, sigma 1.5) the two agree to float32 precision."""
    from skimage.metrics import structural_similarity

    from zspace.latent.variety import _luminance, ms_ssim_batch

    config = DataConfig(image_size=64, num_train=40, num_test=16, workers=1)
    images = load_synthetic(config, progress=False).train
    ours = ms_ssim_batch(images[:20], images[20:40], weights=(1.0,), window=11)
    theirs = [structural_similarity(a, b, data_range=1.0, gaussian_weights=True,
                                    sigma=1.5, use_sample_covariance=False)
              for a, b in zip(_luminance(images[:20]), _luminance(images[20:40]),
                              strict=True)]
    assert np.allclose(ours, theirs, atol=1e-5)


def test_the_scales_multiply_rather_than_average(faces):
    """Wang's measure is a product of powers: a pair that fails at one scale fails
    overall, where a weighted mean would still give it most of the credit."""
    from zspace.latent.variety import SCALE_WEIGHTS, ms_ssim_batch

    a, b = faces[:10], faces[10:20]
    per_scale = []
    for level in range(len(SCALE_WEIGHTS)):
        weights = [0.0] * len(SCALE_WEIGHTS)
        weights[level] = 1.0
        per_scale.append(ms_ssim_batch(a, b, weights=weights))
    product = np.prod([np.clip(v, 0, None) ** w for v, w in
                       zip(per_scale, SCALE_WEIGHTS, strict=True)], axis=0)
    assert np.allclose(ms_ssim_batch(a, b), product, atol=1e-5)


@pytest.mark.parametrize("size", [64, 45])  # 45: odd sides, mirrored before halving
def test_the_numpy_multiscale_ssim_is_tensorflows(size):
    """The measure's arithmetic is tf.image.ssim_multiscale's, in NumPy: the two
    agree to float32 precision on faces, noise and their mixtures, at an even size
    and at one whose halving needs padding."""
    import tensorflow as tf

    from zspace.data.synthetic import generate
    from zspace.latent.variety import (
        SCALE_WEIGHTS,
        WINDOW,
        WINDOW_SIGMA,
        _luminance,
        ms_ssim_batch,
    )

    faces, _ = generate(24, size, seed=9, workers=1, progress=False)
    noise = np.random.default_rng(1).integers(0, 256, faces.shape, dtype=np.uint8)
    a = np.concatenate([faces[:12], faces[:6], noise[:6]])
    b = np.concatenate([faces[12:], faces[6:12] // 2 + noise[6:12] // 2, noise[12:18]])
    theirs = tf.image.ssim_multiscale(
        tf.constant(_luminance(a)[..., None], tf.float32),
        tf.constant(_luminance(b)[..., None], tf.float32), max_val=1.0,
        power_factors=tuple(float(w) for w in SCALE_WEIGHTS), filter_size=WINDOW,
        filter_sigma=WINDOW_SIGMA).numpy()
    assert np.allclose(ms_ssim_batch(a, b), theirs, atol=3e-5)  # theirs is float32
