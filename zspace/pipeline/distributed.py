"""The build's stages on a Dask cluster: ``build.executor = "dask"``.

The client (the process that runs ``pipeline.py build``) prepares the data set
itself, as the local executor does, and then submits the rest of the plan at once,
as one graph: each stale model stage, each stale sample set and each notebook to
run is a ``dask.distributed`` task keyed ``<stage name>-<stage key>`` (``model
vae-3f2a...``, ``set vae_normal-...``, ``notebook 20_vae_generation-...``), and each
waits for the tasks of its inputs: a set for its models and the judge, a notebook
for its models and sets. One graph rather than layer by layer is possible because
once the data set is prepared, every later key is known: a model's key is made of
its configuration and the data set, a set's and a notebook's of their inputs' keys,
never of what training made. A notebook therefore starts as soon as its own models
and sets exist, while other models still train. Stages that are fresh are no
tasks. The client writes the record of each stage that finished, and publishes the
report itself once every notebook succeeded, so the published site never depends
on a worker.

What runs on the workers is in :mod:`zspace.pipeline.tasks`; how the client reaches
the cluster, and checks that it can build there, in :mod:`zspace.pipeline.cluster`.

Faults:

- The build folder must be on a file system every worker sees: the client writes
  a token into it and every worker writes a reply beside it
  (:func:`zspace.pipeline.cluster.probe`); a worker that cannot is an
  :class:`UnsharedFolder` error (exit 2).
- A scheduler that does not answer within ``cluster.CONNECT_SECONDS`` is a
  :class:`SchedulerUnreachable` error (exit 5).
- A worker that dies while running a task: the scheduler runs the task again on
  another (or the restarted) worker; a training resumes from the checkpoints the
  dead one left, whose key lock the operating system released with it. The local
  cluster allows one such retry (``distributed.scheduler.allowed-failures = 1``);
  a scheduler of your own has its own setting (Dask's default is 3). After that
  the build fails, naming the stage. (Dask counts the death against every task
  the worker held, queued ones included.)
- Ctrl-C cancels every task, stops a local cluster with its workers and their
  kernels, and leaves the published report as it was; the next build resumes
  from what finished.
"""

from __future__ import annotations

import contextlib
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from zspace.errors import BuildError, ZspaceError
from zspace.pipeline import tasks
from zspace.pipeline.cluster import connect, probe, require
from zspace.pipeline.plan import Plan
from zspace.pipeline.runner import Build
from zspace.pipeline.sampling import jobs_file, stale_sets

QUIET_SECONDS = 60  # without a finished task, a line says what is running
RUNNING_NAMED = 4  # tasks a progress line names; more are counted


@dataclass
class Made:
    """What the cluster made: counts of models and sets, the notebooks run, and the
    notebooks that failed."""

    models: int = 0
    sets: int = 0
    notebooks: list = field(default_factory=list)
    failures: list[BuildError] = field(default_factory=list)


@dataclass(frozen=True)
class _Task:
    """One submitted stage: its plan stage, its kind and its future."""

    stage: Any
    kind: str  # "model", "set" or "notebook"
    future: Any


@contextlib.contextmanager
def cluster(b: Build) -> Iterator[Cluster]:
    """Connect to the build's Dask cluster (or start a local one) and probe that
    every worker sees the build folder; close what was opened on exit.

    Args:
        b: The build (its session is open: the log and scratch folder).

    Raises:
        ConfigError: Dask is not installed.
        SchedulerUnreachable: The scheduler did not answer.
        UnsharedFolder: A worker does not see the build folder.
    """
    require()
    with connect(b) as (client, local):
        token = probe(client, b)
        try:
            yield Cluster(client, local, token)
        finally:
            if not local:  # a local cluster's set makers end with its workers
                with contextlib.suppress(Exception):
                    client.run(tasks.close_set_makers)


@dataclass(frozen=True)
class Cluster:
    """A connected cluster whose workers see the build folder.

    Attributes:
        client: The ``distributed.Client``.
        local: Whether the cluster is this build's own ``LocalCluster``.
        token: The probe's token, which every task checks first.
    """

    client: Any
    local: bool
    token: str

    def run(self, b: Build, plan: Plan, jobs: list) -> Made:
        """Run the plan's stale models and sets and the notebooks of ``jobs``;
        record each notebook that succeeded.

        Args:
            b: The build.
            plan: The plan, made once the data set was prepared.
            jobs: The notebooks to run, each ``(stage, inputs manifest)``.

        Returns:
            What was made, with the notebooks that failed.

        Raises:
            BuildError: A model or sample set failed, or its worker died twice
                (the message names the stage).
            KeyboardInterrupt: Ctrl-C: every task is cancelled.
        """
        submitted = _submit(self.client, b, plan, jobs, self.token, self.local)
        try:
            return _wait(b, self.client, submitted)
        except BaseException:
            self.client.cancel([t.future for t in submitted], force=True)
            if self.local:  # its workers (and their kernels) stop with it
                self.client.cluster.close()
            for running in (b.root / "notebooks").glob("*.running"):
                shutil.rmtree(running, ignore_errors=True)
            raise


def _submit(client, b: Build, plan: Plan, jobs: list, token: str,
            local: bool) -> list[_Task]:
    """Submit every stage to run, each waiting for its inputs' tasks."""
    build_root, profile = str(b.build_root), str(b.root)
    config = b.config.to_dict()
    threads = b.config.build.kernel_threads
    gpus = 0 if local else b.config.build.gpus_per_training
    from zspace.store import committed

    committed_dir = committed.folder_for(b.config)
    submitted: list[_Task] = []
    models: dict[str, Any] = {}  # variant name -> future
    for stage in plan.models:
        if stage.fresh:
            continue
        future = client.submit(
            tasks.train, stage, config, build_root, token, str(committed_dir),
            key=f"{stage.name}-{stage.key}",
            resources={"GPU": gpus} if gpus else None)
        models[stage.variant.name] = future
        submitted.append(_Task(stage, "model", future))
    sets: dict[str, Any] = {}  # set key -> future
    stages = stale_sets(plan)
    if stages:
        spec = jobs_file(plan, stages)
        inputs_file = tasks.write_set_inputs(b.root, token, spec["inputs"])
        for stage, job in zip(stages, spec["jobs"], strict=True):
            after = [models[n] for n in (*stage.models, "judge") if n in models]
            future = client.submit(tasks.make_set, job, str(inputs_file), profile,
                                   token, threads, after,
                                   key=f"{stage.name}-{stage.key}")
            sets[stage.key] = future
            submitted.append(_Task(stage, "set", future))
    for stage, manifest in jobs:
        after = ([models[n] for n in stage.models if n in models]
                 + [sets[s.key] for s in stage.sets.values() if s.key in sets])
        future = client.submit(tasks.run_notebook, stage.spec, stage.parameters,
                               manifest, profile, token, threads, after,
                               key=f"{stage.name}-{stage.key.digest}")
        submitted.append(_Task(stage, "notebook", future))
    counts = {kind: sum(t.kind == kind for t in submitted)
              for kind in ("model", "set", "notebook")}
    b.say(f"dask: {counts['model']} models, {counts['set']} sample sets and "
          f"{counts['notebook']} notebooks submitted")
    return submitted


def _wait(b: Build, client, submitted: list[_Task]) -> Made:
    """Wait for every task, saying what finished and what runs; record notebooks."""
    from distributed import wait

    made = Made()
    by_key = {t.future.key: t for t in submitted}
    pending = {t.future for t in submitted}
    started = time.perf_counter()
    state = b.state
    quiet_since = time.monotonic()
    while pending:
        try:
            done, pending = wait(pending, timeout=5, return_when="FIRST_COMPLETED")
        except TimeoutError:  # a short wait: Ctrl-C is seen between two
            done = set()
        for future in done:
            _finished(b, by_key[future.key], made, state, started)
            # Released once recorded: a worker that dies later holding its result
            # would otherwise have the scheduler run it again.
            future.release()
            line = f"    ({len(submitted) - len(pending)} of {len(submitted)} done"
            b.say(line + _running(client, by_key) + ")")
            quiet_since = time.monotonic()
        if pending and time.monotonic() - quiet_since > QUIET_SECONDS:
            running = _running(client, by_key).removeprefix("; ")
            b.say(f"    ({running or 'waiting for workers'})")
            quiet_since = time.monotonic()
    return made


def _finished(b: Build, task: _Task, made: Made, state, started: float) -> None:
    """Record one finished task, or raise its failure (a notebook's is kept)."""
    from distributed import KilledWorker

    stage = task.stage
    try:
        record = task.future.result()
    except tasks.StageFailed as error:
        if error.log and b.session is not None:
            b.session.log.append_text(stage.name, error.log)
        if task.kind == "notebook":
            made.failures.append(BuildError(str(error)))
            b.say(f"  {stage.name}: FAILED")
            return
        raise _named(stage.name, error) from None
    except KilledWorker:
        raise BuildError(
            f"{stage.name}: its worker died while running it, and again on the "
            "retry; the build stops (the finished stages are kept)") from None
    except Exception as error:  # a bug, or the cluster went away
        raise _named(stage.name, error) from None
    if b.session is not None and (task.kind == "notebook" or record["log"].strip()):
        b.session.log.append_text(stage.name, record["log"])
    b.timings[stage.name] = record["seconds"]
    layer = {"model": "models", "set": "sets", "notebook": "notebooks"}[task.kind]
    b.timings[layer] = time.perf_counter() - started
    where = f"on {record['worker']} in {record['seconds']:.1f} s"
    if task.kind == "model":
        made.models += 1
        b.models_made.append(stage.variant.name)
        verb = "loaded" if record.get("cached") else "made"
        resumed = record.get("resumed_from_epoch")
        after = f", resumed after epoch {resumed}" if resumed else ""
        b.say(f"  {stage.name}: {verb} {where} ({stage.source.why}{after})")
    elif task.kind == "set":
        made.sets += 1
        b.say(f"  {stage.name}: made {where}")
    else:
        state.record(stage.name, stage.key, record["seconds"],
                     kernel_start=record.get("kernel_start"))
        made.notebooks.append(stage)
        b.say(f"  {stage.name}: done {where}")


def _named(name: str, error: BaseException) -> ZspaceError:
    """``error`` as a zspace error naming the stage, with its exit code."""
    text = str(error) if isinstance(error, ZspaceError) else (
        f"{type(error).__name__}: {error}")
    named = BuildError(f"{name}: {text}")
    named.exit_code = getattr(error, "exit_code", BuildError.exit_code)
    return named


def _running(client, by_key: dict) -> str:
    """``; running: model vae, notebook 20_vae_generation`` (or nothing): the tasks
    the workers execute now, not those they hold in their queues."""
    try:
        executing = client.run(tasks.executing, on_error="ignore")
    except Exception:  # a scheduler gone mid-build answers nothing useful
        return ""
    names = sorted(by_key[key].stage.name for keys in executing.values()
                   for key in keys if key in by_key)
    if len(names) > RUNNING_NAMED:
        names[RUNNING_NAMED:] = [f"{len(names) - RUNNING_NAMED} more"]
    return f"; running: {', '.join(names)}" if names else ""
