"""The figure manifest, and publishing a finished site in one swap.

Nothing a reader can see is touched until every step of a build has succeeded: the new
site is assembled in a temporary folder beside the published one and swapped in with
renames, so a failing notebook or template leaves the previous report byte for byte.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path
from typing import Any

from zspace.build.state import write_json_atomic
from zspace.environment import figure_environment

MANIFEST = "manifest.json"


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def manifest_entry(file: Path, notebook: str, parameters: dict[str, Any],
                   models: dict[str, str], dataset_hash: str, code: str) -> dict:
    """The provenance of one figure file."""
    return {"file": file.name, "sha256": sha256_of(file), "notebook": notebook,
            "parameters": parameters, "models": models, "dataset": dataset_hash,
            "code": code, "environment": figure_environment()}


def swap_in(staging: Path, target: Path) -> None:
    """Replace ``target`` by ``staging`` with renames (the old copy is removed last)."""
    old = target.with_name(f".{target.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        os.replace(target, old)
    os.replace(staging, target)
    shutil.rmtree(old, ignore_errors=True)


def copy_figures(source: Path, target: Path, manifest: dict[str, dict]) -> None:
    """Copy the figures named in ``manifest`` and the manifest itself to ``target``."""
    target.mkdir(parents=True, exist_ok=True)
    for entry in manifest.values():
        shutil.copy2(source / entry["file"], target / entry["file"])
    write_json_atomic(target / MANIFEST, manifest)


def archive(figures: Path, archive_root: Path, build_id: str, keep: int) -> Path:
    """Keep a copy of a build's figures and manifest under ``archive_root/build_id``.

    Only the ``keep`` newest archives stay; older ones are removed.
    """
    target = archive_root / build_id
    staging = archive_root / f".{build_id}.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(figures, staging)
    swap_in(staging, target)
    archives = sorted((p for p in archive_root.iterdir()
                       if p.is_dir() and not p.name.startswith(".")),
                      key=lambda p: p.stat().st_mtime_ns)
    for old in archives[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return target
