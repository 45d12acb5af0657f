"""The device a model trains on, and the speed options that apply there.

The options of ``config.speed`` (``zspace.networks.speed``) were measured on CPUs.
Two of them stand in for Keras layers with forms that pay on a CPU only:
``fuse_batch_norm`` is a C++ kernel registered for the CPU (on a GPU its feature maps
would go to the host and back, both ways, at every layer), and ``subpixel_output``
works around oneDNN's transposed convolutions. On a GPU the model keeps Keras' own
layers: cuDNN's batch norm (``layers.FusedBatchNormalization``) and
``Conv2DTranspose``. ``FusedAdam`` updates one replica's variables only, so under a
strategy with more than one replica (or with loss scaling) the optimizer is Keras'
Adam on either device. ``fused_loss`` and ``jit_compile`` apply as configured on both.
XLA cannot compile the custom op, which is why the configuration refuses
``jit_compile`` together with ``fuse_batch_norm`` (``SpeedConfig.check``).

=================  ======================  ==========================================
option             CPU                     GPU
=================  ======================  ==========================================
fused_loss         as configured           as configured
fused_adam         one replica, no         one replica, no ``mixed_float16``
                   ``mixed_float16``
fuse_batch_norm    as configured           off: cuDNN's batch norm, Keras' LeakyReLU
subpixel_output    as configured           off: Keras' ``Conv2DTranspose``
jit_compile        as configured           as configured
=================  ======================  ==========================================

The README's "Faster training" carries the same table.
"""

from __future__ import annotations

import dataclasses

import tensorflow as tf

from zspace.config import SpeedConfig

CPU = "cpu"
GPU = "gpu"
# Options a GPU never takes, and what it runs instead.
CPU_ONLY = {
    "fuse_batch_norm": "a CPU kernel; cuDNN's batch norm and Keras' LeakyReLU instead",
    "subpixel_output": "a CPU workaround; Keras' Conv2DTranspose instead",
}
# Every option off: the plain training step.
PLAIN = SpeedConfig(**{f.name: False for f in dataclasses.fields(SpeedConfig)})


def training_device() -> str:
    """The kind of device this process trains on: ``gpu`` or ``cpu``.

    Every strategy of ``zspace.training.runtime.get_strategy`` trains on the GPUs
    where TensorFlow sees one, else on the CPU. Tests replace this function to take
    the GPU branch on a machine without one.

    Returns:
        ``gpu`` where TensorFlow lists a logical GPU device, else ``cpu``.
    """
    return GPU if tf.config.list_logical_devices("GPU") else CPU


def applied_options(speed: SpeedConfig | None, device: str, replicas: int = 1,
                    precision: str = "float32") -> tuple[SpeedConfig, dict[str, str]]:
    """The options of ``speed`` that training on ``device`` applies (the table above).

    Applying the result again gives it back unchanged.

    Args:
        speed: The configured options; None: none.
        device: ``cpu`` or ``gpu`` (:func:`training_device`).
        replicas: The strategy's replicas in sync.
        precision: ``train.precision``.

    Returns:
        ``(applied, skipped)``: the options on, as a ``SpeedConfig``, and each
        configured option left off, with the reason.

    Raises:
        ValueError: An unknown device.
        ConfigError: ``jit_compile`` with ``fuse_batch_norm`` on a CPU (a
            ``SpeedConfig`` made in code; the configuration refuses it on reading).
    """
    if device not in (CPU, GPU):
        raise ValueError(f"unknown training device {device!r} (cpu or gpu)")
    speed = speed or PLAIN
    skipped = {}
    if device == GPU:
        skipped.update({name: why for name, why in CPU_ONLY.items()
                        if getattr(speed, name)})
    if speed.fused_adam and (replicas > 1 or precision == "mixed_float16"):
        # A mirrored variable has a handle per device, and loss scaling wraps Adam:
        # Keras' own update handles both.
        skipped["fused_adam"] = ("one replica only" if replicas > 1 else
                                 "mixed_float16 wraps Adam in loss scaling")
    applied = dataclasses.replace(speed, **dict.fromkeys(skipped, False))
    applied.check()
    return applied, skipped


def describe(name: str, device: str, applied: SpeedConfig,
             skipped: dict[str, str]) -> str:
    """One line for the build log: the device, the options on, those left off."""
    on = [f.name for f in dataclasses.fields(applied) if getattr(applied, f.name)]
    line = (f"{name}: trains on the {device.upper()} with the speed options "
            f"{', '.join(on) or 'none (the plain step)'}")
    if skipped:
        line += "; not here: " + "; ".join(f"{option} ({why})"
                                           for option, why in skipped.items())
    return line
