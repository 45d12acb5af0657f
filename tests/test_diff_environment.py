"""The figure diff names what differs between the environments of two builds."""

from __future__ import annotations

import copy
import json

from tests.test_diff import diff_folders, picture, pipeline, write_figures
from zspace.diff.compare import UNEXPLAINED, UNEXPLAINED_SAME_MACHINE
from zspace.diff.environment import describe_environment_changes

BEFORE = {
    "renderer": {"matplotlib": "3.10.0", "freetype": "2.6.1"},
    "cpu": {"flags": ["avx2", "avx512f", "fma"], "onednn_opts": "default",
            "onednn_max_isa": "default"},
    "blas": {"numpy": "2.3.5", "library": "scipy-openblas 0.3.29",
             "architecture": "Haswell"},
    "machine": {"processor": "CPU A", "platform": "Linux-6.1-x86_64"},
}


def after(**changes) -> dict:
    environment = copy.deepcopy(BEFORE)
    for group, values in changes.items():
        environment[group].update(values)
    return environment


def test_reason_column_names_the_renderer_and_the_cpu(tmp_path):
    other = after(renderer={"freetype": "2.13.2"},
                  cpu={"flags": ["avx2", "avx512_fp16", "avx512f", "fma"]})
    old = write_figures(tmp_path / "a", {"X1": picture(1), "X2": picture(2)},
                        X1={"environment": BEFORE}, X2={"environment": BEFORE})
    new = write_figures(tmp_path / "b", {"X1": picture(1), "X2": picture(3)},
                        X1={"environment": other}, X2={"environment": other})
    done = pipeline(str(old), str(new), "--build-dir", str(tmp_path / "build"),
                    "--json", str(tmp_path / "d.json"))
    assert done.returncode == 1, done.stderr
    reason = "renderer: freetype 2.6.1 -> 2.13.2; cpu: avx512_fp16 added"
    row = next(line for line in done.stdout.splitlines() if line.startswith("X2 "))
    assert row.endswith(reason)
    figures = json.loads((tmp_path / "d.json").read_text())["figures"]
    assert figures[1]["why"] == ["renderer: freetype 2.6.1 -> 2.13.2",
                                 "cpu: avx512_fp16 added"]
    assert figures[1]["environment"] == figures[1]["why"]
    # The unchanged figure carries the same news, and no verdict.
    assert figures[0]["status"] == "unchanged" and figures[0]["verdict"] is None
    assert figures[0]["why"] == figures[1]["why"]


def test_without_environments_the_reason_stays_as_it_was(tmp_path):
    old = write_figures(tmp_path / "a", {"X1": picture(1)})
    new = write_figures(tmp_path / "b", {"X1": picture(2)})
    result, _ = diff_folders(tmp_path, old, new)
    assert result.figures[0].why == [UNEXPLAINED]


def test_equal_environments_say_so(tmp_path):
    old = write_figures(tmp_path / "a", {"X1": picture(1)}, X1={"environment": BEFORE})
    new = write_figures(tmp_path / "b", {"X1": picture(2)}, X1={"environment": BEFORE})
    result, _ = diff_folders(tmp_path, old, new)
    assert result.figures[0].why == [UNEXPLAINED_SAME_MACHINE]


def test_one_side_without_an_environment(tmp_path):
    old = write_figures(tmp_path / "a", {"X1": picture(1)})
    new = write_figures(tmp_path / "b", {"X1": picture(2)}, X1={"environment": BEFORE})
    result, _ = diff_folders(tmp_path, old, new)
    assert result.figures[0].why == ["environment: not recorded in A (built before "
                                     "it was)"]


def test_every_group_in_words():
    other = after(cpu={"flags": ["avx2", "fma"], "onednn_opts": "0"},
                  blas={"architecture": "SkylakeX"},
                  machine={"processor": "CPU B"})
    assert describe_environment_changes(BEFORE, other) == [
        "cpu: avx512f removed, onednn_opts default -> 0",
        "blas: architecture Haswell -> SkylakeX",
        "machine: processor CPU A -> CPU B"]
    assert describe_environment_changes(BEFORE, copy.deepcopy(BEFORE)) == []
    assert describe_environment_changes(None, None) == []
