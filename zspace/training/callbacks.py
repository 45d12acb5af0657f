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

from zspace.errors import FileSystemFailure
from zspace.training import stopping
from zspace.training.stopping import StoppingRule

log = logging.getLogger(__name__)

RECORD = "latest.json"
# Room kept free beyond a checkpoint's own size: the history record and headroom.
CHECKPOINT_MARGIN = 16 * 2**20


class EpochCheckpoint(keras.callbacks.Callback):
    """Saves weights, optimizer state and history at the end of every epoch.

    Args:
        folder: Checkpoint folder (created on first save).
        history: Per-epoch lists of what came before (a resumed run's history);
            appended to in place.
        enabled: False on non-chief workers, which only keep the history.
        rule: Where given, the stopping rule's reading of each epoch is added to
            the history (``stopping.record``) before it is saved.
    """

    def __init__(self, folder: Path, history: dict[str, list], enabled: bool = True,
                 rule: StoppingRule | None = None):
        super().__init__()
        self.folder = Path(folder)
        self.history = history
        self.enabled = enabled
        self.rule = rule
        self._started = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        logs["epoch_seconds"] = time.perf_counter() - self._started
        for name, value in logs.items():
            self.history.setdefault(name, []).append(_number(value))
        if self.rule is not None:
            stopping.record(self.history, self.rule)
        if not self.enabled:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        weights = f"epoch-{epoch + 1:04d}.weights.h5"
        self._check_free_space()
        try:
            self.model.save_weights(self.folder / weights)
            record = {"epochs_done": epoch + 1, "weights": weights,
                      "history": self.history}
            _write_json_atomically(self.folder / RECORD, record)
        except OSError as error:  # the last whole epoch stays the one to resume
            (self.folder / weights).unlink(missing_ok=True)
            raise FileSystemFailure(
                f"{self.folder}: saving epoch {epoch + 1}'s checkpoint failed: "
                f"{error}") from error
        # Only now is the previous epoch's file unreferenced.
        for old in self.folder.glob("epoch-*.weights.h5"):
            if old.name != weights:
                old.unlink(missing_ok=True)

    def _check_free_space(self) -> None:
        """Refuse to write an epoch where it cannot fit: HDF5 writing into a full
        disk can crash the process (a segfault) instead of raising.

        Raises:
            FileSystemFailure: Less room than one more checkpoint needs.
        """
        previous = [p.stat().st_size for p in self.folder.glob("epoch-*.weights.h5")]
        # The new file is written before the old one goes. Before the first epoch,
        # a guess: the weights and Adam's two moments, as float32.
        needed = (max(previous) if previous else 12 * self.model.count_params())
        needed += CHECKPOINT_MARGIN
        free = shutil.disk_usage(self.folder).free
        if free < needed:
            raise FileSystemFailure(
                f"{self.folder}: the disk is full: a checkpoint needs about "
                f"{needed / 2**20:,.0f} MiB, {free / 2**20:,.0f} MiB are free; free "
                "some space and build again (training resumes from the last epoch)")


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


class HeldOutStop(keras.callbacks.Callback):
    """Stops ``fit`` once the stopping rule says so (:mod:`zspace.training.stopping`).

    Reads the run's history (a resumed run's earlier epochs included), so a run
    killed and resumed stops after the same epoch as an uninterrupted one.

    Args:
        history: Per-epoch lists, filled by :class:`EpochCheckpoint` (listed first),
            which also records the rule's reading in them.
        rule: The stopping rule.
    """

    def __init__(self, history: dict[str, list], rule: StoppingRule):
        super().__init__()
        self.history = history
        self.rule = rule

    def on_epoch_end(self, epoch, logs=None):
        reading = self.rule.read(self.history)
        if reading.stop:
            log.info("held-out %s improved by %.1f %% over the last %d of %d epochs "
                     "(less than %.1f %%): stopping", reading.monitored,
                     100 * reading.gain, reading.window, reading.epochs,
                     100 * self.rule.improvement)
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
            self.bar = None


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
