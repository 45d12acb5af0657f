"""Hashes of source code, so cached results are rebuilt when the code that made them
changes."""

from __future__ import annotations

import hashlib
from pathlib import Path

from zspace import paths


def code_digest(*sources: str | Path) -> str:
    """sha256 (16 hex digits) over the given files, or every ``.py`` file of folders.

    Args:
        sources: Files or folders, absolute or relative to the repository root.

    Returns:
        A digest that changes when any byte of those files changes, or a file is
        added, removed or renamed.
    """
    digest = hashlib.sha256()
    for source in sources:
        path = Path(source)
        path = path if path.is_absolute() else paths.ROOT / path
        files = sorted(path.rglob("*.py")) if path.is_dir() else [path]
        for file in files:
            # Names relative to the source given, so a moved checkout hashes the same.
            name = file.relative_to(path) if path.is_dir() else Path(file.name)
            digest.update(name.as_posix().encode())
            digest.update(file.read_bytes())
    return digest.hexdigest()[:16]
