"""A watch on the training loss: a run whose loss stops being a number, or explodes,
is stopped at once with an error that names the model, the epoch, the step and the
setting to look at, instead of training on and caching a broken model.

It changes nothing in a run that it lets finish.
"""

from __future__ import annotations

import math

import keras

from zspace.errors import TrainingError

# A loss this many times the first step's loss has exploded: a working run's loss
# falls from its first step (the worst a fresh model does), so even a loss that
# doubles is a warning sign; a hundredfold is beyond any noisy stretch of training.
EXPLOSION = 100.0
# The settings that make a run diverge, in the order worth checking.
SUSPECTS = ("train.learning_rate", "train.batch_size", "train.precision")


class LossGuard(keras.callbacks.Callback):
    """Raises :class:`TrainingError` on a non-finite or exploding loss.

    Args:
        name: The model's name, for the message.
        first_epoch: Epochs done before this run (a resumed run counts on).
        loss_names: The logged losses to watch, first present wins (``total_loss``
            for the AE and VAE, ``loss`` for the judge).
        learning_rate: The configured learning rate, quoted in the message.
    """

    def __init__(self, name: str, first_epoch: int, learning_rate: float,
                 loss_names: tuple[str, ...] = ("total_loss", "loss")):
        super().__init__()
        self.name = name
        self.epoch = first_epoch
        self.learning_rate = learning_rate
        self.loss_names = loss_names
        self.first: float | None = None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        self._check(logs, f"step {batch + 1}")

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        held_out = {name.removeprefix("val_"): value for name, value in logs.items()
                    if name.startswith("val_")}
        self._check(held_out, "the held-out evaluation")

    def _check(self, logs, where: str) -> None:
        value = next((float(logs[name]) for name in self.loss_names
                      if name in (logs or {})), None)
        if value is None:
            return
        if self.first is None and math.isfinite(value):
            self.first = abs(value) or 1.0
        if not math.isfinite(value):
            problem = f"the loss became {value}"
        elif self.first is not None and abs(value) > EXPLOSION * self.first:
            problem = (f"the loss exploded to {value:.4g}, more than {EXPLOSION:g} "
                       f"times its first step's {self.first:.4g}")
        else:
            return
        raise TrainingError(
            f"model {self.name}: {problem} in epoch {self.epoch + 1}, {where}; "
            f"training stopped and nothing was cached. Look at train.learning_rate "
            f"(now {self.learning_rate:g}) first, then "
            f"{', '.join(SUSPECTS[1:])}")
