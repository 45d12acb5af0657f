"""The plan: every stage of a build, with its key, its inputs and why it is stale.

:func:`make_plan` lists them in order: the data set, each model variant, each
sample set the notebooks read, each notebook and the report. ``build``, ``status``
and ``train`` read it, and so do their messages: a stage runs exactly when the plan
calls it stale, for the reason the plan gives. Making a plan runs nothing and
imports no TensorFlow.

Before the data set is prepared its content hash is unknown, and with it every model
key; those stages are stale, waiting for the data. The build makes the plan anew
after each layer of stages, so what it records is the key of what it made.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zspace import paths
from zspace.config import Config, digest_of
from zspace.data.dataset import DatasetCard
from zspace.errors import ConfigError
from zspace.pipeline import notebooks as nb
from zspace.pipeline.state import BuildState, StageKey, describe_change
from zspace.samplesets import released
from zspace.samplesets import spec as set_spec
from zspace.samplesets.stored import damage as set_damage
from zspace.site.publish import published_damage, report_key_parts
from zspace.store import keys
from zspace.store.sources import CACHED, Source, source_of
from zspace.versioning import code_digest, meaning_digest

FRESH = "fresh"
REPORT_STAGE = "report"
# The code a notebook runs: the whole package but the build engine (and its locks),
# the site (and the environment record it adds to each figure), the figure diff, the
# command line and the training speed-ups (which change no notebook's result: a model
# trained with them has a key of its own).
NOTEBOOK_CODE_EXCLUDED = ("zspace/pipeline/", "zspace/lock.py", "zspace/site/",
                          "zspace/diff/", "zspace/cli.py", "zspace/environment.py",
                          "zspace/networks/speed.py", "zspace/samplesets/released.py")


def notebook_code() -> list[Path]:
    """The package's source files that notebooks import, in a stable order."""
    files = sorted((paths.ROOT / "zspace").rglob("*.py"))
    return [f for f in files if not f.relative_to(paths.ROOT).as_posix().startswith(
        NOTEBOOK_CODE_EXCLUDED)]


# The code a sample set runs: the notebooks' code but the figures, the explorer and
# the reading side of the sets (their settings are in the key themselves).
SET_CODE_EXCLUDED = ("zspace/plots/", "zspace/explorer/", "zspace/samplesets/spec.py",
                     "zspace/samplesets/stored.py")


# Of the latent-space analysis, what the sets draw and judge with: a new analysis
# beside them remakes no set.
SET_LATENT = ("__init__", "samplers", "pca_ellipse", "pca", "stats", "zpoints",
              "metrics", "variety")


def set_code() -> list[Path]:
    """The package's source files that decide a sample set's content: the worker
    that makes it, and what it runs."""
    def used(f: Path) -> bool:
        if not f.is_relative_to(paths.ROOT):
            return True
        name = f.relative_to(paths.ROOT).as_posix()
        if name.startswith("zspace/latent/"):
            return f.stem in SET_LATENT
        return not name.startswith(SET_CODE_EXCLUDED)

    return [paths.ROOT / "zspace" / "pipeline" / "setmaker.py"] + [
        f for f in notebook_code() if used(f)]


def analysis_dir(config: Config) -> Path:
    """The folder of the analysis notebooks."""
    return Path(config.build.analysis_dir or paths.ANALYSIS)


def templates_dir(config: Config) -> Path:
    """The folder of the report templates."""
    return Path(config.build.templates_dir or paths.REPORT_TEMPLATES)


@dataclass(frozen=True)
class DataStage:
    """The prepared data set: its cache entry and, once prepared, its card."""

    entry: Path
    card: DatasetCard | None
    state: str

    name = "data"

    @property
    def fresh(self) -> bool:
        return self.state == FRESH


@dataclass(frozen=True)
class ModelStage:
    """One model variant: its key (and the spec it digests), its artifact folder and
    where it comes from. The trainer takes the stage as it is
    (``zspace.training.trainer.make_model``).

    ``key``, ``folder``, ``source`` and ``spec`` are None while the data set is not
    prepared.
    """

    variant: keys.ModelVariant
    key: str | None
    folder: Path | None
    source: Source | None
    spec: dict | None = None

    @property
    def name(self) -> str:
        return f"model {self.variant.name}"

    @property
    def fresh(self) -> bool:
        return self.source is not None and self.source.kind == CACHED

    @property
    def state(self) -> str:
        if self.fresh:
            return FRESH
        return "stale: " + (self.source.why if self.source is not None
                            else "waiting for the data set")


@dataclass(frozen=True)
class SetStage:
    """One sample set (``zspace.samplesets``): its key, folder and the models it
    draws from (every training seed of one model, in seed order).

    ``key`` and ``folder`` are None while the data set is not prepared.
    """

    point: set_spec.SetPoint
    key: str | None
    folder: Path | None
    models: tuple[str, ...]
    state: str

    @property
    def name(self) -> str:
        return f"set {self.point.name}"

    @property
    def fresh(self) -> bool:
        return self.state == FRESH


@dataclass(frozen=True)
class NotebookStage:
    """One notebook: its parameters, key, inputs and whether its outputs are current.

    Attributes:
        spec: The notebook.
        parameters: Its resolved parameters.
        key: Its stage key (code, parameters, thread count, input keys).
        models: The model stages it loads, by model name.
        sets: The sample sets it reads, by set name.
        has_outputs: Whether its figures and results exist in the build folder.
        state: ``fresh`` or ``stale: why``.
    """

    spec: nb.NotebookSpec
    parameters: dict[str, Any]
    key: StageKey
    models: dict[str, ModelStage]
    sets: dict[str, SetStage]
    has_outputs: bool
    state: str

    @property
    def name(self) -> str:
        return f"notebook {self.spec.name}"

    @property
    def fresh(self) -> bool:
        return self.state == FRESH


@dataclass(frozen=True)
class ReportStage:
    key: StageKey
    state: str

    name = REPORT_STAGE

    @property
    def fresh(self) -> bool:
        return self.state == FRESH


@dataclass(frozen=True)
class Plan:
    """Every stage of one build folder, in the order they run."""

    config: Config
    build_root: Path
    data: DataStage
    models: tuple[ModelStage, ...]
    sets: tuple[SetStage, ...]
    notebooks: tuple[NotebookStage, ...]
    report: ReportStage

    @property
    def root(self) -> Path:
        """The profile's build folder."""
        return paths.profile_dir(self.build_root, self.config.name)

    @property
    def specs(self) -> list[nb.NotebookSpec]:
        return [stage.spec for stage in self.notebooks]

    def stages(self) -> list:
        return [self.data, *self.models, *self.sets, *self.notebooks, self.report]

    def rows(self) -> list[tuple[str, str]]:
        """``(stage, state)`` for every stage, a line per sweep after the models and
        a line per sample set or series after them: what ``status`` prints."""
        rows = [(stage.name, stage.state)
                for stage in (self.data, *self.models, *self.notebooks, self.report)]
        at = 1 + len(self.models)
        return rows[:at] + self.sweep_rows() + self.set_rows() + rows[at:]

    def set_rows(self) -> list[tuple[str, str]]:
        """``(sets NAME (points), state)`` per set, a series on one line."""
        by_family: dict[str, list[SetStage]] = {}
        for stage in self.sets:
            by_family.setdefault(stage.point.family, []).append(stage)
        rows = []
        for family, stages in by_family.items():
            if len(stages) == 1 and not stages[0].point.values:
                rows.append((stages[0].name, stages[0].state))
                continue
            labels = [st.point.name.partition("@")[2] for st in stages]
            stale = [label for label, st in zip(labels, stages, strict=True)
                     if not st.fresh]
            state = FRESH if not stale else (
                f"stale: {len(stale)} of {len(stages)} sets ({_few(stale)})")
            rows.append((f"sets {family} ({_few(labels)})", state))
        return rows

    def sweep_rows(self) -> list[tuple[str, str]]:
        """``(sweep NAME, its points and how many are stale)`` per planned sweep."""
        by_name = {stage.variant.name: stage for stage in self.models}
        rows = []
        for sweep in self.config.parsed_sweeps:
            members = keys.sweep_variants(sweep, self.config)
            stale = [p.label for p, v in zip(sweep.points, members, strict=True)
                     if not by_name[v.name].fresh]
            points = _few([p.label for p in sweep.points])
            state = FRESH if not stale else (
                f"stale: {len(stale)} of {len(members)} points ({_few(stale)})")
            rows.append((f"sweep {sweep.name} ({sweep.model} at {points})", state))
        return rows

    def model_keys(self) -> dict[str, str]:
        """The key of every model variant whose key is known."""
        return {m.variant.name: m.key for m in self.models if m.key is not None}

    def inputs(self, stage: NotebookStage) -> dict[str, Any]:
        """The inputs manifest of a notebook: the resolved configuration, the data
        cache folder, and each model's artifact folder and key. The notebook loads
        these and nothing else."""
        return {
            "config": self.config.to_dict(),
            "data": {"folder": str(self.data.entry),
                     "content_hash": self.data.card.content_hash
                     if self.data.card else None},
            "models": {name: {"folder": str(m.folder), "key": m.key}
                       for name, m in stage.models.items()},
            "sweeps": sweep_inputs(self.config, stage.spec),
            "sets": {name: {"folder": str(st.folder), "key": st.key,
                            "family": st.point.family,
                            "values": dict(st.point.values)}
                     for name, st in stage.sets.items()},
            "figures": stage.spec.figures,
            # Detections published with the report (zspace.samplesets.released).
            "detections": str(released.folder_for(self.config.name)
                              / released.DETECTIONS),
        }


def _few(labels: list[str], limit: int = 4) -> str:
    """``labels`` joined by commas; past ``limit``, the first two, "..." and the
    last, so a row of ``status`` stays one readable line whatever the sweep."""
    if len(labels) > limit:
        labels = [*labels[:2], "...", labels[-1]]
    return ", ".join(labels)


def sweep_inputs(config: Config, spec: nb.NotebookSpec) -> dict[str, Any]:
    """The configured sweeps that ``spec`` reads: per sweep its model, keys and
    points, each point with its values, label and model variant."""
    found = {}
    for sweep in config.parsed_sweeps:
        if sweep.name not in spec.sweeps:
            continue
        members = keys.sweep_variants(sweep, config)
        found[sweep.name] = {
            "model": sweep.model, "keys": list(sweep.keys),
            "points": [{"label": point.label, "values": dict(point.values),
                        "model": variant.name}
                       for point, variant in zip(sweep.points, members, strict=True)]}
    return found


def notebook_variants(spec: nb.NotebookSpec, config: Config) -> list[str]:
    """The model variants notebook ``spec`` loads: each model it declares with its
    seed variants, and the points of each configured sweep it reads."""
    names = [v.name for model in spec.models for v in keys.variants(model, config)]
    for sweep in config.parsed_sweeps:
        if sweep.name in spec.sweeps:
            names += [v.name for v in keys.sweep_variants(sweep, config)]
    return list(dict.fromkeys(names))


def make_plan(config: Config, build_root: Path | None = None, *,
              models: Sequence[str] | None = None,
              specs: list[nb.NotebookSpec] | None = None,
              retrain: bool = False, card: DatasetCard | None = None) -> Plan:
    """Every stage of the build of ``config`` in ``build_root``, and its state.

    Args:
        config: The configuration.
        build_root: The build folder (default ``build/``).
        models: Models or variants to plan first, in this order (a model's name
            stands for it and its seed variants); those the notebooks need follow.
        specs: The notebooks, when already read (default: read them).
        retrain: Plan every model as trained afresh.
        card: The card of a data set the caller holds (default: the cached
            data set's, if it is prepared).

    Raises:
        ConfigError: A notebook override names no notebook or parameter, or has the
            wrong type; the analysis folder holds no notebook.
        DataError: The data source's path is wrong.
    """
    build_root = paths.build_dir(build_root)
    specs = expand_specs(config, specs if specs is not None
                         else discover(config, analysis_dir(config)))
    state = BuildState(paths.profile_dir(build_root, config.name) / "state.json")
    data = (data_stage(config, build_root) if card is None else
            DataStage(_cache_entry(config, build_root), card, FRESH))
    points = set_points(config, specs)
    model_stages = tuple(model_stage(variant, data, build_root, config, retrain)
                         for variant in _variants(config, specs, models, points))
    by_name = {stage.variant.name: stage for stage in model_stages}
    code = meaning_digest(*notebook_code())
    made_by = meaning_digest(*set_code()) if points else ""
    set_stages = {point.name: set_stage(point, config, data, by_name, made_by,
                                        build_root)
                  for point in points}
    notebook_stages = tuple(
        _notebook_stage(spec, config, data, by_name, set_stages, code, state,
                        build_root)
        for spec in specs)
    report_key = StageKey(report_key_parts(
        templates_dir(config), {s.spec.name: s.key.digest for s in notebook_stages},
        config.build.publish))
    site = paths.profile_dir(build_root, config.name) / "site"
    report_state = stage_state(state, REPORT_STAGE, report_key, site.is_dir())
    if report_state == FRESH:  # fresh means present and whole, file by file
        damage = published_damage(site.parent)
        report_state = f"stale: {damage}" if damage else FRESH
    report = ReportStage(report_key, report_state)
    return Plan(config, build_root, data, model_stages, tuple(set_stages.values()),
                notebook_stages, report)


def set_points(config: Config, specs: list[nb.NotebookSpec]
               ) -> list[set_spec.SetPoint]:
    """Every point of the sample sets the notebooks read, in catalogue order.

    Raises:
        ConfigError: A notebook reads a set that neither the catalogue nor the
            configuration names.
    """
    families = set_spec.families(config.sets)
    known = {family.name for family in families}
    for spec in specs:
        for name in spec.sets:
            if name not in known:
                raise ConfigError(
                    f"notebook {spec.name} reads sample set {name}, which neither the "
                    f"catalogue (zspace/samplesets/spec.py) nor sets.* names (known: "
                    f"{', '.join(sorted(known))})")
    read = {name for spec in specs for name in spec.sets}
    return [p for family in families if family.name in read for p in family.points]


def set_stage(point: set_spec.SetPoint, config: Config, data: DataStage,
              models: dict[str, ModelStage], code: str, build_root: Path) -> SetStage:
    """A sample set's key, folder and state.

    Its key covers its settings, the keys of the models it draws from and of the
    judge, the data set, the code (by meaning) and the compute threads; not its name,
    so equal settings under two names are one set.
    """
    names = tuple(v.name for v in keys.variants(point.model, config)) if point.model \
        else ()
    if data.card is None:
        return SetStage(point, None, None, names, "stale: waiting for the data set")
    key = set_key(point, [models[name].key for name in names],
                  models[keys.JUDGE].key, data.card.content_hash, code,
                  config.build.kernel_threads)
    folder = paths.sample_set(build_root, point.sampler, key)
    why = set_damage(folder)
    state = FRESH if not why else (
        "stale: not made" if why == "missing" else f"stale: damaged ({why})")
    return SetStage(point, key, folder, names, state)


def set_key(point: set_spec.SetPoint, model_keys: list[str], judge_key: str,
            dataset_hash: str, code: str, threads: int) -> str:
    """A sample set's key: its settings, the keys of the models it draws from (in
    seed order) and of the judge, the data set, the code that makes sets
    (:func:`set_code`, by meaning) and the compute threads."""
    return digest_of({"settings": dict(point.settings), "models": model_keys,
                      "judge": judge_key, "dataset": dataset_hash, "code": code,
                      "threads": threads})


def notebook_sets(spec: nb.NotebookSpec, config: Config) -> list[set_spec.SetPoint]:
    """The points of the sample sets notebook ``spec`` reads, in catalogue order."""
    return [p for family in set_spec.families(config.sets)
            if family.name in spec.sets for p in family.points]


def _variants(config: Config, specs: list[nb.NotebookSpec],
              models: Sequence[str] | None,
              points: Sequence[set_spec.SetPoint] = ()) -> list[keys.ModelVariant]:
    """The variants to plan: those named in ``models`` (a model name stands for it
    and its seed variants), then those of the models the notebooks and the sample
    sets need (the judge judges every set)."""
    wanted = list(models or ())
    needed = {name for spec in specs for name in spec.models}
    needed |= {p.model for p in points if p.model}
    if points:
        needed.add(keys.JUDGE)
    wanted += sorted(needed - set(wanted))
    found: dict[str, keys.ModelVariant] = {}
    for name in wanted:
        named = (keys.variants(name, config) if keys.base_name(name) == name
                 else [keys.variant(name, config)])
        found.update((v.name, v) for v in named if v.name not in found)
    for sweep in config.parsed_sweeps:  # every configured point, read or not
        found.update((v.name, v) for v in keys.sweep_variants(sweep, config)
                     if v.name not in found)
    return list(found.values())


def expand_specs(config: Config, specs: list[nb.NotebookSpec]) -> list[nb.NotebookSpec]:
    """``specs`` with the figures of the sweeps ``config`` configures
    (:func:`zspace.pipeline.notebooks.expand`)."""
    points = {sweep.name: [point.label for point in sweep.points]
              for sweep in config.parsed_sweeps}
    return [nb.expand(spec, points) for spec in specs]


def discover(config: Config, folder: Path) -> list[nb.NotebookSpec]:
    """Every notebook of ``folder``, checking that configured overrides name them.

    Raises:
        ConfigError: ``notebooks.NAME`` names no notebook in the folder, or the folder
            holds no notebook.
    """
    if not folder.is_dir() or not any(folder.glob("*.ipynb")):
        raise ConfigError(f"build.analysis_dir: no notebooks (*.ipynb) in {folder}")
    specs = [nb.read_spec(path) for path in sorted(folder.glob("*.ipynb"))]
    names = {spec.name for spec in specs}
    for name in config.notebooks:
        if name not in names:
            raise ConfigError(f"notebooks.{name}: no notebook {name}.ipynb in {folder} "
                              f"(notebooks: {', '.join(sorted(names))})")
    return specs


def _cache_entry(config: Config, build_root: Path) -> Path:
    from zspace.data import cache_entry

    return cache_entry(config.data, build_root)


def data_stage(config: Config, build_root: Path) -> DataStage:
    """The data set's cache entry and whether it is prepared and whole."""
    from zspace.data.cache import DamagedEntry, open_entry

    entry = _cache_entry(config, build_root)
    try:
        dataset = open_entry(entry)
    except DamagedEntry as error:
        return DataStage(entry, None, f"stale: cache entry damaged ({error})")
    if dataset is None:
        return DataStage(entry, None, "stale: not prepared")
    return DataStage(entry, dataset.card, FRESH)


def model_stage(variant: keys.ModelVariant, data: DataStage, build_root: Path,
                config: Config, retrain: bool = False) -> ModelStage:
    """A model variant's key, artifact folder and source (once the data is known)."""
    if data.card is None:
        return ModelStage(variant, None, None, None)
    from zspace.store import committed

    spec = variant.spec(data.card)
    key = keys.artifact_key(spec)
    source = source_of(variant, spec, key, build_root, committed.folder_for(config),
                       retrain)
    return ModelStage(variant, key, paths.model_artifact(build_root, variant.name, key),
                      source, spec)


def notebook_key(spec: nb.NotebookSpec, parameters: dict[str, Any],
                 dataset_hash: str, model_keys: dict[str, str], threads: int,
                 code: str | None = None,
                 set_keys: dict[str, str] | None = None) -> StageKey:
    """A notebook's stage key: its source, the library code (its meaning: comments
    and docstrings do not count), its parameters, the kernels' thread count and the
    keys of its inputs (``model_keys``: those of the variants it loads,
    :func:`notebook_variants`; ``set_keys``: those of the sample sets it reads)."""
    return StageKey({
        "notebook": code_digest(spec.path),
        "code": code if code is not None else meaning_digest(*notebook_code()),
        "parameters": parameters,
        "threads": threads,
        "inputs": {"dataset": dataset_hash,
                   **{f"model {name}": key for name, key in model_keys.items()},
                   **{f"set {name}": key for name, key in (set_keys or {}).items()}},
    })


def _notebook_stage(spec: nb.NotebookSpec, config: Config, data: DataStage,
                    models: dict[str, ModelStage], sets: dict[str, SetStage],
                    code: str, state: BuildState, build_root: Path) -> NotebookStage:
    parameters = nb.resolve_parameters(spec, config.notebooks.get(spec.name, {}))
    mine = {name: models[name] for name in notebook_variants(spec, config)}
    model_keys = {name: m.key or "missing" for name, m in mine.items()}
    read = {name: st for name, st in sets.items() if st.point.family in spec.sets}
    key = notebook_key(spec, parameters,
                       data.card.content_hash if data.card else "missing", model_keys,
                       config.build.kernel_threads, code,
                       {name: st.key or "missing" for name, st in read.items()})
    outputs = nb.outputs_exist(spec, paths.profile_dir(build_root, config.name)
                               / "notebooks" / spec.name)
    return NotebookStage(spec, parameters, key, mine, read, outputs,
                         stage_state(state, f"notebook {spec.name}", key, outputs))


def stage_state(state: BuildState, stage: str, key: StageKey, outputs: bool) -> str:
    """``fresh`` or ``stale: why`` for one stage of the build record."""
    previous = state.previous(stage)
    if previous.get("key") == key.digest and outputs:
        return FRESH
    return "stale: " + describe_change(key, previous)
