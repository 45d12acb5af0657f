"""One folder per prepared data set: uint8 ``.npy`` arrays and a card, written at once.

A cache entry is complete only once its folder has its final name: everything is
written into a temporary sibling first and renamed in one step, so a crash or Ctrl-C
never leaves a half-written entry that a later run could mistake for a good one.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from zspace.data.dataset import Dataset, DatasetCard

_ARRAYS = ("train", "test", "train_attributes", "test_attributes")


def load_entry(folder: Path) -> Dataset | None:
    """Open a cache entry, or return None if it is missing or incomplete.

    Arrays are memory-mapped read-only, so opening even the CelebA-scale cache takes
    well under a second; pages are read as the training pipeline touches them.
    """
    card_file = folder / "card.json"
    if not card_file.is_file():
        return None
    try:
        card = DatasetCard.from_dict(json.loads(card_file.read_text()))
        arrays = {
            name: np.load(folder / f"{name}.npy", mmap_mode="r")
            if (folder / f"{name}.npy").exists() else None
            for name in _ARRAYS
        }
    except (OSError, ValueError, KeyError):
        return None
    if arrays["train"] is None or arrays["test"] is None:
        return None
    return Dataset(card=card, **arrays)


def save_entry(folder: Path, dataset: Dataset) -> Dataset:
    """Write ``dataset`` to ``folder`` atomically and return it re-opened from disk."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        for name in _ARRAYS:
            array = getattr(dataset, name)
            if array is not None:
                np.save(staging / f"{name}.npy", np.ascontiguousarray(array))
        # The card goes last: its presence marks the entry as complete.
        (staging / "card.json").write_text(json.dumps(dataset.card.to_dict(), indent=2))
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(staging, folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    reopened = load_entry(folder)
    assert reopened is not None  # we have just written it
    return reopened
