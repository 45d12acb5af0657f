"""Tests of the procedural face generator (zspace.data.synthetic)."""

import numpy as np
import pytest

from zspace.config import DataConfig
from zspace.data.synthetic import (
    ATTRIBUTE_NAMES,
    TEST_INDEX_OFFSET,
    generate,
    load_synthetic,
    render_face,
)


def test_same_seed_and_index_give_the_same_face():
    first_image, first_factors = render_face(7, 3, 32)
    second_image, second_factors = render_face(7, 3, 32)
    np.testing.assert_array_equal(first_image, second_image)
    assert first_factors == second_factors


def test_another_seed_or_index_gives_another_face():
    image, factors = render_face(7, 3, 32)
    for other_seed, other_index in ((8, 3), (7, 4)):
        other_image, other_factors = render_face(other_seed, other_index, 32)
        assert not np.array_equal(image, other_image)
        assert factors != other_factors


def test_a_batch_equals_faces_rendered_one_by_one_out_of_order():
    images, attributes = generate(4, 24, seed=5, start=10, workers=1, progress=False)
    for row in (3, 0, 2):
        image, factors = render_face(5, 10 + row, 24)
        np.testing.assert_array_equal(images[row], image)
        expected = np.array(list(factors.values()), dtype=np.float32)
        np.testing.assert_array_equal(attributes[row], expected)


def test_the_number_of_workers_does_not_change_the_output():
    single = generate(12, 16, seed=1, workers=1, progress=False)
    parallel = generate(12, 16, seed=1, workers=2, progress=False)
    np.testing.assert_array_equal(single[0], parallel[0])
    np.testing.assert_array_equal(single[1], parallel[1])


@pytest.mark.parametrize("size", [32, 64, 96, 128])
def test_shapes_and_types_at_any_size(size):
    image, factors = render_face(0, 0, size)
    assert image.shape == (size, size, 3) and image.dtype == np.uint8
    assert tuple(factors) == ATTRIBUTE_NAMES
    assert all(isinstance(value, float) for value in factors.values())
    # A face, not a flat fill: the picture has real contrast.
    assert image.std() > 20
    images, attributes = generate(2, size, seed=0, workers=1, progress=False)
    assert images.shape == (2, size, size, 3) and images.dtype == np.uint8
    assert attributes.shape == (2, len(ATTRIBUTE_NAMES))
    assert attributes.dtype == np.float32


def test_attributes_vary_across_a_batch():
    _, attributes = generate(96, 8, seed=3, workers=1, progress=False)
    column = dict(zip(ATTRIBUTE_NAMES, attributes.T, strict=True))
    for flag in ("glasses", "beard", "hair_long", "hair_short", "bangs", "mouth_open"):
        assert 0 < column[flag].mean() < 1, flag
    for continuous in ("skin_tone", "face_width", "rotation", "smile", "light_x"):
        assert column[continuous].std() > 0, continuous
    # Each one-hot group names exactly one category per face.
    for group in (("eyes_brown", "eyes_blue", "eyes_green", "eyes_gray"),
                  ("hair_bald", "hair_short", "hair_long"),
                  ("hair_black", "hair_brown", "hair_blond", "hair_gray", "hair_red")):
        np.testing.assert_array_equal(sum(column[name] for name in group), 1.0)


def test_a_flag_changes_the_picture_where_it_should():
    # The same face with and without glasses is not available, so compare the eye
    # band's darkness over many faces: sunglasses make it clearly darker.
    images, attributes = generate(160, 32, seed=11, workers=1, progress=False)
    sunglasses = attributes[:, ATTRIBUTE_NAMES.index("sunglasses")] == 1
    eye_band = images[:, 12:16, 8:24].mean(axis=(1, 2, 3))
    assert sunglasses.any() and not sunglasses.all()
    assert eye_band[sunglasses].mean() < eye_band[~sunglasses].mean() - 20


def test_load_synthetic_counts_card_and_stable_hash():
    config = DataConfig(image_size=16, num_train=20, num_test=6, seed=4, workers=1)
    data = load_synthetic(config, progress=False)
    assert data.train.shape == (20, 16, 16, 3) and data.test.shape == (6, 16, 16, 3)
    assert data.train_attributes.shape == (20, len(ATTRIBUTE_NAMES))
    assert data.test_attributes.shape == (6, len(ATTRIBUTE_NAMES))
    card = data.card
    assert (card.source, card.num_train, card.num_test, card.image_size) == (
        "synthetic", 20, 6, 16)
    assert card.attribute_names == ATTRIBUTE_NAMES
    assert "seed 4" in card.location and "4x" in card.preparation
    again = load_synthetic(config, progress=False)
    assert again.card.content_hash == card.content_hash
    other = load_synthetic(DataConfig(image_size=16, num_train=20, num_test=6, seed=5,
                                      workers=1), progress=False)
    assert other.card.content_hash != card.content_hash


def test_test_set_is_fixed_and_apart_from_the_training_set():
    small_config = DataConfig(image_size=16, num_train=8, num_test=5, workers=1)
    small = load_synthetic(small_config, progress=False)
    large = load_synthetic(DataConfig(image_size=16, num_train=30, num_test=5,
                                      workers=1), progress=False)
    np.testing.assert_array_equal(small.test, large.test)
    first_test_face = render_face(small_config.seed, TEST_INDEX_OFFSET, 16)[0]
    np.testing.assert_array_equal(small.test[0], first_test_face)
    train_bytes = {image.tobytes() for image in large.train}
    assert not any(image.tobytes() in train_bytes for image in large.test)


def test_bad_arguments_raise_value_errors():
    with pytest.raises(ValueError, match="seed"):
        render_face(-1, 0, 32)
    with pytest.raises(ValueError, match="count"):
        generate(-3, 32, seed=0, progress=False)
