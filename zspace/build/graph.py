"""``build`` and ``status``: the stages in order, each skipped when its key is fresh."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import time
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from zspace import paths
from zspace.build import notebooks as nb
from zspace.build.publish import (
    MANIFEST,
    archive,
    copy_figures,
    manifest_entry,
    sha256_of,
    swap_in,
)
from zspace.build.report import Links, render_site
from zspace.build.runner import (
    REPORT_STAGE,
    Build,
    discover,
    notebook_key,
    notebook_outputs_exist,
    run_notebooks,
    stage_status,
)
from zspace.build.session import Session, interrupt_deferred, open_session
from zspace.build.state import StageKey, write_json_atomic
from zspace.config import Config
from zspace.errors import BuildError, ConfigError
from zspace.versioning import code_digest

PACKAGES = ("tensorflow-cpu", "tensorflow", "keras", "numpy", "scipy", "scikit-learn",
            "scikit-image", "matplotlib", "pillow", "jinja2", "markdown", "papermill")
REPORT_CODE = ("zspace/build", "report")
# Beside the committed articles: the keys the committed report was built under.
PROVENANCE = "provenance.json"


def build(config: Config, build_root: Path | None = None, *, force: bool = False,
          only: tuple[str, ...] = (), progress: bool = True,
          session: Session | None = None) -> Path:
    """Build the report of ``config``; return the published site folder.

    Args:
        config: The configuration.
        build_root: The build folder (default ``build/``).
        force: Run the selected stages even when they are fresh.
        only: Stage names to consider (notebook names, ``report``); others are
            skipped even if stale. Empty: every stage.
        progress: Progress lines and bars on stderr.
        session: An open session of ``build/<profile>/`` (the command line opens
            one to capture its own output); None: the build opens its own.

    Raises:
        ConfigError: Unknown notebook parameter or stage name (before anything runs).
        DataError, ModelError: Bad data path or model file.
        BuildBusy: Another process is building in ``build/<profile>/``.
        BuildError: A notebook or the report failed; the published site is untouched.
        KeyboardInterrupt: Ctrl-C; kernels are stopped, scratch files removed, the
            published site untouched, and finished stages kept for the next build.
    """
    b = Build(config, paths.build_dir(build_root), progress)
    specs = discover(config, b.analysis)
    parameters = {s.name: nb.resolve_parameters(s, config.notebooks.get(s.name, {}))
                  for s in specs}
    _check_only(only, specs)
    opened = (contextlib.nullcontext(session) if session is not None
              else open_session(b.root, quiet=not progress))
    with opened as b.session:
        started = time.perf_counter()
        site, done = _stages(b, specs, parameters, force, only)
        b.say(f"built in {_duration(time.perf_counter() - started)}: {done}; "
              f"log {b.session.log.path}")
        return site


def _stages(b: Build, specs, parameters, force: bool,
            only: tuple[str, ...]) -> tuple[Path, str]:
    """Run the stages; return the site and a summary of what ran."""
    b.root.mkdir(parents=True, exist_ok=True)
    config_file = b.root / "config.json"
    write_json_atomic(config_file, b.config.to_dict())

    dataset_hash = _timed(b, "data", lambda: _data_stage(b))
    needed = sorted({m for s in specs for m in s.models})
    model_keys = _timed(b, "models", lambda: _models_stage(b, needed))

    jobs, keys = [], {}
    for spec in specs:
        key = notebook_key(spec, parameters[spec.name], dataset_hash, model_keys,
                           b.config.build.kernel_threads)
        keys[spec.name] = key
        selected = not only or spec.name in only
        fresh = b.state.is_fresh(f"notebook {spec.name}", key)
        has_outputs = notebook_outputs_exist(b, spec)
        if selected and (force or not fresh or not has_outputs):
            jobs.append((spec, parameters[spec.name], key))
        elif not has_outputs:
            raise BuildError(f"notebook {spec.name} has never run; build without "
                             "--only first")
    b.say(f"notebooks: {len(jobs)} to run, {len(specs) - len(jobs)} fresh")
    failures = run_notebooks(b, jobs, config_file)
    if failures:
        more = (f"\n({len(failures) - 1} more notebooks failed)"
                if len(failures) > 1 else "")
        raise BuildError(f"{failures[0]}{more}\nthe published report is unchanged")

    done = f"{len(jobs)} of {len(specs)} notebooks run"
    if b.models_made:
        done = f"{len(b.models_made)} of {len(needed)} models made, {done}"
    report_key = _report_key(b, specs, keys)
    site = b.root / "site"
    if (not jobs and b.state.is_fresh(REPORT_STAGE, report_key) and site.is_dir()
            and not (force and (not only or REPORT_STAGE in only))):
        b.say("report: fresh")
        return site, f"{done}, report fresh"
    started = time.perf_counter()
    _publish(b, specs, parameters, keys, dataset_hash, model_keys, report_key)
    b.state.record(REPORT_STAGE, report_key, time.perf_counter() - started)
    b.say("report: rendered and published")
    return site, f"{done}, report published"


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f} s"
    return f"{int(seconds // 60)} min {seconds % 60:02.0f} s"


def _check_only(only: tuple[str, ...], specs: list[nb.NotebookSpec]) -> None:
    known = {s.name for s in specs} | {REPORT_STAGE}
    for name in only:
        if name not in known:
            raise ConfigError(f"--only {name}: no such stage (stages: "
                              f"{', '.join(sorted(known))})")


def _timed(b: Build, stage: str, step):
    started = time.perf_counter()
    value = step()
    b.timings[stage] = time.perf_counter() - started
    return value


def _data_stage(b: Build) -> str:
    from zspace.data import load_dataset

    card = load_dataset(b.config.data, b.build_root, b.progress).card
    b.card = card.to_dict()
    return card.content_hash


def _models_stage(b: Build, names: list[str]) -> dict[str, str]:
    """Artifact keys of the models the notebooks need, training the missing ones.

    Fresh artifacts are found by key alone, so a no-op build never imports TensorFlow.
    """
    if not names:
        return {}
    from zspace.models.artifacts import find_artifacts

    keys, missing = find_artifacts(b.config, b.build_root, names)
    if missing:
        from zspace.data import load_dataset
        from zspace.models import train_or_load_named

        dataset = load_dataset(b.config.data, b.build_root, progress=False)
        for name in missing:
            b.models_made.append(name)
            b.say(f"model {name}: "
                  f"{_model_source(b.config, name, dataset.card, b.build_root)}")
            keys[name] = train_or_load_named(name, b.config, dataset, b.build_root,
                                             b.progress).key
    return keys


def _model_source(config: Config, name: str, card, build_root: Path) -> str:
    """What the models stage is about to do for ``name``: load or train, and why."""
    from zspace.models import keys, published
    from zspace.models.artifacts import is_intact

    spec = keys.model_spec(name, keys.model_config_for(name, config), config.train,
                           card, config.speed)
    key = keys.artifact_key(spec)
    # find_artifacts found no intact artifact; one whose folder exists is damaged.
    cached = paths.model_cache_dir(build_root) / f"{name}-{key}"
    damaged = (" (its cached artifact is damaged and is rebuilt)"
               if cached.exists() and not is_intact(cached) else "")
    folder = published.folder_for(config)
    try:
        found = published.find(folder, name, spec, key)
    except published.Unusable as error:
        return f"training ({error}){damaged}"
    return (f"loading the published weights from {folder}{damaged}" if found
            else f"training{damaged}")


def _report_key(b: Build, specs, keys: dict[str, StageKey]) -> StageKey:
    return report_key(b.templates, specs, keys, b.config.build.publish)


def report_key(templates: Path, specs, keys: dict[str, StageKey],
               publish: bool) -> StageKey:
    """The report stage's key: its code, the templates and every notebook's key."""
    return StageKey({
        "code": code_digest(*REPORT_CODE),
        "templates": _folder_digest(templates),
        "notebooks": {s.name: keys[s.name].digest for s in specs},
        "publish": publish,
    })


def _folder_digest(folder: Path) -> str:
    from zspace.config import digest_of

    return digest_of({p.relative_to(folder).as_posix(): p.read_text()
                      for p in sorted(folder.rglob("*")) if p.is_file()})


def _publish(b: Build, specs, parameters, keys, dataset_hash, model_keys, report_key):
    staging = b.root / ".site.staging"
    try:
        _assemble_and_swap(b, staging, specs, parameters, keys, dataset_hash,
                           model_keys, report_key)
    finally:  # after a failure or Ctrl-C, the half-made site goes
        shutil.rmtree(staging, ignore_errors=True)


def _assemble_and_swap(b: Build, staging: Path, specs, parameters, keys, dataset_hash,
                       model_keys, report_key):
    shutil.rmtree(staging, ignore_errors=True)
    (staging / "figures").mkdir(parents=True)
    (staging / "notebooks").mkdir()
    manifest, results = {}, {}
    for spec in specs:
        folder = b.root / "notebooks" / spec.name
        shutil.copy2(folder / spec.path.name, staging / "notebooks" / spec.path.name)
        results.update(_merge_results(results, folder / nb.RESULTS_FILE, spec.name))
        for figure_id, file in spec.figures.items():
            shutil.copy2(folder / file, staging / "figures" / file)
            manifest[figure_id] = manifest_entry(
                staging / "figures" / file, spec.name, parameters[spec.name],
                {m: model_keys[m] for m in spec.models}, dataset_hash,
                keys[spec.name].parts["code"])
        for name in spec.site:  # published as they are (the explorer's bundles)
            shutil.copytree(folder / name, staging / name)
    manifest = dict(sorted(manifest.items()))
    write_json_atomic(staging / "figures" / MANIFEST, manifest)
    context = {"results": results, "manifest": manifest,
               "provenance": _provenance(b, report_key),
               "notebook_keys": {name: key.digest for name, key in keys.items()}}
    render_site(staging, context, Links(), b.templates)
    # Ctrl-C waits until the published site and its archive are whole.
    with interrupt_deferred():
        swap_in(staging, b.root / "site")
        build_id = f"{datetime.now(UTC):%Y%m%d-%H%M%S}-{report_key.digest[:8]}"
        archive(b.root / "site" / "figures", paths.build_dir(b.build_root)
                / "archive" / b.config.name, build_id, b.config.build.keep_archives)
    if b.config.build.publish:
        _publish_to_repository(b.root / "site", context, manifest, b.templates)


def _merge_results(results: dict, file: Path, notebook: str) -> dict:
    new = json.loads(file.read_text())
    clash = sorted(set(new) & set(results))
    if clash:
        raise BuildError(f"notebook {notebook} writes result {clash[0]}, which another "
                         "notebook writes too")
    return new


def _provenance(b: Build, report_key: StageKey) -> dict[str, Any]:
    stages = {name: record.get("seconds") for name, record in b.state.stages.items()}
    stages.update({k: round(v, 2) for k, v in b.timings.items()})
    return {
        "config": b.config.to_dict(),
        "dataset": b.card,
        "packages": {name: _version(name) for name in PACKAGES if _version(name)},
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "timings": stages,
        "report_key": report_key.digest,
    }


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _publish_to_repository(site: Path, context: dict, manifest: dict,
                           templates: Path) -> None:
    """Copy figures and Markdown articles of the default profile into the repository."""
    staging = paths.ROOT / ".figures.staging"
    articles = paths.ROOT / ".articles.staging"
    try:
        _stage_repository(site, context, manifest, templates, staging, articles)
        with interrupt_deferred():
            swap_in(staging, paths.FIGURES)
            swap_in(articles, paths.ARTICLES)
    finally:  # after a failure or Ctrl-C, nothing half-made stays in the checkout
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(articles, ignore_errors=True)


def _stage_repository(site: Path, context: dict, manifest: dict, templates: Path,
                      staging: Path, articles: Path) -> None:
    shutil.rmtree(staging, ignore_errors=True)
    copy_figures(site / "figures", staging, manifest)
    shutil.rmtree(articles, ignore_errors=True)
    articles.mkdir()
    # The explorer is HTML only; the committed Markdown points into the built site.
    explorer = os.path.relpath(site / "explorer.html", paths.ARTICLES)
    render_site(articles, context, Links(figures="../figures", notebooks="../analysis",
                                         explorer=explorer),
                templates, html_pages=False)
    # What the committed report was made from, for tests/test_committed_report.py.
    write_json_atomic(articles / PROVENANCE, {
        "report_key": context["provenance"]["report_key"],
        "notebooks": context["notebook_keys"],
        "articles": {p.name: sha256_of(p) for p in sorted(articles.glob("*.md"))},
    })


def status(config: Config, build_root: Path | None = None) -> list[tuple[str, str]]:
    """Each stage and ``fresh`` or ``stale: why``, without running anything."""
    from zspace.data import cache_key
    from zspace.data.cache import DamagedEntry, open_entry
    b = Build(config, paths.build_dir(build_root), progress=False)
    specs = discover(config, b.analysis)
    try:
        entry = open_entry(paths.data_cache_dir(b.build_root)
                           / f"{config.data.source}-{cache_key(config.data)}")
        data_state = "fresh" if entry else "stale: not prepared"
    except DamagedEntry as error:
        entry, data_state = None, f"stale: cache entry damaged ({error})"
    rows = [("data", data_state)]
    needed = sorted({m for s in specs for m in s.models})
    model_keys, missing = {}, needed
    if entry and needed:
        from zspace.models.artifacts import find_artifacts

        model_keys, missing = find_artifacts(config, b.build_root, needed)
    rows += [(f"model {m}", "stale: not trained" if m in missing else "fresh")
             for m in needed]
    keys = {}
    for spec in specs:
        params = nb.resolve_parameters(spec, config.notebooks.get(spec.name, {}))
        inputs = {m: model_keys.get(m, "missing") for m in needed}
        keys[spec.name] = notebook_key(spec, params, entry.card.content_hash
                                       if entry else "missing", inputs,
                                       config.build.kernel_threads)
        rows.append((f"notebook {spec.name}",
                     stage_status(b, f"notebook {spec.name}", keys[spec.name],
                                  notebook_outputs_exist(b, spec))))
    report_key = _report_key(b, specs, keys)
    rows.append((REPORT_STAGE, stage_status(b, REPORT_STAGE, report_key,
                                            (b.root / "site").is_dir())))
    return rows
