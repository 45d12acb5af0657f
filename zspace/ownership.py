"""What zspace may delete: folders it made, and in them only what a build wrote.

Every build root a session opens in gets a marker file, ``.zspace-build``. ``clean``
refuses a folder without one, so a mistyped ``--build-dir`` (``.``, ``~``) loses
nothing. A build root made before the marker existed counts as zspace's when it holds
a profile folder with a build's record of stages and its log; it is marked then. Even
in a marked root, ``clean`` removes only the entries a build makes (profile folders,
the caches, the archive, diff pages, compiled kernels), never anything else found
there.

``publish-models`` replaces ``models/<profile>/`` whole, so that folder must hold
nothing but published models' files.
"""

from __future__ import annotations

import json
from pathlib import Path

from zspace.config import NAME
from zspace.errors import ForeignFolder

MARKER = ".zspace-build"
# What a build writes directly under its root, besides the profile folders.
MADE = ("cache", "archive", "diff", "kernels")
CACHE = "cache"
# Files of a profile folder (build/<profile>/) that only a build writes.
STATE_FILE, LOG_FILE = "state.json", "build.log"
PROFILE_FILES = (STATE_FILE, LOG_FILE, "build.previous.log")
# The two files of each published model in models/<profile>/.
PUBLISHED_SUFFIXES = (".weights.bin", ".json")


def claim(root: Path) -> None:
    """Create the build root ``root`` if needed and mark it as zspace's."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    marker = root / MARKER
    if not marker.is_file():
        marker.write_text("A zspace build folder: `pipeline.py clean` may remove the "
                          "profile folders and caches a build made here.\n")


def is_profile(folder: Path) -> bool:
    """Whether ``folder`` is a profile folder a build made: a profile name holding a
    file only a build writes (its state, its log)."""
    return (folder.is_dir() and not folder.is_symlink()
            and NAME.fullmatch(folder.name) is not None
            and any((folder / name).is_file() for name in PROFILE_FILES))


def _built_before_markers(folder: Path) -> bool:
    """Whether ``folder`` is a profile folder of a build made before the marker: its
    log, and a state file that reads as a build's record of stages (a file named
    ``state.json`` alone is too common to go by)."""
    if not is_profile(folder) or not (folder / LOG_FILE).is_file():
        return False
    try:
        stages = json.loads((folder / STATE_FILE).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(stages, dict) and all(
        isinstance(stage, dict) and "key" in stage for stage in stages.values())


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
    if any(_built_before_markers(child) for child in root.iterdir()):
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


def check_published(folder: Path) -> None:
    """Raise unless ``folder`` (``models/<profile>/``) is missing or holds only
    published models' files, which ``publish-models`` may replace.

    Raises:
        ForeignFolder: Naming the folder and the first entries that are not
            published models' files.
    """
    folder = Path(folder)
    if not folder.exists():
        return
    if not folder.is_dir() or folder.is_symlink():
        raise ForeignFolder(f"{folder} is not a folder of published models; "
                            "publish-models leaves it alone")
    foreign = sorted(p.name for p in folder.iterdir()
                     if p.is_symlink() or not p.is_file()
                     or not p.name.endswith(PUBLISHED_SUFFIXES))
    if foreign:
        names = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
        raise ForeignFolder(f"{folder} holds files that are not published models "
                            f"({names}); publish-models replaces the folder whole, "
                            "so it leaves this one alone. Move them elsewhere")
