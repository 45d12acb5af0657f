"""The blog's convolutional encoder and decoder (``articles/A-vae-faces.md``, "The
models"), built from a ModelConfig.

One builder serves the AE, the VAE and the wide AE. The encoder is ``n`` blocks of
Conv2D, batch norm, activation and dropout, then a Dense head: one output ``z`` for
the AE, two (``z_mean``, ``z_log_var``) for the VAE. The decoder mirrors it: Dense,
reshape to the encoder's last feature map, then ``n`` up-sampling steps
(Conv2DTranspose, or UpSampling2D and Conv2D) back to the image, and a sigmoid.

Both are plain chains of layers (no branches, no ``Lambda``), so they serialise with
``safe_mode=True``. Under mixed precision the layers compute in the policy's dtype,
but the heads that feed the losses (``z``/``z_mean``/``z_log_var`` and the decoder's
last convolution and sigmoid) stay float32.

Given ``config.speed`` options (``zspace.networks.speed``), the builders put in their
layer classes: batch norm and a leaky ReLU as one ``BatchNormLeakyReLU``
(``fuse_batch_norm``), the decoder's last transposed convolution as a
``SubpixelConv2DTranspose`` (``subpixel_output``). Either holds the same weights,
under the same names, as the layers it stands for.
"""

from __future__ import annotations

import logging
from pathlib import Path

import keras

from zspace.config import ModelConfig, SpeedConfig
from zspace.errors import ConfigError
from zspace.networks.layers import FusedBatchNormalization
from zspace.networks.speed import (
    BatchNormLeakyReLU,
    SubpixelConv2DTranspose,
    subpixel_applies,
)

log = logging.getLogger(__name__)

# Keras' LeakyReLU default, written out so the architecture does not move with Keras.
LEAKY_SLOPE = 0.3
# Inference uses the moving batch statistics. Keras' 0.99 averages over ~100 steps,
# which lag behind weights that still change fast in the few epochs of a CPU run
# (a wide AE after one epoch: test MSE 0.044 in inference mode against 0.014 in
# training mode); 0.9 tracks the last ~10 batches (1,280 images), plenty for a mean.
BATCH_NORM_MOMENTUM = 0.9
# Name of the decoder's final sigmoid (the layer before it yields the logits).
SIGMOID = "images"


def feature_sizes(image_size: int, config: ModelConfig) -> list[int]:
    """Side of the feature map after each encoder convolution.

    Args:
        image_size: Side of the square input images.
        config: The model configuration.

    Returns:
        ``[image_size, after layer 1, ..., after layer n]``.

    Raises:
        ConfigError: A layer would shrink the map to nothing.
    """
    sizes = [image_size]
    for layer, (kernel, stride) in enumerate(zip(config.kernels, config.strides,
                                                 strict=True)):
        size = sizes[-1]
        if config.padding == "same":
            size = -(-size // stride)  # ceil
        else:
            size = (size - kernel) // stride + 1
        if size < 1:
            raise ConfigError(
                f"models: encoder layer {layer + 1} (kernel {kernel}, stride {stride}, "
                f"padding {config.padding}) leaves no pixels of a {image_size} px image"
            )
        sizes.append(size)
    return sizes


def build_encoder(
    config: ModelConfig,
    image_shape: tuple[int, int, int],
    dtype: str = "float32",
    seed: int = 1,
    synchronized_batch_norm: bool = False,
    speed: SpeedConfig | None = None,
    kernel_dir: Path | None = None,
) -> keras.Model:
    """Build the encoder.

    Args:
        config: The model configuration (its ``kind`` picks the head).
        image_shape: ``(size, size, channels)`` of the float32 input images in [0, 1].
        dtype: A Keras dtype policy (``float32``, ``mixed_bfloat16``, ...).
        seed: Seed of the dropout layers.
        synchronized_batch_norm: Batch statistics over all replicas (tf.distribute).
        speed: Speed options to build in (``fuse_batch_norm``); None: none.
        kernel_dir: Where the fused batch norm kernel is compiled (needed with
            ``speed.fuse_batch_norm``).

    Returns:
        A functional model named ``encoder``: images (n, h, w, c) to ``z`` (n, z_dim)
        for ``kind="ae"``, to ``[z_mean, z_log_var]`` (each (n, z_dim)) for ``"vae"``.
    """
    feature_sizes(image_shape[0], config)  # fail early on impossible shapes
    fused_kernel_dir = _fused_kernel_dir(speed, kernel_dir)
    images = keras.Input(image_shape, name="images")
    x = images
    for i, (filters, kernel, stride) in enumerate(
        zip(config.filters, config.kernels, config.strides, strict=True)
    ):
        # A bias right before batch norm is cancelled by its mean: leave it out.
        x = keras.layers.Conv2D(filters, kernel, strides=stride, padding=config.padding,
                                use_bias=not config.batch_norm, dtype=dtype,
                                name=f"conv_{i}")(x)
        x = _normalise_and_activate(x, config, dtype, f"{i}", synchronized_batch_norm,
                                    fused_kernel_dir)
        if config.dropout > 0:
            x = keras.layers.Dropout(config.dropout, seed=seed + i, dtype=dtype,
                                     name=f"dropout_{i}")(x)
    x = keras.layers.Flatten(dtype=dtype, name="flatten")(x)
    if config.kind == "ae":
        outputs = keras.layers.Dense(config.z_dim, dtype="float32", name="z")(x)
    else:
        outputs = [
            keras.layers.Dense(config.z_dim, dtype="float32", name="z_mean")(x),
            keras.layers.Dense(config.z_dim, dtype="float32", name="z_log_var")(x),
        ]
    return keras.Model(images, outputs, name="encoder")


def build_decoder(
    config: ModelConfig,
    image_shape: tuple[int, int, int],
    dtype: str = "float32",
    seed: int = 1,
    synchronized_batch_norm: bool = False,
    speed: SpeedConfig | None = None,
    kernel_dir: Path | None = None,
) -> keras.Model:
    """Build the decoder, the encoder's mirror image.

    Args:
        config: The model configuration.
        image_shape: ``(size, size, channels)`` of the images to produce.
        dtype: A Keras dtype policy; the last convolution and the sigmoid are float32.
        seed: Seed of the dropout layers.
        synchronized_batch_norm: Batch statistics over all replicas (tf.distribute).
        speed: Speed options to build in (``fuse_batch_norm``,
            ``subpixel_output``); None: none.
        kernel_dir: Where the fused batch norm kernel is compiled (needed with
            ``speed.fuse_batch_norm``).

    Returns:
        A functional model named ``decoder``: z (n, z_dim) float32 to images
        (n, h, w, c) float32 in [0, 1].
    """
    sizes = feature_sizes(image_shape[0], config)
    channels = image_shape[-1]
    # Filters and kernels run backwards; the last step makes the colour channels.
    filters = [*reversed(config.filters[:-1]), channels]
    steps = list(zip(filters, reversed(config.kernels), reversed(config.strides),
                     reversed(sizes[:-1]), strict=True))
    fused_kernel_dir = _fused_kernel_dir(speed, kernel_dir)
    subpixel = speed is not None and speed.subpixel_output
    if subpixel and config.decoder != "transpose":
        log.info("subpixel_output: the decoder up-samples without a transposed "
                 "convolution; skipped")
    z = keras.Input((config.z_dim,), name="z")
    x = keras.layers.Dense(sizes[-1] * sizes[-1] * config.filters[-1], dtype=dtype,
                           name="dense")(z)
    x = keras.layers.Reshape((sizes[-1], sizes[-1], config.filters[-1]), dtype=dtype,
                             name="reshape")(x)
    for i, (n_filters, kernel, stride, target) in enumerate(steps):
        last = i == len(steps) - 1
        layer_dtype = "float32" if last else dtype
        bias = last or not config.batch_norm
        if config.decoder == "transpose":
            x = _transpose_step(x, n_filters, kernel, stride, target, config.padding,
                                layer_dtype, bias, f"deconv_{i}", subpixel and last)
        else:
            x = _upsample_step(x, n_filters, kernel, stride, target, layer_dtype, bias,
                               i)
        if last:
            break
        x = _normalise_and_activate(x, config, dtype, f"d{i}", synchronized_batch_norm,
                                    fused_kernel_dir)
        if config.dropout > 0:
            x = keras.layers.Dropout(config.dropout, seed=seed + 100 + i, dtype=dtype,
                                     name=f"dropout_d{i}")(x)
    # The last convolution's output is the logits; the losses read them directly.
    images = keras.layers.Activation("sigmoid", dtype="float32", name=SIGMOID)(x)
    return keras.Model(z, images, name="decoder")


def _fused_kernel_dir(speed: SpeedConfig | None, kernel_dir: Path | None):
    """The kernel folder where batch norm and leaky ReLU fuse, else None."""
    if speed is None or not speed.fuse_batch_norm:
        return None
    if kernel_dir is None:
        raise ValueError("speed.fuse_batch_norm needs the kernel folder (kernel_dir)")
    return kernel_dir


def _normalise_and_activate(x, config: ModelConfig, dtype: str, suffix: str,
                            synchronized: bool, fused_kernel_dir: Path | None):
    if (config.batch_norm and config.activation == "leaky_relu"
            and fused_kernel_dir is not None):
        # One layer where two were, named as the batch norm: the same weight paths.
        return BatchNormLeakyReLU(LEAKY_SLOPE, fused_kernel_dir,
                                  momentum=BATCH_NORM_MOMENTUM,
                                  synchronized=synchronized, dtype=dtype,
                                  name=f"batch_norm_{suffix}")(x)
    if config.batch_norm:
        x = FusedBatchNormalization(momentum=BATCH_NORM_MOMENTUM,
                                    synchronized=synchronized, dtype=dtype,
                                    name=f"batch_norm_{suffix}")(x)
    if config.activation == "leaky_relu":
        return keras.layers.LeakyReLU(LEAKY_SLOPE, dtype=dtype,
                                      name=f"leaky_relu_{suffix}")(x)
    return keras.layers.Activation(config.activation, dtype=dtype,
                                   name=f"{config.activation}_{suffix}")(x)


def _transpose_step(x, filters, kernel, stride, target, padding, dtype, bias, name,
                    subpixel=False):
    # Without output_padding, Conv2DTranspose yields size * stride (same) or
    # (size - 1) * stride + max(kernel, stride) (valid). Where that misses the
    # encoder's size (odd sizes, valid padding), output_padding adds the rest.
    size = x.shape[1]
    natural = size * stride if padding == "same" else (
        (size - 1) * stride + max(kernel, stride))
    output_padding = None
    if natural != target:
        base = (size - 1) * stride + kernel
        if padding == "same":
            base -= 2 * (kernel // 2)
        output_padding = target - base
        if not 0 <= output_padding < stride:
            raise ConfigError(
                f"models: the decoder cannot grow a {size} px map to {target} px "
                f"with kernel {kernel}, stride {stride}, padding {padding}"
            )
    layer = keras.layers.Conv2DTranspose
    if subpixel and subpixel_applies(filters, stride, padding, output_padding, dtype):
        layer = SubpixelConv2DTranspose
    elif subpixel:
        log.info("subpixel_output: %s (%d filters, stride %d, %s padding) has no "
                 "sub-pixel form here; skipped", name, filters, stride, padding)
    return layer(
        filters, kernel, strides=stride, padding=padding,
        output_padding=output_padding, use_bias=bias, dtype=dtype, name=name,
    )(x)


def _upsample_step(x, filters, kernel, stride, target, dtype, bias, index):
    x = keras.layers.UpSampling2D(stride, dtype=dtype, name=f"upsample_{index}")(x)
    size = x.shape[1]
    # Odd sizes or valid padding: trim or pad at the far edge to the encoder's size.
    if size > target:
        x = keras.layers.Cropping2D(((0, size - target), (0, size - target)),
                                    dtype=dtype, name=f"crop_{index}")(x)
    elif size < target:
        x = keras.layers.ZeroPadding2D(((0, target - size), (0, target - size)),
                                       dtype=dtype, name=f"pad_{index}")(x)
    return keras.layers.Conv2D(filters, kernel, padding="same", use_bias=bias,
                               dtype=dtype, name=f"conv_d{index}")(x)
