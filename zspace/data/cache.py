"""One folder per prepared data set: uint8 ``.npy`` arrays and a card, written at once.

A cache entry is complete only once its folder has its final name: everything is
written into a temporary sibling first and renamed in one step, so a crash or Ctrl-C
never leaves a half-written entry that a later run could mistake for a good one. Each
array's sha256 is kept beside it (``sha256.json``) and checked the first time a
process opens the entry, so damage that keeps a file's size is found too.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from zspace.data.dataset import Dataset, DatasetCard

_ARRAYS = ("train", "test", "train_attributes", "test_attributes", "val",
           "val_attributes")
HASHES = "sha256.json"
# Files whose hash this process has checked, by (path, size, modification time).
_CHECKED: set[tuple[str, int, int]] = set()


class DamagedEntry(Exception):
    """A cache entry whose files cannot be what its card says (truncated, removed)."""


def load_entry(folder: Path) -> Dataset | None:
    """Open a cache entry, or return None if it is missing or damaged.

    Arrays are memory-mapped read-only, so opening even the CelebA-scale cache takes
    well under a second; pages are read as the training pipeline touches them.
    """
    try:
        return open_entry(folder)
    except DamagedEntry:
        return None


def open_entry(folder: Path) -> Dataset | None:
    """Open a cache entry; None if there is none.

    The card must parse, the train and test arrays (and the validation array, where
    the card counts one) must be there, each file must be as long as its header
    says (a truncated file fails to memory-map), the arrays must hold the card's
    image counts at its resolution, and a file changed since it was written must
    still match its sha256 (:func:`_check_hashes`).

    Raises:
        DamagedEntry: The folder exists but fails a check; the message says which.
    """
    if not folder.exists():
        return None
    try:
        card = DatasetCard.from_dict(json.loads((folder / "card.json").read_text()))
        arrays = {
            name: np.load(folder / f"{name}.npy", mmap_mode="r")
            if (folder / f"{name}.npy").exists() else None
            for name in _ARRAYS
        }
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise DamagedEntry(f"{type(error).__name__}: {error}") from None
    splits = [("train", card.num_train), ("test", card.num_test)]
    if card.num_val:
        splits.append(("val", card.num_val))
    for name, count in splits:
        array = arrays[name]
        expected = (count, card.image_size, card.image_size, 3)
        if array is None:
            raise DamagedEntry(f"{name}.npy is missing")
        if array.shape != expected:
            raise DamagedEntry(f"{name}.npy holds {array.shape}, the card says "
                               f"{expected}")
    _check_hashes(folder)
    return Dataset(card=card, **arrays)


def _check_hashes(folder: Path) -> None:
    """Compare each array file with its recorded sha256, where it may have changed.

    The record keeps each file's size and modification time beside its hash. A
    file that still shows them is taken as whole without reading it (a CelebA array
    is gigabytes, and every notebook kernel opens the entry); one that does not
    (rewritten, zeroed in place) is hashed, once per process.

    Raises:
        DamagedEntry: The record is missing or unreadable, or a file differs from it.
    """
    try:
        recorded = json.loads((folder / HASHES).read_text())
        files = [(folder / name, entry["sha256"], (entry["size"], entry["mtime_ns"]))
                 for name, entry in recorded.items()]
    except (OSError, ValueError, AttributeError, KeyError, TypeError) as error:
        raise DamagedEntry(f"{HASHES}: {type(error).__name__}: {error}") from None
    for file, digest, written in files:
        try:
            key = _stat_key(file)
            if (key[1:] != written and key not in _CHECKED
                    and _sha256(file) != digest):
                raise DamagedEntry(f"{file.name} differs from its recorded sha256")
        except OSError as error:
            raise DamagedEntry(f"{file.name}: {error}") from None
        _CHECKED.add(key)


def _stat_key(file: Path) -> tuple[str, int, int]:
    stat = file.stat()
    return str(file), stat.st_size, stat.st_mtime_ns


def _sha256(file: Path) -> str:
    with open(file, "rb") as stream:  # in chunks: a CelebA array is gigabytes
        return hashlib.file_digest(stream, "sha256").hexdigest()


def save_entry(folder: Path, dataset: Dataset) -> Dataset:
    """Write ``dataset`` to ``folder`` atomically and return it re-opened from disk."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        for name in _ARRAYS:
            array = getattr(dataset, name)
            if array is not None:
                np.save(staging / f"{name}.npy", np.ascontiguousarray(array))
        hashes = {f.name: {"sha256": _sha256(f), "size": _stat_key(f)[1],
                           "mtime_ns": _stat_key(f)[2]}
                  for f in sorted(staging.glob("*.npy"))}
        (staging / HASHES).write_text(json.dumps(hashes, indent=2))
        # The card goes last: its presence marks the entry as complete.
        (staging / "card.json").write_text(json.dumps(dataset.card.to_dict(), indent=2))
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(staging, folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    _CHECKED.update(_stat_key(folder / name) for name in hashes)  # just hashed
    reopened = load_entry(folder)
    assert reopened is not None  # we have just written it
    return reopened
