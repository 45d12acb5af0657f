"""``build``, ``status`` and ``train``: each reads the plan and runs what is stale.

The build goes layer by layer (data, models, sample sets, notebooks, report) and
makes the plan anew after each layer that ran, so the next layer's keys are those of
what was made. With ``build.executor = "dask"`` the models, sets and notebooks after
the data are one graph of tasks on a Dask cluster instead
(:mod:`zspace.pipeline.distributed`); the report is published here either way.
"""

from __future__ import annotations

import contextlib
import platform
import time
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from zspace import paths
from zspace.config import Config
from zspace.errors import BuildError, ConfigError
from zspace.files import write_json_atomic
from zspace.pipeline.plan import REPORT_STAGE, Plan, make_plan
from zspace.pipeline.runner import Build, run_notebooks
from zspace.pipeline.sampling import run_sets
from zspace.pipeline.session import Session, interrupt_deferred, open_session
from zspace.site.publish import NotebookOutput, publish_site
from zspace.store import keys

TIMINGS = "timings.json"  # in build/<profile>/: seconds per stage of the last build
PACKAGES = ("tensorflow-cpu", "tensorflow", "keras", "numpy", "scipy", "scikit-learn",
            "scikit-image", "matplotlib", "pillow", "jinja2", "markdown", "papermill")


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
        ConfigError: Unknown notebook parameter or stage name, or the Dask executor
            without Dask installed (before anything runs).
        SchedulerUnreachable, UnsharedFolder: The Dask executor's scheduler did
            not answer, or a worker does not see the build folder.
        DataError, ModelError: Bad data path or model file.
        TrainingError: A model's loss became non-finite or exploded.
        BuildBusy: Another process is building in ``build/<profile>/``.
        BuildError: A notebook or the report failed; the published site is untouched.
        KeyboardInterrupt: Ctrl-C; kernels are stopped, scratch files removed, the
            published site untouched, and finished stages kept for the next build.
    """
    if config.build.executor == "dask":
        from zspace.pipeline.cluster import require

        require()  # before anything runs
    b = Build(config, paths.build_dir(build_root), progress)
    plan = make_plan(config, b.build_root)
    _check_only(only, plan)
    opened = (contextlib.nullcontext(session) if session is not None
              else open_session(b.root, quiet=not progress))
    with opened as b.session:
        started = time.perf_counter()
        with _executor(b) as cluster:
            site, done = _stages(b, plan, force, only, cluster)
        seconds = time.perf_counter() - started
        # What each stage of this build took: benchmarks/build.py reads it.
        write_json_atomic(b.root / TIMINGS, {"total": seconds, **b.timings})
        b.say(f"built in {_duration(seconds)}: {done}; log {b.session.log.path}")
        return site


def status(config: Config, build_root: Path | None = None) -> list[tuple[str, str]]:
    """Each stage and ``fresh`` or ``stale: why``, without running anything."""
    return make_plan(config, build_root).rows()


def train(config: Config, build_root: Path | None = None, *, retrain: bool = False,
          progress: bool = True, session: Session | None = None) -> list:
    """Make every model of the configuration (the AE, the VAE, the wide AE, the judge
    and their seed variants), as the plan says: load what is cached or published,
    train the rest.

    Returns:
        The :class:`zspace.training.trainer.TrainedModel` of each, in plan order.
    """
    b = Build(config, paths.build_dir(build_root), progress, session=session)
    names = [variant.name for variant in keys.all_variants(config)]
    plan = make_plan(config, b.build_root, models=names, retrain=retrain)
    if not plan.data.fresh:
        b.say(f"data: preparing ({plan.data.state.removeprefix('stale: ')})")
    dataset = _load_data(b)
    plan = make_plan(config, b.build_root, models=names, retrain=retrain,
                     specs=plan.specs)
    from zspace.training.runtime import get_strategy

    get_strategy(config.train.strategy)  # multi-worker set-up must come first
    return [_make_model(b, stage, dataset, retrain) for stage in plan.models]


def _executor(b: Build) -> contextlib.AbstractContextManager:
    """The Dask cluster of the build, connected and probed; None: the local
    executor."""
    if b.config.build.executor != "dask":
        return contextlib.nullcontext()
    from zspace.pipeline.distributed import cluster

    return cluster(b)


def _stages(b: Build, plan: Plan, force: bool, only: tuple[str, ...],
            cluster=None) -> tuple[Path, str]:
    """Run the stale stages of ``plan`` (on ``cluster``, a
    :class:`zspace.pipeline.distributed.Cluster`, if given); return the site and a
    summary."""
    b.root.mkdir(parents=True, exist_ok=True)
    write_json_atomic(b.root / "config.json", b.config.to_dict())
    started = time.perf_counter()
    dataset = _prepare_data(b, plan)
    b.timings["data"] = time.perf_counter() - started
    if not plan.data.fresh:
        plan = _replan(b, plan)

    if cluster is not None:
        jobs = _notebook_jobs(plan, force, only)
        b.say(f"notebooks: {len(jobs)} to run, {len(plan.notebooks) - len(jobs)} "
              "fresh")
        made = cluster.run(b, plan, jobs)
        stale, made_sets, failures = made.models, made.sets, made.failures
    else:
        stale, made_sets, jobs, failures, plan = _run_here(b, plan, dataset, force,
                                                          only)
    if failures:
        more = (f"\n({len(failures) - 1} more notebooks failed)"
                if len(failures) > 1 else "")
        raise BuildError(f"{failures[0]}{more}\nthe published report is unchanged")

    done = f"{len(jobs)} of {len(plan.notebooks)} notebooks run"
    if made_sets:
        done = f"{made_sets} sample sets made, {done}"
    if stale:
        done = f"{stale} of {len(plan.models)} models made, {done}"
    if jobs or cluster is not None:
        plan = _replan(b, plan)
    site = b.root / "site"
    if (not jobs and plan.report.fresh
            and not (force and (not only or REPORT_STAGE in only))):
        b.say("report: fresh")
        return site, f"{done}, report fresh"
    started = time.perf_counter()
    _publish(b, plan)
    b.timings["report"] = time.perf_counter() - started
    b.state.record(REPORT_STAGE, plan.report.key, b.timings["report"])
    b.say("report: rendered and published")
    return site, f"{done}, report published"


def _run_here(b: Build, plan: Plan, dataset, force: bool, only: tuple[str, ...]
              ) -> tuple[int, int, list, list[BuildError], Plan]:
    """Make the stale models, then the sets, then run the notebooks, in this
    process and its workers; return the models and sets made, the notebooks run,
    the notebooks' failures and the plan made anew."""
    started = time.perf_counter()
    stale = [stage for stage in plan.models if not stage.fresh]
    for stage in stale:
        if dataset is None:  # a fresh data set is opened only when a model needs it
            dataset = _load_data(b)
        _make_model(b, stage, dataset)
    b.timings["models"] = time.perf_counter() - started
    if stale:
        plan = _replan(b, plan)

    made_sets = run_sets(b, plan)
    if made_sets:
        plan = _replan(b, plan)

    jobs = _notebook_jobs(plan, force, only)
    b.say(f"notebooks: {len(jobs)} to run, {len(plan.notebooks) - len(jobs)} fresh")
    started = time.perf_counter()
    failures = run_notebooks(b, jobs)
    b.timings["notebooks"] = time.perf_counter() - started
    return len(stale), made_sets, jobs, failures, plan


def _notebook_jobs(plan: Plan, force: bool, only: tuple[str, ...]) -> list:
    """The notebooks to run, each ``(stage, inputs manifest)``.

    Raises:
        BuildError: A notebook left out by ``only`` has never run.
    """
    jobs = []
    for stage in plan.notebooks:
        selected = not only or stage.spec.name in only
        if selected and (force or not stage.fresh):
            jobs.append((stage, plan.inputs(stage)))
        elif not stage.has_outputs:
            raise BuildError(f"notebook {stage.spec.name} has never run; build "
                             "without --only first")
    return jobs


def _replan(b: Build, plan: Plan) -> Plan:
    return make_plan(b.config, b.build_root, specs=plan.specs)


def _prepare_data(b: Build, plan: Plan):
    """The data set where the plan says it must be prepared, else None (a fresh
    build does not open it)."""
    if plan.data.fresh:
        b.card = plan.data.card.to_dict()
        return None
    b.say(f"data: preparing ({plan.data.state.removeprefix('stale: ')})")
    return _load_data(b)


def _load_data(b: Build):
    from zspace.data import load_dataset

    dataset = load_dataset(b.config.data, b.build_root, b.progress)
    b.card = dataset.card.to_dict()
    return dataset


def _make_model(b: Build, stage, dataset, retrain: bool = False):
    """Make one model as its stage says (load, adopt or train), saying so first."""
    from zspace.store import committed
    from zspace.training.trainer import make_model

    if not stage.fresh:
        b.models_made.append(stage.variant.name)
        b.say(f"{stage.name}: {stage.source.why}")
    return make_model(stage, dataset, b.build_root, b.progress, retrain=retrain,
                      committed_dir=committed.folder_for(b.config))


def _check_only(only: tuple[str, ...], plan: Plan) -> None:
    known = {stage.spec.name for stage in plan.notebooks} | {REPORT_STAGE}
    for name in only:
        if name not in known:
            raise ConfigError(f"--only {name}: no such stage (stages: "
                              f"{', '.join(sorted(known))})")


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f} s"
    return f"{int(seconds // 60)} min {seconds % 60:02.0f} s"


def _publish(b: Build, plan: Plan) -> None:
    if b.config.build.publish:  # refused before the report is swapped, not after
        from zspace.samplesets import released

        released.check_owned(released.folder_for(b.config.name))
    dataset_hash = plan.data.card.content_hash
    outputs = [NotebookOutput(
        name=stage.spec.name, folder=b.root / "notebooks" / stage.spec.name,
        notebook_file=stage.spec.path.name, figures=stage.spec.figures,
        site=stage.spec.site, parameters=stage.parameters,
        models={name: m.key for name, m in stage.models.items()},
        dataset=dataset_hash, code=stage.key.parts["code"], key=stage.key.digest)
        for stage in plan.notebooks]
    report_key = plan.report.key.digest
    publish_site(b.root, outputs, _provenance(b, report_key), b.templates,
                 archive_root=paths.build_dir(b.build_root) / "archive"
                 / b.config.name,
                 build_id=f"{datetime.now(UTC):%Y%m%d-%H%M%S}-{report_key[:8]}",
                 keep_archives=b.config.build.keep_archives,
                 to_repository=b.config.build.publish, deferred=interrupt_deferred)
    if b.config.build.publish:
        _publish_judgments(b, plan)


def _publish_judgments(b: Build, plan: Plan) -> None:
    """Publish what the report's build judged beside the report
    (``judged/<profile>/``): the sets' judgments and the notebooks' other
    detections, so that a fresh clone draws the same images but judges none."""
    from zspace.samplesets import released
    from zspace.samplesets.stored import damage

    folders = sorted({stage.folder for stage in plan.sets if stage.folder})
    missing = [f.name for f in folders if damage(f)]
    target = released.folder_for(b.config.name)
    if missing:  # e.g. a render-only build after the set cache was cleaned
        b.say(f"judgments: {target} left as it is; {len(missing)} sets are not in "
              f"the cache ({missing[0]}, ...)")
        return
    detections = [path for stage in plan.notebooks for path in sorted(
        (b.root / "notebooks" / stage.spec.name / released.DETECTIONS).glob("*.npz"))]
    with interrupt_deferred():
        sets, batches = released.publish(folders, detections, target)
    b.say(f"judgments: {sets} sets and {batches} other batches published to {target}")


def _provenance(b: Build, report_key: str) -> dict[str, Any]:
    stages = {name: record.get("seconds") for name, record in b.state.stages.items()}
    stages.update({k: round(v, 2) for k, v in b.timings.items()})
    return {
        "config": b.config.to_dict(),
        "dataset": b.card,
        "packages": {name: _version(name) for name in PACKAGES if _version(name)},
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "timings": stages,
        "report_key": report_key,
    }


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None
