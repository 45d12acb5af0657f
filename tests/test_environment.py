"""The renderer and the machine recorded with every figure."""

from __future__ import annotations

import json
import subprocess
import sys

import matplotlib
from matplotlib import ft2font

from zspace import environment
from zspace.environment import CPU_FLAGS, GROUPS, figure_environment


def test_names_the_renderer_cpu_blas_and_machine():
    found = figure_environment()
    assert list(found) == list(GROUPS)
    assert found["renderer"] == {"matplotlib": matplotlib.__version__,
                                 "freetype": ft2font.__freetype_version__}
    flags = found["cpu"]["flags"]
    assert flags == "unknown" or all(f in CPU_FLAGS or f.startswith("amx_")
                                     for f in flags)
    assert found["blas"]["library"] != "" and found["machine"]["platform"]
    json.dumps(found)  # it goes into the manifest as it is


def test_is_the_same_on_every_call_and_a_copy():
    first = figure_environment()
    first["renderer"]["freetype"] = "edited"
    assert figure_environment() == figure_environment() != first


def test_reads_only_the_relevant_flags_and_the_onednn_variables(tmp_path, monkeypatch):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: Test CPU 9000\n"
                       "flags\t\t: fpu sse2 avx2 fma avx512f avx512_fp16 amx_tile "
                       "amx_bf16 avx512_vnni\n\nprocessor\t: 1\nflags\t: fpu\n")
    monkeypatch.setattr(environment, "CPUINFO", cpuinfo)
    monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", "0")
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    environment._environment.cache_clear()
    try:
        found = figure_environment()
    finally:
        environment._environment.cache_clear()
    assert found["cpu"] == {"flags": ["amx_bf16", "amx_tile", "avx2", "avx512_fp16",
                                      "avx512f", "fma"],
                            "onednn_opts": "0", "onednn_max_isa": "default"}
    assert found["machine"]["processor"] == "Test CPU 9000"


def test_does_not_import_tensorflow():
    code = ("import sys; from zspace.environment import figure_environment; "
            "figure_environment(); print('tensorflow' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True,
                          text=True, check=True)
    assert done.stdout.strip() == "False"
