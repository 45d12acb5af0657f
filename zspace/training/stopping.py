"""The held-out stopping rule, in one place: the window, its gain and the decision.

After ``n`` epochs the rule looks back over the last ``stop_window`` share of them
(at least one epoch) and asks how much of the held-out quantity that stretch removed.
Training stops once the share is below ``stop_improvement`` (after ``min_epochs``).
The trainer's callback records each epoch's reading in the history, and the manifest
and notebook 10 read it from there or ask :meth:`StoppingRule.read` for the same
numbers: nothing else computes the window.

``stop_smoothing`` epochs are averaged at both ends of the window. One epoch's
held-out error moves by a few per cent from noise alone, as much as the gain the rule
looks for, so a smoothed reading tells a flattening curve from a lucky epoch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from zspace.config import TrainConfig

# What the trainer adds to a run's history each epoch.
GAIN, WINDOW = "stop_gain", "stop_window_epochs"


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


@dataclass(frozen=True)
class WindowReading:
    """What the rule read after the last epoch of a history.

    Attributes:
        monitored: The held-out quantity's name in the history.
        epochs: Epochs so far.
        window: Epochs the rule looked back over.
        before: The (smoothed) value at the window's start; None before 2 epochs.
        after: The (smoothed) value at the last epoch; None before 2 epochs.
        gain: ``(before - after) / |before|``; None before 2 epochs.
        stop: Whether training ends after this epoch.
    """

    monitored: str
    epochs: int
    window: int
    before: float | None
    after: float | None
    gain: float | None
    stop: bool

    @property
    def compared_with_epoch(self) -> int:
        """The epoch (counted from 1) at the window's start."""
        return self.epochs - self.window


@dataclass(frozen=True)
class StoppingRule:
    """The rule's settings (see ``TrainConfig``)."""

    window: float
    improvement: float
    min_epochs: int
    smoothing: int = 1

    @classmethod
    def of(cls, train_config: TrainConfig) -> StoppingRule:
        return cls(train_config.stop_window, train_config.stop_improvement,
                   train_config.min_epochs, train_config.stop_smoothing)

    @property
    def active(self) -> bool:
        return self.improvement > 0

    def read(self, history: dict[str, list]) -> WindowReading:
        """The reading after the last epoch of ``history``."""
        name = monitored(history)
        return self.read_values(history.get(name, []), name)

    def read_values(self, values: Sequence[float], name: str = "") -> WindowReading:
        """The reading after the last of ``values`` (the held-out value per epoch)."""
        n = len(values)
        # At least one epoch back, and never past the first (a window of 1.0).
        window = min(max(1, round(self.window * n)), n - 1)
        if n < 2:
            return WindowReading(name, n, 0, None, None, None, False)
        before = self._smoothed(values, n - 1 - window)
        after = self._smoothed(values, n - 1)
        gain = float((before - after) / abs(before)) if before else 0.0
        stop = (self.active and n >= max(self.min_epochs, 2)
                and gain < self.improvement)
        return WindowReading(name, n, window, before, after, gain, stop)

    def _smoothed(self, values: Sequence[float], at: int) -> float:
        # The mean of the ``smoothing`` epochs ending at ``at`` (fewer at the start).
        part = values[max(0, at + 1 - self.smoothing):at + 1]
        return float(sum(part) / len(part))


def record(history: dict[str, list], rule: StoppingRule) -> WindowReading:
    """Read the rule after the history's last epoch and append the reading to it."""
    reading = rule.read(history)
    history.setdefault(GAIN, []).append(reading.gain)
    history.setdefault(WINDOW, []).append(reading.window)
    return reading
