"""Making the stale sample sets of a build: a few worker processes, each making its
share of the sets one after the other (``python -m zspace.pipeline.setmaker``).

A worker loads the data set, the models and the judge once for all its sets, runs
with the kernels' thread count and temporary folder, and is killed with them on
Ctrl-C. A set appears in the cache only whole (:mod:`zspace.pipeline.setmaker`).
A set whose images match a published judgment takes that judgment
(:mod:`zspace.samplesets.released`).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from zspace import paths
from zspace.errors import BuildError
from zspace.files import write_json_atomic
from zspace.pipeline.plan import Plan, SetStage
from zspace.pipeline.runner import Build, start_and_wait
from zspace.pipeline.setmaker import partial_folder
from zspace.samplesets import released

TAIL_LINES = 20  # of a failed worker's output, in the error
# What the build says of a set, by how the worker made it.
MADE = {"judged": "made", "released": "made, its judgment from the release",
        "made meanwhile": "made by another build meanwhile"}


def stale_sets(plan: Plan) -> list[SetStage]:
    """The sets to make, each key once (equal settings under two names are one set)."""
    found: dict[str, SetStage] = {}
    for stage in plan.sets:
        if not stage.fresh and stage.key not in found:
            found[stage.key] = stage
    return list(found.values())


def jobs_file(plan: Plan, stages: list[SetStage]) -> dict[str, Any]:
    """What one worker reads: the configuration, the data set, every model its sets
    draw from (and the judge), and one job per set."""
    by_name = {m.variant.name: m for m in plan.models}
    names = sorted({n for st in stages for n in st.models} | {"judge"})
    return {
        "inputs": {
            "config": plan.config.to_dict(),
            "data": {"folder": str(plan.data.entry),
                     "content_hash": plan.data.card.content_hash},
            "models": {n: {"folder": str(by_name[n].folder), "key": by_name[n].key}
                       for n in names},
            "judged": str(released.folder_for(plan.config.name) / released.SETS),
        },
        "jobs": [{"point": st.point.as_dict(), "key": st.key, "folder": str(st.folder),
                  "models": list(st.models),
                  "model_keys": {n: by_name[n].key for n in (*st.models, "judge")}}
                 for st in stages],
    }


def run_sets(build: Build, plan: Plan) -> int:
    """Make the plan's stale sample sets; return how many were made.

    Raises:
        BuildError: A worker failed (the message holds the end of its output).
        KeyboardInterrupt: Ctrl-C: the workers are killed, unfinished sets removed.
    """
    stages = stale_sets(plan)
    if not stages:
        return 0
    lanes = max(1, min(build.config.build.parallel_notebooks, len(stages)))
    build.say(f"sample sets: {len(stages)} to make, {lanes} at once")
    kernels = build.kernels()
    scratch = (build.session.scratch if build.session is not None
               else paths.set_cache_dir(build.build_root))
    failures: list[str] = []
    pids: list[int] = []

    def lane(number: int, mine: list[SetStage]) -> None:
        folder = Path(scratch) / f"sets-{number}"
        folder.mkdir(parents=True, exist_ok=True)
        jobs = folder / "jobs.json"
        write_json_atomic(jobs, jobs_file(plan, mine))
        output = folder / "output.txt"
        with output.open("w") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "zspace.pipeline.setmaker", str(jobs),
                 str(folder / "run")],
                stdout=subprocess.PIPE, stderr=out, text=True,
                env=kernels.environment(None), start_new_session=True)
            kernels.started(process.pid)
            pids.append(process.pid)
            try:
                for line in process.stdout:
                    if line.startswith("how "):
                        name, how = line.removeprefix("how ").rsplit(": ", 1)
                        build.say(f"  set {name}: {MADE.get(how.strip(), 'made')}")
                process.wait()
            finally:
                kernels.ended(process.pid, None)
        if process.returncode and not kernels.stopped:
            lines = output.read_text(errors="replace").splitlines()[-TAIL_LINES:]
            failures.append(f"sample sets failed (worker exit {process.returncode}); "
                            f"its output ends:\n" + "\n".join(lines))

    started = time.perf_counter()
    threads = [threading.Thread(target=lane, args=(i, stages[i::lanes]), daemon=True,
                                name=f"zspace-sets-{i}") for i in range(lanes)]
    try:
        start_and_wait(threads)
    except KeyboardInterrupt:
        kernels.stop()
        for thread in threads:
            thread.join(15)
        raise
    finally:
        kernels.close()
        for stage in stages:  # what a killed or failed worker left
            for pid in pids:
                shutil.rmtree(partial_folder(stage.folder, pid), ignore_errors=True)
    if failures:
        raise BuildError(failures[0])
    build.timings["sets"] = time.perf_counter() - started
    return len(stages)
