"""How fast the procedural face generator renders, alone and over worker processes.

A single-process run on a subset is the reference; a run over all workers renders the
full count. The script prints both side by side with the parallel run's speed-up; it
asserts nothing, since timings depend on the machine and its load. With
``--contact-sheet`` it also saves the first 64 faces as an 8 x 8 grid, which is how
``docs/synthetic-faces.png`` was made:

    .venv/bin/python benchmarks/synthetic_faces.py \
        --contact-sheet docs/synthetic-faces.png
"""

from __future__ import annotations

import argparse
import os
import resource
import time
from pathlib import Path

import numpy as np
from PIL import Image

from zspace.data.synthetic import generate


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=22_000,
                        help="faces in the parallel run (default: 22000, the default "
                             "profile's training plus test images)")
    parser.add_argument("--size", type=int, default=64,
                        help="image side in pixels (default: 64)")
    parser.add_argument("--workers", type=int, default=0,
                        help="worker processes of the parallel run (default: 0, one "
                             "per core)")
    parser.add_argument("--reference-count", type=int, default=2_000,
                        help="faces in the single-process reference run "
                             "(default: 2000, or --count if smaller)")
    parser.add_argument("--seed", type=int, default=2024,
                        help="generator seed (default: 2024, the default profile's)")
    parser.add_argument("--contact-sheet", type=Path, default=None,
                        help="also save the first 64 faces, enlarged 2x, as this PNG")
    return parser.parse_args()


def cpu_seconds() -> float:
    """CPU time used so far by this process and its finished worker processes."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    workers = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + workers.ru_utime + workers.ru_stime


def timed_run(count: int, size: int, seed: int,
              workers: int) -> tuple[float, float, np.ndarray]:
    """Render ``count`` faces; return wall-clock and CPU seconds, and the images."""
    begin, begin_cpu = time.perf_counter(), cpu_seconds()
    images, _ = generate(count, size, seed, workers=workers, progress=False)
    return time.perf_counter() - begin, cpu_seconds() - begin_cpu, images


def save_contact_sheet(images: np.ndarray, path: Path, columns: int = 8) -> None:
    """Tile the first columns**2 images into a square grid, enlarged 2x (nearest)."""
    count = min(len(images), columns * columns)
    rows = -(-count // columns)
    size = images.shape[1]
    grid = np.zeros((rows * size, columns * size, 3), dtype=np.uint8)
    for i, image in enumerate(images[:count]):
        row, column = divmod(i, columns)
        grid[row * size:(row + 1) * size, column * size:(column + 1) * size] = image
    sheet = Image.fromarray(grid)
    sheet = sheet.resize((sheet.width * 2, sheet.height * 2), Image.NEAREST)
    sheet.save(path, optimize=True)
    print(f"contact sheet: {path} ({count} faces)")


def main() -> None:
    args = parse_args()
    workers = args.workers or os.cpu_count() or 1
    reference_count = min(args.reference_count, args.count)
    print(f"synthetic faces at {args.size} px, seed {args.seed}, "
          f"{os.cpu_count()} cores visible")
    single, single_cpu, _ = timed_run(reference_count, args.size, args.seed, 1)
    parallel, parallel_cpu, images = timed_run(args.count, args.size, args.seed,
                                               workers)
    rows = [
        ("single process", 1, reference_count, single, single_cpu),
        ("all workers", workers, args.count, parallel, parallel_cpu),
    ]
    # Images per CPU-second shows the drawing speed even on a machine that other
    # jobs keep busy, where the wall-clock rate mostly measures the competition.
    print(f"{'run':<16}{'workers':>8}{'images':>9}{'seconds':>10}{'images/s':>10}"
          f"{'cpu s':>10}{'images/cpu s':>14}")
    for name, used, count, seconds, cpu in rows:
        print(f"{name:<16}{used:>8}{count:>9}{seconds:>10.2f}{count / seconds:>10.1f}"
              f"{cpu:>10.2f}{count / cpu:>14.1f}")
    speed_up = (args.count / parallel) / (reference_count / single)
    print(f"speed-up of {workers} workers over one process: {speed_up:.2f}x "
          f"(ideal {workers}x; includes starting the worker processes)")
    estimate = args.count * single / reference_count
    print(f"{args.count} faces in one process would take about {estimate:.1f} s")
    if args.contact_sheet is not None:
        save_contact_sheet(images, args.contact_sheet)


if __name__ == "__main__":
    main()
