"""What an analysis notebook needs from the pipeline: its configuration, the data set,
the trained models, and a place for its figures and numbers.

A notebook starts with ``run = zspace.notebook.start(inputs_file, output_dir)`` (the
two parameters the pipeline injects) and then calls ``run.dataset``,
``run.model("vae")``, ``run.sample_set("vae_normal")`` (a sampler's images, drawn
and judged once for every notebook), ``run.quality(images)`` (the judge network),
``run.face_rate(images)`` (the independent face judge), ``run.variety(images, n,
rng)`` (how different the faces among them are), ``run.save_figure(fig,
"A4-...")`` and ``run.record(...)``.

The inputs manifest (``inputs_file``) is the build plan's word on what this notebook
reads: the resolved configuration, the data set's cache folder, and each model's
artifact folder and key. The run loads exactly those. It never prepares data or
trains: a missing, damaged or mismatching input is an error that names it.
"""

from __future__ import annotations

import functools
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from zspace.config import Config, config_from_dict
from zspace.errors import BuildError

RESULTS_FILE = "results.json"


class Run:
    """One notebook execution inside a build.

    Args:
        config: The resolved configuration.
        inputs: The inputs manifest: ``data`` (``folder``, ``content_hash``) and
            ``models`` (name -> ``folder``, ``key``).
        output_dir: Where figures and ``results.json`` go.
    """

    def __init__(self, config: Config, inputs: dict[str, Any], output_dir: Path):
        self.config = config
        self.inputs = inputs
        self.output_dir = output_dir
        self.results: dict[str, Any] = {}
        self._trained: dict[str, Any] = {}
        self._sets: dict[str, Any] = {}  # name -> StoredSet, opened (and hashed) once
        # content digest -> each image's detection scores
        self._face_scores: dict[str, list[np.ndarray]] = {}
        output_dir.mkdir(parents=True, exist_ok=True)
        self._write_results()

    @functools.cached_property
    def dataset(self):
        """The data set in the cache folder the plan named.

        Raises:
            BuildError: The folder is missing or damaged, or holds another data set.
        """
        from zspace.data.cache import DamagedEntry, open_entry

        data = self.inputs["data"]
        folder = Path(data["folder"])
        try:
            dataset = open_entry(folder)
        except DamagedEntry as error:
            raise BuildError(f"the data set {folder} is damaged ({error}); run the "
                             "build again to prepare it") from None
        if dataset is None:
            raise BuildError(f"the data set {folder} is missing; run the build "
                             "again to prepare it")
        if dataset.card.content_hash != data["content_hash"]:
            raise BuildError(f"the data set {folder} holds content "
                             f"{dataset.card.content_hash[:12]}, the plan expected "
                             f"{data['content_hash'][:12]}")
        return dataset

    def trained(self, name: str):
        """The trained model ``name`` with its history and key, loaded from the
        artifact the plan named.

        Raises:
            BuildError: The notebook does not declare ``name``, or its artifact is
                missing, damaged or made under another key.
        """
        if name not in self._trained:
            self._trained[name] = _load_model(name, self.inputs["models"])
        return self._trained[name]

    def model(self, name: str):
        """The Keras model ``name`` (``ae``, ``vae``, ``wide_ae`` or ``judge``)."""
        return self.trained(name).model

    def seeds(self, name: str) -> list:
        """Model ``name`` trained with each of its seeds: ``train.seed`` first, then
        the extra seeds of ``config.seeds`` (each a ``TrainedModel``)."""
        from zspace.store.keys import SEED_MARK

        extra = sorted((n for n in self.inputs["models"]
                        if n.startswith(f"{name}{SEED_MARK}")),
                       key=lambda n: int(n.removeprefix(f"{name}{SEED_MARK}")))
        return [self.trained(n) for n in (name, *extra)]

    @functools.cached_property
    def feature_extractor(self):
        """The judge network's feature model (images in [0, 1] -> features)."""
        from zspace.networks.judge import feature_extractor

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

    def face_rate(self, images: np.ndarray,
                  threshold: float | None = None) -> dict[str, float | int]:
        """Face rate of uint8 images with its Wilson 95 % interval (``rate``,
        ``low``, ``high``, ``faces``, ``n``), at the detector's threshold or a
        stricter ``threshold``.

        Detections are kept per image set (by content) for this run, so a set that
        two figures share, or that is counted at several thresholds, is judged once.
        """
        from zspace.faces import FaceRate

        return FaceRate.from_counts(self._face_counts(images, threshold)).as_dict()

    def variety(self, images: np.ndarray | list[np.ndarray], n_pairs: int,
                rng: np.random.Generator) -> dict:
        """Variety of the faces among ``images`` (``zspace.latent.variety.
        variety_of_faces``): 1 - mean multi-scale SSIM of up to ``n_pairs`` random
        pairs of the images in which the detector found exactly one face, with
        ``n_faces``; None values where it found fewer than ``MIN_FACES``.

        ``images`` may be one set or a list of batches (one per seed's model):
        then the faces of every batch are pooled, and their kept detections reused.
        """
        from zspace.latent.variety import variety_of_faces

        batches = images if isinstance(images, list | tuple) else [images]
        counts = np.concatenate([self._face_counts(b) for b in batches])
        return variety_of_faces(np.concatenate(batches), counts, n_pairs, rng)

    def _face_counts(self, images: np.ndarray,
                     threshold: float | None = None) -> np.ndarray:
        """Faces found per image, from detections kept per image set (by content)."""
        from zspace.faces import counts_at
        from zspace.samplesets import released

        images = np.ascontiguousarray(images)
        digest = released.digest(images)
        if digest not in self._face_scores:
            self._face_scores[digest] = self._detections(images, digest)
        return counts_at(self._face_scores[digest], self.face_judge.threshold,
                         threshold)

    def _detections(self, images: np.ndarray, digest: str) -> list[np.ndarray]:
        """Each image's detection scores: the published ones where this very batch
        was judged for the report (``zspace.samplesets.released``), else judged
        here. Either way they are kept in ``detections/`` of the output folder,
        which the publishing build releases."""
        import dlib

        from zspace.samplesets import released

        judge = {**self.face_judge.describe(), "dlib": dlib.__version__}
        where = self.inputs.get("detections")
        scores = (released.load_detections(Path(where) / f"{digest}.npz", judge)
                  if where else None)
        if scores is None:
            scores = self.face_judge.detection_scores(images)
        released.save_detections(
            self.output_dir / released.DETECTIONS / f"{digest}.npz", scores, judge)
        return scores

    def sample_set(self, name: str):
        """The stored sample set ``name`` (:class:`zspace.samplesets.stored.
        StoredSet`): its images per seed, face rates, quality and variety, the same
        numbers in every notebook that reads it.

        Raises:
            BuildError: The notebook does not declare the set, or it is missing or
                damaged.
        """
        from zspace.samplesets.stored import StoredSet

        found = self.inputs.get("sets", {}).get(name)
        if found is None:
            declared = ", ".join(sorted(self.inputs.get("sets", {}))) or "none"
            raise BuildError(f"sample set {name} is not among this notebook's inputs "
                             f"(it reads {declared}); add its name to the notebook's "
                             "zspace.sets metadata")
        if name not in self._sets:
            self._sets[name] = StoredSet(name, Path(found["folder"]), found["key"],
                                         found.get("values"))
        return self._sets[name]

    def sample_series(self, family: str) -> list:
        """Every set of series ``family`` (``vae_uniform``), in the order of its
        values; each set's ``values`` gives its point (``{"r_limit": 2.0}``)."""
        names = [n for n, found in self.inputs.get("sets", {}).items()
                 if found["family"] == family]
        if not names:
            raise BuildError(f"sample series {family} is not among this notebook's "
                             "inputs; add it to the notebook's zspace.sets metadata")
        return [self.sample_set(n) for n in names]

    def sweep(self, name: str) -> list[dict]:
        """The points of sweep ``name`` (``config.sweeps``) in order, each with its
        ``label`` (``kl_factor=0.5``), ``values`` and ``trained`` model; empty where
        the configuration has no such sweep."""
        found = self.inputs.get("sweeps", {}).get(name)
        if found is None:
            return []
        return [{"label": p["label"], "values": p["values"],
                 "trained": self.trained(p["model"])} for p in found["points"]]

    def save_point_figure(self, figure, figure_id: str, sweep: str,
                          label: str) -> Path:
        """Save figure ``figure_id`` of one sweep point under the file the plan gave
        it (``D2@kl.kl_factor=0.5`` -> ``D2-kl-faces@kl.kl_factor=0.5.png``)."""
        from zspace.plots.canvas import save_png

        point_id = f"{figure_id}@{sweep}.{label}"
        files = self.inputs.get("figures", {})
        if point_id not in files:
            raise BuildError(f"figure {point_id} is not in this notebook's catalogue "
                             f"(declared: {', '.join(sorted(files)) or 'none'})")
        return save_png(figure, self.output_dir / files[point_id])

    def save_figure(self, figure, stem: str) -> Path:
        """Save a Matplotlib figure as ``<stem>.png``, byte-identical for equal input.

        The PNG carries no software or date stamp, so an unchanged figure keeps its
        hash and the figure diff reports it unchanged.
        """
        from zspace.plots.canvas import save_png

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


def _load_model(name: str, models: dict[str, dict[str, str]]):
    from zspace.store import artifacts
    from zspace.training.trainer import TrainedModel

    if name not in models:
        declared = ", ".join(sorted(models)) or "none"
        raise BuildError(f"model {name} is not among this notebook's inputs (it "
                         f"declares {declared}); add it to the notebook's "
                         "zspace.models metadata")
    folder, key = Path(models[name]["folder"]), models[name]["key"]
    if not folder.is_dir():
        raise BuildError(f"model {name}: its artifact {folder} (key {key}) is "
                         "missing; run the build again to make it")
    try:
        model, documents = artifacts.read_artifact(folder)
    except artifacts.CorruptArtifact as error:
        raise BuildError(f"model {name}: its artifact is damaged ({error}); run the "
                         "build again to make it") from None
    found = documents["config"].get("key")
    if found != key:
        raise BuildError(f"model {name}: the artifact {folder} was made under key "
                         f"{found}, the plan expected {key}")
    return TrainedModel.from_documents(name, model, key, folder, documents, cached=True)


def start(inputs_file: str, output_dir: str) -> Run:
    """Open the run the pipeline prepared (the notebook's two injected parameters).

    Raises:
        BuildError: The inputs manifest is missing or unreadable.
    """
    try:
        inputs = json.loads(Path(inputs_file).read_text())
    except (OSError, ValueError) as error:
        raise BuildError(f"the inputs manifest {inputs_file!r} cannot be read "
                         f"({error}); notebooks run inside a build") from None
    return Run(config_from_dict(inputs["config"]), inputs, Path(output_dir))
