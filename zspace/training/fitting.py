"""The training loop proper: what ``fit`` is given, epoch by epoch.

Everything here shapes the trained weights (``keys.WEIGHT_CODE``: a change to what it
computes bumps ``keys.TRAINING_SEMANTICS``); the bookkeeping around it (caches,
committed weights, messages) lives in ``trainer.py``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import keras
import numpy as np

from zspace.config import TrainConfig
from zspace.data.dataset import Dataset
from zspace.networks import judge
from zspace.training.callbacks import EpochCheckpoint, HeldOutStop, Progress
from zspace.training.inputs import evaluation_batches, steps_per_epoch, training_batches
from zspace.training.stopping import StoppingRule

log = logging.getLogger(__name__)


def converged(history: dict[str, list], train_config: TrainConfig) -> bool:
    """Whether a (restored) history already meets the held-out stopping rule."""
    return StoppingRule.of(train_config).read(history).stop


def held_out(dataset: Dataset) -> tuple[str, np.ndarray, np.ndarray | None]:
    """The images the stopping rule reads: the validation split, or the test split
    of a data set without one (``data.num_val = 0``, as before the split existed).

    Returns:
        ``(split name, images, attributes)``.
    """
    if dataset.val is not None and len(dataset.val):
        return "val", dataset.val, dataset.val_attributes
    return "test", dataset.test, dataset.test_attributes


def fit(model: keras.Model, name: str, spec: dict, dataset: Dataset,
        train_config: TrainConfig, first_epoch: int, num_epochs: int,
        history: dict[str, list], work: Path, progress: bool,
        callbacks: Sequence[keras.callbacks.Callback] = ()) -> None:
    """Train ``model`` from ``first_epoch`` for at most ``num_epochs`` in all.

    Args:
        model: The compiled model (restored to ``first_epoch`` where resuming).
        name: The model's name (progress bar).
        spec: Its key spec (the judge's task).
        dataset: The data set; its held-out set is :func:`held_out`'s.
        train_config: Batch size, seed and the stopping rule.
        first_epoch: Epochs already done.
        num_epochs: The most epochs in all.
        history: Per-epoch lists so far; appended to in place.
        work: Folder of the per-epoch checkpoint.
        progress: Show a progress bar.
        callbacks: Extra Keras callbacks (after the checkpoint).
    """
    split, images, attributes = held_out(dataset)
    if split == "test" and len(images):
        log.warning("%s: no validation split (data.num_val = 0): the stopping rule "
                    "reads the test images", name)
    targets, extra, held_out_extra = judge.training_targets(
        spec.get("task"), dataset, attributes)
    batch = train_config.batch_size
    steps = steps_per_epoch(len(dataset.train), batch)
    train_data = training_batches(dataset.train, batch, train_config.seed,
                                  first_epoch, num_epochs, targets, extra)
    held_out_data = evaluation_batches(images, batch, targets, held_out_extra)
    rule = StoppingRule.of(train_config)
    stop = [HeldOutStop(history, rule)] if len(images) and rule.active else []
    bar = Progress(name, steps * num_epochs, steps * first_epoch, progress)
    try:
        model.fit(
            train_data,
            epochs=num_epochs,
            initial_epoch=first_epoch,
            steps_per_epoch=steps,
            validation_data=held_out_data if len(images) else None,
            callbacks=[
                EpochCheckpoint(work / "checkpoint", history,
                                rule=rule if len(images) else None),
                *stop,
                bar,
                *callbacks,
            ],
            shuffle=False,  # the pipeline shuffles, keyed by epoch
            verbose=0,
        )
    finally:
        # An error ends fit without on_train_end: the bar must not stay open and
        # share its line with the error message.
        bar.on_train_end()
