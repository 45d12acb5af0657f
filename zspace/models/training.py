"""Train a model, or load it from the artifact cache: the entry points of the package.

``train_or_load`` resolves a model's artifact key; an intact artifact under that key
is loaded, a pretrained file named in the configuration is checked and adopted, and
otherwise the model is trained (resuming from the last finished epoch of a killed
run) and published as a new artifact.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import platform
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import keras
import tensorflow as tf

from zspace import paths
from zspace.config import Config, JudgeConfig, ModelConfig, SpeedConfig, TrainConfig
from zspace.data.dataset import Dataset
from zspace.models import artifacts, fitting, keys, published, runtime
from zspace.models.callbacks import restore
from zspace.models.factory import build_model, compiled_model

log = logging.getLogger(__name__)


@dataclass
class TrainedModel:
    """A trained (or loaded) model and where it came from.

    Attributes:
        name: ``ae``, ``vae``, ``wide_ae`` or ``judge``.
        model: The Keras model (``AE``, ``VAE`` or the functional judge).
        key: The artifact key.
        path: The artifact folder.
        history: Per-epoch lists of every tracked metric (``val_`` for the test set,
            ``epoch_seconds``); empty for a pretrained file that came without one.
        loaded_from_cache: True where no training ran in this call.
        seconds: Time the training took, summed over epochs (also when loaded).
        config: The resolved configuration the key was made from.
        meta: Training record: epochs, resumed epoch, devices, versions.
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
        ``{"ae", "vae", "wide_ae", "judge"}`` to their :class:`TrainedModel`.
    """
    runtime.get_strategy(config.train.strategy)  # multi-worker must come first
    return {name: train_or_load_named(name, config, dataset, build_root, progress,
                                      retrain)
            for name in (*keys.MODEL_NAMES, keys.JUDGE)}


def train_or_load_named(name: str, config: Config, dataset: Dataset,
                        build_root: Path | None = None,
                        progress: bool = True, retrain: bool = False) -> TrainedModel:
    """:func:`train_or_load` for the model ``name`` of a whole configuration.

    The profile's published weights (``models/<config.name>/``) are used where their
    key matches.

    Args:
        name: ``ae``, ``vae``, ``wide_ae`` or ``judge``.
        config: The whole configuration.
        dataset: The data set.
        build_root: The build folder (default: the repository's ``build/``).
        progress: Show a progress bar while training.
        retrain: Train afresh, whatever is cached or published.

    Returns:
        The :class:`TrainedModel`.

    Raises:
        ModelError: An unknown name, or a bad pretrained file.
    """
    return train_or_load(name, keys.model_config_for(name, config), config.train,
                         dataset, build_root, progress,
                         published_dir=published.folder_for(config),
                         retrain=retrain, speed=config.speed)


def train_or_load(
    name: str,
    model_config: ModelConfig | JudgeConfig,
    train_config: TrainConfig,
    dataset: Dataset,
    build_root: Path | None = None,
    progress: bool = True,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    published_dir: Path | None = None,
    retrain: bool = False,
    speed: SpeedConfig | None = None,
) -> TrainedModel:
    """Load the model's artifact if it exists and is intact, else make it.

    In that order: an intact artifact in the build cache; published weights in
    ``published_dir`` made under the same key (loaded, then cached as an artifact);
    a configured pretrained file; training. Published weights of another key, or
    whose file fails its sha256, are reported and never loaded.

    Args:
        name: Artifact name (``ae``, ``vae``, ``wide_ae``, ``judge``, ...).
        model_config: A ``ModelConfig`` (AE/VAE) or the ``JudgeConfig``.
        train_config: How to train.
        dataset: The data set.
        build_root: The build folder (default: the repository's ``build/``).
        progress: Show a progress bar while training.
        callbacks: Extra Keras callbacks for ``fit`` (after the checkpoint).
        published_dir: A folder of published weights (``models/<profile>/``).
        retrain: Train afresh: drop the cached artifact and any checkpoint, and
            ignore published weights.
        speed: Opt-in speed-ups for training (``config.speed``); part of the key
            where one is on.

    Returns:
        The :class:`TrainedModel`.

    Raises:
        ModelError: A configured pretrained file is missing, unreadable or of another
            architecture.
    """
    spec = keys.model_spec(name, model_config, train_config, dataset.card, speed)
    key = keys.artifact_key(spec)
    final = paths.model_cache_dir(build_root) / f"{name}-{key}"
    if retrain:
        for folder in (final, final.with_name(final.name + ".partial")):
            shutil.rmtree(folder, ignore_errors=True)
    if final.exists():
        started = time.perf_counter()
        try:
            model, documents = artifacts.read_artifact(final)
        except artifacts.CorruptArtifact as error:
            log.warning("rebuilding corrupt artifact: %s", error)
            shutil.rmtree(final)
        else:
            log.info("%s: loaded %s in %.1f s", name, final,
                     time.perf_counter() - started)
            return _trained(name, model, key, final, documents, cached=True)
    final.parent.mkdir(parents=True, exist_ok=True)
    if published_dir is not None and not retrain:
        loaded = _load_published(name, spec, key, final, model_config, train_config,
                                 dataset, published_dir)
        if loaded is not None:
            return loaded
    if model_config.pretrained:
        return _adopt(name, spec, key, final, model_config, train_config, dataset)
    return _train(name, spec, key, final, model_config, train_config, dataset,
                  progress, callbacks, speed)


def _train(name, spec, key, final, model_config, train_config, dataset, progress,
           callbacks, speed=None) -> TrainedModel:
    strategy = runtime.get_strategy(train_config.strategy)
    chief = runtime.is_chief(strategy)
    work = final.with_name(final.name + ".partial")  # kept across a killed run
    num_epochs = keys.effective_epochs(model_config, train_config)
    # final is <build_root>/cache/models/<name>-<key>: three levels up is the build
    # root, whose kernels/ holds the compiled speed.fuse_batch_norm kernel.
    model = compiled_model(
        name, model_config, train_config, dataset, strategy,
        speed=speed if keys.uses_speed(model_config, speed) else None,
        kernel_dir=final.parent.parent.parent / "kernels")
    first_epoch, history = restore(model, work / "checkpoint")
    resumed_from = first_epoch
    if first_epoch:
        log.info("%s: resuming after epoch %d of %d", name, first_epoch, num_epochs)
    if first_epoch < num_epochs and not fitting.converged(history, train_config):
        # Non-chief workers restore from the shared checkpoint but write elsewhere.
        scratch = work if chief else Path(tempfile.mkdtemp(prefix="zspace-worker-"))
        fitting.fit(model, name, spec, dataset, train_config, first_epoch,
                    num_epochs, history, scratch, progress, callbacks)
    meta = {
        "epochs": len(history.get("epoch_seconds", [])),
        "max_epochs": num_epochs,
        "resumed_from_epoch": resumed_from,
        "seconds": float(sum(history.get("epoch_seconds", []))),
        "devices": runtime.device_names(strategy),
        "replicas": strategy.num_replicas_in_sync,
        "onednn": runtime.onednn_enabled(),
        "machine": published.machine(),
        "versions": {"tensorflow": tf.__version__, "keras": keras.__version__,
                     "python": platform.python_version()},
    }
    documents = {"config": {**spec, "key": key}, "history": history,
                 "dataset": dataset.card.to_dict(), "meta": meta}
    if not chief:
        return _trained(name, model, key, final, documents, cached=False)
    shutil.rmtree(work / "checkpoint", ignore_errors=True)
    artifacts.write_artifact(work, model, documents)
    artifacts.publish(work, final)
    return _trained(name, model, key, final, documents, cached=False)


def _load_published(name, spec, key, final, model_config, train_config, dataset,
                    folder) -> TrainedModel | None:
    try:
        found = published.find(folder, name, spec, key)
        if found is None:
            return None
        model = build_model(name, model_config,
                            dataclasses.replace(train_config, precision="float32"),
                            dataset)
        published.load_into(model, found)
    except published.Unusable as error:
        log.warning("%s: not loading the published weights: %s; training instead",
                    name, error)
        return None
    manifest = found.manifest
    documents = {"config": {**spec, "key": key}, "history": manifest["history"],
                 "dataset": dataset.card.to_dict(),
                 "meta": {**manifest["meta"], "published": str(found.weights)}}
    work = final.with_name(final.name + ".partial")
    shutil.rmtree(work, ignore_errors=True)
    artifacts.write_artifact(work, model, documents)
    artifacts.publish(work, final)
    log.info("%s: loaded the published weights %s", name, found.weights)
    return _trained(name, model, key, final, documents, cached=True)


def _adopt(name, spec, key, final, model_config, train_config, dataset):
    path = Path(model_config.pretrained).expanduser()
    found = artifacts.load_pretrained(path, name)
    # Its weights go into a float32 model built here: one trained under mixed
    # precision on a GPU then runs at full speed on a CPU, with this code's layers.
    model = build_model(name, model_config,
                        dataclasses.replace(train_config, precision="float32"),
                        dataset)
    artifacts.check_architecture(found, model, path, name)
    model.set_weights(found.get_weights())
    history = {}
    sibling = path.with_name("history.json")
    if sibling.is_file():  # a model.keras copied out of another machine's artifact
        history = json.loads(sibling.read_text())
    documents = {"config": {**spec, "key": key}, "history": history,
                 "dataset": dataset.card.to_dict(),
                 "meta": {"pretrained": str(path), "seconds": 0.0}}
    work = final.with_name(final.name + ".partial")
    shutil.rmtree(work, ignore_errors=True)
    artifacts.write_artifact(work, model, documents)
    artifacts.publish(work, final)
    return _trained(name, model, key, final, documents, cached=False)


def _trained(name, model, key, path, documents, cached) -> TrainedModel:
    return TrainedModel(
        name=name, model=model, key=key, path=path,
        history={k: list(v) for k, v in documents["history"].items()},
        loaded_from_cache=cached,
        seconds=float(documents["meta"].get("seconds", 0.0)),
        config=documents["config"], meta=documents["meta"],
    )

