"""benchmarks/train_throughput.py: the GPU mode's --quick run works on any device
(its numbers are printed, never asserted)."""

import re
import subprocess
import sys

import pytest

from zspace import paths

SCRIPT = paths.ROOT / "benchmarks" / "train_throughput.py"


@pytest.mark.slow
def test_the_gpu_mode_prints_a_ratio_for_every_side():
    done = subprocess.run([sys.executable, str(SCRIPT), "--gpu-mode", "--quick"],
                          capture_output=True, text=True, cwd=paths.ROOT, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    # side, img/s, ratio, last loss (a loss that is not finite matches no row)
    rows = {side: float(ratio) for side, _, ratio, _ in re.findall(
        r"^(\S.*?)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)$", done.stdout, re.MULTILINE)}
    assert set(rows) == {"keras loop", "keras loop, mixed_float16",
                         "zspace, plain layers", "+ the GPU's options", "+ XLA",
                         "+ mixed_float16", "+ XLA, mixed_float16"}, done.stdout
    assert rows["keras loop"] == 1.0 and all(ratio > 0 for ratio in rows.values())
    # The GPU branch: the plain layers, no custom op.
    assert "trains on the GPU with the speed options fused_loss, fused_adam;" in (
        done.stdout)
