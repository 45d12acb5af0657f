"""Any directory tree of JPEG or PNG images, centre-cropped to a square and resized."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from zspace.config import DataConfig
from zspace.data.dataset import Dataset, DatasetCard, content_hash
from zspace.data.decode import Crop, ImageStore, decode_many, file_fingerprint
from zspace.errors import DataError

SUFFIXES = (".jpg", ".jpeg", ".png")
LAYOUT = ("expected a folder holding .jpg, .jpeg or .png files "
          "(sub-folders are searched)")


def list_images(root: Path) -> list[str]:
    """Image files under ``root`` as sorted relative POSIX paths."""
    return sorted(
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file() and p.suffix.lower() in SUFFIXES
    )


def locate(path: str | Path) -> tuple[Path, list[str]]:
    """Check ``path`` and list its images.

    Raises:
        DataError: The path is unset, missing, not a folder, or holds no images.
    """
    if not str(path):
        raise DataError(f"data.path is not set for the folder source; {LAYOUT}")
    root = Path(path).expanduser()
    if not root.exists():
        raise DataError(f"image folder does not exist: {root}; {LAYOUT}")
    if not root.is_dir():
        raise DataError(f"not a folder: {root}; {LAYOUT}")
    names = list_images(root)
    if not names:
        raise DataError(f"no images in {root}; {LAYOUT}")
    return root, names


def fingerprint(path: str | Path) -> str:
    """A cheap key that changes when the folder's image files change."""
    root, names = locate(path)
    return file_fingerprint(root, names).hexdigest()[:16]


def load_folder(config: DataConfig, progress: bool = True) -> Dataset:
    """Load every image under ``config.path``; a seeded share becomes the test split.

    Raises:
        DataError: See :func:`locate`; also when too few images are readable to split.
    """
    root, names = locate(config.path)
    if len(names) < 2:
        raise DataError(f"{root} holds {len(names)} image; at least 2 are needed "
                        "for a training and a test split")
    order = np.random.default_rng(config.seed).permutation(len(names))
    num_test = min(len(names) - 1, max(1, round(len(names) * config.test_fraction)))
    test_names = [names[i] for i in sorted(order[:num_test])]
    train_names = [names[i] for i in sorted(order[num_test:])]
    if config.num_train:
        train_names = train_names[: config.num_train]
    if config.num_test:
        test_names = test_names[: config.num_test]
    store = ImageStore("dir", str(root))
    size = config.image_size
    train, _, train_skipped = decode_many(store, train_names, size, Crop("centre"),
                                          config.workers, progress, "folder train")
    test, _, test_skipped = decode_many(store, test_names, size, Crop("centre"),
                                        config.workers, progress, "folder test")
    if not len(train) or not len(test):
        raise DataError(f"too few readable images in {root}: {len(train)} training, "
                        f"{len(test)} test ({len(train_skipped) + len(test_skipped)} "
                        "skipped)")
    card = DatasetCard(
        source="folder",
        location=str(root),
        num_train=len(train),
        num_test=len(test),
        image_size=size,
        content_hash=content_hash(train, test),
        skipped=tuple(train_skipped + test_skipped),
        preparation=(f"seeded {config.test_fraction:.0%} test split; the largest "
                     f"centred square, resized to {size} px (Lanczos)"),
    )
    return Dataset(train, test, None, None, card)
