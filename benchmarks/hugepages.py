"""NumPy's huge-page advice on this machine: the same array work with it on and off.

Run: ``python benchmarks/hugepages.py [--mb 100] [--rounds 5]``.

NumPy asks the kernel to back arrays of 4 MB and more with transparent huge pages
(``NUMPY_MADVISE_HUGEPAGE``, on by default where the kernel offers them). Whether
that pays depends on the kernel's ``defrag`` setting: with ``madvise`` the kernel
compacts memory at the first touch of each advised array. The build turns the advice
off in its processes (``zspace.pipeline.kernels.HUGEPAGE_VARIABLE``); this prints
what that is worth here, side by side in fresh processes, as a reconstruction error
over held-out images does it (new float arrays, a subtraction, a square, a mean).
Prints numbers only: no timing is asserted anywhere.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

WORK = """
import sys, time
import numpy as np
n = int(sys.argv[1]) * 2**20 // (64 * 64 * 3 * 8)  # float64 images of 64 x 64 x 3
rng = np.random.default_rng(0)
images = rng.integers(0, 256, (n, 64, 64, 3), dtype=np.uint8)
start = time.perf_counter()
for _ in range(int(sys.argv[2])):
    out = rng.integers(0, 256, images.shape, dtype=np.uint8)
    float(np.mean((out / 255.0 - images / 255.0) ** 2))
print(time.perf_counter() - start)
"""


def _seconds(advice: str, mb: int, rounds: int) -> float:
    env = {**os.environ, "NUMPY_MADVISE_HUGEPAGE": advice}
    result = subprocess.run([sys.executable, "-c", WORK, str(mb), str(rounds)],
                            env=env, capture_output=True, text=True, check=True)
    return float(result.stdout.strip())


def _setting(name: str) -> str:
    """The kernel's choice for ``name`` (the bracketed word of its file)."""
    path = Path("/sys/kernel/mm/transparent_hugepage") / name
    found = re.search(r"\[([^\]]+)\]", path.read_text()) if path.exists() else None
    return found.group(1) if found else "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=100, help="size of each array")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    print(f"transparent huge pages: enabled {_setting('enabled')}; "
          f"defrag {_setting('defrag')}")
    on = _seconds("1", args.mb, args.rounds)
    off = _seconds("0", args.mb, args.rounds)
    print(f"{args.rounds} rounds over {args.mb} MB float arrays")
    print(f"advice on (NumPy's default): {on:>7.2f} s")
    print(f"advice off (the build's):    {off:>7.2f} s")
    print(f"on / off: {on / off:.2f}")


if __name__ == "__main__":
    main()
