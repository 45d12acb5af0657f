"""Opt-in training speed-ups (``config.speed``), applied to a compiled model before fit.

Each option swaps a piece of the training step for a cheaper formulation of the same
arithmetic. Results then differ from the plain step in the last bits (summation
order), so every option is off by default and, when on, changes the model's key
(``keys.model_spec`` adds the speed section and this module's code digest).

- ``fused_loss``: the reconstruction loss as one flat sum per image with a
  hand-written gradient. The plain loss first averages (n, h, w, 3) over its three
  channels, a reduction over a 3-wide inner axis that TensorFlow's CPU kernel walks
  element by element, tiles it back in the gradient, and spends about ten
  element-wise passes on cross-entropy from logits; here it is
  ``softplus(l) - l * y`` with the gradient ``sigmoid(l) - y``.
- ``fused_adam``: Adam's update as TensorFlow's single ``ResourceApplyAdam`` kernel
  per variable instead of a dozen element-wise ops (same formula, same order).
- ``fuse_batch_norm``: batch norm and the leaky ReLU after it as one kernel each way
  (``bn_leaky_relu.cc``, built with the system's C++ compiler on first use): one
  sweep over the feature map for the per-channel sums and one element-wise sweep,
  3 passes forward and 5 backward where TensorFlow's four kernels make 5 and 8.
  Neither oneDNN (batch norm fuses with ReLU only) nor XLA (its CPU reductions ran
  2.5 times slower than oneDNN's batch norm) offered that fusion.
- ``subpixel_output``: the decoder's last transposed convolution, whose few output
  channels oneDNN handles poorly, as a stride-1 convolution into ``stride**2`` times
  the channels and a depth-to-space shuffle (the sub-pixel convolution of Shi et al.,
  2016); its gradient uses the plain ops.
- ``jit_compile``: the whole step compiled by XLA. Slower on CPUs (XLA's CPU
  convolutions); there for GPUs.

Only the AE and the VAE take the options; the judge trains as configured.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import shutil
import subprocess
import types
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from zspace import paths
from zspace.config import SpeedConfig
from zspace.errors import ConfigError
from zspace.models.layers import FusedBatchNormalization

log = logging.getLogger(__name__)


def apply(model: keras.Model, speed: SpeedConfig) -> list[str]:
    """Apply the options that are on to a compiled AE or VAE, in place.

    Call after ``compile`` and before ``fit``. Weights, saving, loading and
    inference are unchanged: the options replace methods of these objects only.

    Args:
        model: A compiled ``AE`` or ``VAE`` from ``factory.compiled_model``.
        speed: The speed options.

    Returns:
        The names of the options applied. One that does not fit the model (say
        ``fused_adam`` with a loss-scaled optimizer) is skipped with a log line.
    """
    steps = {"fused_loss": _fuse_loss, "fused_adam": _fuse_adam,
             "fuse_batch_norm": _fuse_batch_norm, "subpixel_output": _subpixel_output}
    applied = [name for name, step in steps.items()
               if getattr(speed, name) and step(model)]
    if speed.jit_compile:
        model.jit_compile = True
        applied.append("jit_compile")
    if applied:
        # fit() traces its step on first use; drop any traced before the change.
        model.train_function = model.test_function = None
        log.info("%s: speed options %s", model.name, ", ".join(applied))
    return applied


# --- the reconstruction loss -------------------------------------------------------


@tf.custom_gradient
def bce_from_logits(images: tf.Tensor, logits: tf.Tensor, probabilities: tf.Tensor):
    """Per-image BCE: the channel mean of ``softplus(l) - l * y``, summed over pixels.

    Args:
        images: (n, h, w, c) float32 targets in [0, 1].
        logits: (n, h, w, c) float32 decoder logits.
        probabilities: ``sigmoid(logits)``, computed by the decoder anyway; the
            gradient reuses it.

    Returns:
        (n,) float32 losses: ``autoencoders.reconstruction_loss(kind="bce")`` up to
        rounding. Gradients flow to ``logits`` only.
    """
    scale = 1.0 / tf.cast(tf.shape(logits)[-1], logits.dtype)
    loss = tf.reduce_sum(tf.nn.softplus(logits) - logits * images, axis=(1, 2, 3))

    def gradient(upstream):  # upstream: (n,)
        per_image = tf.reshape(upstream * scale, (-1, 1, 1, 1))
        return None, (probabilities - images) * per_image, None

    return loss * scale, gradient


def _fused_reconstruction_terms(self, images, z, training):
    """``_Autoencoder._reconstruction_terms`` with the loss as one flat reduction."""
    reconstruction, logits = self._decode(z, training)
    if self.loss_kind == "bce" and logits is None:  # a decoder of another shape
        return self._plain_reconstruction_terms(images, z, training)
    squared = tf.math.squared_difference(images, reconstruction)
    if self.loss_kind == "bce":
        per_image = bce_from_logits(images, logits, reconstruction)
    else:
        channels = tf.cast(tf.shape(images)[-1], tf.float32)
        per_image = tf.reduce_sum(squared, axis=(1, 2, 3)) / channels
    return {"reconstruction_loss": tf.reduce_mean(per_image),
            "mse": tf.reduce_mean(squared)}


def _fuse_loss(model: keras.Model) -> bool:
    if not hasattr(model, "_reconstruction_terms"):
        log.info("%s: fused_loss applies to the AE and the VAE only", model.name)
        return False
    model._plain_reconstruction_terms = model._reconstruction_terms
    model._reconstruction_terms = types.MethodType(_fused_reconstruction_terms, model)
    return True


# --- Adam ---------------------------------------------------------------------------


def _fused_update_step(self, gradient, variable, learning_rate):
    """``keras.optimizers.Adam.update_step`` as one ``ResourceApplyAdam``."""
    dtype = variable.dtype
    local_step = tf.cast(self.iterations + 1, dtype)
    index = self._get_variable_index(variable)
    return tf.raw_ops.ResourceApplyAdam(
        var=variable.handle,
        m=self._momentums[index].value.handle,
        v=self._velocities[index].value.handle,
        beta1_power=tf.pow(tf.cast(self.beta_1, dtype), local_step),
        beta2_power=tf.pow(tf.cast(self.beta_2, dtype), local_step),
        lr=tf.cast(learning_rate, dtype),
        beta1=tf.cast(self.beta_1, dtype),
        beta2=tf.cast(self.beta_2, dtype),
        epsilon=tf.cast(self.epsilon, dtype),
        grad=tf.cast(gradient, dtype),
    )


def _fuse_adam(model: keras.Model) -> bool:
    optimizer = model.optimizer
    if type(optimizer) is not keras.optimizers.Adam or optimizer.amsgrad:
        log.info("%s: fused_adam needs plain Adam, not %s; skipped", model.name,
                 type(optimizer).__name__)
        return False
    if model.distribute_strategy.num_replicas_in_sync > 1:
        # Mirrored slots have one handle per device; Keras' own update handles them.
        log.info("%s: fused_adam runs on one replica only; skipped", model.name)
        return False
    optimizer.update_step = types.MethodType(_fused_update_step, optimizer)
    return True


# --- batch norm and its activation ---------------------------------------------------


KERNEL_SOURCE = Path(__file__).with_name("bn_leaky_relu.cc")


def batch_norm_leaky_relu(x, gamma, beta, epsilon: float, slope: float):
    """Training-mode batch norm followed by leaky ReLU, as one fused kernel each way.

    Args:
        x: (n, h, w, c) float32 feature map.
        gamma: (c,) scale.
        beta: (c,) offset.
        epsilon: Added to the variance.
        slope: The leaky ReLU's slope below zero.

    Returns:
        ``(outputs, mean, variance)``: (n, h, w, c) activations, and the batch mean
        and Bessel-corrected variance, (c,) each (as ``fused_batch_norm`` returns
        them; no gradient flows through these two).

    Raises:
        ConfigError: The kernel cannot be built (no C++ compiler).
    """
    ops = kernels()

    @tf.custom_gradient
    def forward(x, gamma, beta):
        outputs, mean, variance, inv_std = ops.zspace_batch_norm_leaky_relu(
            x, gamma, beta, epsilon=epsilon, slope=slope)

        def gradient(upstream, *_):
            return ops.zspace_batch_norm_leaky_relu_grad(
                upstream, x, gamma, beta, mean, inv_std, slope=slope)

        return (outputs, mean, variance), gradient

    # Read the variables here: the tape then passes their gradients on to them.
    return forward(x, tf.convert_to_tensor(gamma), tf.convert_to_tensor(beta))


@functools.cache
def kernels():
    """The fused batch norm kernels, built on first use and cached under ``build/``.

    Returns:
        The loaded op library (``zspace_batch_norm_leaky_relu`` and its gradient).

    Raises:
        ConfigError: No C++ compiler, or the build failed.
    """
    compiler = os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++")
    if compiler is None:
        raise ConfigError("speed.fuse_batch_norm builds a TensorFlow kernel and needs "
                          "a C++ compiler: install g++ (or set CXX), or turn the "
                          "option off")
    flags = ["-std=c++17", "-shared", "-fPIC", "-O3",
             *tf.sysconfig.get_compile_flags(), *tf.sysconfig.get_link_flags()]
    source = KERNEL_SOURCE.read_bytes()
    digest = hashlib.sha256(b"\0".join(
        [source, tf.__version__.encode(), compiler.encode(), *map(str.encode, flags)]))
    library = paths.BUILD / "kernels" / f"bn_leaky_relu-{digest.hexdigest()[:16]}.so"
    if not library.is_file():
        library.parent.mkdir(parents=True, exist_ok=True)
        scratch = library.with_name(f"{library.stem}.{os.getpid()}.tmp.so")
        # Sources before the libraries they use; the TensorFlow flags hold both.
        command = [compiler, str(KERNEL_SOURCE), "-o", str(scratch), *flags]
        try:
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            failure = done.stderr[-2000:] if done.returncode else ""
        except OSError as error:  # the compiler named by CXX does not run
            failure = str(error)
        if failure:
            scratch.unlink(missing_ok=True)
            raise ConfigError(f"speed.fuse_batch_norm: building its kernel failed "
                              f"({' '.join(command)}):\n{failure}")
        os.replace(scratch, library)  # atomic: a parallel build finds a whole file
    return tf.load_op_library(str(library))


def _fused_norm_call(self, inputs, training=None, mask=None):
    """``FusedBatchNormalization.call`` that also applies the next leaky ReLU."""
    slope = self._zspace_slope
    fused = (training and self.trainable and mask is None and inputs.dtype == tf.float32
             and len(inputs.shape) == 4 and self.axis in (-1, 3) and self.scale
             and self.center and not self.renorm and not self.synchronized)
    if not fused:
        return tf.nn.leaky_relu(
            self._zspace_plain_call(inputs, training=training, mask=mask), slope)
    outputs, mean, variance = batch_norm_leaky_relu(
        inputs, self.gamma, self.beta, self.epsilon, slope)
    # The moving averages exactly as FusedBatchNormalization keeps them.
    count = tf.cast(tf.size(inputs) // tf.shape(inputs)[-1], variance.dtype)
    variance = variance * (count - 1.0) / count
    momentum = self.momentum
    self.moving_mean.assign(self.moving_mean * momentum + mean * (1.0 - momentum))
    self.moving_variance.assign(
        self.moving_variance * momentum + variance * (1.0 - momentum))
    return outputs


def _pass_through(self, inputs):
    return inputs


def _fuse_batch_norm(model: keras.Model) -> bool:
    pairs = []
    for part in (getattr(model, "encoder", None), getattr(model, "decoder", None)):
        layers = part.layers if part is not None else []
        pairs += [(norm, act) for norm, act in zip(layers, layers[1:], strict=False)
                  if isinstance(norm, FusedBatchNormalization)
                  and isinstance(act, keras.layers.LeakyReLU)
                  and len(act._inbound_nodes) == 1]
    if not pairs:
        log.info("%s: no batch norm followed by leaky ReLU to fuse", model.name)
        return False
    kernels()  # build (or find) the kernel now: a missing compiler fails here
    for norm, act in pairs:
        norm._zspace_slope = float(act.negative_slope)
        norm._zspace_plain_call = norm.call
        norm.call = types.MethodType(_fused_norm_call, norm)
        act.call = types.MethodType(_pass_through, act)
    return True


# --- the last transposed convolution -------------------------------------------------


def subpixel_indices(kernel: int, stride: int) -> tuple[np.ndarray, int]:
    """Where each tap of a 'same' transposed convolution goes in a sub-pixel kernel.

    A transposed convolution with stride ``s`` writes output row ``s * a + p`` from
    input rows ``a + d`` only; per phase ``p`` the taps ``k`` with
    ``(p + top - k) % s == 0`` reach offset ``d = (p + top - k) // s``, where
    ``top`` is the 'same' padding before the first row.

    Args:
        kernel: Side of the square kernel.
        stride: The stride of both axes.

    Returns:
        ``(index, before)``: an int array (D, D, s, s) of flat kernel taps
        ``kh * kernel + kw`` (``kernel**2`` where no tap lands, a zero), and the
        rows of zeros to pad before the input (and ``D - 1 - before`` after).
    """
    top = max(kernel - stride, 0) // 2
    offsets = {p: {(p + top - k) // stride: k for k in range(kernel)
                   if (p + top - k) % stride == 0} for p in range(stride)}
    low = min(min(taps) for taps in offsets.values())
    high = max(max(taps) for taps in offsets.values())
    size = high - low + 1
    index = np.full((size, size, stride, stride), kernel * kernel, np.int32)
    for p in range(stride):
        for q in range(stride):
            for dh, kh in offsets[p].items():
                for dw, kw in offsets[q].items():
                    index[dh - low, dw - low, p, q] = kh * kernel + kw
    return index, -low


def subpixel_transpose(x, kernel, bias, stride: int):
    """A 'same' transposed convolution plus bias, as a sub-pixel convolution.

    Args:
        x: (n, h, w, c) inputs.
        kernel: (k, k, f, c) Keras ``Conv2DTranspose`` kernel.
        bias: (f,) bias, or None.
        stride: The stride of both axes.

    Returns:
        (n, h * stride, w * stride, f) outputs. The gradient is the plain
        transposed convolution's (a strided convolution and a filter gradient).
    """
    k, filters, channels = kernel.shape[0], kernel.shape[2], kernel.shape[3]
    index, before = subpixel_indices(k, stride)
    size = index.shape[0]
    bias = tf.zeros((filters,), x.dtype) if bias is None else bias

    @tf.custom_gradient
    def forward(x, kernel, bias):
        taps = tf.concat([tf.reshape(kernel, (k * k, filters, channels)),
                          tf.zeros((1, filters, channels), kernel.dtype)], axis=0)
        sub = tf.gather(taps, index)  # (D, D, s, s, f, c)
        sub = tf.reshape(tf.transpose(sub, (0, 1, 5, 2, 3, 4)),
                         (size, size, channels, stride * stride * filters))
        padded = tf.pad(x, [[0, 0], [before, size - 1 - before],
                            [before, size - 1 - before], [0, 0]])
        y = tf.nn.conv2d(padded, sub, 1, "VALID")
        y = tf.nn.bias_add(y, tf.tile(bias, [stride * stride]))
        outputs = tf.nn.depth_to_space(y, stride)

        def gradient(upstream):
            dx = tf.nn.conv2d(upstream, kernel, stride, "SAME")
            dkernel = tf.compat.v1.nn.conv2d_backprop_filter(
                upstream, tf.shape(kernel), x, [1, stride, stride, 1], "SAME")
            # Sum over everything but the few channels: rows of w * f first.
            width = upstream.shape[2] * filters
            dbias = tf.reduce_sum(tf.reshape(upstream, (-1, width)), axis=0)
            dbias = tf.reduce_sum(tf.reshape(dbias, (-1, filters)), axis=0)
            return dx, dkernel, dbias

        return outputs, gradient

    return forward(x, tf.convert_to_tensor(kernel), tf.convert_to_tensor(bias))


def _subpixel_call(self, inputs):
    outputs = subpixel_transpose(inputs, self.kernel,
                                 self.bias if self.use_bias else None, self.strides[0])
    return outputs if self.activation is None else self.activation(outputs)


def _subpixel_output(model: keras.Model) -> bool:
    decoder = getattr(model, "decoder", None)
    convs = [layer for layer in (decoder.layers if decoder is not None else [])
             if isinstance(layer, keras.layers.Conv2DTranspose)]
    layer = convs[-1] if convs else None
    fits = (layer is not None and layer.padding == "same"
            and layer.output_padding is None and len(set(layer.strides)) == 1
            and layer.strides[0] > 1 and len(set(layer.kernel_size)) == 1
            and tuple(layer.dilation_rate) == (1, 1)
            and layer.data_format == "channels_last" and layer.filters <= 4
            and layer.compute_dtype == "float32")
    if not fits:
        log.info("%s: no transposed convolution to a few channels; subpixel_output "
                 "skipped", model.name)
        return False
    layer.call = types.MethodType(_subpixel_call, layer)
    return True
