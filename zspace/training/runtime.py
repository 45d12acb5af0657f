"""Devices, distribution strategies, precision and seeds for training.

Distribution follows the configuration's ``train.strategy``:

- ``default``: one device (the first GPU, else the CPU).
- ``mirrored``: ``tf.distribute.MirroredStrategy`` over every GPU of this host, or over
  every logical CPU device where there is no GPU (that is how the tests split a CPU
  in two).
- ``multiworker``: ``tf.distribute.MultiWorkerMirroredStrategy`` over the hosts named
  in ``TF_CONFIG``. Every worker runs the same command; only the chief writes
  artifacts and checkpoints, so ``build/`` must be on a file system all workers see.

A strategy is created once per process and reused: TensorFlow allows a single
multi-worker strategy, created before other collective ops.
"""

from __future__ import annotations

import json
import logging
import os
from functools import cache
from pathlib import Path

import keras
import tensorflow as tf

from zspace.errors import ConfigError

log = logging.getLogger(__name__)


@cache
def get_strategy(name: str) -> tf.distribute.Strategy:
    """The distribution strategy called ``name`` (created on first use).

    Args:
        name: ``default``, ``mirrored`` or ``multiworker``.

    Returns:
        The strategy; models must be built inside its ``scope()``.

    Raises:
        ConfigError: An unknown name, or ``TF_CONFIG`` that is not JSON.
    """
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        if tf.config.list_logical_devices("GPU"):
            return tf.distribute.MirroredStrategy()
        cpus = [device.name for device in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(cpus)
    if name == "multiworker":
        text = os.environ.get("TF_CONFIG", "")
        try:
            cluster = json.loads(text) if text else {}
        except json.JSONDecodeError as error:
            raise ConfigError(f"TF_CONFIG is not valid JSON: {error}") from None
        if not cluster:
            log.warning("train.strategy = multiworker without TF_CONFIG: this host "
                        "trains alone")
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ConfigError(f"train.strategy: unknown strategy {name!r}")


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Whether this process writes artifacts (always, except non-chief workers)."""
    return bool(getattr(strategy.extended, "should_checkpoint", True))


def dtype_policy(precision: str) -> str:
    """The Keras dtype policy for ``train.precision``, with a warning where it is slow.

    Args:
        precision: ``float32``, ``mixed_bfloat16`` or ``mixed_float16``.

    Returns:
        The policy name, passed to every layer as its ``dtype``.
    """
    has_gpu = bool(tf.config.list_physical_devices("GPU"))
    if precision == "mixed_float16" and not has_gpu:
        log.warning("mixed_float16 on a CPU is emulated and slow; CPUs with bfloat16 "
                    "units run mixed_bfloat16 instead")
    if precision == "mixed_bfloat16" and not has_gpu and not cpu_has_bfloat16():
        log.warning("this CPU has no bfloat16 instructions (avx512_bf16, amx_bf16): "
                    "mixed_bfloat16 will be emulated and slower than float32")
    return precision


def cpu_has_bfloat16() -> bool:
    """Whether the CPU advertises native bfloat16 arithmetic (Linux only)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def make_optimizer(learning_rate: float, precision: str) -> keras.optimizers.Optimizer:
    """Adam, wrapped in dynamic loss scaling for float16.

    Args:
        learning_rate: Adam's learning rate.
        precision: ``train.precision``.

    Returns:
        The optimizer to compile with.
    """
    optimizer = keras.optimizers.Adam(learning_rate)
    if precision == "mixed_float16":
        # float16 gradients underflow without loss scaling; bfloat16 has float32's
        # exponent range and needs none.
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer


def seed_everything(seed: int) -> None:
    """Seed Python, numpy, TensorFlow and Keras (weight initialisers, dropout)."""
    keras.utils.set_random_seed(seed)


def onednn_enabled() -> bool:
    """Whether TensorFlow runs its oneDNN CPU kernels in this process.

    Decided once, when TensorFlow loads, from ``TF_ENABLE_ONEDNN_OPTS`` (see
    ``zspace.onednn``). The two kernel sets round differently in the last bits, so a
    bit-for-bit rerun needs the same setting; the artifact records it.
    """
    try:
        from tensorflow.python.util import _pywrap_util_port
    except ImportError:  # a TensorFlow without the probe: say what the default is
        return os.environ.get("TF_ENABLE_ONEDNN_OPTS") == "1"
    return bool(_pywrap_util_port.IsMklEnabled())


def device_names(strategy: tf.distribute.Strategy) -> list[str]:
    """The devices the strategy's replicas run on (for the artifact's record)."""
    if strategy.num_replicas_in_sync > 1 or not isinstance(
            strategy, type(tf.distribute.get_strategy())):
        return list(strategy.extended.worker_devices)
    gpus = tf.config.list_logical_devices("GPU")
    return [(gpus or tf.config.list_logical_devices("CPU"))[0].name]
