"""The BCE floor: what a perfect reconstruction still scores, and gains above it."""

import numpy as np
import pytest
import tensorflow as tf

from zspace.networks import autoencoders
from zspace.training.convergence import bce_floor, gain_above


def test_the_floor_is_the_loss_of_a_perfect_copy():
    rng = np.random.default_rng(3)
    images = rng.uniform(0.05, 0.95, (7, 8, 8, 3)).astype(np.float32)
    perfect = autoencoders.reconstruction_loss(tf.constant(images), tf.constant(images))
    expected = float(np.mean(perfect))
    assert bce_floor(images, batch=3) == pytest.approx(expected, rel=1e-5)
    # Any other reconstruction costs more.
    blurred = np.full_like(images, images.mean())
    worse = autoencoders.reconstruction_loss(tf.constant(images), tf.constant(blurred))
    assert float(np.mean(worse)) > bce_floor(images)


def test_eight_bit_images_are_scaled_like_the_training_input():
    pixels = np.random.default_rng(5).integers(0, 256, (3, 4, 4, 3), dtype=np.uint8)
    assert bce_floor(pixels) == pytest.approx(bce_floor(pixels / 255.0))


def test_the_floor_of_black_and_white_images_is_zero_and_of_grey_is_ln2():
    binary = np.random.default_rng(4).integers(0, 2, (5, 4, 4, 3)).astype(np.float32)
    assert bce_floor(binary) == 0.0
    grey = np.full((2, 4, 4, 3), 0.5, np.float32)
    assert bce_floor(grey) == pytest.approx(16 * np.log(2))


@pytest.mark.parametrize("images", [np.zeros((0, 4, 4, 3)), np.zeros((4, 4, 3)),
                                    np.full((1, 2, 2, 3), 1.5)])
def test_the_floor_refuses_what_is_not_a_batch_of_images_in_0_1(images):
    with pytest.raises(ValueError, match="bce_floor needs"):
        bce_floor(images)


def test_gain_above_the_floor():
    assert gain_above(2272.0, 2269.0, 2237.0) == pytest.approx(3 / 35)
    assert gain_above(2237.0, 2237.0, 2237.0) == 0.0
