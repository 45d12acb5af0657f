"""CelebA from a copy the user already has: the image folder or the zip, plus lists.

The expected layout (only one of the first two is needed)::

    <path>/img_align_celeba/000001.jpg ...   the aligned 178 x 218 images
    <path>/img_align_celeba.zip              or the same images zipped
    <path>/list_eval_partition.txt           optional: the official split
    <path>/list_attr_celeba.txt              optional: 40 binary attributes

``path`` may also name the zip itself or the ``img_align_celeba`` folder itself.

Face box: a 148 x 148 square, horizontally centred, its centre 114 px from the top of
the 178 x 218 image (rows 40 to 188, columns 15 to 163), which holds the face from the
chin to the hairline with a little hair and background; both numbers are configurable
(``data.crop_size``, ``data.crop_center_y``).
"""

from __future__ import annotations

import hashlib
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from zspace.config import DataConfig
from zspace.data.dataset import Dataset, DatasetCard, content_hash
from zspace.data.decode import Crop, ImageStore, decode_many, file_fingerprint
from zspace.errors import DataError

IMAGE_FOLDER = "img_align_celeba"
PARTITION_FILE = "list_eval_partition.txt"
ATTRIBUTE_FILE = "list_attr_celeba.txt"
_IMAGE_NAME = re.compile(r"(^|/)\d{6}\.jpg$", re.IGNORECASE)

LAYOUT = (
    "expected a CelebA copy laid out as\n"
    f"  PATH/{IMAGE_FOLDER}/000001.jpg ...  (or PATH/{IMAGE_FOLDER}.zip)\n"
    f"  PATH/{PARTITION_FILE}  (optional: the official split)\n"
    f"  PATH/{ATTRIBUTE_FILE}  (optional: 40 attributes)"
)


@dataclass(frozen=True)
class CelebaCopy:
    """A located CelebA copy: where the images are and which lists came with it."""

    store: ImageStore
    names: tuple[str, ...]  # image names as the store reads them, sorted
    root: Path  # the folder holding the lists

    def basename(self, name: str) -> str:
        return name.rsplit("/", 1)[-1]


def locate(path: str | Path) -> CelebaCopy:
    """Find the images of a CelebA copy at ``path``.

    Raises:
        DataError: Nothing CelebA-like is there; the message shows the layout expected.
    """
    path = Path(path).expanduser()
    if not str(path) or str(path) == ".":
        raise DataError(f"data.path is not set for the celeba source; {LAYOUT}")
    if not path.exists():
        raise DataError(f"CelebA path does not exist: {path}; {LAYOUT}")
    if path.is_file():
        return _locate_zip(path, path.parent)
    if (path / IMAGE_FOLDER).is_dir():
        return _locate_folder(path / IMAGE_FOLDER, path)
    if (path / f"{IMAGE_FOLDER}.zip").is_file():
        return _locate_zip(path / f"{IMAGE_FOLDER}.zip", path)
    if path.name == IMAGE_FOLDER:
        return _locate_folder(path, path.parent)
    raise DataError(f"no {IMAGE_FOLDER}/ folder or {IMAGE_FOLDER}.zip in {path}; "
                    f"{LAYOUT}")


def _locate_folder(folder: Path, root: Path) -> CelebaCopy:
    names = sorted(p.name for p in folder.iterdir()
                   if p.is_file() and p.suffix.lower() == ".jpg")
    if not names:
        raise DataError(f"no .jpg images in {folder}; {LAYOUT}")
    return CelebaCopy(ImageStore("dir", str(folder)), tuple(names), root)


def _locate_zip(archive: Path, root: Path) -> CelebaCopy:
    try:
        with zipfile.ZipFile(archive) as handle:
            names = sorted(n for n in handle.namelist() if _IMAGE_NAME.search(n))
    except (zipfile.BadZipFile, OSError) as error:
        raise DataError(f"{archive} is not a readable zip file ({error}); "
                        f"{LAYOUT}") from None
    if not names:
        raise DataError(f"{archive} does not look like CelebA: it holds no "
                        f"{IMAGE_FOLDER}/NNNNNN.jpg images; {LAYOUT}")
    return CelebaCopy(ImageStore("zip", str(archive)), tuple(names), root)


def fingerprint(copy: CelebaCopy) -> str:
    """A cheap key that changes when the copy's files change.

    Hashing 1.4 GB of JPEGs would take longer than loading the cache, so the key covers
    what changes with them: names and CRCs for a zip, names, sizes and modification
    times for a folder, and the full text of the two lists.
    """
    if copy.store.kind == "zip":
        digest = hashlib.sha256()
        with zipfile.ZipFile(copy.store.path) as handle:
            for info in handle.infolist():
                digest.update(f"{info.filename}:{info.CRC}:{info.file_size}".encode())
    else:
        digest = file_fingerprint(Path(copy.store.path), copy.names)
    for name in (PARTITION_FILE, ATTRIBUTE_FILE):
        if (copy.root / name).is_file():
            digest.update((copy.root / name).read_bytes())
    return digest.hexdigest()[:16]


def split(copy: CelebaCopy,
          config: DataConfig) -> tuple[list[str], list[str], list[str], str]:
    """Train, test and validation names: the official partition if present, else a
    seeded split.

    With the official list, testing takes partition 2 and validation the first
    ``num_val`` images of partition 1; training takes partition 0 and the rest of
    partition 1. Images missing from the list are left out. Without it, a seeded
    ``test_fraction`` share tests and a second share of that size (at most
    ``num_val``) validates.
    """
    partition_file = copy.root / PARTITION_FILE
    if partition_file.is_file():
        partition = _read_partition(partition_file)
        part = {n: partition.get(copy.basename(n), -1) for n in copy.names}
        val = [n for n in copy.names if part[n] == 1][: config.num_val]
        chosen = set(val)
        train = [n for n in copy.names if part[n] in (0, 1) and n not in chosen]
        test = [n for n in copy.names if part[n] == 2]
        how = f"official split from {PARTITION_FILE}"
    else:
        order = np.random.default_rng(config.seed).permutation(len(copy.names))
        share = max(1, round(len(copy.names) * config.test_fraction))
        num_val = min(share, config.num_val)
        test = [copy.names[i] for i in sorted(order[:share])]
        val = [copy.names[i] for i in sorted(order[share:share + num_val])]
        train = [copy.names[i] for i in sorted(order[share + num_val:])]
        how = f"no {PARTITION_FILE}: seeded {config.test_fraction:.0%} test split"
    train = train[: config.num_train] if config.num_train else train
    test = test[: config.num_test] if config.num_test else test
    if not train or not test:
        raise DataError(f"the CelebA split of {copy.root} leaves "
                        f"{len(train)} training and {len(test)} test images; "
                        "both must be non-empty")
    return train, test, val, how


def _read_partition(path: Path) -> dict[str, int]:
    partition = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 2 or not parts[1].isdigit():
            raise DataError(f"{path}:{number}: expected 'NNNNNN.jpg PARTITION', "
                            f"got {line!r}")
        partition[parts[0]] = int(parts[1])
    return partition


def read_attributes(path: Path) -> tuple[tuple[str, ...], dict[str, np.ndarray]]:
    """Parse ``list_attr_celeba.txt``: a count line, a names line, then +1/-1 rows.

    Returns:
        (names, rows): attribute names and, per image file name, a float32 vector of
        0/1 values.
    """
    lines = path.read_text().splitlines()
    if len(lines) < 2:
        raise DataError(f"{path}: expected a count line and a names line")
    names = tuple(lines[1].split())
    rows = {}
    for number, line in enumerate(lines[2:], 3):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != len(names) + 1:
            raise DataError(f"{path}:{number}: expected a file name and {len(names)} "
                            f"values, got {len(parts)} fields")
        rows[parts[0]] = (np.array(parts[1:], dtype=np.float32) > 0).astype(np.float32)
    return names, rows


def load_celeba(config: DataConfig, progress: bool = True) -> Dataset:
    """Load, crop and resize a local CelebA copy (see the module docstring).

    Raises:
        DataError: The path is not a CelebA copy, or no image could be decoded.
    """
    copy = locate(config.path)
    train_names, test_names, val_names, how = split(copy, config)
    crop = Crop("celeba", config.crop_size, config.crop_center_y)
    train, train_kept, train_skipped = decode_many(
        copy.store, train_names, config.image_size, crop, config.workers, progress,
        "celeba train")
    test, test_kept, test_skipped = decode_many(
        copy.store, test_names, config.image_size, crop, config.workers, progress,
        "celeba test")
    val, val_kept, val_skipped = decode_many(
        copy.store, val_names, config.image_size, crop, config.workers, progress,
        "celeba validation")
    if not len(train) or not len(test):
        raise DataError(f"no readable CelebA images in {copy.store.path} "
                        f"({len(train_skipped) + len(test_skipped)} files skipped)")
    attribute_names: tuple[str, ...] = ()
    train_attributes = test_attributes = val_attributes = None
    if (copy.root / ATTRIBUTE_FILE).is_file():
        attribute_names, rows = read_attributes(copy.root / ATTRIBUTE_FILE)
        train_attributes, test_attributes, val_attributes = (
            _attribute_matrix(copy, kept, rows, attribute_names)
            for kept in (train_kept, test_kept, val_kept))
        if train_attributes is None or test_attributes is None or (
                len(val) and val_attributes is None):
            attribute_names = ()
            train_attributes = test_attributes = val_attributes = None
    val = val if len(val) else None  # no split: the hash of a copy without one
    val_attributes = val_attributes if val is not None else None
    card = DatasetCard(
        source="celeba",
        location=copy.store.path,
        num_train=len(train),
        num_test=len(test),
        num_val=0 if val is None else len(val),
        image_size=config.image_size,
        content_hash=content_hash(train, test, val),
        attribute_names=attribute_names,
        skipped=tuple(train_skipped + test_skipped + val_skipped),
        preparation=(
            f"{how}" + (f", {len(val)} validation images" if val is not None else "")
            + f"; a {config.crop_size} px square, horizontally centred, centre "
            f"{config.crop_center_y} px from the top of the 178x218 image, resized to "
            f"{config.image_size} px (Lanczos)"),
    )
    return Dataset(train, test, train_attributes, test_attributes, card, val,
                   val_attributes)


def _attribute_matrix(copy, names, rows, attribute_names) -> np.ndarray | None:
    try:
        vectors = [rows[copy.basename(n)] for n in names]
    except KeyError:
        # The list does not cover every image: drop attributes rather than guess.
        return None
    if not vectors:
        return np.zeros((0, len(attribute_names)), np.float32)
    return np.stack(vectors)
