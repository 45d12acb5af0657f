"""Fresh models of a configured architecture, built and compiled as the trainer does."""

from __future__ import annotations

import keras

from zspace.config import JudgeConfig, ModelConfig, TrainConfig
from zspace.data.dataset import Dataset
from zspace.models import judge, keys, runtime
from zspace.models.architecture import build_decoder, build_encoder
from zspace.models.autoencoders import AE, VAE


def build_model(name: str, model_config: ModelConfig | JudgeConfig,
                train_config: TrainConfig, dataset: Dataset,
                synchronized_batch_norm: bool = False) -> keras.Model:
    """A fresh, untrained model of the configured architecture (seeded).

    Args:
        name: The model's name.
        model_config: A ``ModelConfig`` or the ``JudgeConfig``.
        train_config: Supplies the seed and the precision.
        dataset: Supplies the image shape (and the judge's number of targets).
        synchronized_batch_norm: Batch statistics over all replicas.

    Returns:
        An ``AE``, a ``VAE`` or the functional judge, not compiled.
    """
    runtime.seed_everything(train_config.seed)
    dtype = runtime.dtype_policy(train_config.precision)
    shape = dataset.image_shape
    if isinstance(model_config, JudgeConfig):
        task = keys.judge_task(dataset.card)
        outputs = (judge.attributes(dataset)[0].shape[1] if task == "attributes"
                   else judge.NUM_ROTATIONS)
        return judge.build_judge(model_config, shape, outputs, dtype,
                                 synchronized_batch_norm)
    parts = [builder(model_config, shape, dtype, train_config.seed,
                     synchronized_batch_norm)
             for builder in (build_encoder, build_decoder)]
    if model_config.kind == "vae":
        model = VAE(*parts, loss=model_config.loss, kl_factor=model_config.kl_factor,
                    seed=train_config.seed, name=name)
    else:
        model = AE(*parts, loss=model_config.loss, seed=train_config.seed, name=name)
    model.build(None)
    return model


def compiled_model(name: str, model_config: ModelConfig | JudgeConfig,
                   train_config: TrainConfig, dataset: Dataset,
                   strategy=None) -> keras.Model:
    """A fresh model, built and compiled as the trainer does, ready for ``fit``.

    Args:
        name: The model's name.
        model_config: A ``ModelConfig`` or the ``JudgeConfig``.
        train_config: Seed, precision, learning rate.
        dataset: Supplies the image shape and the judge's task.
        strategy: The distribution strategy (default: ``train_config.strategy``).

    Returns:
        The compiled model, its variables placed by ``strategy``.
    """
    strategy = strategy or runtime.get_strategy(train_config.strategy)
    with strategy.scope():
        model = build_model(name, model_config, train_config, dataset,
                            strategy.num_replicas_in_sync > 1)
        optimizer = runtime.make_optimizer(train_config.learning_rate,
                                           train_config.precision)
        if isinstance(model_config, JudgeConfig):
            judge.compile_judge(model, keys.judge_task(dataset.card), optimizer)
        else:
            # XLA measured slower than TensorFlow's own CPU kernels here (and is
            # Keras' default off GPUs anyway).
            model.compile(optimizer=optimizer, jit_compile=False)
    return model
