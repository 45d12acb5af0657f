"""Judgments published with the report, so a fresh clone judges (almost) nothing.

Judging was the largest part of a fresh build's cost: dlib's detector runs one image
at a time at 160 px, and each set's variety compares up to 500 pairs. The build that
publishes the report into the repository (``build.publish``) also writes what it
judged to ``judged/<profile>/``:

- ``sets/<set folder>/``: each sample set's ``manifest.json`` (its key, settings and
  models, and the size and sha256 of each of its files, the images' included),
  ``scores.npz`` (the detections' scores) and ``summary.json`` (face rates, quality
  and variety). Not the images (12 MB a set) nor the judge's features: a clone
  computes both in a few seconds.
- ``detections/<digest>.npz``: the detections of every other batch of images a
  notebook judged (the curves of C10, the sweep points of D), by the sha256 of the
  images' bytes and shape, with the judge's settings and dlib's version.

A set maker or a notebook draws its images as ever and takes a judgment from here
only where the images are the released ones byte for byte (and, for a set, the key
matches); the detector then would give the same scores, so nothing differs but the
time. Anything else (other images, a damaged file) is judged here as before. A set's
key covers the judge's code and settings but not dlib's version, which
``pyproject.toml`` bounds to one major release; a batch's detections name it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from zspace import paths
from zspace.errors import ForeignFolder
from zspace.files import sha256_of, swap_in
from zspace.samplesets.stored import MANIFEST, pack_scores, unpack_scores

JUDGED = paths.ROOT / "judged"
SETS, DETECTIONS = "sets", "detections"  # the two kinds of judgment, one folder each
FILES = ("scores.npz", "summary.json")  # what a set's judgment is, beside its manifest
IMAGES = "images.npy"


def folder_for(profile: str) -> Path:
    """``judged/<profile>/``, for the configuration's ``name``."""
    return paths.inside(JUDGED, profile)


def digest(images: np.ndarray) -> str:
    """The name of a batch's detections: the sha256 of its bytes and shape."""
    images = np.ascontiguousarray(images)
    found = hashlib.sha256(images)
    found.update(f"{images.dtype}{images.shape}".encode())
    return found.hexdigest()


def save_detections(path: Path, scores: list[np.ndarray], judge: dict) -> None:
    """Write one batch's detection scores (one array per image) with the judge's
    settings, atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f"{path.stem}.partial-{os.getpid()}.npz")
    np.savez(partial, **pack_scores(scores),
             judge=np.array(json.dumps(judge, sort_keys=True)))
    os.replace(partial, path)


def load_detections(path: Path, judge: dict) -> list[np.ndarray] | None:
    """One batch's detection scores, if ``path`` holds them for this judge; else
    None (missing, unreadable, or judged with other settings)."""
    try:
        with np.load(path) as stored:
            if json.loads(str(stored["judge"])) != judge:
                return None
            return unpack_scores(stored["scores"], stored["offsets"])
    except (OSError, ValueError, KeyError):
        return None


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


def publish(set_folders: list[Path], detection_files: list[Path],
            target: Path) -> tuple[int, int]:
    """Replace ``target`` (``judged/<profile>/``) by these sets' judgments and
    these detection files; return how many of each were written.

    The new folder is assembled beside the old one and swapped in whole, so an
    interrupted publish leaves the old release as it was.

    Raises:
        ForeignFolder: ``target`` holds anything a publish did not write.
    """
    check_owned(target)
    staging = target.with_name(f".{target.name}.staging")
    shutil.rmtree(staging, ignore_errors=True)
    (staging / SETS).mkdir(parents=True)
    (staging / DETECTIONS).mkdir()
    folders = sorted(set(map(Path, set_folders)))
    for folder in folders:
        entry = staging / SETS / folder.name
        entry.mkdir()
        for name in (MANIFEST, *FILES):
            shutil.copyfile(folder / name, entry / name)
    names = {Path(f).name: Path(f) for f in detection_files}
    for name, path in sorted(names.items()):
        shutil.copyfile(path, staging / DETECTIONS / name)
    swap_in(staging, target)
    return len(folders), len(names)


def check_owned(target: Path) -> None:
    """Raise unless ``target`` is missing or holds only what :func:`publish`
    writes: ``sets/`` of folders with a manifest, scores and a summary, and
    ``detections/`` of ``.npz`` files."""
    if not target.exists():
        return
    if not target.is_dir() or target.is_symlink():
        raise ForeignFolder(f"{target} is not a folder of judgments; the build "
                            "leaves it alone")

    def foreign_in(entry: Path) -> bool:
        if entry.is_symlink() or not entry.is_dir():
            return True
        if entry.name == DETECTIONS:
            return any(p.is_symlink() or not p.is_file() or p.suffix != ".npz"
                       for p in entry.iterdir())
        expected = {MANIFEST, *FILES}
        return entry.name != SETS or any(
            p.is_symlink() or not p.is_dir()
            or {q.name for q in p.iterdir()} != expected for p in entry.iterdir())

    foreign = sorted(entry.name for entry in target.iterdir() if foreign_in(entry))
    if foreign:
        names = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
        raise ForeignFolder(f"{target} holds entries that are not published judgments "
                            f"({names}); the build replaces the folder whole, so it "
                            "leaves this one alone. Move them elsewhere")
