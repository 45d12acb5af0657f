"""Configuration: frozen dataclasses with defaults, TOML profiles, ``--set`` overrides.

Precedence, lowest first: the dataclass defaults (which are the ``default`` profile),
then a TOML file (``--config``), then ``--set key=value`` pairs. Every key is checked
against the dataclasses: an unknown key or a value of the wrong type raises
:class:`ConfigError` naming the dotted key.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import itertools
import json
import math
import os
import re
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zspace import paths
from zspace.errors import ConfigError
from zspace.samplesets.spec import families as set_families


@dataclass(frozen=True)
class DataConfig:
    """Where the images come from and how they are prepared.

    Attributes:
        source: ``synthetic`` (procedural faces), ``celeba`` (a local CelebA copy) or
            ``folder`` (any tree of JPEG/PNG files).
        path: The CelebA folder or zip, or the image folder; unused for ``synthetic``.
        image_size: Side of the square images in pixels.
        num_train: Training images (``synthetic``), or a cap on them (0: all).
        num_test: Test images (``synthetic``), or a cap on them (0: all).
        num_val: Validation images, which decide when training stops and nothing
            else: ``synthetic`` renders its own; ``celeba`` takes them from the
            official validation partition (the rest of it trains), a ``folder``
            from a seeded share of ``test_fraction``. 0: no validation split, and
            the stopping rule reads the test images, as before the split existed
            (kept until the committed models are retrained with one).
        seed: Seed of the synthetic generator and of any random split.
        crop_size: CelebA only: side of the square face box cut from the 178x218 image.
        crop_center_y: CelebA only: vertical centre of that box (horizontally centred).
        test_fraction: Share of images held out for testing where no split is given.
        workers: Worker processes for generating or decoding (0: one per core).
    """

    source: str = "synthetic"
    path: str = ""
    image_size: int = 64
    num_train: int = 20_000
    num_test: int = 2_000
    num_val: int = 0
    seed: int = 2024
    crop_size: int = 148
    crop_center_y: int = 114
    test_fraction: float = 0.1
    workers: int = 0


@dataclass(frozen=True)
class ModelConfig:
    """One convolutional encoder/decoder pair (``zspace/networks/architecture.py``).

    Attributes:
        kind: ``ae`` or ``vae``.
        z_dim: Dimension of the latent space.
        filters: Encoder filters per Conv2D layer (reversed in the decoder).
        kernels: Kernel size per layer.
        strides: Stride per layer.
        padding: ``same`` or ``valid``.
        batch_norm: Batch normalisation after each convolution.
        dropout: Dropout rate after each convolution (0: none).
        activation: ``leaky_relu``, ``relu`` or ``elu``.
        decoder: ``transpose`` (Conv2DTranspose) or ``upsample`` (UpSampling2D+Conv2D).
        loss: Reconstruction loss, ``bce`` or ``mse``.
        kl_factor: Weight of the KL loss in the VAE's total loss (``fact``).
        num_epochs: Training epochs (0: use ``train.num_epochs``).
        pretrained: A ``.keras`` file trained elsewhere, used instead of training.
    """

    kind: str = "vae"
    z_dim: int = 256
    filters: tuple[int, ...] = (32, 64, 128, 256)
    kernels: tuple[int, ...] = (3, 3, 3, 3)
    strides: tuple[int, ...] = (2, 2, 2, 2)
    padding: str = "same"
    batch_norm: bool = True
    dropout: float = 0.0
    activation: str = "leaky_relu"
    decoder: str = "transpose"
    loss: str = "bce"
    kl_factor: float = 5.0
    num_epochs: int = 0
    pretrained: str = ""


@dataclass(frozen=True)
class ModelsConfig:
    """The three models of the report: the AE, the VAE and the wide AE.

    Every model follows ``train.num_epochs`` and the held-out stopping rule of
    ``TrainConfig`` unless it sets ``num_epochs`` of its own.
    """

    ae: ModelConfig = ModelConfig(kind="ae")
    vae: ModelConfig = ModelConfig(kind="vae")
    wide_ae: ModelConfig = ModelConfig(
        kind="ae", z_dim=1600, filters=(64, 64, 128, 128), kernels=(5, 5, 3, 3),
    )


@dataclass(frozen=True)
class TrainConfig:
    """How models are trained.

    Attributes:
        num_epochs: Epochs per model unless the model sets its own; with a stopping
            rule, the most epochs a model may train.
        stop_improvement: The held-out stopping rule: training ends after the first
            epoch at which the last ``stop_window`` share of the epochs so far
            removed less than this share of the held-out squared error (the AE and
            the VAE; the judge reads its held-out loss), 0.05: 5 %. The squared
            error's floor is 0, so the share is of what the model could still gain.
            0 turns the rule off: every model trains all its epochs.
        stop_window: The share of the epochs so far that the rule looks back over.
        stop_smoothing: Epochs averaged at each end of that window (1: the two
            epochs' own values). See ``zspace.training.stopping``.
        min_epochs: The rule is not applied before this many epochs.
        batch_size: Global batch size (split over replicas).
        learning_rate: Adam's learning rate.
        seed: Seed of weights initialisation and shuffling.
        strategy: ``default``, ``mirrored`` (several GPUs) or ``multiworker`` (hosts).
        precision: ``float32``, ``mixed_bfloat16`` or ``mixed_float16``.
    """

    num_epochs: int = 60
    stop_improvement: float = 0.05
    stop_window: float = 0.2
    stop_smoothing: int = 1
    min_epochs: int = 10
    batch_size: int = 128
    learning_rate: float = 5e-4
    seed: int = 1
    strategy: str = "default"
    precision: str = "float32"


@dataclass(frozen=True)
class JudgeConfig:
    """The network whose features the quality metrics use
    (``zspace/networks/judge.py``).

    Attributes:
        num_epochs: Training epochs of the judge.
        feature_dim: Width of the feature layer the metrics read.
        pretrained: A ``.keras`` judge trained elsewhere, used instead of training.
    """

    num_epochs: int = 1
    feature_dim: int = 128
    pretrained: str = ""


@dataclass(frozen=True)
class SpeedConfig:
    """Training speed-ups (``zspace.networks.speed``): on by default, but XLA.

    Each swaps part of the training step for a cheaper formulation of the same
    arithmetic, so results move in the last bits. None is part of a model's key:
    the golden trainings (``zspace.training.golden``) train with each option alone
    beside the plain step and guard all of them, and the manifest records the
    options a model was trained with (the judge ignores them). The committed models
    are trained with them.

    Attributes:
        fused_loss: The reconstruction loss as one flat sum per image with a
            hand-written gradient.
        fused_adam: Adam as one ``ResourceApplyAdam`` kernel per variable.
        fuse_batch_norm: Batch norm and the leaky ReLU after it as one fused kernel
            each way (compiled into the build folder's ``kernels/`` on first use;
            needs a C++ compiler). CPUs only: a GPU keeps cuDNN's batch norm.
        subpixel_output: The decoder's last transposed convolution (a few colour
            channels) as a stride-1 convolution and a depth-to-space shuffle.
            CPUs only.
        jit_compile: Compile the training step with XLA (slower on CPUs). Not
            with ``fuse_batch_norm``: XLA cannot compile its custom op.

    ``zspace.networks.devices`` gives the options each device applies.
    """

    fused_loss: bool = True
    fused_adam: bool = True
    fuse_batch_norm: bool = True
    subpixel_output: bool = True
    jit_compile: bool = False

    def active(self) -> bool:
        """Whether any option is on."""
        return any(dataclasses.astuple(self))

    def check(self, prefix: str = "speed.") -> None:
        """Refuse options that cannot work together.

        Raises:
            ConfigError: ``jit_compile`` with ``fuse_batch_norm``.
        """
        if self.jit_compile and self.fuse_batch_norm:
            raise ConfigError(
                f"{prefix}jit_compile and {prefix}fuse_batch_norm cannot both be on: "
                f"XLA cannot compile the fused batch norm's custom CPU op; set "
                f"{prefix}fuse_batch_norm=false to compile with XLA (on a GPU the "
                f"fused kernel is never used anyway)")


@dataclass(frozen=True)
class SeedsConfig:
    """Extra training seeds per model. Each seed listed trains the model once more,
    besides ``train.seed``, as a variant of its own named ``<model>@seed=<seed>``
    (``ae@seed=2``): keyed, cached and committed on its own, so a changed list
    trains only the seeds it adds. Notebooks read them with ``run.seeds(name)``.

    Attributes:
        ae: Extra seeds of the AE.
        vae: Extra seeds of the VAE.
        wide_ae: Extra seeds of the wide AE.
        judge: Extra seeds of the judge.
    """

    ae: tuple[int, ...] = (2, 3)
    vae: tuple[int, ...] = (2, 3)
    wide_ae: tuple[int, ...] = ()
    judge: tuple[int, ...] = ()


@dataclass(frozen=True)
class BuildConfig:
    """How the pipeline runs.

    Attributes:
        parallel_notebooks: Notebooks executed at once (independent ones only).
        kernel_threads: Compute threads of each notebook kernel (TensorFlow's
            intra- and inter-op pools, OpenMP, BLAS). A fixed number, not the
            machine's core count: the thread count decides the order of
            floating-point sums, and so the last bits of decoded images and of PCA
            axes, and the same figures must come out on every machine. Part of each
            notebook's key.
        keep_archives: Builds whose figures are archived for ``diff``.
        publish: Also publish the figures and Markdown articles into the repository's
            ``figures/`` and ``articles/`` (the ``default`` profile does).
        analysis_dir: Folder of the analysis notebooks ("": the repository's).
        templates_dir: Folder of the report templates ("": the repository's).
        models_dir: Folder of committed model weights, one sub-folder per profile
            ("": the repository's ``models/``).
        max_sweep_points: The most points one sweep may have; each point trains a
            model, so a larger grid is refused unless this is raised on purpose.
        executor: ``local`` runs the stages in this process and its kernels;
            ``dask`` runs each model, sample set and notebook as a task of a
            ``dask.distributed`` cluster (:mod:`zspace.pipeline.distributed`; needs
            ``pip install -e ".[dask]"``). Neither is part of any key: both make
            the same figures.
        scheduler: The Dask scheduler's address (``tcp://host:8786``); "": the
            ``DASK_SCHEDULER_ADDRESS`` environment variable, else a local cluster
            of ``parallel_notebooks`` worker processes. Only with ``executor =
            "dask"``.
        gpus_per_training: ``GPU`` resources each training task asks of a Dask
            worker (workers declare theirs: ``dask worker ... --resources GPU=1``);
            0: trainings run on any worker. Only with ``executor = "dask"``; a
            local cluster's workers declare no GPUs, so it is ignored there.
    """

    parallel_notebooks: int = 2
    # With two kernels at once, one thread each fills a 2-core machine without the
    # pools of both competing for the cores (a default build's notebooks: 3.2 instead
    # of 3.7 minutes).
    kernel_threads: int = 1
    keep_archives: int = 5
    publish: bool = False
    analysis_dir: str = ""
    templates_dir: str = ""
    models_dir: str = ""
    max_sweep_points: int = 64
    executor: str = "local"
    scheduler: str = ""
    gpus_per_training: int = 0

    def check(self, prefix: str = "build.") -> None:
        """Refuse cluster settings without the cluster.

        Raises:
            ConfigError: ``scheduler`` or ``gpus_per_training`` with the local
                executor.
        """
        if self.executor == "dask":
            return
        for name, value in (("scheduler", self.scheduler),
                            ("gpus_per_training", self.gpus_per_training)):
            if value:
                raise ConfigError(
                    f"{prefix}{name} = {value!r} needs {prefix}executor = \"dask\" "
                    f"(it is {self.executor!r}): set {prefix}executor=\"dask\" or "
                    f"leave {prefix}{name} out")


@dataclass(frozen=True)
class Config:
    """The whole configuration of one report build."""

    # The profile's name: its folders build/<name>/ and models/<name>/ (a slug, NAME).
    name: str = "default"
    data: DataConfig = DataConfig()
    models: ModelsConfig = ModelsConfig()
    train: TrainConfig = TrainConfig()
    judge: JudgeConfig = JudgeConfig()
    speed: SpeedConfig = SpeedConfig()
    seeds: SeedsConfig = SeedsConfig()
    build: BuildConfig = BuildConfig()
    # Per-notebook parameter overrides, checked against each notebook's `parameters`
    # cell by the pipeline (the notebooks, not this module, own their defaults).
    notebooks: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Named sweeps over keys of one model, as written (TOML tables); parsed once into
    # :attr:`parsed_sweeps`, which the plan expands into model variants:
    # ``[sweeps.kl] model = "vae"; kl_factor = [0.5, 1, 2, 5, 10]``.
    sweeps: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Changes to the sample sets' catalogue (``zspace.samplesets.spec``): a table per
    # set (``[sets.vae_normal] n = 2000``), or a key shared by all (``[sets] n = 128``).
    sets: dict[str, Any] = field(default_factory=dict)

    @functools.cached_property
    def parsed_sweeps(self) -> tuple[Sweep, ...]:
        """The sweeps, checked and expanded into points; parsed on first use (by
        :func:`load_config`, which checks them) and kept.

        A sweep is a table under ``sweeps`` with ``model`` naming the model and, for
        each key of ``models.<model>`` it varies, a non-empty list of distinct values.
        Each value is checked like the key itself (type and range). An optional table
        ``fixed`` holds other model keys at one value for every point
        (``num_epochs = 10``: a training budget equal for all points).

        Raises:
            ConfigError: The sweep names no model, an unknown model or key, or gives
                a key no list, an empty list, repeated or invalid values.
        """
        return tuple(_sweep(name, table, self) for name, table in self.sweeps.items())

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-ready form (tuples become lists)."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    def digest(self) -> str:
        """Stable hash of the whole configuration."""
        return digest_of(self.to_dict())


@dataclass(frozen=True)
class SweepPoint:
    """One point of a sweep: its values and the model configuration they give.

    Attributes:
        values: ``(key, value)`` pairs in the sweep's key order.
        model_config: The swept model's configuration with those values.
    """

    values: tuple[tuple[str, Any], ...]
    model_config: ModelConfig

    @property
    def label(self) -> str:
        """``kl_factor=0.5``; several keys joined by commas."""
        return settings_label(self.values)


def settings_label(values: typing.Iterable[tuple[str, Any]]) -> str:
    """``key=value`` pairs joined by commas, values written as in TOML but short
    (``kl_factor=0.5``, ``decoder=upsample``, ``filters=32-64``)."""
    return ",".join(f"{key}={_label(value)}" for key, value in values)


@dataclass(frozen=True)
class Sweep:
    """A named sweep: one model, the keys it varies, and every point of their grid.

    Attributes:
        name: The sweep's name (the table's name under ``sweeps``).
        model: The model it varies (``ae``, ``vae`` or ``wide_ae``).
        keys: The model keys it varies, in the order declared.
        points: Every combination of the keys' values (the first key slowest).
    """

    name: str
    model: str
    keys: tuple[str, ...]
    points: tuple[SweepPoint, ...]


def _sweep(name: str, table: dict[str, Any], config: Config) -> Sweep:
    where = f"sweeps.{name}"
    models = [f.name for f in dataclasses.fields(ModelsConfig)]
    model = table.get("model")
    if model is None:
        raise ConfigError(f"{where}: expected model = one of {', '.join(models)} "
                          "(the model the sweep varies)")
    if model not in models:
        raise ConfigError(f"{where}.model: {model!r} is not a model of the report "
                          f"(expected one of {', '.join(models)})")
    known = [f.name for f in dataclasses.fields(ModelConfig)]
    fixed = table.get("fixed", {})
    if not isinstance(fixed, dict):
        raise ConfigError(f"{where}.fixed: expected a table of model keys held at one "
                          f"value for every point, got {fixed!r}")
    for key in fixed:
        if key not in known:
            raise ConfigError(f"{where}.fixed: unknown key {key} (keys of "
                              f"models.{model}: {', '.join(known)})")
    base = _with(getattr(config.models, model), fixed, f"{where}.fixed")
    swept = {key: values for key, values in table.items()
             if key not in ("model", "fixed")}
    if not swept:
        raise ConfigError(f"{where}: no key to sweep (give one of models.{model}'s "
                          f"keys a list of values, e.g. z_dim = [64, 256])")
    for key, values in swept.items():
        if key not in known:
            raise ConfigError(f"{where}: unknown key {key} (keys of models.{model}: "
                              f"{', '.join(known)})")
        if not isinstance(values, list | tuple) or not values:
            raise ConfigError(f"{where}.{key}: expected a non-empty list of values, "
                              f"got {values!r}")
    count = math.prod(len(values) for values in swept.values())
    if count > config.build.max_sweep_points:
        raise ConfigError(
            f"{where}: {count:,} points "
            f"({' x '.join(str(len(v)) for v in swept.values())} values) are more than "
            f"build.max_sweep_points = {config.build.max_sweep_points}; each point "
            f"trains a model: set build.max_sweep_points={count} to allow it")
    grid = []
    for key, values in swept.items():
        coerced = [getattr(_with(base, {key: value}, where), key) for value in values]
        if len(set(map(repr, coerced))) != len(coerced):
            raise ConfigError(f"{where}.{key}: expected distinct values, got "
                              f"{list(values)}")
        grid.append([(key, value) for value in coerced])
    points = [SweepPoint(combination, _with(base, dict(combination), where))
              for combination in itertools.product(*grid)]
    return Sweep(name, model, tuple(swept), tuple(points))


def _with(base: ModelConfig, values: dict[str, Any], where: str) -> ModelConfig:
    """``base`` with ``values``, checked like a ``models.<name>`` section."""
    return _build(ModelConfig, {**dataclasses.asdict(base), **values}, f"{where}.")


def _label(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, tuple):
        return "-".join(_label(v) for v in value)
    return str(value)


def digest_of(value: Any) -> str:
    """sha256 of the canonical JSON form of ``value`` (first 16 hex digits)."""
    text = json.dumps(value, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def load_config(source: str | Path | None = None, overrides: list[str] = ()) -> Config:
    """Build a configuration from defaults, a TOML profile and ``key=value`` overrides.

    Args:
        source: A TOML file, or the name of a profile in ``configs/`` (``smoke``,
            ``default``, ``celeba``); None for the defaults.
        overrides: ``section.key=value`` strings; values are TOML literals
            (``3``, ``0.5``, ``true``, ``[32, 64]``) and anything else is a string.

    Returns:
        The frozen configuration.

    Raises:
        ConfigError: The file is missing or not TOML, a key is unknown, a value has
            the wrong type, or the settings cannot work (:func:`check_limits`).
    """
    tree: dict[str, Any] = {}
    if source is not None:
        tree = _read_toml(_resolve_profile(source))
        tree.setdefault("name", Path(source).stem)
    for item in overrides:
        key, value = _parse_override(item)
        _set_dotted(tree, key, value)
    config = _build(Config, tree, prefix="")
    check_limits(config)
    return config


def config_from_dict(tree: dict[str, Any]) -> Config:
    """Rebuild a configuration from :meth:`Config.to_dict` output (checked as usual)."""
    return _build(Config, tree, prefix="")


def _resolve_profile(source: str | Path) -> Path:
    path = Path(source)
    if path.suffix != ".toml" and not path.exists():
        path = paths.CONFIGS / f"{source}.toml"
    if not path.is_file():
        profiles = sorted(p.stem for p in paths.CONFIGS.glob("*.toml"))
        raise ConfigError(
            f"configuration file not found: {source} (expected a .toml file or one of "
            f"the profiles {', '.join(profiles)})"
        )
    return path


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path} is not valid TOML: {error}") from None


def _parse_override(item: str) -> tuple[str, Any]:
    key, sep, text = item.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"--set expects key=value, got {item!r}")
    try:
        value = tomllib.loads(f"v = {text.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = text.strip()
    return key, value


def _set_dotted(tree: dict[str, Any], key: str, value: Any) -> None:
    *parents, leaf = key.split(".")
    node = tree
    for part in parents:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"{key}: {part} is a value, not a section")
    node[leaf] = value


def _build(cls: type, tree: dict[str, Any], prefix: str) -> Any:
    if not isinstance(tree, dict):
        raise ConfigError(f"{prefix.rstrip('.')}: expected a section (table), got "
                          f"{type(tree).__name__}")
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(tree) - set(known))
    if unknown:
        raise ConfigError(
            f"unknown configuration key {prefix}{unknown[0]} "
            f"(known keys here: {', '.join(sorted(known))})"
        )
    defaults = cls()
    values = {}
    for name, value in tree.items():
        hint = hints[name]
        key = prefix + name
        if dataclasses.is_dataclass(hint):
            base = dataclasses.asdict(getattr(defaults, name))
            values[name] = _build_nested(hint, base, value, key)
        else:
            values[name] = _coerce(value, hint, key)
    config = dataclasses.replace(defaults, **values)
    _check_choices(config, prefix)
    return config


def _build_nested(cls: type, base: dict[str, Any], value: Any, key: str) -> Any:
    if not isinstance(value, dict):
        raise ConfigError(f"{key}: expected a section (table), got {value!r}")
    # Start from this section's own defaults (the wide AE differs from ModelConfig());
    # deeper sections merge the same way one level down.
    return _build(cls, {**base, **value}, key + ".")


def _coerce(value: Any, hint: Any, key: str) -> Any:
    origin = typing.get_origin(hint)
    if hint is bool:
        if isinstance(value, bool):
            return value
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif hint is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    elif hint is str:
        if isinstance(value, str):
            return value
    elif origin is tuple:
        (item_type, _) = typing.get_args(hint)
        if isinstance(value, list | tuple):
            return tuple(_coerce(v, item_type, f"{key}[{i}]")
                         for i, v in enumerate(value))
    elif origin is dict:
        if isinstance(value, dict) and typing.get_args(hint)[1] is Any:
            return {k: dict(v) if isinstance(v, dict) else v for k, v in value.items()}
        if isinstance(value, dict) and all(isinstance(v, dict) for v in value.values()):
            return {k: dict(v) for k, v in value.items()}
    elif hint is Any:
        return value
    raise ConfigError(f"{key}: expected {_type_name(hint)}, got {value!r}")


def _type_name(hint: Any) -> str:
    if typing.get_origin(hint) is tuple:
        return f"a list of {typing.get_args(hint)[0].__name__}"
    if typing.get_origin(hint) is dict:
        return "a table of tables"
    if isinstance(hint, type | types.GenericAlias):
        return getattr(hint, "__name__", str(hint))
    return str(hint)


_CHOICES = {
    "source": ("synthetic", "celeba", "folder"),
    "kind": ("ae", "vae"),
    "padding": ("same", "valid"),
    "activation": ("leaky_relu", "relu", "elu"),
    "decoder": ("transpose", "upsample"),
    "loss": ("bce", "mse"),
    "strategy": ("default", "mirrored", "multiworker"),
    "precision": ("float32", "mixed_bfloat16", "mixed_float16"),
    "executor": ("local", "dask"),
}

_POSITIVE = {"image_size", "z_dim", "batch_size", "crop_size", "feature_dim",
             "parallel_notebooks", "kernel_threads", "keep_archives",
             "max_sweep_points"}


# Numbers with a sensible range: the test and the range in words. A value outside
# trains nothing useful (a negative learning rate climbs the loss), so it is a
# configuration error before anything runs.
_RANGES = {
    "learning_rate": (lambda v: v > 0, "a positive learning rate"),
    "stop_improvement": (lambda v: 0 <= v < 1, "a share in [0, 1)"),
    "stop_window": (lambda v: 0 < v <= 1, "a share in (0, 1]"),
    "stop_smoothing": (lambda v: v >= 1, "1 or more epochs"),
    "min_epochs": (lambda v: v >= 0, "0 or more"),
    "seed": (lambda v: v >= 0, "0 or more"),
    "kl_factor": (lambda v: v >= 0, "0 or more"),
    "dropout": (lambda v: 0 <= v < 1, "a rate in [0, 1)"),
}


# A profile name names folders, so it is a short slug: never a path, never empty.
NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


def _check_choices(config: Any, prefix: str) -> None:
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        key = prefix + f.name
        if f.name in _CHOICES and value not in _CHOICES[f.name]:
            raise ConfigError(
                f"{key}: {value!r} is not one of {', '.join(_CHOICES[f.name])}"
            )
        if f.name in _POSITIVE and value <= 0:
            raise ConfigError(f"{key}: expected a positive number, got {value!r}")
        if f.name in ("num_train", "num_test", "num_val", "num_epochs",
                      "workers", "gpus_per_training") and value < 0:
            raise ConfigError(f"{key}: expected 0 or more, got {value!r}")
        if f.name in _RANGES:
            sensible, what = _RANGES[f.name]
            if not (math.isfinite(value) and sensible(value)):
                raise ConfigError(f"{key}: expected {what}, got {value!r}")
    if isinstance(config, ModelConfig):
        if not config.filters:
            raise ConfigError(f"{prefix}filters: expected at least one layer, got []")
        layers = len(config.filters)
        for name in ("kernels", "strides"):
            if len(getattr(config, name)) != layers:
                raise ConfigError(
                    f"{prefix}{name}: expected {layers} values (one per filter), got "
                    f"{len(getattr(config, name))}"
                )
        for name in ("filters", "kernels", "strides"):
            if any(v <= 0 for v in getattr(config, name)):
                raise ConfigError(f"{prefix}{name}: expected positive numbers, got "
                                  f"{list(getattr(config, name))}")
    if isinstance(config, TrainConfig) and config.num_epochs < 1:
        # A model's (or the judge's) 0 means "train.num_epochs"; here 0 would
        # train nothing and cache the untrained models.
        raise ConfigError(f"{prefix}num_epochs: expected 1 or more, got "
                          f"{config.num_epochs}")
    if isinstance(config, SpeedConfig | BuildConfig):
        config.check(prefix)
    if isinstance(config, SeedsConfig):
        for f in dataclasses.fields(config):
            seeds = getattr(config, f.name)
            if any(seed < 0 for seed in seeds) or len(set(seeds)) != len(seeds):
                raise ConfigError(f"{prefix}{f.name}: expected distinct seeds of 0 "
                                  f"or more, got {list(seeds)}")
    if isinstance(config, Config):
        if not NAME.fullmatch(config.name):
            raise ConfigError(
                f"name: expected 1 to 64 letters, digits, '-' or '_' (it names the "
                f"folders build/<name>/ and models/<name>/), got {config.name!r}")
        # Parsing the sweeps checks them; the parsed sweeps are kept for the plan.
        config.parsed_sweeps  # noqa: B018
        set_families(config.sets)  # raises on a malformed sample set
        for f in dataclasses.fields(config.seeds):
            if config.train.seed in getattr(config.seeds, f.name):
                raise ConfigError(
                    f"seeds.{f.name}: {config.train.seed} is train.seed, which every "
                    "model is trained with already; list only the extra seeds")
    if isinstance(config, DataConfig) and not 0 < config.test_fraction < 1:
        raise ConfigError(f"{prefix}test_fraction: expected a share between 0 and 1, "
                          f"got {config.test_fraction}")


# The fewest images the build works with at the notebooks' default parameters. C8
# fits a PCA of up to 120 components to the training codes (outliers dropped first);
# the reconstructions show 5 test images per seed, the explorer starts from 4.
MIN_TRAIN_IMAGES = 256
MIN_TEST_IMAGES = 16


def check_limits(config: Config) -> None:
    """Refuse settings that cannot work, before anything runs: splits too small for
    a batch or for the notebooks' statistics, images too large for memory.

    For ``celeba`` and ``folder`` a count is a cap and 0 means all; their real counts
    are checked when the data set is loaded (``zspace.data.folder``).

    Raises:
        ConfigError: Naming the key, and how many images are needed.
    """
    data, batch = config.data, config.train.batch_size
    needed = {
        "num_train": (max(MIN_TRAIN_IMAGES, batch), "training images (one batch of "
                      f"train.batch_size = {batch}, and {MIN_TRAIN_IMAGES} for the "
                      "notebooks' statistics)"),
        "num_test": (MIN_TEST_IMAGES, "test images for the notebooks' statistics"),
    }
    for key, (least, what) in needed.items():
        count = getattr(data, key)
        if (data.source == "synthetic" or count) and count < least:
            raise ConfigError(f"data.{key}: {count} is too few; the build needs at "
                              f"least {least} {what}")
    needed_bytes, available = memory_needed(config), available_memory()
    if available is not None and needed_bytes > available:
        raise ConfigError(
            f"data.image_size: {data.image_size} px images need at least "
            f"{needed_bytes / 2**30:,.1f} GiB of memory (the data set and one training "
            f"batch), and the machine has {available / 2**30:,.1f} GiB; lower "
            "data.image_size, the image counts or train.batch_size")


def memory_needed(config: Config) -> int:
    """A lower bound of the bytes a build holds at once: the data set as uint8
    arrays (where its counts are known) and one training batch through the first
    convolution as float32, with its gradient."""
    data, side = config.data, config.data.image_size
    images = data.num_train + data.num_test + data.num_val  # 0 ("all"): unknown
    widest = max(getattr(config.models, f.name).filters[0]
                 for f in dataclasses.fields(ModelsConfig))
    batch = config.train.batch_size * side * side * (3 + widest) * 4 * 2
    return images * side * side * 3 + batch


def available_memory() -> int | None:
    """Bytes of memory the machine has (Linux's ``MemTotal``, else its physical
    pages): fixed for a machine, so a configuration is not accepted or refused by
    what other processes hold at the moment. None where the system does not say."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None
