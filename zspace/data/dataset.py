"""The one thing every data source returns: images, attributes and a dataset card."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class DatasetCard:
    """What a data set is and where it came from.

    Attributes:
        source: ``synthetic``, ``celeba`` or ``folder``.
        location: Where it was read from (a path), or the generator and its seed.
        num_train: Training images.
        num_test: Test images.
        num_val: Validation images (0: no validation split).
        image_size: Side of the square images in pixels.
        content_hash: sha256 over the image arrays (hex); equal arrays, equal hash.
            A data set without validation images hashes as before the split
            existed.
        attribute_names: Column names of the attribute matrices (may be empty).
        skipped: ``"file: reason"`` for each file that could not be read.
        preparation: How the images were cut and resized, in words.
    """

    source: str
    location: str
    num_train: int
    num_test: int
    image_size: int
    content_hash: str
    attribute_names: tuple[str, ...] = ()
    skipped: tuple[str, ...] = ()
    preparation: str = ""
    num_val: int = 0

    def to_dict(self) -> dict:
        return {
            "source": self.source,
            "location": self.location,
            "num_train": self.num_train,
            "num_test": self.num_test,
            "num_val": self.num_val,
            "image_size": self.image_size,
            "content_hash": self.content_hash,
            "attribute_names": list(self.attribute_names),
            "num_skipped": len(self.skipped),
            "skipped": list(self.skipped),
            "preparation": self.preparation,
        }

    @classmethod
    def from_dict(cls, data: dict) -> DatasetCard:
        return cls(
            source=data["source"],
            location=data["location"],
            num_train=data["num_train"],
            num_test=data["num_test"],
            image_size=data["image_size"],
            content_hash=data["content_hash"],
            attribute_names=tuple(data["attribute_names"]),
            skipped=tuple(data["skipped"]),
            preparation=data["preparation"],
            num_val=data.get("num_val", 0),
        )


@dataclass(frozen=True)
class Dataset:
    """Train, test and validation images as uint8 NHWC arrays, with optional
    attributes.

    The validation images decide when training stops and nothing else; every
    quality measure reads the test images.

    Attributes:
        train: (num_train, size, size, 3) uint8.
        test: (num_test, size, size, 3) uint8.
        train_attributes: (num_train, num_attributes) float32, or None.
        test_attributes: (num_test, num_attributes) float32, or None.
        card: The dataset card.
        val: (num_val, size, size, 3) uint8, or None (no validation split).
        val_attributes: (num_val, num_attributes) float32, or None.
    """

    train: np.ndarray
    test: np.ndarray
    train_attributes: np.ndarray | None
    test_attributes: np.ndarray | None
    card: DatasetCard = field(compare=False)
    val: np.ndarray | None = None
    val_attributes: np.ndarray | None = None

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.train.shape[1:])


def content_hash(*arrays: np.ndarray | None) -> str:
    """sha256 over the shapes and bytes of the given arrays (None is skipped: a data
    set with no validation images, whose ``val`` is None, keeps its hash)."""
    digest = hashlib.sha256()
    for array in arrays:
        if array is None:
            continue
        digest.update(str(array.shape).encode())
        # Hash in slices so a memory-mapped array is never copied whole.
        flat = array.reshape(len(array), -1) if array.ndim > 1 else array[None]
        for start in range(0, len(flat), 4096):
            digest.update(np.ascontiguousarray(flat[start:start + 4096]).data)
    return digest.hexdigest()
