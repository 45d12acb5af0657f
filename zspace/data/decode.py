"""Decode, crop and resize many image files in worker processes.

Both file-based sources (``celeba`` and ``folder``) read through this module; they
differ only in where the bytes come from (a folder or a zip) and in the crop box.
"""

from __future__ import annotations

import hashlib
import io
import math
import multiprocessing
import os
import zipfile
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

# CelebA's aligned images are 178 x 218; the face box is given in those pixels and
# scaled for images of another size.
CELEBA_WIDTH = 178
CELEBA_HEIGHT = 218
_CHUNK = 256


@dataclass(frozen=True)
class Crop:
    """Which square to cut from an image before resizing.

    Attributes:
        mode: ``celeba``: a ``size`` x ``size`` box, horizontally centred, its centre
            ``center_y`` pixels from the top (in 178 x 218 CelebA pixels).
            ``centre``: the largest centred square.
        size: Side of the CelebA box.
        center_y: Vertical centre of the CelebA box.
    """

    mode: str = "centre"
    size: int = 148
    center_y: int = 114

    def box(self, width: int, height: int) -> tuple[float, float, float, float]:
        """The crop box (left, top, right, bottom) in the pixels of a given image."""
        if self.mode == "centre":
            side = min(width, height)
            left, top = (width - side) / 2, (height - side) / 2
            return left, top, left + side, top + side
        side = self.size * width / CELEBA_WIDTH
        center_y = self.center_y * height / CELEBA_HEIGHT
        left, top = (width - side) / 2, center_y - side / 2
        return left, top, left + side, top + side


@dataclass(frozen=True)
class ImageStore:
    """Where image bytes are read from: a folder (``kind="dir"``) or a zip file."""

    kind: str
    path: str

    def read(self, name: str) -> bytes:
        if self.kind == "zip":
            return _open_zip(self.path).read(name)
        with open(os.path.join(self.path, name), "rb") as handle:
            return handle.read()


def file_fingerprint(root: Path, names: Sequence[str]) -> hashlib._Hash:
    """sha256 over names, sizes and modification times of files under ``root``.

    Reading every byte of a large image folder would take longer than loading its
    cache, so the key covers what changes when a file is replaced or edited.
    """
    digest = hashlib.sha256()
    for name in names:
        stat = (root / name).stat()
        digest.update(f"{name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest


_ZIPS: dict[str, zipfile.ZipFile] = {}


def _open_zip(path: str) -> zipfile.ZipFile:
    # One handle per process: opening a 1.4 GB zip parses its whole central directory.
    if path not in _ZIPS:
        _ZIPS[path] = zipfile.ZipFile(path)
    return _ZIPS[path]


def decode_image(data: bytes, size: int, crop: Crop) -> np.ndarray:
    """Decode one encoded image to a (size, size, 3) uint8 array.

    JPEGs are decoded in PIL's draft mode at the smallest power-of-two reduction that
    still leaves the crop box at least ``size`` pixels wide, which is several times
    faster than a full decode when the target is small.

    Raises:
        OSError, ValueError, SyntaxError: The bytes are not a readable image.
    """
    with Image.open(io.BytesIO(data)) as image:
        width, height = image.size
        left, top, right, bottom = crop.box(width, height)
        reduction = 1
        while (right - left) / (reduction * 2) >= size and reduction < 8:
            reduction *= 2
        if image.format == "JPEG" and reduction > 1:
            image.draft("RGB", (math.ceil(width / reduction),
                                math.ceil(height / reduction)))
        rgb = image.convert("RGB")  # forces the full decode: truncation raises here
    scale = rgb.size[0] / width
    box = (left * scale, top * scale, right * scale, bottom * scale)
    resized = rgb.resize((size, size), Image.Resampling.LANCZOS, box=box)
    return np.asarray(resized, dtype=np.uint8)


def _decode_chunk(store: ImageStore, names: Sequence[str], size: int, crop: Crop):
    images = np.empty((len(names), size, size, 3), np.uint8)
    kept, skipped = [], []
    for name in names:
        try:
            images[len(kept)] = decode_image(store.read(name), size, crop)
        except (OSError, ValueError, SyntaxError, KeyError,
                Image.DecompressionBombError) as error:
            skipped.append(f"{name}: {_reason(error)}")
            continue
        kept.append(name)
    return images[: len(kept)], kept, skipped


def _reason(error: Exception) -> str:
    text = str(error).splitlines()[0] if str(error) else type(error).__name__
    return text if len(text) < 120 else text[:117] + "..."


def decode_many(
    store: ImageStore,
    names: Sequence[str],
    size: int,
    crop: Crop,
    workers: int = 0,
    progress: bool = True,
    desc: str = "decoding",
) -> tuple[np.ndarray, list[str], list[str]]:
    """Decode ``names`` from ``store`` in worker processes, skipping unreadable files.

    Args:
        store: Where to read the bytes.
        names: File names relative to the store, in the order wanted.
        size: Side of the square output images.
        crop: The crop box rule.
        workers: Worker processes (0: one per core; 1: decode in this process).
        progress: Show a progress bar on stderr.
        desc: Label of the progress bar.

    Returns:
        (images, kept, skipped): uint8 (len(kept), size, size, 3) in the order of
        ``names`` less the skipped ones; the names decoded; ``"name: reason"`` for each
        skipped file.
    """
    chunks = [names[i:i + _CHUNK] for i in range(0, len(names), _CHUNK)]
    images = np.empty((len(names), size, size, 3), np.uint8)
    kept: list[str] = []
    skipped: list[str] = []
    workers = workers or os.cpu_count() or 1
    bar = tqdm(total=len(names), desc=desc, unit="img", disable=not progress)
    with _executor(workers, len(chunks)) as pool:
        mapper = pool.map if pool else map
        results = mapper(_decode_chunk, [store] * len(chunks), chunks,
                         [size] * len(chunks), [crop] * len(chunks))
        for chunk_images, chunk_kept, chunk_skipped in results:
            images[len(kept):len(kept) + len(chunk_kept)] = chunk_images
            kept.extend(chunk_kept)
            skipped.extend(chunk_skipped)
            bar.update(len(chunk_kept) + len(chunk_skipped))
    bar.close()
    return images[: len(kept)], kept, skipped


class _NoPool:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


def _executor(workers: int, num_chunks: int):
    if workers <= 1 or num_chunks <= 1:
        return _NoPool()
    # spawn, not fork: the parent may already have started TensorFlow's threads.
    context = multiprocessing.get_context("spawn")
    return ProcessPoolExecutor(min(workers, num_chunks), mp_context=context)
