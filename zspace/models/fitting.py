"""The training loop proper: what ``fit`` is given, epoch by epoch.

Everything here shapes the trained weights, so this module is part of the model-code
digest of the artifact key (``keys.WEIGHT_CODE``); the bookkeeping around it (caches,
published weights, messages) lives in ``training.py`` and is not.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import keras

from zspace.config import TrainConfig
from zspace.data.dataset import Dataset
from zspace.models import judge
from zspace.models.callbacks import (
    EpochCheckpoint,
    HeldOutStop,
    Progress,
    held_out_converged,
    monitored,
)
from zspace.models.inputs import evaluation_batches, steps_per_epoch, training_batches


def converged(history: dict[str, list], train_config: TrainConfig) -> bool:
    """Whether a (restored) history already meets the held-out stopping rule."""
    return held_out_converged(history.get(monitored(history), []), train_config.stop_window,
                              train_config.stop_improvement, train_config.min_epochs)


def fit(model: keras.Model, name: str, spec: dict, dataset: Dataset,
        train_config: TrainConfig, first_epoch: int, num_epochs: int,
        history: dict[str, list], work: Path, progress: bool,
        callbacks: Sequence[keras.callbacks.Callback] = ()) -> None:
    """Train ``model`` from ``first_epoch`` for at most ``num_epochs`` in all.

    Args:
        model: The compiled model (restored to ``first_epoch`` where resuming).
        name: The model's name (progress bar).
        spec: Its key spec (the judge's task).
        dataset: The data set; its test split is the held-out set.
        train_config: Batch size, seed and the stopping rule.
        first_epoch: Epochs already done.
        num_epochs: The most epochs in all.
        history: Per-epoch lists so far; appended to in place.
        work: Folder of the per-epoch checkpoint.
        progress: Show a progress bar.
        callbacks: Extra Keras callbacks (after the checkpoint).
    """
    targets, extra, test_extra = judge.training_targets(spec.get("task"), dataset)
    batch = train_config.batch_size
    steps = steps_per_epoch(len(dataset.train), batch)
    train_data = training_batches(dataset.train, batch, train_config.seed,
                                  first_epoch, num_epochs, targets, extra)
    test_data = evaluation_batches(dataset.test, batch, targets, test_extra)
    stop = []
    if len(dataset.test) and train_config.stop_improvement > 0:
        stop = [HeldOutStop(history, train_config.stop_window,
                            train_config.stop_improvement, train_config.min_epochs)]
    model.fit(
        train_data,
        epochs=num_epochs,
        initial_epoch=first_epoch,
        steps_per_epoch=steps,
        validation_data=test_data if len(dataset.test) else None,
        callbacks=[
            EpochCheckpoint(work / "checkpoint", history),
            *stop,
            Progress(name, steps * num_epochs, steps * first_epoch, progress),
            *callbacks,
        ],
        shuffle=False,  # the pipeline shuffles, keyed by epoch
        verbose=0,
    )
