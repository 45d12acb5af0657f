"""The judge: a network trained on the data set alone, whose features the metrics use.

The quality metrics (``zspace/latent/metrics.py``) measure images in the feature space
of a network that knows faces but none of the models it judges. No Inception weights
can be fetched, so the judge is trained here, on the training images, with one of two
targets:

- ``attributes`` (when the dataset card names attributes: the synthetic faces'
  factors, CelebA's 40 attributes): regress every attribute, each standardised to
  mean 0 and standard deviation 1 over the training set, with a squared error.
  Binary attributes become two-valued targets; the regression treats all alike.
- ``rotation`` (when it has none): the self-supervised task of Gidaris et al. (2018):
  each image is shown turned by 0, 90, 180 or 270 degrees and the judge names the
  turn. Telling which way is up needs the layout of a face (eyes above mouth, hair
  on top), which is what the metrics should look at; a pixel-level target such as a
  thumbnail would instead reward the blur that separates generated faces from real.

The network is a small convolutional stack, global average pooling and a Dense
``features`` layer of ``JudgeConfig.feature_dim`` units (no activation: the features
the Frechet distance models as Gaussian), followed by an activation and the head.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from zspace.config import JudgeConfig
from zspace.data.dataset import Dataset
from zspace.errors import ModelError
from zspace.networks.architecture import BATCH_NORM_MOMENTUM, LEAKY_SLOPE
from zspace.networks.autoencoders import step_logs
from zspace.networks.layers import FusedBatchNormalization

FILTERS = (32, 64, 128, 256)
FEATURES_LAYER = "features"
NUM_ROTATIONS = 4


def build_judge(config: JudgeConfig, image_shape: tuple[int, int, int],
                num_outputs: int, dtype: str = "float32",
                synchronized_batch_norm: bool = False) -> keras.Model:
    """Build the judge network.

    Args:
        config: The judge configuration (``feature_dim``).
        image_shape: ``(size, size, channels)`` of float32 images in [0, 1].
        num_outputs: Attributes to regress, or 4 rotation logits.
        dtype: A Keras dtype policy; the features and the head are float32.
        synchronized_batch_norm: Batch statistics over all replicas.

    Returns:
        A functional :class:`Judge` named ``judge``: images to (n, num_outputs).
    """
    images = keras.Input(image_shape, name="images")
    x = images
    for i, filters in enumerate(FILTERS):
        x = keras.layers.Conv2D(filters, 3, strides=2, padding="same", dtype=dtype,
                                name=f"conv_{i}")(x)
        x = FusedBatchNormalization(momentum=BATCH_NORM_MOMENTUM,
                                    synchronized=synchronized_batch_norm, dtype=dtype,
                                    name=f"batch_norm_{i}")(x)
        x = keras.layers.LeakyReLU(LEAKY_SLOPE, dtype=dtype, name=f"leaky_relu_{i}")(x)
    x = keras.layers.GlobalAveragePooling2D(dtype=dtype, name="pool")(x)
    features = keras.layers.Dense(config.feature_dim, dtype="float32",
                                  name=FEATURES_LAYER)(x)
    x = keras.layers.LeakyReLU(LEAKY_SLOPE, dtype="float32",
                               name="features_activation")(features)
    outputs = keras.layers.Dense(num_outputs, dtype="float32", name="head")(x)
    return Judge(images, outputs, name="judge")


@keras.saving.register_keras_serializable(package="zspace")
class Judge(keras.Model):
    """The judge: a functional model whose steps work under every strategy."""

    def train_step(self, data):
        return step_logs(super().train_step(data))

    def test_step(self, data):
        return step_logs(super().test_step(data))


def feature_extractor(judge: keras.Model) -> keras.Model:
    """The judge up to its feature layer.

    Args:
        judge: A trained judge (from ``train_or_load("judge", ...)``).

    Returns:
        A model mapping float32 images in [0, 1] (n, h, w, c) to float32 features
        (n, feature_dim). It shares the judge's weights.
    """
    return keras.Model(judge.input, judge.get_layer(FEATURES_LAYER).output,
                       name="judge_features")


def attribute_scaling(attributes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-column mean and standard deviation (1 where a column is constant)."""
    values = np.asarray(attributes, np.float64)
    mean = values.mean(axis=0)
    std = values.std(axis=0)
    std[std < 1e-8] = 1.0
    return mean.astype(np.float32), std.astype(np.float32)


def standardised(attributes: np.ndarray, mean: np.ndarray,
                 std: np.ndarray) -> np.ndarray:
    """(n, k) float32 attributes scaled to mean 0 and standard deviation 1."""
    return ((np.asarray(attributes, np.float32) - mean) / std).astype(np.float32)


def attribute_targets(images: tf.Tensor, attributes: tf.Tensor):
    """Batch map for the attribute task: ``(images, standardised attributes)``."""
    return images, attributes


def rotation_targets(images: tf.Tensor, _unused: tf.Tensor):
    """Batch map for the rotation task: image ``i`` of a batch turns by ``i % 4``.

    Batches are reshuffled every epoch, so every image meets every turn.

    Returns:
        ``(rotated images (n, h, w, c), turns (n,) int32)``.
    """
    turns = tf.range(tf.shape(images)[0]) % NUM_ROTATIONS
    rotated = [tf.image.rot90(images, k) for k in range(NUM_ROTATIONS)]
    choice = tf.reshape(turns, (-1, 1, 1, 1))
    out = rotated[0]
    for k in range(1, NUM_ROTATIONS):
        out = tf.where(choice == k, rotated[k], out)
    return out, turns


def compile_judge(judge: keras.Model, task: str,
                  optimizer: keras.optimizers.Optimizer) -> None:
    """Compile for ``task``: squared error on attributes, or rotation cross-entropy."""
    if task == "attributes":
        judge.compile(optimizer=optimizer, loss="mse", jit_compile=False)
    else:
        judge.compile(
            optimizer=optimizer,
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
            jit_compile=False,
        )


def training_targets(task: str | None, dataset: Dataset,
                     held_out: np.ndarray | None = None):
    """The batch map and extra arrays that turn image batches into judge examples.

    Args:
        task: ``attributes``, ``rotation``, or None (an AE/VAE: images alone).
        dataset: The data set.
        held_out: The attributes of the held-out images the stopping rule reads
            (default: the test split's).

    Returns:
        ``(targets, train_extra, held_out_extra)`` for ``zspace.training.inputs``'
        ``training_batches`` and ``evaluation_batches``.
    """
    if task == "attributes":
        train, test = attributes(dataset)
        held_out = test if held_out is None else held_out
        mean, std = attribute_scaling(train)
        return (attribute_targets, standardised(train, mean, std),
                standardised(held_out, mean, std))
    if task == "rotation":
        return rotation_targets, None, None
    return None, None, None


def attributes(dataset: Dataset) -> tuple[np.ndarray, np.ndarray]:
    """The train and test attribute arrays, checked against the card's names.

    Raises:
        ModelError: They are missing or do not match the names.
    """
    train, test = dataset.train_attributes, dataset.test_attributes
    names = len(dataset.card.attribute_names)
    if train is None or test is None or train.shape[1:] != (names,) or (
            test.shape[1:] != (names,)):
        raise ModelError(
            f"judge: the dataset card names {names} attributes, but the attribute "
            f"arrays are {None if train is None else train.shape} (train) and "
            f"{None if test is None else test.shape} (test)")
    return train, test
