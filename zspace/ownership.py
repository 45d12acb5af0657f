"""What zspace may delete: folders it made, and in them only what a build wrote.

Every build root zspace creates (or finds empty) gets a marker file,
``.zspace-build``, and every profile folder a session opens gets ``.zspace-profile``.
``clean`` refuses a folder without the first, so a mistyped ``--build-dir`` (``.``,
``~``) loses nothing, even after a build wrote into it. A build root made before the
markers existed counts as zspace's when it holds a profile folder with a build's
record of stages and its log, and nothing but what builds make; it is marked then.
Even in a marked root, ``clean`` removes only the entries a build makes (marked
profile folders, the caches, the archive, diff pages, compiled kernels), never
anything else found there.

``publish-models`` replaces ``models/<profile>/`` whole, so that folder must hold
nothing but committed models' files.
"""

from __future__ import annotations

import json
from pathlib import Path

from zspace.config import NAME
from zspace.errors import ForeignFolder

MARKER = ".zspace-build"
# The same for each profile folder (build/<profile>/) a session opens.
PROFILE_MARKER = ".zspace-profile"
# What a build writes directly under its root, besides the profile folders.
MADE = ("cache", "archive", "diff", "kernels")
CACHE = "cache"
# Files of a profile folder (build/<profile>/) that a build writes.
STATE_FILE, LOG_FILE = "state.json", "build.log"
# The two files of each committed model in models/<profile>/.
COMMITTED_SUFFIXES = (".weights.bin", ".json")


def claim(root: Path) -> None:
    """Create the build root ``root`` if needed, and mark it as zspace's where zspace
    made it: a folder it creates, one it finds empty, or one holding a build made
    before the marker existed. A folder that already holds other things (``~``, a
    project) stays unmarked: a build may still write into it, but ``clean`` will not
    empty it."""
    root = Path(root)
    existed = root.exists()
    root.mkdir(parents=True, exist_ok=True)
    marker = root / MARKER
    if marker.is_file():
        return
    if existed and any(root.iterdir()) and not _built_before_markers_root(root):
        return
    marker.write_text("A zspace build folder: `pipeline.py clean` may remove the "
                      "profile folders and caches a build made here.\n")


def claim_profile(folder: Path) -> None:
    """Create the profile folder ``folder`` if needed and mark it as a build's, so
    ``clean`` tells it from a user's folder that happens to hold a ``build.log``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    marker = folder / PROFILE_MARKER
    if not marker.is_file():
        marker.write_text("A zspace profile folder: `pipeline.py clean` removes it.\n")


def _named_like_profile(folder: Path) -> bool:
    return (folder.is_dir() and not folder.is_symlink()
            and NAME.fullmatch(folder.name) is not None)


def is_profile(folder: Path) -> bool:
    """Whether ``folder`` is a profile folder a build made: it carries the profile
    marker, or it is one of a build made before the markers."""
    return _named_like_profile(folder) and (
        (folder / PROFILE_MARKER).is_file() or _built_before_markers(folder))


def _built_before_markers(folder: Path) -> bool:
    """Whether ``folder`` is a profile folder of a build made before the markers: its
    log, and a state file that reads as a build's record of at least one stage (a
    file named ``state.json`` alone is too common to go by)."""
    if not _named_like_profile(folder) or not (folder / LOG_FILE).is_file():
        return False
    try:
        stages = json.loads((folder / STATE_FILE).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(stages, dict) and bool(stages) and all(
        isinstance(stage, dict) and "key" in stage for stage in stages.values())


def _built_before_markers_root(root: Path) -> bool:
    """Whether ``root`` is a build root made before the markers: at least one
    profile folder of such a build, and nothing but what builds make (a folder that
    also holds other things, say a home folder a build once wrote into, is not)."""
    children = [child for child in root.iterdir() if child.name != MARKER]
    profiles = [child for child in children if _built_before_markers(child)]
    return bool(profiles) and all(
        child in profiles or (child.name in MADE and child.is_dir()
                              and not child.is_symlink())
        for child in children)


def check_build_root(root: Path) -> None:
    """Raise unless ``root`` is a build root zspace made; mark one made before the
    marker existed.

    Raises:
        ForeignFolder: ``root`` is not a folder, or has neither the marker nor a
            profile folder of a build.
    """
    root = Path(root)
    if not root.is_dir():
        raise ForeignFolder(f"{root} is not a folder, so not a zspace build folder")
    if (root / MARKER).is_file():
        return
    if _built_before_markers_root(root):
        claim(root)
        return
    shown = root if root.is_absolute() else f"{root} ({root.resolve()})"
    raise ForeignFolder(
        f"{shown} is not a zspace build folder (it has no {MARKER} file and no "
        f"profile folder with a build's {STATE_FILE} and {LOG_FILE}); nothing was "
        "removed. Give the folder a build wrote into with --build-dir")


def made_by_build(root: Path, caches: bool) -> list[Path]:
    """The entries of build root ``root`` that a build made, for ``clean``.

    Args:
        root: A checked build root (see :func:`check_build_root`).
        caches: Include ``cache/`` (the data and model caches).

    Returns:
        Profile folders and the build's own folders, sorted; never the marker, a
        link or anything else found in ``root``.
    """
    made = []
    for child in sorted(Path(root).iterdir()):
        if child.is_symlink() or not child.is_dir():
            continue
        if is_profile(child) or (child.name in MADE
                                 and (caches or child.name != CACHE)):
            made.append(child)
    return made


def check_committed_models(folder: Path) -> None:
    """Raise unless ``folder`` (``models/<profile>/``) is missing or holds only
    committed models' files, which ``publish-models`` may replace.

    Raises:
        ForeignFolder: Naming the folder and the first entries that are not
            committed models' files.
    """
    folder = Path(folder)
    if not folder.exists():
        return
    if not folder.is_dir() or folder.is_symlink():
        raise ForeignFolder(f"{folder} is not a folder of published models; "
                            "publish-models leaves it alone")
    foreign = sorted(p.name for p in folder.iterdir()
                     if p.is_symlink() or not p.is_file()
                     or not p.name.endswith(COMMITTED_SUFFIXES))
    if foreign:
        names = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
        raise ForeignFolder(f"{folder} holds files that are not published models "
                            f"({names}); publish-models replaces the folder whole, "
                            "so it leaves this one alone. Move them elsewhere")
