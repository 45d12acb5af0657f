"""Training speed-ups (``config.speed``), chosen while a model is built.

Each option builds a piece of the training step from a cheaper formulation of the same
arithmetic: ``build_model`` and ``compiled_model`` (``zspace.training.factory``) pick
the classes below instead of the plain ones. Results then differ from the plain step
in the last bits (summation order). Every option but ``jit_compile`` is on by default
(``config.SpeedConfig``), as far as the device takes it (``zspace.networks.devices``:
on a GPU, Keras' own layers); being the same arithmetic, the options are not part of a
model's key, and the artifact's meta and the committed manifest record those applied,
with the device. The layers hold the plain layers' weights, with the same names,
shapes and order, so weights move between a model built with options and one built
without (the committed weights, a pretrained file).

- ``fused_loss`` (``AE``/``VAE(fused_loss=True)``): the reconstruction loss as one
  flat sum per image with a hand-written gradient. The plain loss first averages
  (n, h, w, 3) over its three channels, a reduction over a 3-wide inner axis that
  TensorFlow's CPU kernel walks element by element, tiles it back in the gradient,
  and spends about ten element-wise passes on cross-entropy from logits; here it is
  ``softplus(l) - l * y`` with the gradient ``sigmoid(l) - y``.
- ``fused_adam`` (:class:`FusedAdam`): Adam's update as TensorFlow's single
  ``ResourceApplyAdam`` kernel per variable instead of a dozen element-wise ops
  (the same formula, rounded in its own order).
- ``fuse_batch_norm`` (:class:`BatchNormLeakyReLU`): batch norm and the leaky ReLU
  after it as one layer and one kernel each way (``bn_leaky_relu.cc``, compiled with
  the system's C++ compiler into the build folder's ``kernels/`` on first use): one
  sweep over the feature map for the per-channel sums and one element-wise sweep,
  3 passes forward and 5 backward where TensorFlow's four kernels make 5 and 8.
  Neither oneDNN (batch norm fuses with ReLU only) nor XLA (its CPU reductions ran
  2.5 times slower than oneDNN's batch norm) offered that fusion. A CPU kernel only:
  a GPU keeps cuDNN's batch norm, and XLA cannot compile the op (the configuration
  refuses ``jit_compile`` with it).
- ``subpixel_output`` (:class:`SubpixelConv2DTranspose`): the decoder's last
  transposed convolution, whose few output channels oneDNN handles poorly, as a
  stride-1 convolution into ``stride**2`` times the channels and a depth-to-space
  shuffle (the sub-pixel convolution of Shi et al., 2016); its gradient uses the
  plain ops. CPUs only, like the fused batch norm.
- ``jit_compile``: the whole step compiled by XLA (a ``compile`` argument). Slower
  on CPUs (XLA's CPU convolutions); there for GPUs.

Only the AE and the VAE take the options (``zspace.store.keys.uses_speed``); the
judge trains as configured.
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from zspace.errors import EnvironmentProblem
from zspace.networks.layers import FusedBatchNormalization

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


def fused_reconstruction_terms(images, reconstruction, logits, kind: str) -> dict:
    """The AE's and VAE's reconstruction terms, the loss as one flat reduction.

    Args:
        images: (n, h, w, c) float32 targets in [0, 1].
        reconstruction: (n, h, w, c) float32 decoder output.
        logits: Its logits (needed for ``bce``).
        kind: ``bce`` or ``mse``.

    Returns:
        ``{"reconstruction_loss", "mse"}``, batch means as the plain terms are.
    """
    squared = tf.math.squared_difference(images, reconstruction)
    if kind == "bce":
        per_image = bce_from_logits(images, logits, reconstruction)
    else:
        channels = tf.cast(tf.shape(images)[-1], tf.float32)
        per_image = tf.reduce_sum(squared, axis=(1, 2, 3)) / channels
    return {"reconstruction_loss": tf.reduce_mean(per_image),
            "mse": tf.reduce_mean(squared)}


# --- Adam ---------------------------------------------------------------------------


@keras.saving.register_keras_serializable(package="zspace")
class FusedAdam(keras.optimizers.Adam):
    """``keras.optimizers.Adam`` whose update is one ``ResourceApplyAdam`` per variable.

    The same formula (up to rounding), and the same optimizer variables (a
    ``momentum`` and a ``velocity`` per model variable, created in Adam's order), so
    its saved state has Adam's layout. No amsgrad; one replica only (a mirrored
    variable has a handle per device, which this update does not address):
    ``devices.applied_options`` gives a strategy with more replicas Keras' Adam.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.amsgrad:
            raise ValueError("FusedAdam has no amsgrad; use keras.optimizers.Adam")

    def build(self, var_list):
        if self.built:
            return
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        if replicas > 1:
            raise ValueError(f"FusedAdam updates one replica only, not {replicas}; "
                             "use keras.optimizers.Adam under this strategy")
        # Adam's own build would keep these slots where only Keras reads them:
        # the base optimizer's build, then the same slots, kept by variable.
        keras.optimizers.Optimizer.build(self, var_list)
        momentums, velocities = self.add_optimizer_variables(
            var_list, ["momentum", "velocity"])
        self.slots = {_reference(variable): (momentum, velocity)
                      for variable, momentum, velocity
                      in zip(var_list, momentums, velocities, strict=True)}

    def update_step(self, gradient, variable, learning_rate):
        slots = self.slots.get(_reference(variable))
        if slots is None:
            raise ValueError(f"FusedAdam was not built for {variable.name} (one "
                             "replica only)")
        momentum, velocity = slots
        dtype = variable.dtype
        local_step = tf.cast(self.iterations + 1, dtype)
        return tf.raw_ops.ResourceApplyAdam(
            var=variable.handle,
            m=momentum.handle,
            v=velocity.handle,
            beta1_power=tf.pow(tf.cast(self.beta_1, dtype), local_step),
            beta2_power=tf.pow(tf.cast(self.beta_2, dtype), local_step),
            lr=tf.cast(learning_rate, dtype),
            beta1=tf.cast(self.beta_1, dtype),
            beta2=tf.cast(self.beta_2, dtype),
            epsilon=tf.cast(self.epsilon, dtype),
            grad=tf.cast(gradient, dtype),
        )


def _reference(variable):
    # update_step receives the tf.Variable behind a Keras variable (TensorFlow
    # backend); .ref() is TensorFlow's hashable handle on a variable.
    if isinstance(variable, keras.Variable):
        variable = variable.value
    return variable.ref()


# --- batch norm and its activation ---------------------------------------------------


KERNEL_SOURCE = Path(__file__).with_name("bn_leaky_relu.cc")
# TensorFlow registers an op once per process: the same library loaded again from
# another folder registers nothing and comes back without the ops. One per digest.
_LOADED = {}


@functools.cache
def kernels(kernel_dir: Path):
    """The fused batch norm kernels, compiled into ``kernel_dir`` on first use.

    Args:
        kernel_dir: The build folder's ``kernels/``; the library is named by the
            digest of its source, TensorFlow's version, the compiler and its flags.

    Returns:
        The loaded op library (``zspace_batch_norm_leaky_relu`` and its gradient).

    Raises:
        EnvironmentProblem: No C++ compiler, or the compilation failed.
    """
    compiler = os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++")
    if compiler is None:
        raise EnvironmentProblem(
            "speed.fuse_batch_norm compiles a TensorFlow kernel and needs a C++ "
            "compiler, but there is no c++ or g++ on PATH (and CXX is not set): "
            "install one (e.g. apt-get install g++), or set "
            "speed.fuse_batch_norm=false")
    flags = ["-std=c++17", "-shared", "-fPIC", "-O3",
             *tf.sysconfig.get_compile_flags(), *tf.sysconfig.get_link_flags()]
    digest = hashlib.sha256(b"\0".join(
        [KERNEL_SOURCE.read_bytes(), tf.__version__.encode(), compiler.encode(),
         *map(str.encode, flags)])).hexdigest()[:16]
    library = Path(kernel_dir) / f"bn_leaky_relu-{digest}.so"
    if not library.is_file():
        _compile(compiler, flags, library)
    if digest not in _LOADED:
        _LOADED[digest] = tf.load_op_library(str(library))
    return _LOADED[digest]


def _compile(compiler: str, flags: list[str], library: Path) -> None:
    library.parent.mkdir(parents=True, exist_ok=True)
    scratch = library.with_name(f"{library.stem}.{os.getpid()}.tmp.so")
    # Sources before the libraries they use; the TensorFlow flags hold both.
    command = [compiler, str(KERNEL_SOURCE), "-o", str(scratch), *flags]
    try:
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        # The exit status decides, not the output: a compiler may fail silently.
        output = (done.stdout + done.stderr).strip()[-2000:]
        failure = (f"exit status {done.returncode}: {output or '(no output)'}"
                   if done.returncode else "")
        if not failure and not scratch.is_file():
            failure = (f"it exited 0 but wrote no {scratch.name}: "
                       f"{output or '(no output)'}")
    except OSError as error:  # the compiler named by CXX does not run
        failure = str(error)
    if failure:
        scratch.unlink(missing_ok=True)
        raise EnvironmentProblem(
            f"speed.fuse_batch_norm: compiling its kernel failed "
            f"({' '.join(command)}):\n{failure}\nfix the C++ compiler (or CXX), or "
            f"set speed.fuse_batch_norm=false")
    os.replace(scratch, library)  # atomic: a parallel build finds a whole file


def batch_norm_leaky_relu(x, gamma, beta, epsilon: float, slope: float, library):
    """Training-mode batch norm followed by leaky ReLU, as one fused kernel each way.

    Args:
        x: (n, h, w, c) float32 feature map.
        gamma: (c,) scale.
        beta: (c,) offset.
        epsilon: Added to the variance.
        slope: The leaky ReLU's slope below zero.
        library: The op library from :func:`kernels`.

    Returns:
        ``(outputs, mean, variance)``: (n, h, w, c) activations, and the batch mean
        and Bessel-corrected variance, (c,) each (as ``fused_batch_norm`` returns
        them; no gradient flows through these two).
    """

    @tf.custom_gradient
    def forward(x, gamma, beta):
        outputs, mean, variance, inv_std = library.zspace_batch_norm_leaky_relu(
            x, gamma, beta, epsilon=epsilon, slope=slope)

        def gradient(upstream, *_):
            return library.zspace_batch_norm_leaky_relu_grad(
                upstream, x, gamma, beta, mean, inv_std, slope=slope)

        return (outputs, mean, variance), gradient

    # Read the variables here: the tape then passes their gradients on to them.
    return forward(x, tf.convert_to_tensor(gamma), tf.convert_to_tensor(beta))


@keras.saving.register_keras_serializable(package="zspace")
class BatchNormLeakyReLU(FusedBatchNormalization):
    """Batch norm and the leaky ReLU after it, one layer and one kernel each way.

    It holds batch norm's weights only (gamma, beta, the moving mean and variance),
    so a model built with it has the weight list of one built with
    ``FusedBatchNormalization`` and ``LeakyReLU``. Outside float32 NHWC training (or
    with no kernel folder) it runs the plain layer, then ``tf.nn.leaky_relu``.

    Args:
        slope: The leaky ReLU's slope below zero.
        kernel_dir: Where the kernel is compiled (at construction, if it is not
            there yet). None, as in a model loaded from a file: the plain ops.
        **kwargs: ``keras.layers.BatchNormalization``'s.

    Raises:
        EnvironmentProblem: There is a ``kernel_dir`` but the kernel cannot be
            compiled (no C++ compiler).
    """

    def __init__(self, slope: float = 0.3, kernel_dir: Path | None = None, **kwargs):
        super().__init__(**kwargs)
        self.slope = float(slope)
        self.kernel_dir = None if kernel_dir is None else Path(kernel_dir)
        if self.kernel_dir is not None:
            kernels(self.kernel_dir)  # a missing compiler stops here, not in fit()

    def call(self, inputs, training=None, mask=None):
        if (self.kernel_dir is None or inputs.dtype != tf.float32
                or not self.trains_fused(inputs, training, mask)):
            return tf.nn.leaky_relu(
                super().call(inputs, training=training, mask=mask), self.slope)
        outputs, mean, variance = batch_norm_leaky_relu(
            inputs, self.gamma, self.beta, self.epsilon, self.slope,
            kernels(self.kernel_dir))
        self.update_moving_averages(inputs, mean, variance)
        return outputs

    def get_config(self):
        # The kernel folder belongs to the machine that trains, not to the model.
        return {**super().get_config(), "slope": self.slope}


# --- the last transposed convolution -------------------------------------------------


def subpixel_applies(filters: int, stride: int, padding: str, output_padding,
                     dtype: str) -> bool:
    """Whether a square transposed convolution has a sub-pixel form here.

    'same' padding, no output padding, a stride above 1, a few output channels
    (where the sub-pixel form pays) and float32.
    """
    return (padding == "same" and output_padding is None and stride > 1
            and filters <= 4 and dtype == "float32")


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


@keras.saving.register_keras_serializable(package="zspace")
class SubpixelConv2DTranspose(keras.layers.Conv2DTranspose):
    """``keras.layers.Conv2DTranspose`` computed as a sub-pixel convolution.

    The same weights (kernel, bias) and configuration; build it only where
    :func:`subpixel_applies` (square kernel and strides, channels last).
    """

    def call(self, inputs):
        outputs = subpixel_transpose(inputs, self.kernel,
                                     self.bias if self.use_bias else None,
                                     self.strides[0])
        return outputs if self.activation is None else self.activation(outputs)
