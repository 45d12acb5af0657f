"""What an analysis notebook needs from the pipeline: its configuration, the data set,
the trained models, and a place for its figures and numbers.

A notebook starts with ``run = zspace.notebook.start(config_file, build_dir,
output_dir)`` (the three parameters the pipeline injects) and then calls
``run.dataset``, ``run.model("vae")``, ``run.quality(images)`` (the own judge),
``run.face_rate(images)`` (the independent face judge), ``run.save_figure(fig,
"A4-...")`` and ``run.record(...)``.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from zspace.config import Config, config_from_dict
from zspace.errors import BuildError

RESULTS_FILE = "results.json"


class Run:
    """One notebook execution inside a build."""

    def __init__(self, config: Config, build_dir: Path, output_dir: Path):
        self.config = config
        self.build_dir = build_dir
        self.output_dir = output_dir
        self.results: dict[str, Any] = {}
        self._trained: dict[str, Any] = {}
        self._face_counts: dict[str, np.ndarray] = {}  # content digest -> counts
        output_dir.mkdir(parents=True, exist_ok=True)
        self._write_results()

    @functools.cached_property
    def dataset(self):
        """The configured data set (from the cache the data stage filled)."""
        from zspace.data import load_dataset

        return load_dataset(self.config.data, self.build_dir, progress=False)

    def trained(self, name: str):
        """The trained model ``name`` with its history and key (a cache hit)."""
        if name not in self._trained:
            from zspace.models import train_or_load_named

            self._trained[name] = train_or_load_named(
                name, self.config, self.dataset, self.build_dir, progress=False)
        return self._trained[name]

    def model(self, name: str):
        """The Keras model ``name`` (``ae``, ``vae``, ``wide_ae`` or ``judge``)."""
        return self.trained(name).model

    @functools.cached_property
    def feature_extractor(self):
        """The judge network's feature model (images in [0, 1] -> features)."""
        from zspace.models.judge import feature_extractor

        return feature_extractor(self.model("judge"))

    def features(self, images: np.ndarray) -> np.ndarray:
        """Judge features of uint8 images, computed in batches."""
        from zspace.latent.metrics import compute_features

        return compute_features(self.feature_extractor, images)

    @functools.cached_property
    def test_features(self) -> np.ndarray:
        """Judge features of the real test images: the reference of every metric."""
        return self.features(self.dataset.test)

    def quality(self, images: np.ndarray, seed: int = 0) -> dict[str, float]:
        """Frechet distance, precision and recall (k = 3) of images against the test
        set, on equal sample sizes."""
        from zspace.latent.metrics import quality

        return quality(self.test_features, self.features(images), k=3, rng=seed)

    @functools.cached_property
    def face_judge(self):
        """The independent face judge (:class:`zspace.faces.FaceJudge`)."""
        from zspace.faces import FaceJudge

        return FaceJudge()

    def face_rate(self, images: np.ndarray) -> dict[str, float | int]:
        """Face rate of uint8 images with its Wilson 95 % interval (``rate``,
        ``low``, ``high``, ``faces``, ``n``).

        Detections are cached per image set (by content) for this run, so a set
        that two figures share is judged once.
        """
        from zspace.faces import FaceRate

        images = np.ascontiguousarray(images)
        digest = hashlib.sha256(images).hexdigest() + str(images.shape)
        if digest not in self._face_counts:
            self._face_counts[digest] = self.face_judge.count_faces(images)
        return FaceRate.from_counts(self._face_counts[digest]).as_dict()

    def save_figure(self, figure, stem: str) -> Path:
        """Save a Matplotlib figure as ``<stem>.png``, byte-identical for equal input.

        The PNG carries no software or date stamp, so an unchanged figure keeps its
        hash and the figure diff reports it unchanged.
        """
        from zspace.latent.grids import save_png

        return save_png(figure, self.output_dir / f"{stem}.png")

    def record(self, **values: Any) -> None:
        """Add numbers for the articles' prose to ``results.json`` (written at once).

        Raises:
            BuildError: A value is not a finite number, string, list or dict of them.
        """
        for name, value in values.items():
            self.results[name] = _plain(value, name)
        self._write_results()

    def _write_results(self) -> None:
        path = self.output_dir / RESULTS_FILE
        path.write_text(json.dumps(self.results, indent=2, sort_keys=True))


def _plain(value: Any, name: str) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v, f"{name}.{k}") for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [_plain(v, f"{name}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool | int | str) or value is None:
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise BuildError(f"result {name} is {value}; the prose cannot quote it")
        return value
    raise BuildError(f"result {name} has type {type(value).__name__}; expected a "
                     "number, string, list or dict")


def start(config_file: str, build_dir: str, output_dir: str) -> Run:
    """Open the run the pipeline prepared (the notebook's three injected parameters)."""
    config = config_from_dict(json.loads(Path(config_file).read_text()))
    return Run(config, Path(build_dir), Path(output_dir))
