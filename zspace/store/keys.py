"""Artifact keys, computed without TensorFlow.

A key covers what decides a model's numbers: its configuration (with the epochs
resolved), the training configuration, the image shape, the data set's content hash
(and for the judge its task and attribute names), the Keras version and
:data:`TRAINING_SEMANTICS`. It never covers the bytes of the code, the device or the
speed options: a comment or a moved helper keeps every committed model, and the
options are recorded in the manifest instead (they compute the same arithmetic in
another order; XLA also draws the VAE's noise from another stream: the same model in
distribution, other numbers).
It is computed from the dataset *card* alone, so ``status`` and a no-op build can
find artifacts without loading images or importing TensorFlow.
"""

from __future__ import annotations

import dataclasses
import hashlib
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from zspace.config import (
    Config,
    JudgeConfig,
    ModelConfig,
    SpeedConfig,
    Sweep,
    TrainConfig,
    digest_of,
    settings_label,
)
from zspace.data.dataset import DatasetCard
from zspace.errors import ModelError

MODEL_NAMES = ("ae", "vae", "wide_ae")
# Between a model's name and an extra training seed in a variant's name.
# A variant's name is its model's, then this mark and what differs: a seed
# (``SEED_MARK``) or a sweep point (``vae@kl_factor=0.5``).
VARIANT_MARK = "@"
SEED_MARK = "@seed="
# The version of what training computes. Bump it when a change moves the numbers
# that training produces from a given configuration and data set: a layer, a loss,
# the input pipeline's order, seeding, the optimizer, the stopping rule's arithmetic.
# The golden trainings (zspace/training/golden.py, tests/test_golden.py) catch such a
# change and name this constant; a comment, a docstring or a moved helper passes them.
# 1: the rule and splits of the models committed before keys had a version.
TRAINING_SEMANTICS = 1
# The modules whose code decides what training produces (layers, architectures,
# losses, the input pipeline, seeding, the training loop): no longer hashed, listed
# for the golden test, which checks that cosmetic edits to them keep the numbers.
WEIGHT_CODE = (
    *(f"zspace/networks/{module}.py" for module in (
        "architecture", "autoencoders", "devices", "judge", "layers", "speed")),
    *(f"zspace/training/{module}.py" for module in (
        "callbacks", "factory", "fitting", "inputs", "runtime", "stopping")))
JUDGE = "judge"


def model_config_for(name: str, config: Config) -> ModelConfig | JudgeConfig:
    """The section of ``config`` that describes model ``name`` (or a variant of it).

    Raises:
        ModelError: ``name`` is none of ``ae``, ``vae``, ``wide_ae``, ``judge``.
    """
    name = base_name(name)
    if name == JUDGE:
        return config.judge
    if name in MODEL_NAMES:
        return getattr(config.models, name)
    raise ModelError(f"unknown model {name!r} (known: {', '.join(MODEL_NAMES)}, "
                     f"{JUDGE})")


@dataclasses.dataclass(frozen=True)
class ModelVariant:
    """One model the plan makes: its name and everything its key depends on.

    Today each model of the configuration is one variant named after it; training
    seeds and sweep points add variants of one model with their own name and
    settings, each keyed, cached and committed on its own.

    Attributes:
        name: The stage's, the artifact's and the committed file's name (``vae``).
        model_config: Its ``ModelConfig``, or the ``JudgeConfig``.
        train_config: How it is trained.
        speed: The speed options (applied only where :func:`uses_speed`); not
            part of the key.
    """

    name: str
    model_config: ModelConfig | JudgeConfig
    train_config: TrainConfig
    speed: SpeedConfig | None = None

    def spec(self, card: DatasetCard) -> dict:
        """The spec its key digests, for the data set of ``card``."""
        return model_spec(self.name, self.model_config, self.train_config, card)


def variants(name: str, config: Config) -> list[ModelVariant]:
    """Model ``name`` of ``config`` and its seed variants (``config.seeds``): the
    model trained with ``train.seed`` first, then one per extra seed.

    Raises:
        ModelError: ``name`` names no model of the configuration.
    """
    base = ModelVariant(name, model_config_for(name, config), config.train,
                        config.speed)
    return [base, *(seed_variant(base, seed)
                    for seed in getattr(config.seeds, name))]


def all_variants(config: Config) -> list[ModelVariant]:
    """Every model of ``config``, its seed variants and its sweep points, the judge
    last (a point that equals a model, or another sweep's point, is listed once)."""
    found: dict[str, ModelVariant] = {}
    for name in (*MODEL_NAMES, JUDGE):
        for one in variants(name, config):
            found.setdefault(one.name, one)
        for sweep in config.parsed_sweeps:
            if sweep.model == name:
                for one in sweep_variants(sweep, config):
                    found.setdefault(one.name, one)
    return list(found.values())


def sweep_variants(sweep: Sweep, config: Config) -> list[ModelVariant]:
    """The model variant of each point of ``sweep``, in the sweep's order.

    A point whose settings equal the model's own is that model (``vae``); any other
    is named after the settings in which it differs from the model
    (``vae@kl_factor=0.5``, ``vae@kl_factor=0.5,num_epochs=10``), so points of two
    sweeps with the same settings are one variant, and a changed value renames (and
    retrains) only its own point.
    """
    base = ModelVariant(sweep.model, model_config_for(sweep.model, config),
                        config.train, config.speed)
    return [dataclasses.replace(base, name=_point_name(base, point.model_config),
                                model_config=point.model_config)
            for point in sweep.points]


def _point_name(base: ModelVariant, model_config: ModelConfig) -> str:
    own = dataclasses.asdict(base.model_config)
    differs = [(name, value) for name, value in dataclasses.asdict(model_config).items()
               if value != own[name]]
    return (f"{base.name}{VARIANT_MARK}{settings_label(differs)}" if differs
            else base.name)


def seed_variant(base: ModelVariant, seed: int) -> ModelVariant:
    """``base`` trained with another seed, named ``<name>@seed=<seed>``."""
    return dataclasses.replace(
        base, name=f"{base.name}{SEED_MARK}{seed}",
        train_config=dataclasses.replace(base.train_config, seed=seed))


def variant(name: str, config: Config) -> ModelVariant:
    """The variant of ``config`` named ``name`` (``vae``, ``vae@seed=2``).

    Raises:
        ModelError: ``name`` names no model of the configuration, or a seed that
            ``config.seeds`` does not list.
    """
    model = base_name(name)
    model_config_for(model, config)  # an unknown model is named as such
    found = {v.name: v for v in all_variants(config) if base_name(v.name) == model}
    if name not in found:
        raise ModelError(f"unknown model variant {name!r} (the variants of "
                         f"{model} are {', '.join(found)}; extra seeds come from "
                         f"seeds.{model}, other settings from sweeps)")
    return found[name]


def base_name(name: str) -> str:
    """The model a variant name belongs to (``vae`` for ``vae@seed=2`` and for
    ``vae@kl_factor=0.5``)."""
    return name.partition(VARIANT_MARK)[0]


def effective_epochs(model_config: ModelConfig | JudgeConfig,
                     train_config: TrainConfig) -> int:
    """The model's own ``num_epochs``, or the training default where it is 0."""
    return model_config.num_epochs or train_config.num_epochs


def judge_task(card: DatasetCard) -> str:
    """``attributes`` where the data set names attributes, else ``rotation``."""
    return "attributes" if card.attribute_names else "rotation"


def model_spec(name: str, model_config: ModelConfig | JudgeConfig,
               train_config: TrainConfig, card: DatasetCard) -> dict:
    """The JSON-ready description a model's key is the digest of.

    Args:
        name: The model's name.
        model_config: Its ``ModelConfig``, or the ``JudgeConfig``.
        train_config: The training configuration.
        card: The data set's card.

    Returns:
        A dict, stored as the artifact's ``config.json`` (plus the key).
    """
    epochs = effective_epochs(model_config, train_config)
    spec = {
        "name": name,
        "model": {**dataclasses.asdict(model_config), "num_epochs": epochs},
        "train": {**dataclasses.asdict(train_config), "num_epochs": epochs},
        "image_size": card.image_size,
        "dataset": card.content_hash,
        "semantics": TRAINING_SEMANTICS,
        "keras": _version("keras"),
    }
    if isinstance(model_config, JudgeConfig):
        spec["task"] = judge_task(card)
        spec["attribute_names"] = list(card.attribute_names)
    if model_config.pretrained:
        path = Path(model_config.pretrained).expanduser()
        spec["pretrained"] = file_digest(path) if path.is_file() else "missing"
    return spec


def uses_speed(model_config: ModelConfig | JudgeConfig,
               speed: SpeedConfig | None) -> bool:
    """Whether training this model applies speed options (an AE or VAE, one on)."""
    return (speed is not None and speed.active()
            and isinstance(model_config, ModelConfig) and not model_config.pretrained)


def artifact_key(spec: dict) -> str:
    """The key (16 hex digits) of a model spec."""
    return digest_of(spec)


def file_digest(path: Path) -> str:
    """sha256 of a file's bytes (hex), read in 1 MB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _version(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:
        return "unknown"
