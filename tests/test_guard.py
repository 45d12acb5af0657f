"""The loss guard stops a diverging run with a message a user can act on."""

import math

import pytest

from zspace.errors import TrainingError
from zspace.training.guard import LossGuard


def test_a_nan_loss_names_model_epoch_step_and_setting():
    guard = LossGuard("vae", first_epoch=2, learning_rate=0.5)
    guard.on_epoch_begin(3)
    guard.on_train_batch_end(0, {"total_loss": 900.0})
    with pytest.raises(TrainingError) as stopped:
        guard.on_train_batch_end(6, {"total_loss": math.nan})
    message = str(stopped.value)
    assert message.startswith("model vae: the loss became nan in epoch 4, step 7")
    assert "train.learning_rate (now 0.5)" in message
    assert stopped.value.exit_code == 3


def test_a_falling_or_noisy_loss_passes_and_an_explosion_stops():
    guard = LossGuard("ae", first_epoch=0, learning_rate=1e-3)
    guard.on_epoch_begin(0)
    for step, loss in enumerate([700.0, 650.0, 900.0, 400.0]):
        guard.on_train_batch_end(step, {"total_loss": loss})
    guard.on_epoch_end(0, {"total_loss": 500.0, "val_total_loss": 520.0})
    with pytest.raises(TrainingError, match="exploded to 7.1e\\+04.*held-out"):
        guard.on_epoch_end(0, {"val_total_loss": 71_000.0})


def test_the_judge_is_watched_through_its_plain_loss():
    guard = LossGuard("judge", first_epoch=0, learning_rate=1e-3)
    guard.on_train_batch_end(0, {"loss": 0.7})
    with pytest.raises(TrainingError, match="model judge: the loss became inf"):
        guard.on_train_batch_end(1, {"loss": math.inf})
