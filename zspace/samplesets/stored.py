"""A stored sample set, read back: its images per seed, face rates at any threshold,
judge features, quality and variety (:mod:`zspace.pipeline.setmaker` writes them)."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import numpy as np

from zspace.errors import BuildError
from zspace.files import sha256_of

MANIFEST = "manifest.json"


def damage(folder: Path) -> str:
    """Why the set in ``folder`` cannot be used ("" when it is whole by its manifest's
    file sizes; the sha256 is checked when a notebook opens it)."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except FileNotFoundError:
        return "missing"
    except (OSError, ValueError) as error:
        return f"unreadable manifest ({error})"
    for name, record in manifest.get("files", {}).items():
        path = folder / name
        if not path.is_file():
            return f"{name} is missing"
        if path.stat().st_size != record.get("bytes"):
            return f"{name} has {path.stat().st_size} bytes, not {record.get('bytes')}"
    return ""


def pack_scores(scores: list[np.ndarray]) -> dict[str, np.ndarray]:
    """Detection scores, one array per image, as they are stored: all of them in
    one flat array (``scores``), and where each image's begin (``offsets``)."""
    flat = np.concatenate([np.asarray(s, np.float64) for s in scores] + [np.zeros(0)])
    return {"scores": flat, "offsets": np.cumsum([0, *(len(s) for s in scores)])}


def unpack_scores(flat: np.ndarray, offsets: np.ndarray) -> list[np.ndarray]:
    """The stored scores back as one array per image (:func:`pack_scores`)."""
    return [flat[a:b] for a, b in zip(offsets[:-1], offsets[1:], strict=True)]


def block_rates(counts: np.ndarray, blocks: list[int]) -> list[dict]:
    """The face rate, with its Wilson interval, of each seed's block of images."""
    from zspace.faces import FaceRate

    edges = np.cumsum([0, *blocks])
    return [FaceRate.from_counts(counts[a:b]).as_dict()
            for a, b in zip(edges[:-1], edges[1:], strict=True)]


def pooled(rates: list[dict]) -> dict:
    """The face rate over the seeds (:func:`zspace.faces.over_seeds`); a single
    block's own rate for real images."""
    from zspace.faces import over_seeds

    return over_seeds(rates) if len(rates) > 1 else rates[0]


class StoredSet:
    """One sample set as a notebook reads it.

    Args:
        name: The set's name (``vae_normal``, ``vae_uniform@r_limit=2``).
        folder: Its folder in the build cache.
        key: The key the plan expects.
        values: The series' values at this set, as the reader names it (a set made
            under another name with equal settings has the same images).

    Raises:
        BuildError: The set is missing, damaged or was made under another key.
    """

    def __init__(self, name: str, folder: Path, key: str,
                 values: dict[str, Any] | None = None):
        self.name, self.folder, self.key = name, Path(folder), key
        self.values: dict[str, Any] = dict(values or {})
        why = damage(self.folder)
        if why:
            raise BuildError(f"sample set {name}: {self.folder} is {why}; run the "
                             "build again to make it")
        self.manifest = json.loads((self.folder / MANIFEST).read_text())
        if self.manifest.get("key") != key:
            raise BuildError(f"sample set {name}: {self.folder} was made under key "
                             f"{self.manifest.get('key')}, the plan expected {key}")
        for file, record in self.manifest["files"].items():
            if sha256_of(self.folder / file) != record["sha256"]:
                raise BuildError(f"sample set {name}: {file} in {self.folder} does "
                                 "not match its manifest; run the build again to "
                                 "make it")
        self.summary: dict[str, Any] = json.loads(
            (self.folder / "summary.json").read_text())

    @property
    def settings(self) -> dict[str, Any]:
        return self.manifest["point"]["settings"]

    @property
    def resolved(self) -> list[dict[str, Any]]:
        """Per seed's model: its share and what its sampler resolved to."""
        return self.summary["resolved"]

    @property
    def train_seeds(self) -> list[int]:
        """The training seed of each block's model (empty for real images)."""
        return [r["train_seed"] for r in self.resolved if "train_seed" in r]

    @functools.cached_property
    def images(self) -> np.ndarray:
        """Every image, each seed's block in turn (uint8)."""
        return np.load(self.folder / "images.npy")

    @property
    def batches(self) -> list[np.ndarray]:
        """The images of each training seed's model."""
        edges = np.cumsum([0, *self.summary["blocks"]])
        return [self.images[a:b] for a, b in zip(edges[:-1], edges[1:], strict=True)]

    def first(self, n: int) -> np.ndarray:
        """The first ``n`` images of the first seed's model: what a figure shows."""
        return self.batches[0][:n]

    @functools.cached_property
    def features(self) -> np.ndarray:
        """The judge network's features of every image."""
        return np.load(self.folder / "features.npy")

    @functools.cached_property
    def scores(self) -> list[np.ndarray]:
        """The detection scores at or above the judge's threshold, per image."""
        with np.load(self.folder / "scores.npz") as stored:
            return unpack_scores(stored["scores"], stored["offsets"])

    def counts(self, threshold: float | None = None) -> np.ndarray:
        """Faces found per image, at the judge's threshold or a stricter one."""
        from zspace.faces import counts_at

        return counts_at(self.scores, self.summary["face_judge"]["threshold"],
                         threshold)

    def seed_rates(self, threshold: float | None = None) -> list[dict]:
        """The face rate of each seed's model, with its Wilson interval."""
        return block_rates(self.counts(threshold), self.summary["blocks"])

    def face_rate(self, threshold: float | None = None) -> dict:
        """The face rate over the seeds (:func:`zspace.faces.over_seeds`); a single
        block's rate for real images."""
        if threshold is None:
            return self.summary["faces"]
        return pooled(self.seed_rates(threshold))

    @property
    def quality(self) -> dict[str, float]:
        """Frechet distance, precision and recall against the test images."""
        return self.summary["quality"]

    @property
    def variety(self) -> dict:
        """The variety of the faces (``zspace.latent.variety.variety_of_faces``)."""
        return self.summary["variety"]
