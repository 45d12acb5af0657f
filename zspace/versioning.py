"""Hashes of source code, so cached results are rebuilt when the code that made them
changes.

Two kinds: :func:`code_digest` hashes bytes (cheap stages: the data cache, the
report), :func:`meaning_digest` hashes what Python runs (the notebooks, which take
minutes): a comment, a docstring or a reflowed line leaves it unchanged.
"""

from __future__ import annotations

import ast
import functools
import hashlib
from collections.abc import Callable
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
    return _digest(sources, lambda file: file.read_bytes())


def meaning_digest(*sources: str | Path) -> str:
    """Like :func:`code_digest`, over each Python file's syntax tree without its
    docstrings: comments, docstrings, blank lines, line breaks and quoting style
    change nothing; any change to what runs (a name, a number, a moved function)
    changes the digest. A file that does not parse is hashed by its bytes.
    """
    return _digest(sources, normalised_source)


def normalised_source(file: Path) -> bytes:
    """The syntax tree of a Python file without docstrings, as bytes."""
    stat = file.stat()
    return _normalised(file, stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=512)
def _normalised(file: Path, mtime_ns: int, size: int) -> bytes:
    # Keyed by the file's time and size as well: a build replans several times, and
    # parsing the package takes a fifth of a second.
    try:
        tree = ast.parse(file.read_bytes(), filename=str(file))
    except (SyntaxError, ValueError):
        return file.read_bytes()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef
                       | ast.AsyncFunctionDef)
                and body and _is_docstring(body[0])):
            node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree, annotate_fields=False, include_attributes=False).encode()


def _is_docstring(statement: ast.stmt) -> bool:
    value = getattr(statement, "value", None)
    return (isinstance(statement, ast.Expr) and isinstance(value, ast.Constant)
            and isinstance(value.value, str))


def _digest(sources, read: Callable[[Path], bytes]) -> str:
    digest = hashlib.sha256()
    for source in sources:
        path = Path(source)
        path = path if path.is_absolute() else paths.ROOT / path
        files = sorted(path.rglob("*.py")) if path.is_dir() else [path]
        for file in files:
            # Names relative to the source given, so a moved checkout hashes the same.
            name = file.relative_to(path) if path.is_dir() else Path(file.name)
            digest.update(name.as_posix().encode())
            digest.update(read(file))
    return digest.hexdigest()[:16]
