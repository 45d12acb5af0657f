"""Build-speed benchmark on the smoke profile: cold, no-op, and one changed parameter.

Runs ``pipeline.py`` as a user would, in a fresh build folder, and prints the wall time
of each build, the notebooks each one executed, and the share of notebook time spent
before the first cell ran (kernel start-up, mostly TensorFlow's import).

    .venv/bin/python benchmarks/build.py [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHANGE = "notebooks.30_reconstructions.n_per_seed=3"


def run_build(build_dir: Path, *overrides: str) -> tuple[float, dict]:
    command = [sys.executable, str(ROOT / "pipeline.py"), "build", "--config", "smoke",
               "--build-dir", str(build_dir), "-q"]
    for override in overrides:
        command += ["--set", override]
    before = _state(build_dir)
    started = time.perf_counter()
    subprocess.run(command, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - started
    after = _state(build_dir)
    ran = {name: record for name, record in after.items()
           if name.startswith("notebook ") and before.get(name) != record}
    return seconds, ran


def _state(build_dir: Path) -> dict:
    path = build_dir / "smoke" / "state.json"
    return json.loads(path.read_text()) if path.exists() else {}


def describe(label: str, seconds: float, ran: dict) -> str:
    notebook_seconds = sum(r["seconds"] for r in ran.values())
    kernel_seconds = sum(r.get("kernel_start") or 0 for r in ran.values())
    share = f"{kernel_seconds / notebook_seconds:.0%}" if notebook_seconds else "n/a"
    return (f"{label:<28}{seconds:>9.1f} s   notebooks run: {len(ran):>2}   "
            f"notebook time {notebook_seconds:>7.1f} s   kernel start share {share}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, help="build here and keep the folder")
    args = parser.parse_args()
    build_dir = args.keep or Path(tempfile.mkdtemp(prefix="zspace-bench-"))
    print(f"smoke profile, build folder {build_dir}")
    cold = run_build(build_dir)
    print(describe("cold build", *cold))
    noop = run_build(build_dir)
    print(describe("no-op rebuild", *noop))
    changed = run_build(build_dir, CHANGE)
    print(describe(f"after --set {CHANGE.split('.', 1)[1]}", *changed))
    print(f"ran after the change: {', '.join(sorted(changed[1])) or 'nothing'}")
    print(f"no-op rebuild / cold build: {noop[0] / cold[0]:.3f}")


if __name__ == "__main__":
    main()
