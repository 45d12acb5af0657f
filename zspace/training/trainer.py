"""Train a model, or load it from the artifact cache: the entry points of the package.

``train_or_load`` resolves a model's artifact key; an intact artifact under that key
is loaded, a pretrained file named in the configuration is checked and adopted, and
otherwise the model is trained (resuming from the last finished epoch of a killed
run) and finalised as a new artifact.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import platform
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import keras
import tensorflow as tf

from zspace import lock, paths
from zspace.config import Config, JudgeConfig, ModelConfig, SpeedConfig, TrainConfig
from zspace.data.dataset import Dataset
from zspace.errors import ModelError, TrainingError
from zspace.networks import devices
from zspace.store import artifacts, committed, keys, sources
from zspace.training import fitting, runtime
from zspace.training.callbacks import restore
from zspace.training.factory import applied_speed, build_model, compiled_model
from zspace.training.guard import LossGuard

log = logging.getLogger(__name__)


@dataclass
class TrainedModel:
    """A trained (or loaded) model and where it came from.

    Attributes:
        name: ``ae``, ``vae``, ``wide_ae`` or ``judge``.
        model: The Keras model (``AE``, ``VAE`` or the functional judge).
        key: The artifact key.
        path: The artifact folder.
        history: Per-epoch lists of every tracked metric (``val_`` for the held-out
            images: the validation split, or the test split without one;
            ``epoch_seconds``); empty for a pretrained file that came without one.
        loaded_from_cache: True where no training ran in this call.
        seconds: Time the training took, summed over epochs (also when loaded).
        config: The resolved configuration the key was made from.
        meta: Training record: epochs, resumed epoch, devices, the device kind
            and the speed options applied there, versions.
    """

    name: str
    model: keras.Model
    key: str
    path: Path
    history: dict[str, list[float]]
    loaded_from_cache: bool
    seconds: float
    config: dict = field(default_factory=dict)
    meta: dict = field(default_factory=dict)

    @classmethod
    def from_documents(cls, name: str, model: keras.Model, key: str, path: Path,
                       documents: dict, cached: bool) -> TrainedModel:
        """A model with the documents of its artifact (``artifacts.DOCUMENTS``)."""
        return cls(name=name, model=model, key=key, path=path,
                   history={k: list(v) for k, v in documents["history"].items()},
                   loaded_from_cache=cached,
                   seconds=float(documents["meta"].get("seconds", 0.0)),
                   config=documents["config"], meta=documents["meta"])


def train_all(config: Config, dataset: Dataset, build_root: Path | None = None,
              progress: bool = True, retrain: bool = False) -> dict[str, TrainedModel]:
    """Train or load every model of the configuration and the judge.

    Args:
        config: The whole configuration.
        dataset: The data set (uint8 arrays; memory maps are fine).
        build_root: The build folder (default: the repository's ``build/``).
        progress: Show progress bars.
        retrain: Train every model afresh (see :func:`train_or_load`).

    Returns:
        Each variant's name (``ae``, ``vae``, ``wide_ae``, ``judge`` and the seed
        variants) to its :class:`TrainedModel`.
    """
    runtime.get_strategy(config.train.strategy)  # multi-worker must come first
    return {variant.name: train_or_load_named(variant.name, config, dataset,
                                              build_root, progress, retrain)
            for variant in keys.all_variants(config)}


def train_or_load_named(name: str, config: Config, dataset: Dataset,
                        build_root: Path | None = None,
                        progress: bool = True, retrain: bool = False) -> TrainedModel:
    """:func:`train_or_load` for the model (or variant) ``name`` of a whole
    configuration: ``vae``, or ``vae@seed=2`` for an extra seed of ``config.seeds``.

    The profile's committed weights (``models/<config.name>/``) are used where their
    key matches.

    Args:
        name: ``ae``, ``vae``, ``wide_ae`` or ``judge``.
        config: The whole configuration.
        dataset: The data set.
        build_root: The build folder (default: the repository's ``build/``).
        progress: Show a progress bar while training.
        retrain: Train afresh, whatever is cached or committed.

    Returns:
        The :class:`TrainedModel`.

    Raises:
        ModelError: An unknown name, or a bad pretrained file.
    """
    found = keys.variant(name, config)
    return train_or_load(found.name, found.model_config, found.train_config, dataset,
                         build_root, progress,
                         committed_dir=committed.folder_for(config),
                         retrain=retrain, speed=found.speed)


def train_or_load(
    name: str,
    model_config: ModelConfig | JudgeConfig,
    train_config: TrainConfig,
    dataset: Dataset,
    build_root: Path | None = None,
    progress: bool = True,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    committed_dir: Path | None = None,
    retrain: bool = False,
    speed: SpeedConfig | None = None,
) -> TrainedModel:
    """Load the model's artifact if it exists and is intact, else make it.

    In the order of :func:`zspace.store.sources.source_of`: an intact artifact in
    the build cache; committed weights in ``committed_dir`` made under the same key
    (loaded, then cached as an artifact); a configured pretrained file; training.
    Committed weights of another key, or whose file fails its sha256, are reported
    and never loaded.

    Args:
        name: Artifact name (``ae``, ``vae``, ``wide_ae``, ``judge``, ...).
        model_config: A ``ModelConfig`` (AE/VAE) or the ``JudgeConfig``.
        train_config: How to train.
        dataset: The data set.
        build_root: The build folder (default: the repository's ``build/``).
        progress: Show a progress bar while training.
        callbacks: Extra Keras callbacks for ``fit`` (after the checkpoint).
        committed_dir: A folder of committed weights (``models/<profile>/``).
        retrain: Train afresh: drop the cached artifact and any checkpoint, and
            ignore committed weights.
        speed: Speed-ups for training (``config.speed``); recorded in the
            artifact's meta, not part of the key.

    Returns:
        The :class:`TrainedModel`.

    Raises:
        ModelError: A configured pretrained file is missing, unreadable or of another
            architecture.
        TrainingError: The loss became non-finite or exploded; nothing is cached.
        BuildBusy: Another process (a profile sharing the build root) is making
            the model under the same key; its checkpoint is left alone.
    """
    variant = keys.ModelVariant(name, model_config, train_config, speed)
    job = _Job.of(variant, dataset, build_root)
    source = sources.source_of(variant, job.spec, job.key, build_root, committed_dir,
                               retrain)
    return _make(job, source, committed_dir, progress, retrain, callbacks)


def make_model(stage, dataset: Dataset, build_root: Path | None = None,
               progress: bool = True, retrain: bool = False,
               committed_dir: Path | None = None,
               callbacks: Sequence[keras.callbacks.Callback] = ()) -> TrainedModel:
    """Make the model of one of the plan's model stages, as the plan decided.

    The stage carries the variant, its key spec, key, artifact folder and source
    (``zspace.pipeline.plan.ModelStage``): nothing is looked up or decided again,
    unless what the plan found fails on the way (a cached artifact that will not
    load, committed weights that will not fit).

    Args:
        stage: The plan's ``ModelStage`` (made once the data set was known).
        dataset: The data set the plan was made for.
        build_root: The build folder.
        progress: Show a progress bar while training.
        retrain: The plan was made with ``retrain``: drop the cache and checkpoint.
        committed_dir: ``models/<profile>/``, where the plan looked.
        callbacks: Extra Keras callbacks for ``fit`` (after the checkpoint).

    Raises:
        ModelError: The plan was made before the data set was known, or for
            another data set.
    """
    if stage.key is None or stage.spec is None:
        raise ModelError(f"{stage.name}: planned before the data set was prepared")
    if stage.spec["dataset"] != dataset.card.content_hash:
        raise ModelError(f"{stage.name}: planned for data set "
                         f"{stage.spec['dataset'][:12]}, given "
                         f"{dataset.card.content_hash[:12]}")
    job = _Job(stage.variant, stage.spec, stage.key, stage.folder, dataset,
               build_root)
    return _make(job, stage.source, committed_dir, progress, retrain, callbacks)


def _make(job: _Job, source: sources.Source, committed_dir: Path | None,
          progress: bool, retrain: bool,
          callbacks: Sequence[keras.callbacks.Callback]) -> TrainedModel:
    """Make ``job``'s model from ``source``, falling back as the source order says
    where what was found fails on the way.

    All but loading a cached artifact holds the key's lock (:func:`_key_lock`):
    profiles of one build root share the cache, so an artifact another process
    finished since the plan was made is loaded, never made again or removed.
    """
    variant, name, build_root = job.variant, job.name, job.build_root

    def decide() -> sources.Source:
        return sources.source_of(variant, job.spec, job.key, build_root,
                                 committed_dir, retrain)

    if source.kind == sources.CACHED:
        cached = _read_cached(job)
        if cached is not None:
            return cached
        source = decide()  # the cached artifact would not load and is gone
    with _key_lock(job):
        if retrain:  # never another process's checkpoint in flight
            for folder in (job.final, job.partial):
                shutil.rmtree(folder, ignore_errors=True)
        elif artifacts.is_intact(job.final):  # made meanwhile by another process
            cached = _read_cached(job)
            if cached is not None:
                return cached
        elif job.final.exists():  # there, but not intact: never loaded
            log.warning("rebuilding corrupt artifact: %s", job.final)
            shutil.rmtree(job.final)
        if source.unusable:
            log.warning("%s: not loading the published weights: %s; %s instead",
                        name, source.unusable, "adopting the pretrained file"
                        if source.kind == sources.PRETRAINED else "training")
        job.final.parent.mkdir(parents=True, exist_ok=True)
        if source.kind == sources.COMMITTED:
            loaded = _load_committed(job, source.found)
            if loaded is not None:
                return loaded
            source = sources.Source(sources.TRAIN, "training")
        if source.kind == sources.PRETRAINED:
            return _adopt(job)
        return _train(job, progress, callbacks)


def cache_rounded(trained: TrainedModel, dataset: Dataset,
                  committed_weights: Path) -> TrainedModel:
    """Replace ``trained``'s cached artifact by its model as it is now: rounded to
    the float16 that ``committed_weights`` holds, so this machine's next build uses
    exactly what a fresh clone loads, without loading the file again.

    Returns:
        The model as cached.
    """
    # The meta's key keeps its first name, "published": cached artifacts carry it.
    documents = {"config": trained.config, "history": trained.history,
                 "dataset": dataset.card.to_dict(),
                 "meta": {**trained.meta, "published": str(committed_weights)}}
    partial = paths.partial(trained.path)
    with lock.key_lock(partial, trained.name):
        shutil.rmtree(partial, ignore_errors=True)
        artifacts.write_artifact(partial, trained.model, documents)
        # The old artifact steps aside before the new one is renamed in, so a reader
        # finds one whole artifact or none, never half of one.
        old = trained.path.with_name(f".{trained.path.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        if trained.path.exists():
            os.replace(trained.path, old)
        artifacts.finalise(partial, trained.path)
        shutil.rmtree(old, ignore_errors=True)
    return TrainedModel.from_documents(trained.name, trained.model, trained.key,
                                       trained.path, documents, cached=True)


@dataclass(frozen=True)
class _Job:
    """One model to make: what it is, its key, and where its artifact goes."""

    variant: keys.ModelVariant
    spec: dict
    key: str
    final: Path  # the artifact folder
    dataset: Dataset
    build_root: Path | None

    @classmethod
    def of(cls, variant: keys.ModelVariant, dataset: Dataset,
           build_root: Path | None) -> _Job:
        spec = variant.spec(dataset.card)
        key = keys.artifact_key(spec)
        return cls(variant, spec, key,
                   paths.model_artifact(build_root, variant.name, key), dataset,
                   build_root)

    @property
    def partial(self) -> Path:
        """Where the artifact is assembled; a training run's checkpoints live here."""
        return paths.partial(self.final)

    @property
    def name(self) -> str:
        return self.variant.name

    def float32_model(self) -> keras.Model:
        """A fresh model of the variant's architecture in float32, for weights made
        elsewhere (committed, or pretrained under mixed precision on a GPU)."""
        train_config = dataclasses.replace(self.variant.train_config,
                                           precision="float32")
        return build_model(self.name, self.variant.model_config, train_config,
                           self.dataset)

    def documents(self, history: dict, meta: dict) -> dict:
        return {"config": {**self.spec, "key": self.key}, "history": history,
                "dataset": self.dataset.card.to_dict(), "meta": meta}

    def store(self, model: keras.Model, documents: dict, cached: bool) -> TrainedModel:
        """Write the artifact in its partial folder, rename it into place, and
        return it as a :class:`TrainedModel`."""
        artifacts.write_artifact(self.partial, model, documents)
        artifacts.finalise(self.partial, self.final)
        return _trained(self, model, documents, cached)


def _key_lock(job: _Job) -> contextlib.AbstractContextManager:
    """The lock of ``job``'s key (see :func:`zspace.lock.key_lock`): the
    profiles of one build root share its cache, and only one process at a time may
    write a key's partial folder. A multi-worker run's other workers take none:
    they read the chief's checkpoint by design and write elsewhere."""
    strategy = runtime.get_strategy(job.variant.train_config.strategy)
    if not runtime.is_chief(strategy):
        return contextlib.nullcontext()
    return lock.key_lock(job.partial, job.name)


def _read_cached(job: _Job) -> TrainedModel | None:
    started = time.perf_counter()
    try:
        model, documents = artifacts.read_artifact(job.final)
    except artifacts.CorruptArtifact as error:
        log.warning("rebuilding corrupt artifact: %s", error)
        shutil.rmtree(job.final, ignore_errors=True)
        return None
    log.info("%s: loaded %s in %.1f s", job.name, job.final,
             time.perf_counter() - started)
    return _trained(job, model, documents, cached=True)


def _train(job: _Job, progress: bool,
           callbacks: Sequence[keras.callbacks.Callback]) -> TrainedModel:
    variant = job.variant
    train_config = variant.train_config
    strategy = runtime.get_strategy(train_config.strategy)
    chief = runtime.is_chief(strategy)
    num_epochs = keys.effective_epochs(variant.model_config, train_config)
    device = devices.training_device()
    model = compiled_model(
        job.name, variant.model_config, train_config, job.dataset, strategy,
        speed=variant.speed if keys.uses_speed(variant.model_config, variant.speed)
        else None, kernel_dir=paths.kernel_dir(job.build_root), device=device)
    # What compiled_model applied, for the manifest: the options on this device.
    applied, _ = applied_speed(variant.model_config, train_config, variant.speed,
                               strategy.num_replicas_in_sync, device)
    first_epoch, history = restore(model, job.partial / "checkpoint")
    if first_epoch:
        log.info("%s: resuming after epoch %d of %d", job.name, first_epoch,
                 num_epochs)
    if first_epoch < num_epochs and not fitting.converged(history, train_config):
        # Non-chief workers restore from the shared checkpoint but write elsewhere.
        scratch = (job.partial if chief
                   else Path(tempfile.mkdtemp(prefix="zspace-worker-")))
        guard = LossGuard(job.name, first_epoch, train_config.learning_rate)
        try:
            fitting.fit(model, job.name, job.spec, job.dataset, train_config,
                        first_epoch, num_epochs, history, scratch, progress,
                        [guard, *callbacks])
        except TrainingError:
            # A diverged run's checkpoints must not be resumed from.
            shutil.rmtree(scratch, ignore_errors=True)
            raise
    documents = job.documents(history, _training_meta(history, num_epochs,
                                                      first_epoch, strategy,
                                                      device, applied))
    if keys.uses_speed(variant.model_config, variant.speed):
        # The artifact holds the plain layers (the same weights): notebooks, the
        # explorer's export and committed weights then see one architecture
        # whichever way the model was trained.
        plain = job.float32_model()
        plain.set_weights(model.get_weights())
        model = plain
    if not chief:
        return _trained(job, model, documents, cached=False)
    shutil.rmtree(job.partial / "checkpoint", ignore_errors=True)
    return job.store(model, documents, cached=False)


def _training_meta(history: dict, num_epochs: int, resumed_from: int,
                   strategy, device: str, speed: SpeedConfig | None) -> dict:
    return {
        "epochs": len(history.get("epoch_seconds", [])),
        "max_epochs": num_epochs,
        "resumed_from_epoch": resumed_from,
        "seconds": float(sum(history.get("epoch_seconds", []))),
        "devices": runtime.device_names(strategy),
        "replicas": strategy.num_replicas_in_sync,
        # The kind of device, and the speed options it applied (all off: the
        # plain step); neither is part of the key.
        "device": device,
        "speed": dataclasses.asdict(speed or devices.PLAIN),
        "onednn": runtime.onednn_enabled(),
        "machine": committed.machine(),
        "versions": {"tensorflow": tf.__version__, "keras": keras.__version__,
                     "python": platform.python_version()},
    }


def _load_committed(job: _Job, found: committed.CommittedModel) -> TrainedModel | None:
    try:
        model = job.float32_model()
        committed.load_into(model, found)
    except committed.Unusable as error:
        log.warning("%s: not loading the published weights: %s; training instead",
                    job.name, error)
        return None
    manifest = found.manifest
    documents = job.documents(manifest["history"],
                              {**manifest["meta"], "published": str(found.weights)})
    shutil.rmtree(job.partial, ignore_errors=True)
    trained = job.store(model, documents, cached=True)
    log.info("%s: loaded the published weights %s", job.name, found.weights)
    return trained


def _adopt(job: _Job) -> TrainedModel:
    path = Path(job.variant.model_config.pretrained).expanduser()
    found = artifacts.load_pretrained(path, job.name)
    # Its weights go into a float32 model built here: one trained under mixed
    # precision on a GPU then runs at full speed on a CPU, with this code's layers.
    model = job.float32_model()
    artifacts.check_architecture(found, model, path, job.name)
    model.set_weights(found.get_weights())
    history = {}
    sibling = path.with_name("history.json")
    if sibling.is_file():  # a model.keras copied out of another machine's artifact
        history = json.loads(sibling.read_text())
    documents = job.documents(history, {"pretrained": str(path), "seconds": 0.0})
    shutil.rmtree(job.partial, ignore_errors=True)
    return job.store(model, documents, cached=False)


def _trained(job: _Job, model: keras.Model, documents: dict,
             cached: bool) -> TrainedModel:
    return TrainedModel.from_documents(job.name, model, job.key, job.final, documents,
                                       cached)
