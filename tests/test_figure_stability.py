"""Figures do not follow the last bits of their inputs.

Another CPU or BLAS computes the models' outputs in another order, which changes
their last bits. The smoke profile's notebooks run twice on the same data and models:
once as they are (the session's ``smoke_build``) and once with a relative noise of
1e-6 on every model output (the ``ZSPACE_OUTPUT_NOISE`` hook of
``zspace.latent.zpoints``). The figure diff must find every figure within its
tolerance: limits, ticks, bins and layouts come from rounded values, so only the
data themselves move, by far less than a pixel.
"""

from __future__ import annotations

import shutil

import pytest

from zspace.config import load_config
from zspace.diff import DEFAULT_TOLERANCE, compare_sides, open_side
from zspace.latent.zpoints import NOISE_VARIABLE
from zspace.pipeline import engine

pytestmark = pytest.mark.slow

NOISE = "1e-6"


def test_noise_in_the_last_bits_leaves_every_figure_within_tolerance(
        smoke_build, tmp_path, monkeypatch):
    build_root, site = smoke_build
    # The same data set and models: nothing is trained again, only the notebooks run.
    perturbed_root = tmp_path / "build"
    shutil.copytree(build_root / "cache", perturbed_root / "cache")
    monkeypatch.setenv(NOISE_VARIABLE, NOISE)  # the notebook kernels inherit it
    perturbed = engine.build(load_config("smoke"), perturbed_root, progress=False)
    monkeypatch.delenv(NOISE_VARIABLE)
    with (open_side(str(site), repo=tmp_path, build_root=tmp_path) as a,
          open_side(str(perturbed), repo=tmp_path, build_root=tmp_path) as b):
        result = compare_sides(a, b)
    print(f"\nlargest RMS per figure with a relative noise of {NOISE} on the model "
          f"outputs (tolerance {DEFAULT_TOLERANCE:.5f}):")
    for figure in result.figures:
        rms = figure.distance.rms if figure.distance else 0.0
        print(f"  {figure.figure_id:<4} {figure.status:<9} rms {rms:.6f} "
              f"({rms * 255:.3f} grey levels) {figure.reason}")
    # 24 (C12 included), D1, the smoke sweep's two D2 points and their grid D7
    assert len(result.figures) == 28
    changed = {f.figure_id: (f.distance.rms if f.distance else None, f.verdict)
               for f in result.figures if f.status != "unchanged"}
    assert changed == {}
