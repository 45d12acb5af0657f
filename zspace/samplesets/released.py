"""Judged sample sets published with the report, so a fresh clone judges nothing.

Judging is most of a set's cost: dlib's detector runs one image at a time at 160 px,
and each set's variety compares a thousand pairs of faces. The build that publishes
the report into the repository (``build.publish``) also writes each of its sets'
judgments to ``judged/<profile>/<set folder>/``:

- ``manifest.json``, the set's own: its key, settings and models, and the size and
  sha256 of each of its files, the images' included;
- ``scores.npz`` (the detections' scores) and ``summary.json`` (face rates, quality
  and variety).

Not the images (12 MB a set) nor the judge's features: a clone computes both in a few
seconds. The set maker draws a set's images as ever, and takes the judgment from here
only where the key matches and the images are the released ones byte for byte; the
judge then would give the same scores, so nothing differs but the time. Anything else
(another key, other images, a damaged file) is judged here as before.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from zspace import paths
from zspace.config import Config
from zspace.errors import ForeignFolder
from zspace.files import sha256_of
from zspace.samplesets.stored import MANIFEST

JUDGED = paths.ROOT / "judged"
FILES = ("scores.npz", "summary.json")  # what a judgment is, beside the manifest
IMAGES = "images.npy"


def folder_for(config: Config) -> Path:
    """``judged/<profile>/``."""
    return paths.inside(JUDGED, config.name)


def find(released: Path, folder_name: str, key: str,
         images_sha256: str) -> dict[str, Any] | None:
    """The released manifest of the set stored as ``folder_name``, if its judgment
    applies to images with this sha256 under this key; else None.

    A missing, unreadable or damaged entry is None too: the set is judged anew.
    """
    entry = Path(released) / folder_name
    try:
        manifest = json.loads((entry / MANIFEST).read_text())
        files = manifest["files"]
        if manifest["key"] != key or files[IMAGES]["sha256"] != images_sha256:
            return None
        if any(sha256_of(entry / name) != files[name]["sha256"] for name in FILES):
            return None
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return manifest


def copy_judgment(released: Path, folder_name: str, into: Path) -> None:
    """Copy a released judgment's files (not its manifest) into a set's folder."""
    for name in FILES:
        shutil.copyfile(Path(released) / folder_name / name, Path(into) / name)


def publish(set_folders: list[Path], target: Path) -> int:
    """Replace ``target`` (``judged/<profile>/``) by the judgments of these sets.

    The new folder is assembled beside the old one and swapped in whole, so an
    interrupted publish leaves the old release as it was. Returns the sets written.

    Raises:
        ForeignFolder: ``target`` holds anything a publish did not write.
    """
    check_owned(target)
    staging = target.with_name(f".{target.name}.staging")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    written = 0
    for folder in sorted(set(map(Path, set_folders))):
        entry = staging / folder.name
        entry.mkdir()
        for name in (MANIFEST, *FILES):
            shutil.copyfile(folder / name, entry / name)
        written += 1
    old = target.with_name(f".{target.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        os.replace(target, old)
    os.replace(staging, target)
    shutil.rmtree(old, ignore_errors=True)
    return written


def check_owned(target: Path) -> None:
    """Raise unless ``target`` is missing or holds only released judgments: folders
    of a manifest, scores and a summary, as :func:`publish` writes them."""
    if not target.exists():
        return
    if not target.is_dir() or target.is_symlink():
        raise ForeignFolder(f"{target} is not a folder of judged sample sets; the "
                            "build leaves it alone")
    expected = {MANIFEST, *FILES}
    foreign = sorted(
        entry.name for entry in target.iterdir()
        if entry.is_symlink() or not entry.is_dir()
        or {p.name for p in entry.iterdir()} != expected)
    if foreign:
        names = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
        raise ForeignFolder(f"{target} holds entries that are not judged sample sets "
                            f"({names}); the build replaces the folder whole, so it "
                            "leaves this one alone. Move them elsewhere")
