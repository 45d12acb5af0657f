"""What a figure's pixels depend on besides its inputs: the renderer and the machine.

The same notebook, parameters, models and data can still give other pixels when the
text is rasterised by another FreeType, or when the numbers are computed with other
instructions (oneDNN in TensorFlow and OpenBLAS in NumPy pick their kernels by the
CPU's features, and the kernels sum in different orders). :func:`figure_environment`
records these in each figure's manifest entry, and the figure diff names what differs
between two builds.

Nothing here imports TensorFlow: the CPU's features are read from ``/proc/cpuinfo``.
"""

from __future__ import annotations

import copy
import functools
import os
import platform
from pathlib import Path
from typing import Any

# CPU features that decide which kernels oneDNN and OpenBLAS use for float math, and
# so the order and rounding of their sums; any amx_* flag is kept too.
CPU_FLAGS = ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_fp16")
CPUINFO = Path("/proc/cpuinfo")
UNKNOWN = "unknown"
# TensorFlow reads these when it starts; unset means its default (oneDNN on, on x86).
ONEDNN_VARIABLES = {"onednn_opts": "TF_ENABLE_ONEDNN_OPTS",
                    "onednn_max_isa": "ONEDNN_MAX_CPU_ISA"}
# The groups, in the order the figure diff describes their changes.
GROUPS = ("renderer", "cpu", "blas", "machine")


def figure_environment() -> dict[str, dict[str, Any]]:
    """The renderer and the machine a build's figures were made with.

    Cheap (no TensorFlow import; /proc/cpuinfo is read once per process) and the
    same on every call on one machine: nothing that varies between runs (core count,
    thread counts, load) is in it.

    Returns:
        ``{"renderer": {"matplotlib", "freetype"}, "cpu": {"flags", "onednn_opts",
        "onednn_max_isa"}, "blas": {"numpy", "library", "architecture"},
        "machine": {"processor", "platform"}}``; a value that cannot be found is
        ``"unknown"``.
    """
    return copy.deepcopy(_environment())


@functools.cache
def _environment() -> dict[str, dict[str, Any]]:
    import matplotlib
    from matplotlib import ft2font

    cpuinfo = _cpuinfo()
    return {
        "renderer": {"matplotlib": matplotlib.__version__,
                     "freetype": str(ft2font.__freetype_version__)},
        "cpu": {"flags": _relevant_flags(cpuinfo),
                **{key: os.environ.get(name) or "default"
                   for key, name in ONEDNN_VARIABLES.items()}},
        "blas": _numpy_blas(),
        "machine": {"processor": cpuinfo.get("model name") or platform.processor()
                    or UNKNOWN,
                    "platform": platform.platform(terse=True)},
    }


def _cpuinfo() -> dict[str, str]:
    """The first processor's fields of /proc/cpuinfo; empty where there is none."""
    try:
        text = CPUINFO.read_text(errors="replace")
    except OSError:
        return {}
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            break  # the first processor is enough: all cores of a machine agree
        name, _, value = line.partition(":")
        fields[name.strip()] = value.strip()
    return fields


def _relevant_flags(cpuinfo: dict[str, str]) -> list[str] | str:
    # x86 calls them "flags"; an ARM kernel "Features" (none of ours are among them).
    line = cpuinfo.get("flags", cpuinfo.get("Features"))
    if line is None:
        return UNKNOWN
    flags = set(line.split())
    return sorted(f for f in flags if f in CPU_FLAGS or f.startswith("amx_"))


def _numpy_blas() -> dict[str, str]:
    """NumPy's BLAS: the library it was built with and the kernels it runs."""
    import numpy

    blas = {"numpy": numpy.__version__, "library": UNKNOWN, "architecture": UNKNOWN}
    try:
        built = numpy.show_config(mode="dicts")["Build Dependencies"]["blas"]
        blas["library"] = f"{built['name']} {built.get('version', '')}".strip()
    except (KeyError, TypeError, ValueError):
        pass
    # OpenBLAS built for many CPUs picks its kernels when loaded: threadpoolctl asks
    # the loaded library which (scikit-learn depends on it, so it is installed).
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return blas
    numpy_folder = Path(numpy.__file__).parent
    for library in threadpool_info():
        if library.get("user_api") != "blas":
            continue
        path = Path(library.get("filepath", ""))
        # numpy's own copy lives in numpy/ or in numpy.libs/ beside it.
        if numpy_folder.parent in path.parents and path.parent.name.startswith(
                "numpy"):
            blas["architecture"] = str(library.get("architecture") or UNKNOWN)
            break
    return blas
