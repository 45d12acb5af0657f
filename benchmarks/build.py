"""Build-speed benchmark: cold, no-op, and one changed parameter.

Runs ``pipeline.py`` as a user would, in a fresh build folder, and prints the wall time
of each build, the notebooks each one executed, the share of notebook time spent
before the first cell ran (kernel start-up, mostly TensorFlow's import), and a table
of the cold build's stages: each stage's seconds and its share of the build, so the
next regression shows where it is.

    .venv/bin/python benchmarks/build.py [--profile smoke|default] [--keep DIR]
    .venv/bin/python benchmarks/build.py --executors [--profile ...] [--keep DIR]

With ``--executors`` it times instead two cold builds side by side, one with the
local executor and one with the Dask executor on a local cluster
(``build.executor = "dask"``, needs ``pip install -e ".[dask]"``), each in a fresh
folder of its own, and prints the ratio; the machine's load average is printed
beside each, since a busy machine makes the ratio mean little.

The default profile is what a fresh clone builds with the README's first command
(published models, nothing trained); it runs with ``build.publish=false`` so the
committed report stays as it is.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHANGE = "notebooks.30_reconstructions.n_per_seed=3"


def run_build(build_dir: Path, profile: str, *overrides: str) -> tuple[float, dict]:
    command = [sys.executable, str(ROOT / "pipeline.py"), "build", "--config", profile,
               "--build-dir", str(build_dir), "-q", "--set", "build.publish=false"]
    for override in overrides:
        command += ["--set", override]
    before = _state(build_dir, profile)
    started = time.perf_counter()
    subprocess.run(command, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - started
    after = _state(build_dir, profile)
    ran = {name: record for name, record in after.items()
           if name.startswith("notebook ") and before.get(name) != record}
    return seconds, ran


def _state(build_dir: Path, profile: str) -> dict:
    path = build_dir / profile / "state.json"
    return json.loads(path.read_text()) if path.exists() else {}


def stage_table(build_dir: Path, profile: str) -> str:
    """Each stage of the last build: seconds, and share of the summed stage time.

    Notebooks run several at once, so their own lines add up to more than the
    notebooks' layer; the shares are of the work, the layers' lines of the wall.
    """
    timings = json.loads((build_dir / profile / "timings.json").read_text())
    total = timings.pop("total")
    layers = ("data", "models", "sets", "notebooks", "report")
    work = {k: v for k, v in timings.items() if k not in ("notebooks",)}
    summed = sum(work.values()) or 1.0
    lines = [f"{'stage':<34}{'seconds':>9}{'share':>8}"]
    for name, seconds in sorted(timings.items(), key=lambda kv: (
            kv[0] not in layers, layers.index(kv[0]) if kv[0] in layers else 0,
            -kv[1])):
        share = "" if name == "notebooks" else f"{seconds / summed:>8.0%}"
        indent = "" if name in layers else "  "
        lines.append(f"{indent + name:<34}{seconds:>9.1f}{share}")
    lines.append(f"{'whole build (wall)':<34}{total:>9.1f}")
    return "\n".join(lines)


def describe(label: str, seconds: float, ran: dict) -> str:
    notebook_seconds = sum(r["seconds"] for r in ran.values())
    kernel_seconds = sum(r.get("kernel_start") or 0 for r in ran.values())
    share = f"{kernel_seconds / notebook_seconds:.0%}" if notebook_seconds else "n/a"
    return (f"{label:<28}{seconds:>9.1f} s   notebooks run: {len(ran):>2}   "
            f"notebook time {notebook_seconds:>7.1f} s   kernel start share {share}")


def compare_executors(build_dir: Path, profile: str) -> None:
    """Time a cold build with each executor and print the ratio."""
    seconds = {}
    for executor in ("local", "dask"):
        load = os.getloadavg()[0]
        seconds[executor], _ = run_build(build_dir / executor, profile,
                                         f'build.executor="{executor}"')
        print(f"cold build, {executor} executor: {seconds[executor]:>8.1f} s   "
              f"(load average before: {load:.1f}, after: {os.getloadavg()[0]:.1f}, "
              f"{os.cpu_count()} cores)")
    print(f"dask / local: {seconds['dask'] / seconds['local']:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="smoke", choices=("smoke", "default"))
    parser.add_argument("--keep", type=Path, help="build here and keep the folder")
    parser.add_argument("--executors", action="store_true",
                        help="time a cold build with the local and with the Dask "
                             "executor instead")
    args = parser.parse_args()
    build_dir = args.keep or Path(tempfile.mkdtemp(prefix="zspace-bench-"))
    print(f"{args.profile} profile, build folder {build_dir}")
    if args.executors:
        compare_executors(build_dir, args.profile)
        return
    cold = run_build(build_dir, args.profile)
    print(describe("cold build", *cold))
    print(stage_table(build_dir, args.profile))
    noop = run_build(build_dir, args.profile)
    print(describe("no-op rebuild", *noop))
    changed = run_build(build_dir, args.profile, CHANGE)
    print(describe(f"after --set {CHANGE.split('.', 1)[1]}", *changed))
    print(f"ran after the change: {', '.join(sorted(changed[1])) or 'nothing'}")
    print(f"no-op rebuild / cold build: {noop[0] / cold[0]:.3f}")


if __name__ == "__main__":
    main()
