"""tf.data pipelines over uint8 image arrays, converted to float per batch.

The data set is never copied whole, neither to float nor into the graph: the pipeline
shuffles *indices* and gathers each batch from the (possibly memory-mapped) uint8
array with numpy, so 170,000 CelebA images at 96 px (4.7 GB) stream like 384 tiny
ones. Only a batch at a time becomes float32 in [0, 1].

Shuffling is stateless and keyed by (seed, epoch): epoch ``e`` sees the same order
whether the run started at epoch 0 or resumed at ``e``. That is what lets a resumed
run end with the same weights as an uninterrupted one.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import tensorflow as tf

# Batches prepared ahead of the training step (a gather is ~1 ms; one is plenty).
PREFETCH = 2


def steps_per_epoch(num_images: int, batch_size: int) -> int:
    """Full batches per epoch (training drops the remainder: one shape, one graph)."""
    return max(num_images // batch_size, 1)


def training_batches(
    images: np.ndarray,
    batch_size: int,
    seed: int,
    first_epoch: int,
    num_epochs: int,
    targets: Callable[[tf.Tensor, tf.Tensor], tuple] | None = None,
    extra: np.ndarray | None = None,
) -> tf.data.Dataset:
    """Shuffled batches for epochs ``first_epoch`` .. ``num_epochs - 1``, one stream.

    Args:
        images: (n, h, w, c) uint8, in memory or memory-mapped.
        batch_size: Global batch size.
        seed: Shuffling seed.
        first_epoch: First epoch to produce (a resumed run starts past 0).
        num_epochs: Epochs in the whole run.
        targets: Optional ``f(float_images, extra_rows) -> (inputs, targets)`` applied
            per batch (the judge's labels); without it a batch is the images alone.
        extra: (n, k) rows gathered with the images and passed to ``targets``.

    Returns:
        A dataset of ``steps_per_epoch(n, batch_size) * (num_epochs - first_epoch)``
        batches: float32 (batch, h, w, c) images in [0, 1], or ``targets``' output.
    """
    num_images = len(images)
    steps = steps_per_epoch(num_images, batch_size)
    batch = min(batch_size, num_images)

    def epoch_batches(epoch):
        order = tf.random.experimental.stateless_shuffle(
            tf.range(num_images, dtype=tf.int64),
            seed=tf.stack([tf.constant(seed, tf.int64), epoch]))
        # (steps, batch) index blocks; the remainder of the epoch is dropped.
        blocks = tf.reshape(order[: steps * batch], (steps, batch))
        return tf.data.Dataset.from_tensor_slices(blocks)

    indices = tf.data.Dataset.range(first_epoch, num_epochs).flat_map(epoch_batches)
    return _gather(indices, images, targets, extra, batch)


def evaluation_batches(
    images: np.ndarray,
    batch_size: int,
    targets: Callable[[tf.Tensor, tf.Tensor], tuple] | None = None,
    extra: np.ndarray | None = None,
) -> tf.data.Dataset:
    """Every image once, in order, in batches (the last may be smaller).

    Args:
        images: (n, h, w, c) uint8.
        batch_size: Batch size.
        targets: As for :func:`training_batches`.
        extra: As for :func:`training_batches`.

    Returns:
        A dataset of float32 image batches in [0, 1] (or ``targets``' output).
    """
    indices = tf.data.Dataset.range(len(images)).batch(batch_size)
    return _gather(indices, images, targets, extra)


def _gather(indices: tf.data.Dataset, images: np.ndarray, targets, extra,
            batch_size: int | None = None):
    image_shape = tuple(images.shape[1:])
    extra_width = None if extra is None else extra.shape[1]

    def gather(index):
        # Sorted indices read a memory map front to back.
        index = np.sort(index)
        rows = images[index]
        if extra is None:
            return rows, np.zeros((len(index), 0), np.float32)
        return rows, np.asarray(extra[index], np.float32)

    # Plain graph code: skipping autograph also skips its re-reading of the source.
    @tf.autograph.experimental.do_not_convert
    def load(index):
        rows, extra_rows = tf.numpy_function(gather, [index], (tf.uint8, tf.float32),
                                             stateful=False)
        rows.set_shape((batch_size, *image_shape))
        extra_rows.set_shape((batch_size, extra_width or 0))
        batch = tf.cast(rows, tf.float32) / 255.0  # (batch, h, w, c) in [0, 1]
        if targets is None:
            return batch
        return targets(batch, extra_rows)

    options = tf.data.Options()
    options.deterministic = True
    # The pipeline starts from index ranges, not files: shard by data across workers.
    options.experimental_distribute.auto_shard_policy = (
        tf.data.experimental.AutoShardPolicy.DATA)
    return indices.map(load).prefetch(PREFETCH).with_options(options)
