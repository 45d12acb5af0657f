"""Callbacks of the trainer: per-epoch checkpoints with history, the held-out
stopping rule, and a progress bar.

Why not ``keras.callbacks.BackupAndRestore``: it restores weights, optimizer state and
the epoch counter (and works with a custom ``train_step``), but not the history of
the epochs before the interruption, and it writes the weights and its epoch record as
two separate files, so a kill between the two leaves them disagreeing. The checkpoint
here keeps the same Keras weights file (model and optimizer variables) plus the
history in one record, and switches to a new epoch by one atomic rename.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from pathlib import Path

import keras
import numpy as np
from tqdm.auto import tqdm

log = logging.getLogger(__name__)

RECORD = "latest.json"


class EpochCheckpoint(keras.callbacks.Callback):
    """Saves weights, optimizer state and history at the end of every epoch.

    Args:
        folder: Checkpoint folder (created on first save).
        history: Per-epoch lists of what came before (a resumed run's history);
            appended to in place.
        enabled: False on non-chief workers, which only keep the history.
    """

    def __init__(self, folder: Path, history: dict[str, list], enabled: bool = True):
        super().__init__()
        self.folder = Path(folder)
        self.history = history
        self.enabled = enabled
        self._started = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        logs["epoch_seconds"] = time.perf_counter() - self._started
        for name, value in logs.items():
            self.history.setdefault(name, []).append(_number(value))
        if not self.enabled:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        weights = f"epoch-{epoch + 1:04d}.weights.h5"
        self.model.save_weights(self.folder / weights)
        record = {"epochs_done": epoch + 1, "weights": weights, "history": self.history}
        _write_json_atomically(self.folder / RECORD, record)
        # Only now is the previous epoch's file unreferenced.
        for old in self.folder.glob("epoch-*.weights.h5"):
            if old.name != weights:
                old.unlink(missing_ok=True)


def restore(model: keras.Model, folder: Path) -> tuple[int, dict[str, list]]:
    """Load the last finished epoch's state into ``model``, if there is one.

    A checkpoint that cannot be read (a crash mid-write on a file system without
    atomic renames, a different architecture) is discarded: training starts over.

    Args:
        model: The compiled model, built, with the architecture that was saved.
        folder: The checkpoint folder.

    Returns:
        ``(epochs_done, history)``; ``(0, {})`` where nothing could be restored.
    """
    record_path = Path(folder) / RECORD
    if not record_path.is_file():
        return 0, {}
    try:
        record = json.loads(record_path.read_text())
        if not model.optimizer.built:
            # The optimizer's variables must exist before its state can load.
            model.optimizer.build(model.trainable_variables)
        model.load_weights(Path(folder) / record["weights"])
        return int(record["epochs_done"]), dict(record["history"])
    except Exception as error:  # any unreadable state means: start over
        log.warning("discarding unreadable checkpoint %s: %s", folder, error)
        shutil.rmtree(folder, ignore_errors=True)
        return 0, {}


def monitored(history: dict[str, list]) -> str:
    """The held-out quantity the stopping rule reads from a run's ``history``.

    For the AE and the VAE it is the held-out squared error per pixel, ``val_mse``,
    whose floor is 0: its relative fall is the share of what a model could still
    gain that it did gain. Their BCE loss sits on a floor of thousands (the pixels'
    entropy, ``convergence.bce_floor``), so its relative fall is tiny long before
    the images stop improving. The judge has no such metric and reads its loss.
    """
    for name in ("val_mse", "val_total_loss", "val_loss"):
        if name in history:
            return name
    return "val_loss"


def held_out_converged(losses: list[float], window: float, improvement: float,
                       min_epochs: int) -> bool:
    """Whether the last ``window`` share of the epochs improved ``losses`` too little.

    After ``n`` epochs the rule compares the held-out value of epoch ``n`` with that
    of epoch ``n - max(1, round(window * n))``: training has converged when the
    relative improvement between the two is below ``improvement``. Read on a
    quantity whose floor is 0 (:func:`monitored`), that is the share of the
    remaining error the window removed.

    Args:
        losses: Held-out loss per epoch so far.
        window: Share of the epochs to look back over (0.2: the last fifth).
        improvement: Smallest relative improvement that keeps training going.
        min_epochs: Never converged before this many epochs.

    Returns:
        True where training should stop after the last epoch in ``losses``.
    """
    n = len(losses)
    if improvement <= 0 or n < max(min_epochs, 2):
        return False
    before = losses[n - 1 - max(1, round(window * n))]
    return (before - losses[-1]) / abs(before) < improvement


class HeldOutStop(keras.callbacks.Callback):
    """Stops ``fit`` once :func:`held_out_converged` holds for the held-out loss.

    Reads the run's history (a resumed run's earlier epochs included), so a run
    killed and resumed stops after the same epoch as an uninterrupted one.

    Args:
        history: Per-epoch lists, filled by :class:`EpochCheckpoint` (listed first).
        window: Share of the epochs to look back over.
        improvement: Smallest relative improvement that keeps training going.
        min_epochs: Never stop before this many epochs.
    """

    def __init__(self, history: dict[str, list], window: float, improvement: float,
                 min_epochs: int):
        super().__init__()
        self.history = history
        self.window, self.improvement = window, improvement
        self.min_epochs = min_epochs

    def on_epoch_end(self, epoch, logs=None):
        name = monitored(self.history)
        losses = self.history.get(name, [])
        if held_out_converged(losses, self.window, self.improvement,
                              self.min_epochs):
            log.info("held-out %s improved by less than %.1f %% over the last "
                     "%.0f %% of %d epochs: stopping", name, 100 * self.improvement,
                     100 * self.window, len(losses))
            self.model.stop_training = True


class Progress(keras.callbacks.Callback):
    """One tqdm bar over all batches of a run, with the latest losses.

    Args:
        name: Shown before the bar.
        total_steps: Batches in the whole run.
        first_step: Batches already done (a resumed run).
        enabled: False to stay silent.
    """

    def __init__(self, name: str, total_steps: int, first_step: int = 0,
                 enabled: bool = True):
        super().__init__()
        self.name, self.total_steps, self.first_step = name, total_steps, first_step
        self.enabled = enabled
        self.bar = None

    def on_train_begin(self, logs=None):
        if self.enabled:
            self.bar = tqdm(total=self.total_steps, initial=self.first_step,
                            desc=f"training {self.name}", unit="batch",
                            dynamic_ncols=True, leave=True)

    def on_train_batch_end(self, batch, logs=None):
        if self.bar is not None:
            self.bar.update(1)
            if batch % 10 == 0 and logs:
                self.bar.set_postfix(_short(logs), refresh=False)

    def on_epoch_end(self, epoch, logs=None):
        if self.bar is not None:
            self.bar.set_postfix(_short(logs or {}))

    def on_train_end(self, logs=None):
        if self.bar is not None:
            self.bar.close()


def _short(logs: dict) -> dict[str, str]:
    keep = ("total_loss", "kl_share", "loss", "val_total_loss", "val_loss")
    return {k: f"{_number(v):.4g}" for k, v in logs.items() if k in keep}


def _number(value) -> float:
    # Step logs are scalars, or length-1 vectors under a multi-worker strategy.
    return float(np.ravel(value)[0])


def _write_json_atomically(path: Path, value) -> None:
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(value))
    os.replace(partial, path)
