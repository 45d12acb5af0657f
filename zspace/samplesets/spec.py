"""Which sample sets a build makes: the catalogue, its overrides, and their points.

A sample set is what one sampler gives: ``n`` images drawn with a model's every
training seed (a share each), or ``n`` real images. The catalogue below names the
sets the articles quote. A configuration changes one with a table of the same name
(``[sets.vae_normal] n = 2000``) or adds one.

A key directly under ``sets`` (``n``, ``fit_points``, ``gmm_points``, ``seed``)
applies to every set that does not set it itself: ``[sets] n = 128``.

A key given a list is a series: one set per value, so ``r_limit = [0.5, 1, 2]``
makes three sets, ``vae_uniform@r_limit=0.5`` and so on. Several lists make every
combination, the first key slowest, as sweeps do.

Two entries with the same settings are one set: the key covers settings, not names,
so figure B1's point at ``r_limit = 8`` and figure C7's are made and judged once.

This module imports neither TensorFlow nor scikit-learn: the configuration checks
sets as it loads, and ``status`` must stay fast.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any

from zspace.errors import ConfigError

# Samplers that draw from a model, with the parameters each accepts
# (``zspace.latent.samplers.make_sampler``; a test keeps the two in step).
SAMPLER_PARAMS: dict[str, tuple[str, ...]] = {
    "normal": ("scale",),
    "uniform": ("r_limit",),
    "gaussian": (),
    "gmm": ("n_components", "max_iter", "reg_covar"),
    "pca_ellipse": ("n_components", "level", "fact", "half_width", "bins",
                    "fit_within"),
}
# Real images: the first ``n`` test images, or ``n`` training images at random. And
# the controls made from them, which show what each measure rewards: the mean
# training image ``n`` times, the test images blurred (a Gaussian of ``sigma`` px),
# and the test images with their eye band and mouth band swapped.
REAL_SOURCES = ("test", "train", "mean_face", "blurred", "displaced")
REAL_PARAMS: dict[str, tuple[str, ...]] = {"blurred": ("sigma",)}
FITTED = ("gaussian", "gmm", "pca_ellipse")  # fitted to the model's training codes
MODELS = ("ae", "vae", "wide_ae")

# Keys of a set that are not sampler parameters.
SET_KEYS = ("model", "sampler", "n", "fit_points", "gmm_points", "seed")
DEFAULTS: dict[str, Any] = {
    "n": 1000,  # images, shared among the model's training seeds
    "fit_points": 10_000,  # training images encoded for the fitted samplers
    "gmm_points": 5000,  # of those, the points the mixture is fitted to
    "seed": 0,  # mixed with the settings: equal settings draw equal images
}
# A parameter at 0 that means "from the codes": the uniform cube's half-width is then
# sqrt(3) times the codes' mean standard deviation per component (the cube with the
# codes' variance), and ``fit_within`` 0 fits the PCA to every code.
AUTO_ZERO = ("r_limit", "fit_within")
INTEGERS = ("n", "fit_points", "gmm_points", "seed", "n_components", "max_iter",
            "bins")

CATALOGUE: dict[str, dict[str, Any]] = {
    # The references: real faces.
    "real_test": {"sampler": "test"},
    "real_train": {"sampler": "train"},
    # Controls: what each measure rewards (article C).
    "mean_face": {"sampler": "mean_face"},
    "blurred": {"sampler": "blurred", "sigma": 1.5},
    "displaced": {"sampler": "displaced"},
    # The headline samplers (articles A, B and C).
    "vae_normal": {"model": "vae", "sampler": "normal"},
    "ae_normal": {"model": "ae", "sampler": "normal"},
    "ae_uniform": {"model": "ae", "sampler": "uniform", "r_limit": 0.0},
    "ae_gaussian": {"model": "ae", "sampler": "gaussian"},
    "ae_gmm": {"model": "ae", "sampler": "gmm", "n_components": 10, "max_iter": 100},
    "ae_pca_ellipse": {"model": "ae", "sampler": "pca_ellipse", "n_components": 80,
                       "level": 2.35, "fact": 0.7, "fit_within": 3.0},
    # Series: how far from the origin faces last (A6, B1), naive cubes (C7), and
    # the PCA-ellipse settings (C8, C11).
    "vae_uniform": {"model": "vae", "sampler": "uniform",
                    "r_limit": [0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 5.0, 8.0]},
    "ae_uniform_wide": {"model": "ae", "sampler": "uniform",
                        "r_limit": [0.5, 2.5, 5.0, 8.0, 10.0, 15.0, 20.0, 30.0, 50.0]},
    "ae_uniform_naive": {"model": "ae", "sampler": "uniform",
                         "r_limit": [1.0, 3.0, 8.0]},
    "ae_pca_settings": {"model": "ae", "sampler": "pca_ellipse",
                        "n_components": [50, 80, 120], "fact": [0.6, 0.7, 0.8],
                        "level": 2.35, "fit_within": 3.0},
    # Detail against the number of PCA components (C11), up to all of z_dim = 256,
    # refitted within 3 sigma as the other PCA-ellipse sets are (of 10,000 codes,
    # about half lie within 3 sigma on all 256 components; the smoke profile, with
    # a few hundred, fits to every code).
    "ae_pca_components": {"model": "ae", "sampler": "pca_ellipse",
                          "n_components": [20, 50, 100, 150, 200, 250, 256],
                          "level": 2.35, "fact": 0.7, "fit_within": 3.0},
}


@dataclass(frozen=True)
class SetPoint:
    """One sample set: a catalogue entry, or one value of a series.

    Attributes:
        name: ``vae_normal``, or ``vae_uniform@r_limit=0.5`` for a series' point.
        family: The catalogue entry's name.
        values: The series' values at this point (empty for a single set).
        settings: Every setting that decides the images, defaults filled in: the
            model, the sampler, its parameters, ``n``, ``fit_points`` and the seed.
    """

    name: str
    family: str
    values: tuple[tuple[str, Any], ...]
    settings: tuple[tuple[str, Any], ...]

    def get(self, key: str, default: Any = None) -> Any:
        return dict(self.settings).get(key, default)

    @property
    def model(self) -> str:
        """The model it draws from; empty for real images."""
        return self.get("model", "")

    @property
    def sampler(self) -> str:
        return self.get("sampler")

    @property
    def n(self) -> int:
        return self.get("n")

    @property
    def params(self) -> dict[str, Any]:
        """The sampler's parameters."""
        return {k: v for k, v in self.settings if k not in SET_KEYS}

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "family": self.family, "values": dict(self.values),
                "settings": dict(self.settings)}


@dataclass(frozen=True)
class SetFamily:
    """A catalogue entry and its points (one, unless a key is a series)."""

    name: str
    varies: tuple[str, ...]
    points: tuple[SetPoint, ...]


def families(overrides: dict[str, dict[str, Any]], *,
             max_points: int = 64) -> list[SetFamily]:
    """The catalogue with ``overrides`` (``config.sets``) merged in, checked and
    expanded into points, in catalogue order (added sets last).

    Raises:
        ConfigError: An override is not a table, names an unknown key, model or
            sampler, gives a bad value, or a series has too many points.
    """
    if not isinstance(overrides, dict):
        raise ConfigError(f"sets: expected tables of sample sets, got {overrides!r}")
    shared = {k: v for k, v in overrides.items() if k in DEFAULTS}
    tables = {name: dict(table) for name, table in CATALOGUE.items()}
    for name, table in overrides.items():
        if name in DEFAULTS:
            continue
        if not isinstance(table, dict):
            raise ConfigError(f"sets.{name}: expected a table (model, sampler, n, "
                              f"sampler parameters) or one of the shared keys "
                              f"{', '.join(DEFAULTS)}, got {table!r}")
        tables[name] = {**tables.get(name, {}), **table}
    return [_family(name, table, max_points, {**DEFAULTS, **shared})
            for name, table in tables.items()]


def points_of(overrides: dict[str, dict[str, Any]]) -> dict[str, SetPoint]:
    """Every set point by name (:func:`families` flattened)."""
    return {p.name: p for f in families(overrides) for p in f.points}


def _family(name: str, table: dict[str, Any], max_points: int,
            defaults: dict[str, Any]) -> SetFamily:
    where = f"sets.{name}"
    if "@" in name or not name:
        raise ConfigError(f"{where}: a set's name may not be empty or hold '@'")
    sampler = table.get("sampler")
    if sampler not in (*SAMPLER_PARAMS, *REAL_SOURCES):
        raise ConfigError(f"{where}.sampler: expected one of "
                          f"{', '.join((*SAMPLER_PARAMS, *REAL_SOURCES))}, got "
                          f"{sampler!r}")
    model = table.get("model", "")
    if sampler in REAL_SOURCES:
        if model:
            raise ConfigError(f"{where}.model: real images ({sampler}) come from no "
                              f"model, got {model!r}")
    elif model not in MODELS:
        raise ConfigError(f"{where}.model: expected one of {', '.join(MODELS)}, got "
                          f"{model!r}")
    allowed = (*SET_KEYS, *SAMPLER_PARAMS.get(sampler, ()),
               *REAL_PARAMS.get(sampler, ()))
    for key in table:
        if key not in allowed:
            raise ConfigError(f"{where}: unknown key {key} (keys of a {sampler} set: "
                              f"{', '.join(allowed)})")
    settings = {**defaults, **table}
    if sampler != "gmm":
        settings.pop("gmm_points")
    if not model:
        settings.pop("model", None)
    series = {k: v for k, v in settings.items() if isinstance(v, list | tuple)}
    for key, values in series.items():
        if key in ("model", "sampler") or not values:
            raise ConfigError(f"{where}.{key}: expected one value"
                              + ("" if key in ("model", "sampler") else
                                 " or a non-empty list of values"))
        if len({repr(v) for v in values}) != len(values):
            raise ConfigError(f"{where}.{key}: expected distinct values, got "
                              f"{list(values)}")
    count = math.prod(len(v) for v in series.values())
    if count > max_points:
        raise ConfigError(f"{where}: {count} sets are more than {max_points}")
    points = []
    for combination in itertools.product(*([(k, v) for v in values]
                                           for k, values in series.items())):
        point = {**settings, **dict(combination)}
        for key, value in point.items():
            _check(where, key, value)
        point = {k: _typed(k, v) for k, v in point.items()}
        if not _uses_codes(point):
            point.pop("fit_points")
        combination = tuple((k, point[k]) for k, _ in combination)
        label = ",".join(f"{k}={_label(v)}" for k, v in combination)
        points.append(SetPoint(f"{name}@{label}" if label else name, name,
                               tuple(combination), tuple(sorted(point.items()))))
    return SetFamily(name, tuple(series), tuple(points))


def _check(where: str, key: str, value: Any) -> None:
    if key in ("model", "sampler", "half_width"):
        if key == "half_width" and value not in ("std", "half_max"):
            raise ConfigError(f"{where}.half_width: expected std or half_max, got "
                              f"{value!r}")
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{where}.{key}: expected a number, got {value!r}")
    if key in INTEGERS and value != int(value):
        raise ConfigError(f"{where}.{key}: expected a whole number, got {value!r}")
    if not math.isfinite(value):
        raise ConfigError(f"{where}.{key}: expected a finite number, got {value!r}")
    if key in ("scale", "level", "fact", "reg_covar", "sigma"):
        if not value > 0:
            raise ConfigError(f"{where}.{key}: expected a positive number, got "
                              f"{value!r}")
        return
    floor = 0 if key in (*AUTO_ZERO, "seed") else (2 if key == "n" else 1)
    if not value >= floor:
        raise ConfigError(f"{where}.{key}: expected {floor} or more, got {value!r}")


def _uses_codes(point: dict[str, Any]) -> bool:
    """Whether the set encodes training images: the fitted samplers, and a cube
    whose half-width comes from the codes."""
    return point["sampler"] in FITTED or (point["sampler"] == "uniform"
                                          and point["r_limit"] == 0)


def _typed(key: str, value: Any) -> Any:
    """Whole-number keys as ``int``, the other numbers as ``float``: 1 and 1.0 are
    one setting (and one key)."""
    if key in ("model", "sampler", "half_width"):
        return value
    return int(value) if key in INTEGERS else float(value)


def _label(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)
