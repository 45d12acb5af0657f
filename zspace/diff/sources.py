"""The two sides of a figure diff: a folder, an archived build, or a git revision.

Each side ends up as a folder of PNGs with its ``manifest.json``. Folders and archives
are used where they lie; a revision's committed ``figures/`` is copied out of git into a
temporary folder, removed when the side is closed.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from zspace.errors import ZspaceError

MANIFEST = "manifest.json"
# Where a build or a site keeps its figures, relative to the folder a user names.
FIGURE_FOLDERS = (".", "figures", "site/figures")
WORKING = "working"  # the name shown for the repository's uncommitted figures/


class DiffError(ZspaceError):
    """A side of a figure diff is missing or has no usable manifest."""

    exit_code = 2


@dataclass(frozen=True)
class Side:
    """One version of the figures.

    Attributes:
        argument: What the user gave (``HEAD``, a path, an archive id).
        kind: ``folder``, ``archive``, ``revision`` or ``working``.
        description: Where the figures came from, for people.
        folder: The folder holding the PNGs.
        manifest: Figure id -> manifest entry (``file``, ``sha256``, ``parameters``...).
    """

    argument: str
    kind: str
    description: str
    folder: Path
    manifest: dict[str, dict] = field(repr=False)

    @property
    def slug(self) -> str:
        """A file-name-safe short name, for the default output folder."""
        name = self.argument
        if self.kind == "archive":
            name = f"{self.folder.parent.name}-{self.folder.name}"  # profile-id
        elif self.kind == "folder":
            # build/smoke/site/figures reads best as "smoke".
            kept = [p for p in self.folder.parts if p not in ("site", "figures")]
            name = kept[-1] if kept else self.folder.name
        return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_.") or self.kind

    def to_dict(self) -> dict[str, str]:
        return {"argument": self.argument, "kind": self.kind,
                "description": self.description}


@contextmanager
def open_side(argument: str | None, *, repo: Path, build_root: Path,
              profile: str = "default") -> Iterator[Side]:
    """Resolve one side of a diff, trying each kind of argument in turn.

    Args:
        argument: A folder (with ``manifest.json`` in it, in ``figures/`` or in
            ``site/figures/``), an archived build id under ``build_root/archive``
            (a unique prefix, ``PROFILE/ID``, ``latest`` or ``previous`` also do),
            or a git revision of ``repo``. None: the working tree's ``figures/``.
        repo: The repository root (its ``figures/`` and its git history).
        build_root: The build folder whose ``archive/`` holds archived builds.
        profile: The profile whose archives ``latest`` and ``previous`` mean.

    Yields:
        The side; a revision's temporary copy is removed on exit.

    Raises:
        DiffError: The argument is none of these, or its manifest is unusable.
    """
    if argument is None:
        folder = repo / "figures"
        yield Side(WORKING, WORKING, f"working tree {folder}", folder,
                   read_manifest(folder / MANIFEST, f"working tree {folder}"))
        return
    folder = _as_folder(argument) or _as_archive(argument, build_root, profile)
    if folder is not None:
        archives = (build_root / "archive").resolve()
        kind = "archive" if folder.parent.parent == archives else "folder"
        what = f"{kind} {folder}"
        yield Side(argument, kind, what, folder, read_manifest(folder / MANIFEST, what))
        return
    commit = _commit_of(argument, repo)
    if commit is None:
        raise DiffError(
            f"{argument!r} is not a folder with a {MANIFEST}, an archived build under "
            f"{build_root / 'archive'}, or a revision of the repository at {repo}")
    scratch = Path(tempfile.mkdtemp(prefix="zspace-diff-"))
    try:
        what = f"revision {argument} ({commit[:10]})"
        manifest = _export_revision(repo, commit, what, scratch)
        yield Side(argument, "revision", what, scratch, manifest)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _as_folder(argument: str) -> Path | None:
    path = Path(argument).expanduser()
    if path.is_file() and path.name == MANIFEST:
        return path.parent.resolve()
    if not path.is_dir():
        return None
    for inner in FIGURE_FOLDERS:
        if (path / inner / MANIFEST).is_file():
            return (path / inner).resolve()
    raise DiffError(f"folder {argument} has no {MANIFEST} in it, in figures/ or in "
                    "site/figures/; expected a build, a site or a figures folder")


def _as_archive(argument: str, build_root: Path, profile: str) -> Path | None:
    root = build_root / "archive"
    if argument in ("latest", "previous"):
        builds = _archived(root / profile)
        need = 1 if argument == "latest" else 2
        if len(builds) < need:
            raise DiffError(f"{argument!r}: profile {profile} has {len(builds)} "
                            f"archived builds under {root / profile}, {need} needed")
        return builds[-need]
    if not root.is_dir():
        return None
    if (root / argument / MANIFEST).is_file():
        return (root / argument).resolve()
    matches = [p for folder in sorted(root.iterdir()) if folder.is_dir()
               for p in _archived(folder) if p.name.startswith(argument)]
    if len(matches) > 1:
        names = ", ".join(f"{p.parent.name}/{p.name}" for p in matches)
        raise DiffError(f"{argument!r} matches several archived builds: {names}")
    return matches[0] if matches else None


def _archived(profile_folder: Path) -> list[Path]:
    # Build ids start with their UTC time to the second; the folder's time orders
    # two builds made within one second, as the archive's own pruning does.
    if not profile_folder.is_dir():
        return []
    builds = [p.resolve() for p in profile_folder.iterdir()
              if p.is_dir() and not p.name.startswith(".")]
    return sorted(builds, key=lambda p: (p.name[:15], p.stat().st_mtime_ns, p.name))


def _git(repo: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True,
                          check=False)


def _commit_of(revision: str, repo: Path) -> str | None:
    # A leading dash would be read as an option by git, not as a revision.
    if revision.startswith("-") or shutil.which("git") is None:
        return None
    found = _git(repo, "rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}")
    return found.stdout.decode().strip() if found.returncode == 0 else None


def _export_revision(repo: Path, commit: str, what: str, scratch: Path) -> dict:
    """Copy a revision's ``figures/`` manifest and PNGs into ``scratch``."""
    shown = _git(repo, "show", f"{commit}:figures/{MANIFEST}")
    if shown.returncode != 0:
        raise DiffError(f"{what} has no figures/{MANIFEST}; was the default profile "
                        "published and committed at that revision?")
    (scratch / MANIFEST).write_bytes(shown.stdout)
    manifest = read_manifest(scratch / MANIFEST, what)
    for entry in manifest.values():
        blob = _git(repo, "show", f"{commit}:figures/{entry['file']}")
        # A file the manifest names but git lacks stays missing; the comparison
        # reports it for that figure instead of failing the whole diff.
        if blob.returncode == 0:
            (scratch / entry["file"]).write_bytes(blob.stdout)
    return manifest


def read_manifest(path: Path, what: str) -> dict[str, dict]:
    """Load and check a figure manifest.

    Args:
        path: The ``manifest.json`` file.
        what: The side it belongs to, for messages.

    Returns:
        Figure id -> entry; every entry names a plain file name under ``file``.

    Raises:
        DiffError: The file is missing, not JSON, or not shaped like a manifest.
    """
    if not path.is_file():
        raise DiffError(f"{what}: no {MANIFEST} at {path}")
    try:
        manifest = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DiffError(f"{what}: {path} is not valid JSON ({error})") from None
    if not isinstance(manifest, dict):
        raise DiffError(f"{what}: {path} is not a mapping of figure ids")
    for figure_id, entry in manifest.items():
        file = entry.get("file") if isinstance(entry, dict) else None
        # A file name with folders in it could point outside the side's folder.
        if not isinstance(file, str) or not file or Path(file).name != file:
            raise DiffError(f"{what}: figure {figure_id} in {path} has no plain "
                            "'file' name")
    return manifest
