"""Any directory tree of JPEG or PNG images, centre-cropped to a square and resized."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from zspace.config import MIN_TEST_IMAGES, MIN_TRAIN_IMAGES, DataConfig
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


def images_needed(config: DataConfig) -> int:
    """The fewest images a folder needs for the build's smallest splits
    (``MIN_TRAIN_IMAGES`` training, ``MIN_TEST_IMAGES`` test) at
    ``config.test_fraction``."""
    count = MIN_TRAIN_IMAGES + MIN_TEST_IMAGES
    while True:  # ends: test_fraction < 1
        num_test = max(1, round(count * config.test_fraction))
        num_val = min(num_test, config.num_val)
        if (num_test >= MIN_TEST_IMAGES
                and count - num_test - num_val >= MIN_TRAIN_IMAGES):
            return count
        count += 1


def _too_few(root: Path, found: str, config: DataConfig) -> str:
    return (f"{root} {found}; the build needs at least {MIN_TRAIN_IMAGES} training "
            f"and {MIN_TEST_IMAGES} test images for its batches and the notebooks' "
            f"statistics: {images_needed(config)} readable images at data.test_fraction"
            f" = {config.test_fraction:g}")


def load_folder(config: DataConfig, progress: bool = True) -> Dataset:
    """Load every image under ``config.path``; a seeded share becomes the test split,
    and a second share of that size (at most ``num_val``) the validation split.

    Raises:
        DataError: See :func:`locate`; also when there are too few images, or too
            few readable ones, for the build's smallest splits (before decoding).
    """
    root, names = locate(config.path)
    if len(names) < 2:
        raise DataError(f"{root} holds {len(names)} image; at least 2 are needed "
                        "for a training and a test split")
    if len(names) < images_needed(config):
        raise DataError(_too_few(root, f"holds {len(names)} images", config))
    order = np.random.default_rng(config.seed).permutation(len(names))
    num_test = min(len(names) - 1, max(1, round(len(names) * config.test_fraction)))
    # Validation: a second seeded share of the same size, at most num_val, and
    # never the last training image.
    num_val = min(num_test, config.num_val, len(names) - num_test - 1)
    test_names = [names[i] for i in sorted(order[:num_test])]
    val_names = [names[i] for i in sorted(order[num_test:num_test + num_val])]
    train_names = [names[i] for i in sorted(order[num_test + num_val:])]
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
    val, _, val_skipped = decode_many(store, val_names, size, Crop("centre"),
                                      config.workers, progress, "folder validation")
    if len(train) < MIN_TRAIN_IMAGES or len(test) < MIN_TEST_IMAGES:
        raise DataError(_too_few(root, f"has {len(train)} training and {len(test)} "
                                 f"test images that can be read", config))
    if not len(train) or not len(test):
        raise DataError(f"too few readable images in {root}: {len(train)} training, "
                        f"{len(test)} test ({len(train_skipped) + len(test_skipped)} "
                        "skipped)")
    card = DatasetCard(
        source="folder",
        location=str(root),
        num_train=len(train),
        num_test=len(test),
        num_val=len(val),
        image_size=size,
        content_hash=content_hash(train, test, val if len(val) else None),
        skipped=tuple(train_skipped + test_skipped + val_skipped),
        preparation=(f"seeded {config.test_fraction:.0%} test split"
                     + (f" and {len(val)} validation images" if len(val) else "")
                     + f"; the largest centred square, resized to {size} px "
                     "(Lanczos)"),
    )
    return Dataset(train, test, None, None, card, val if len(val) else None)
