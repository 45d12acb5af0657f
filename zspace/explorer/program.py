"""A decoder as a flat list of operations and weight arrays, and a NumPy runner of it.

The explorer page decodes z-vectors in the reader's browser with a small hand-written
JavaScript interpreter (``report/explorer.js``). What it interprets is exported here
from the Keras decoder: a chain of operations (``dense``, ``reshape``,
``conv_transpose``, ``conv``, ``upsample``, ``crop``, ``zero_pad``, ``batch_norm``,
``activation``), each with its shapes and the names of its weight arrays. Every
geometric detail (output size, the padding before the first row and column) is
computed here from the Keras layer, so the JavaScript only runs loops.

:func:`run_program` runs a program with NumPy exactly the way the JavaScript does:
batch normalisation folded into the preceding layer's kernel and bias in float32,
then the layers as plain sums. It is the reference the page is tested against, and it
is itself tested against Keras.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.special import expit

from zspace.errors import ModelError

ACTIVATIONS = ("leaky_relu", "relu", "elu", "sigmoid", "linear")
# Layers that do nothing at inference.
_PASS_THROUGH = ("InputLayer", "Dropout")


@dataclass
class Program:
    """A decoder as operations over named float32 arrays.

    Attributes:
        ops: One dict per operation, JSON-ready (see the module docstring).
        tensors: Weight arrays by name, float32.
        z_dim: Length of the input vector.
        image_shape: ``(height, width, channels)`` of the output image.
    """

    ops: list[dict[str, Any]]
    tensors: dict[str, np.ndarray] = field(default_factory=dict)
    z_dim: int = 0
    image_shape: tuple[int, int, int] = (0, 0, 0)


def _same_padding(size_in: int, size_out: int, kernel: int, stride: int) -> int:
    """Rows added before the first one by TensorFlow's ``SAME`` padding.

    For a convolution from ``size_in`` to ``size_out`` pixels (a transposed
    convolution is the same map read backwards, from its output to its input),
    TensorFlow pads ``max((size_out - 1) * stride + kernel - size_in, 0)`` in total and
    puts the smaller half first.
    """
    return max((size_out - 1) * stride + kernel - size_in, 0) // 2


def _shape(layer) -> tuple[int, ...]:
    return tuple(int(d) for d in layer.output.shape[1:])


def _square(pair, name: str, what: str) -> int:
    values = tuple(pair) if isinstance(pair, list | tuple) else (pair, pair)
    if len(set(values)) != 1:
        raise ModelError(f"decoder layer {name}: the explorer handles square {what} "
                         f"only, got {values}")
    return int(values[0])


def export_decoder(decoder) -> Program:
    """Translate a Keras decoder (a plain chain of layers) into a :class:`Program`.

    Args:
        decoder: A ``keras.Model`` from ``zspace.networks.architecture.build_decoder``
            (either ``decoder`` option, any activation, with or without batch norm).

    Returns:
        The program, its arrays copied out as float32.

    Raises:
        ModelError: A layer the explorer cannot run (the message names it and lists
            the supported layers).
    """
    program = Program(ops=[], z_dim=int(decoder.input_shape[-1]))
    shape: tuple[int, ...] = (program.z_dim,)
    for layer in decoder.layers:
        kind = type(layer).__name__
        if kind in _PASS_THROUGH:
            continue
        op = _export_layer(layer, kind, shape, program.tensors)
        program.ops.append(op)
        shape = _shape(layer)
        op["out"] = list(shape)
    if len(shape) != 3:
        raise ModelError(f"decoder {decoder.name} ends in shape {shape}, not an image")
    program.image_shape = shape  # type: ignore[assignment]
    return program


def _export_layer(layer, kind: str, shape: tuple[int, ...],
                  tensors: dict[str, np.ndarray]) -> dict[str, Any]:
    name = layer.name

    def keep(suffix: str, value) -> str:
        tensors[f"{name}/{suffix}"] = np.asarray(value, dtype=np.float32)
        return f"{name}/{suffix}"

    if kind == "Dense":
        op = {"op": "dense", "kernel": keep("kernel", layer.kernel)}
        op["bias"] = keep("bias", layer.bias) if layer.use_bias else None
        return op | _own_activation(layer, name)
    if kind == "Reshape":
        return {"op": "reshape"}
    if kind in ("Conv2DTranspose", "Conv2D"):
        return _export_conv(layer, kind, shape, keep)
    if kind == "UpSampling2D":
        if layer.interpolation != "nearest":
            raise ModelError(f"decoder layer {name}: only nearest up-sampling is "
                             f"supported, got {layer.interpolation}")
        return {"op": "upsample", "factor": _square(layer.size, name, "factors")}
    if kind in ("Cropping2D", "ZeroPadding2D"):
        (top, bottom), (left, right) = layer.cropping if kind == "Cropping2D" \
            else layer.padding
        if top or left or bottom != right:
            raise ModelError(f"decoder layer {name}: the explorer crops or pads at "
                             "the bottom and right edges only, equally")
        return {"op": "crop" if kind == "Cropping2D" else "zero_pad", "amount": bottom}
    if "BatchNormalization" in kind:
        if not (layer.center and layer.scale) or layer.axis not in (-1, 3):
            raise ModelError(f"decoder layer {name}: batch normalisation must scale "
                             "and centre the last axis")
        return {"op": "batch_norm", "gamma": keep("gamma", layer.gamma),
                "beta": keep("beta", layer.beta),
                "mean": keep("mean", layer.moving_mean),
                "variance": keep("variance", layer.moving_variance),
                "epsilon": float(layer.epsilon)}
    if kind == "LeakyReLU":
        return {"op": "activation", "activation": "leaky_relu",
                "alpha": float(layer.negative_slope)}
    if kind == "Activation":
        return {"op": "activation", **_own_activation(layer, name)}
    raise ModelError(
        f"decoder layer {name} ({kind}) cannot run in the explorer; supported: Dense, "
        "Reshape, Conv2DTranspose, Conv2D, UpSampling2D, Cropping2D, ZeroPadding2D, "
        "BatchNormalization, LeakyReLU, Activation, Dropout")


def _own_activation(layer, layer_name: str) -> dict[str, Any]:
    """``activation`` and ``alpha`` of a layer's activation function (Keras defaults:
    leaky ReLU's slope 0.2, ELU's alpha 1)."""
    function = layer.activation
    name = function if isinstance(function, str) else function.__name__
    if name not in ACTIVATIONS:
        raise ModelError(f"decoder layer {layer_name}: activation {name} cannot run in "
                         f"the explorer (supported: {', '.join(ACTIVATIONS)})")
    return {"activation": name, "alpha": 0.2 if name == "leaky_relu" else 1.0}


def _export_conv(layer, kind: str, shape: tuple[int, ...], keep) -> dict[str, Any]:
    name = layer.name
    kernel = _square(layer.kernel_size, name, "kernels")
    stride = _square(layer.strides, name, "strides")
    if _square(layer.dilation_rate, name, "dilations") != 1:
        raise ModelError(f"decoder layer {name}: dilated convolutions are not "
                         "supported")
    out = _shape(layer)
    size_in, size_out = shape[0], out[0]
    if shape[0] != shape[1] or out[0] != out[1]:
        raise ModelError(f"decoder layer {name}: square feature maps only")
    same = layer.padding == "same"
    if kind == "Conv2DTranspose":
        # Keras stores (k, k, out_channels, in_channels); TensorFlow runs it as the
        # gradient of a convolution from the output back to the input.
        pad = _same_padding(size_out, size_in, kernel, stride) if same else 0
        op = {"op": "conv_transpose"}
    else:
        pad = _same_padding(size_in, size_out, kernel, stride) if same else 0
        op = {"op": "conv"}  # kernel (k, k, in_channels, out_channels)
    op |= {"kernel": keep("kernel", layer.kernel), "size": kernel, "stride": stride,
           "pad": pad, **_own_activation(layer, name)}
    op["bias"] = keep("bias", layer.bias) if layer.use_bias else None
    return op


# --- the NumPy reference of the JavaScript interpreter -------------------------------


def _apply_activation(x: np.ndarray, name: str, alpha: float) -> np.ndarray:
    if name == "leaky_relu":
        return np.where(x >= 0, x, np.float32(alpha) * x)
    if name == "relu":
        return np.maximum(x, 0)
    if name == "elu":
        return np.where(x > 0, x, np.float32(alpha) * np.expm1(x))
    if name == "sigmoid":
        return expit(x)
    return x


def fold_batch_norm(program: Program) -> list[dict[str, Any]]:
    """The program's operations with every batch norm folded into the layer before it.

    ``gamma * (x W + b - mean) / sqrt(variance + epsilon) + beta`` is ``x W' + b'``
    with ``W' = W * s`` per output channel and ``b' = (b - mean) * s + beta``,
    ``s = gamma / sqrt(variance + epsilon)``; computed in float32, as the page does.

    Returns:
        Operations whose ``kernel`` and ``bias`` are arrays (not names); no
        ``batch_norm`` left.

    Raises:
        ModelError: A batch norm that does not follow a dense or convolution layer
            without an activation of its own.
    """
    t = program.tensors
    folded: list[dict[str, Any]] = []
    for op in program.ops:
        op = dict(op)
        for key in ("kernel", "bias"):
            if key in op:
                op[key] = None if op[key] is None else t[op[key]]
        if op["op"] != "batch_norm":
            folded.append(op)
            continue
        before = folded[-1] if folded else {}
        if "kernel" not in before or before.get("activation") != "linear":
            raise ModelError("batch normalisation must follow a dense or convolution "
                             "layer without its own activation")
        f32 = np.float32
        scale = t[op["gamma"]] / np.sqrt(t[op["variance"]] + f32(op["epsilon"]))
        bias = before["bias"] if before["bias"] is not None else f32(0)
        # The output channel is the kernel's last axis, but the third of a transposed
        # convolution's (k, k, out, in).
        axis_scale = scale[:, None] if before["op"] == "conv_transpose" else scale
        before["kernel"] = (before["kernel"] * axis_scale).astype(np.float32)
        before["bias"] = ((bias - t[op["mean"]]) * scale + t[op["beta"]]).astype(f32)
    return folded


def run_program(program: Program, z: np.ndarray) -> np.ndarray:
    """Decode z-vectors (n, z_dim) to float32 images (n, h, w, c) like the page does.

    Raises:
        ModelError: ``z`` does not have ``program.z_dim`` columns.
    """
    z = np.asarray(z, dtype=np.float32)
    if z.ndim != 2 or z.shape[1] != program.z_dim:
        raise ModelError(f"expected z-vectors (n, {program.z_dim}), got {z.shape}")
    x = z
    for op in fold_batch_norm(program):
        kind = op["op"]
        if kind == "dense":
            x = x @ op["kernel"] + (op["bias"] if op["bias"] is not None else 0)
        elif kind == "reshape":
            x = x.reshape(len(x), *op["out"])
        elif kind == "conv_transpose":
            x = _conv_transpose(x, op)
        elif kind == "conv":
            x = _conv(x, op)
        elif kind == "upsample":
            x = x.repeat(op["factor"], axis=1).repeat(op["factor"], axis=2)
        elif kind == "crop":
            x = x[:, : x.shape[1] - op["amount"], : x.shape[2] - op["amount"]]
        elif kind == "zero_pad":
            a = op["amount"]
            x = np.pad(x, ((0, 0), (0, a), (0, a), (0, 0)))
        if "activation" in op:
            x = _apply_activation(x, op["activation"], op["alpha"])
        x = x.astype(np.float32)
    return x


def _conv_transpose(x: np.ndarray, op: dict) -> np.ndarray:
    """Input pixel i adds kernel[k] * x[i] to output pixel i * stride + k - pad."""
    n, size_in, _, _ = x.shape
    size_out, channels = op["out"][0], op["out"][2]
    kernel, stride, pad = op["kernel"], op["stride"], op["pad"]  # (k, k, out, in)
    k = op["size"]
    # A full canvas with room for every contribution, cut to the output afterwards.
    span = (size_in - 1) * stride + k
    canvas = np.zeros((n, span, span, channels), np.float32)
    for ky in range(k):
        for kx in range(k):
            contribution = x @ kernel[ky, kx].T  # (n, size_in, size_in, out)
            canvas[:, ky: ky + (size_in - 1) * stride + 1: stride,
                   kx: kx + (size_in - 1) * stride + 1: stride] += contribution
    end = min(span, pad + size_out)
    out = np.zeros((n, size_out, size_out, channels), np.float32)
    out[:, : end - pad, : end - pad] = canvas[:, pad:end, pad:end]
    return _add_bias(out, op)


def _conv(x: np.ndarray, op: dict) -> np.ndarray:
    """Output pixel o reads input pixels o * stride + k - pad (zero outside)."""
    n, size_in, _, _ = x.shape
    size_out, channels = op["out"][0], op["out"][2]
    kernel, stride, pad, k = op["kernel"], op["stride"], op["pad"], op["size"]
    padded_size = max((size_out - 1) * stride + k, pad + size_in)
    padded = np.zeros((n, padded_size, padded_size, x.shape[3]), np.float32)
    padded[:, pad: pad + size_in, pad: pad + size_in] = x
    out = np.zeros((n, size_out, size_out, channels), np.float32)
    last = (size_out - 1) * stride + 1
    for ky in range(k):
        for kx in range(k):
            window = padded[:, ky: ky + last: stride, kx: kx + last: stride]
            out += window @ kernel[ky, kx]
    return _add_bias(out, op)


def _add_bias(x: np.ndarray, op: dict) -> np.ndarray:
    return x if op["bias"] is None else x + op["bias"]
