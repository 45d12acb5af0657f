"""Run encoders, decoders and feature extractors over data sets in batches.

Datasets are uint8 NHWC arrays, possibly read-only memmaps of tens of thousands of
images. Only one batch at a time is converted to float32 in [0, 1], so memory stays at
one batch of float images whatever the size of the data set.

Every model output a notebook sees passes through here: encoders' z-points, decoders'
images (before their rounding to uint8) and the judge's features. That makes this the
place of a test hook: with ``ZSPACE_OUTPUT_NOISE`` set to a number (e.g. ``1e-6``),
each output value is multiplied by 1 + that number times a standard normal draw
(seeded, so two runs agree), as if another CPU or BLAS had computed it. The figure
stability test (``tests/test_figure_stability.py``) runs the notebooks so and expects
every figure within the figure diff's tolerance. Unset or empty, nothing changes.
"""

from __future__ import annotations

import os
import sys
import weakref

import numpy as np

from zspace.errors import DataError

# The test hook: a relative noise on every model output (see the module docstring).
NOISE_VARIABLE = "ZSPACE_OUTPUT_NOISE"


def _check_images(images: np.ndarray) -> None:
    if images.dtype != np.uint8 or images.ndim != 4:
        raise DataError(
            f"expected uint8 images of shape (n, h, w, channels), got {images.dtype} "
            f"{images.shape}"
        )


def _check_batch_size(batch_size: int) -> None:
    if int(batch_size) < 1:
        raise DataError(f"batch_size must be at least 1, got {batch_size}")


# Each Keras model's forward pass traced once as a graph (see ``inference``).
_TRACED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def inference(model):
    """``model``'s forward pass in inference mode, as a function of one batch.

    A Keras model is traced once into a TensorFlow graph (``tf.function``, shapes
    relaxed so a short last batch does not trace it again). On the CPU that runs
    about 1.75 times as fast as calling the model eagerly, batch by batch, and gives
    the same bits (``benchmarks/inference.py`` checks both). Anything else, such as
    a plain function in a test, is called as it is.
    """
    keras = sys.modules.get("keras")
    if keras is None or not isinstance(model, keras.Model):
        return lambda batch: model(batch, training=False)
    traced = _TRACED.get(model)
    if traced is None:
        import tensorflow as tf

        traced = tf.function(lambda batch: model(batch, training=False),
                             reduce_retracing=True)
        _TRACED[model] = traced
    return traced


def _first_output(outputs) -> np.ndarray:
    # A VAE encoder returns [z_mean, z_log_var]; the z-point is z_mean.
    if isinstance(outputs, list | tuple):
        outputs = outputs[0]
    return np.asarray(outputs)


def output_noise() -> float:
    """The relative noise of the ``ZSPACE_OUTPUT_NOISE`` test hook (0: off).

    Raises:
        DataError: The variable is set to something other than a number >= 0.
    """
    text = os.environ.get(NOISE_VARIABLE, "").strip()
    try:
        size = float(text) if text else 0.0
    except ValueError:
        size = -1.0
    if not (size >= 0 and np.isfinite(size)):
        raise DataError(f"{NOISE_VARIABLE}={text!r}: expected a number >= 0, e.g. 1e-6")
    return size


def _last_bits(values: np.ndarray, start: int) -> np.ndarray:
    """``values`` with the test hook's relative noise, if it is on; same dtype.

    ``start`` (the batch's first row) seeds the draws, so every run perturbs a
    given output alike.
    """
    size = output_noise()
    if size == 0 or values.size == 0:
        return values
    draws = np.random.default_rng([start, values.size]).standard_normal(values.shape)
    return (values * (1.0 + size * draws)).astype(values.dtype)


def predict_in_batches(model, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Apply a Keras model to uint8 images, one float32 batch at a time.

    Args:
        model: A ``keras.Model`` taking float32 images in [0, 1] of shape (n, h, w, c).
            If it returns a list (a VAE encoder: ``[z_mean, z_log_var]``), the first
            output is kept.
        images: uint8 array (n, h, w, c); a read-only memmap is fine.
        batch_size: Images converted and passed to the model at once.

    Returns:
        float32 array (n, ...) with the model's (first) output for every image.

    Raises:
        DataError: If ``images`` is not a 4-d uint8 array or ``batch_size`` < 1.
    """
    _check_images(images)
    _check_batch_size(batch_size)
    forward = inference(model)
    chunks = []
    for start in range(0, len(images), batch_size):
        batch = images[start : start + batch_size].astype(np.float32) / 255.0
        output = _first_output(forward(batch)).astype(np.float32)
        chunks.append(_last_bits(output, start))
    if not chunks:
        # Empty data set: ask the model for its output width with a zero-length batch.
        empty = np.zeros((0, *images.shape[1:]), np.float32)
        return _first_output(forward(empty)).astype(np.float32)
    return np.concatenate(chunks)


def encode(encoder, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Map images to their z-points: the AE's ``z`` or the VAE's ``z_mean``.

    Args:
        encoder: The model's ``.encoder``; float32 images in [0, 1] -> ``z`` (AE) or
            ``[z_mean, z_log_var]`` (VAE).
        images: uint8 array (n, h, w, 3).
        batch_size: Images encoded at once.

    Returns:
        float32 array (n, z_dim).
    """
    return predict_in_batches(encoder, images, batch_size)


def decode(decoder, z: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Turn z-vectors into uint8 images with the model's decoder.

    Args:
        decoder: The model's ``.decoder``: float32 (n, z_dim) -> float32 images in
            [0, 1].
        z: Array (n, z_dim) of z-vectors.
        batch_size: Vectors decoded at once.

    Returns:
        uint8 array (n, h, w, 3); values are rounded to the nearest of 0..255.

    Raises:
        DataError: If ``z`` is not 2-d or ``batch_size`` < 1.
    """
    z = np.asarray(z, dtype=np.float32)
    if z.ndim != 2:
        raise DataError(f"expected z-vectors of shape (n, z_dim), got {z.shape}")
    _check_batch_size(batch_size)
    forward = inference(decoder)
    chunks = []
    for start in range(0, max(len(z), 1), batch_size):
        images = np.asarray(forward(z[start : start + batch_size]))
        images = _last_bits(images, start)
        chunks.append(np.clip(images * 255.0 + 0.5, 0, 255).astype(np.uint8))
    return np.concatenate(chunks)
