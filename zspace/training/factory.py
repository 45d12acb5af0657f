"""Fresh models of a configured architecture, built and compiled as the trainer does.

The speed-ups of ``config.speed`` (``zspace.networks.speed``) are chosen here, while
the model is built: its layer classes, its loss, its optimizer and whether XLA
compiles its step, as far as the device it trains on takes them
(``zspace.networks.devices``: on a GPU, Keras' own layers). With every option off (or
``speed=None``) the model is the plain one, variable for variable.
"""

from __future__ import annotations

import logging
from pathlib import Path

import keras

from zspace import paths
from zspace.config import JudgeConfig, ModelConfig, SpeedConfig, TrainConfig
from zspace.data.dataset import Dataset
from zspace.networks import devices, judge
from zspace.networks.architecture import build_decoder, build_encoder
from zspace.networks.autoencoders import AE, VAE
from zspace.networks.speed import FusedAdam
from zspace.store import keys
from zspace.training import runtime

log = logging.getLogger(__name__)


def build_model(name: str, model_config: ModelConfig | JudgeConfig,
                train_config: TrainConfig, dataset: Dataset,
                synchronized_batch_norm: bool = False,
                speed: SpeedConfig | None = None,
                kernel_dir: Path | None = None,
                device: str | None = None) -> keras.Model:
    """A fresh, untrained model of the configured architecture (seeded).

    Args:
        name: The model's name.
        model_config: A ``ModelConfig`` or the ``JudgeConfig``.
        train_config: Supplies the seed and the precision.
        dataset: Supplies the image shape (and the judge's number of targets).
        synchronized_batch_norm: Batch statistics over all replicas.
        speed: Speed options to build in (``config.speed``), where
            ``keys.uses_speed`` says they apply (an AE or VAE, not pretrained);
            None: none. The weights (names, shapes, order) are those of the plain
            model either way.
        kernel_dir: Where ``speed.fuse_batch_norm`` compiles its kernel (default:
            ``kernels/`` in the repository's ``build/``).
        device: ``cpu`` or ``gpu``: the options' device (default:
            ``devices.training_device()``); on a GPU, Keras' own layers.

    Returns:
        An ``AE``, a ``VAE`` or the functional judge, not compiled.

    Raises:
        EnvironmentProblem: ``speed.fuse_batch_norm`` without a C++ compiler.
    """
    speed = speed if keys.uses_speed(model_config, speed) else None
    if speed is not None:
        speed, _ = devices.applied_options(
            speed, device or devices.training_device(), 1, train_config.precision)
    runtime.seed_everything(train_config.seed)
    dtype = runtime.dtype_policy(train_config.precision)
    shape = dataset.image_shape
    if isinstance(model_config, JudgeConfig):
        task = keys.judge_task(dataset.card)
        outputs = (judge.attributes(dataset)[0].shape[1] if task == "attributes"
                   else judge.NUM_ROTATIONS)
        return judge.build_judge(model_config, shape, outputs, dtype,
                                 synchronized_batch_norm)
    if kernel_dir is None:
        kernel_dir = paths.build_dir() / "kernels"
    parts = [builder(model_config, shape, dtype, train_config.seed,
                     synchronized_batch_norm, speed, kernel_dir)
             for builder in (build_encoder, build_decoder)]
    fused_loss = speed is not None and speed.fused_loss
    if model_config.kind == "vae":
        model = VAE(*parts, loss=model_config.loss, kl_factor=model_config.kl_factor,
                    seed=train_config.seed, fused_loss=fused_loss, name=name)
    else:
        model = AE(*parts, loss=model_config.loss, seed=train_config.seed,
                   fused_loss=fused_loss, name=name)
    model.build(None)
    return model


def compiled_model(name: str, model_config: ModelConfig | JudgeConfig,
                   train_config: TrainConfig, dataset: Dataset,
                   strategy=None, *, speed: SpeedConfig | None = None,
                   kernel_dir: Path | None = None,
                   device: str | None = None) -> keras.Model:
    """A fresh model, built and compiled as the trainer does, ready for ``fit``.

    Args:
        name: The model's name.
        model_config: A ``ModelConfig`` or the ``JudgeConfig``.
        train_config: Seed, precision, learning rate.
        dataset: Supplies the image shape and the judge's task.
        strategy: The distribution strategy (default: ``train_config.strategy``).
        speed: Speed options (``config.speed``), where ``keys.uses_speed`` says
            they apply; None: none.
        kernel_dir: Where ``speed.fuse_batch_norm`` compiles its kernel: the
            build folder's ``kernels/`` (default: the repository's ``build/``).
        device: ``cpu`` or ``gpu``: the options' device (default:
            ``devices.training_device()``). :func:`applied_speed` gives the
            options it applies.

    Returns:
        The compiled model, its variables placed by ``strategy``.

    Raises:
        EnvironmentProblem: ``speed.fuse_batch_norm`` without a C++ compiler.
    """
    strategy = strategy or runtime.get_strategy(train_config.strategy)
    device = device or devices.training_device()
    speed, skipped = applied_speed(model_config, train_config, speed,
                                   strategy.num_replicas_in_sync, device)
    with strategy.scope():
        model = build_model(name, model_config, train_config, dataset,
                            strategy.num_replicas_in_sync > 1, speed, kernel_dir,
                            device)
        optimizer = _optimizer(train_config, speed)
        if isinstance(model_config, JudgeConfig):
            judge.compile_judge(model, keys.judge_task(dataset.card), optimizer)
        else:
            # XLA measured slower than TensorFlow's own CPU kernels here (and is
            # Keras' default off GPUs anyway): only speed.jit_compile turns it on.
            model.compile(optimizer=optimizer,
                          jit_compile=speed is not None and speed.jit_compile)
    log.info("%s", devices.describe(name, device, speed or devices.PLAIN, skipped))
    return model


def applied_speed(model_config: ModelConfig | JudgeConfig, train_config: TrainConfig,
                  speed: SpeedConfig | None, replicas: int, device: str,
                  ) -> tuple[SpeedConfig | None, dict[str, str]]:
    """The speed options :func:`compiled_model` builds into a model, and those it
    leaves off with the reason (``devices.applied_options``).

    Args:
        model_config: A ``ModelConfig`` or the ``JudgeConfig``.
        train_config: Supplies the precision.
        speed: The configured options (``config.speed``); None: none.
        replicas: The strategy's replicas in sync.
        device: ``cpu`` or ``gpu``.

    Returns:
        ``(applied, skipped)``; ``applied`` is None where no option applies to the
        model (the judge, a pretrained file, every option off).
    """
    if not keys.uses_speed(model_config, speed):
        return None, {}
    applied, skipped = devices.applied_options(speed, device, replicas,
                                               train_config.precision)
    return (applied if applied.active() else None), skipped


def _optimizer(train_config: TrainConfig,
               speed: SpeedConfig | None) -> keras.optimizers.Optimizer:
    """Adam as ``runtime.make_optimizer`` makes it, or ``FusedAdam`` where applied
    (``devices.applied_options`` keeps it to one replica without loss scaling)."""
    if speed is not None and speed.fused_adam:
        return FusedAdam(train_config.learning_rate)
    return runtime.make_optimizer(train_config.learning_rate, train_config.precision)
