"""Per figure id: added, removed, changed, unreadable or unchanged, and why.

A figure whose bytes are identical on both sides is unchanged without being decoded.
Otherwise both versions are decoded and measured; one whose RMS difference stays within
the tolerance still counts as unchanged, so numeric noise from another machine is not
reported. A changed figure gets a verdict (:mod:`zspace.diff.verdict`): a layout
shift, a change of text, or of content. Whatever the pixels say, the manifest entries
are compared too: they tell the user which parameter, model, data set or code made
the difference, and the environments they record (renderer, CPU, BLAS) which part of
the machine did.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from zspace.diff.environment import describe_environment_changes
from zspace.diff.images import (
    DEFAULT_TOLERANCE,
    PixelDistance,
    UnreadableImage,
    distance,
    load_image,
)
from zspace.diff.sources import DiffError, Side
from zspace.diff.verdict import Verdict, classify

# Display order: what needs a look first.
STATUSES = ("changed", "unreadable", "added", "removed", "unchanged")
# Manifest fields compared one name at a time, then those compared as a whole.
KEYED_FIELDS = ("parameters", "models")
PLAIN_FIELDS = ("notebook", "file", "dataset", "code")
# Fields holding keys or hashes: their first characters are enough to tell them apart.
DIGESTS = ("models", "dataset", "code")
# The manifest entry's record of the renderer and the machine (zspace.environment).
ENVIRONMENT = "environment"
# Why a figure changed when nothing recorded did.
UNEXPLAINED = "provenance unchanged (package versions or nondeterminism?)"
UNEXPLAINED_SAME_MACHINE = ("provenance and environment unchanged (package versions "
                            "or nondeterminism?)")


@dataclass(frozen=True)
class FigureDiff:
    """The comparison of one figure id.

    Attributes:
        figure_id: The catalogue id, e.g. ``A6``.
        status: One of ``STATUSES``.
        file_a: The old version's file, None when the id is new.
        file_b: The new version's file, None when the id was removed.
        distance: Pixel distances, when both versions were decoded.
        manifest: Manifest field -> change; ``parameters`` and ``models`` map each
            differing name to ``{"old": value, "new": value}`` (a side without the
            name has no key), the other fields map to such a pair themselves.
        reason: Why an unreadable figure is so, or how a figure was judged.
        notes: Other things worth knowing (a file that does not match its hash).
        environment: What differs between the environments the two manifest
            entries record, in words (``"cpu: avx512_fp16 added"``).
        environment_recorded: Whether both entries record an environment.
        verdict: A changed figure's kind of change (``layout shift``, ``text``,
            ``content``); None for the others.
    """

    figure_id: str
    status: str
    file_a: Path | None
    file_b: Path | None
    distance: PixelDistance | None = None
    manifest: dict[str, Any] = field(default_factory=dict)
    reason: str = ""
    notes: tuple[str, ...] = ()
    environment: tuple[str, ...] = ()
    environment_recorded: bool = False
    verdict: Verdict | None = None

    @property
    def why(self) -> list[str]:
        """The manifest and environment changes in words, one line per field."""
        lines = describe_changes(self.manifest) + list(self.environment)
        if not lines and self.status == "changed":
            # Same inputs, other pixels: the packages or chance made the change.
            lines = [UNEXPLAINED_SAME_MACHINE if self.environment_recorded
                     else UNEXPLAINED]
        return lines

    def to_dict(self) -> dict[str, Any]:
        d = self.distance
        return {
            "id": self.figure_id, "status": self.status,
            "file_a": self.file_a.name if self.file_a else None,
            "file_b": self.file_b.name if self.file_b else None,
            "rms": d.rms if d else None, "max": d.max if d else None,
            "ssim": d.ssim if d else None, "phash": d.phash if d else None,
            "size_a": list(d.size_a) if d else None,
            "size_b": list(d.size_b) if d else None,
            "resized": d.resized if d else False,
            "verdict": self.verdict.kind if self.verdict else None,
            "verdict_detail": self.verdict.detail if self.verdict else None,
            "manifest": self.manifest, "environment": list(self.environment),
            "why": self.why, "reason": self.reason, "notes": list(self.notes),
        }


@dataclass(frozen=True)
class DiffResult:
    """Every figure id of two sides, compared."""

    a: Side
    b: Side
    tolerance: float
    figures: list[FigureDiff]

    def counts(self) -> dict[str, int]:
        """Number of figures per status, every status present."""
        return {s: sum(f.status == s for f in self.figures) for s in STATUSES}

    @property
    def changed(self) -> bool:
        """Whether any figure differs beyond the tolerance (or cannot be read)."""
        return any(f.status != "unchanged" for f in self.figures)

    @property
    def exit_code(self) -> int:
        """1 when anything changed, else 0."""
        return 1 if self.changed else 0

    def to_dict(self) -> dict[str, Any]:
        return {"a": self.a.to_dict(), "b": self.b.to_dict(),
                "tolerance": self.tolerance, "changed": self.changed,
                "counts": self.counts(),
                "figures": [f.to_dict() for f in self.figures]}


def compare_sides(a: Side, b: Side,
                  tolerance: float = DEFAULT_TOLERANCE) -> DiffResult:
    """Compare every figure id of ``a`` (old) with ``b`` (new).

    Args:
        a: The old version.
        b: The new version.
        tolerance: RMS difference (in [0, 1]) up to which a figure is unchanged.

    Returns:
        The result, figures sorted by id.

    Raises:
        DiffError: The tolerance is negative or not a number.
    """
    if not (tolerance >= 0 and math.isfinite(tolerance)):
        raise DiffError(f"tolerance {tolerance}: expected a number >= 0")
    ids = sorted(set(a.manifest) | set(b.manifest))
    return DiffResult(a, b, tolerance, [_compare(i, a, b, tolerance) for i in ids])


def _compare(figure_id: str, a: Side, b: Side, tolerance: float) -> FigureDiff:
    old, new = a.manifest.get(figure_id), b.manifest.get(figure_id)
    file_a = a.folder / old["file"] if old else None
    file_b = b.folder / new["file"] if new else None
    if new is None:
        return FigureDiff(figure_id, "removed", file_a, None,
                          reason=_readability(file_a), notes=_hash_notes(old, file_a))
    if old is None:
        return FigureDiff(figure_id, "added", None, file_b,
                          reason=_readability(file_b), notes=_hash_notes(new, file_b))
    figure = FigureDiff(
        figure_id, "unchanged", file_a, file_b, manifest=manifest_changes(old, new),
        notes=_hash_notes(old, file_a, "A") + _hash_notes(new, file_b, "B"),
        environment=tuple(describe_environment_changes(old.get(ENVIRONMENT),
                                                       new.get(ENVIRONMENT))),
        environment_recorded=ENVIRONMENT in old and ENVIRONMENT in new)
    digest_a = _sha256(file_a)
    if digest_a is not None and digest_a == _sha256(file_b):
        return replace(figure, reason="identical files")
    return _measure(figure, tolerance)


def _measure(figure: FigureDiff, tolerance: float) -> FigureDiff:
    """Decode both versions and judge the figure by its pixels."""
    try:
        image_a = _load(figure.file_a, "A")
        image_b = _load(figure.file_b, "B")
    except UnreadableImage as error:
        return replace(figure, status="unreadable", reason=str(error))
    measured = distance(image_a, image_b)
    figure = replace(figure, distance=measured)
    if measured.resized or measured.rms > tolerance:
        verdict = classify(np.asarray(image_a, dtype=np.float64) / 255.0,
                           np.asarray(image_b, dtype=np.float64) / 255.0, tolerance)
        figure = replace(figure, status="changed", verdict=verdict)
    if measured.resized:
        # A reader sees a resized figure even where the pixels agree after resizing.
        return replace(figure, reason=(
            f"size {_size(measured.size_a)} -> {_size(measured.size_b)}; B resized "
            "to A's size for the pixel distances"))
    if measured.rms > tolerance:
        return replace(figure, reason=f"rms {measured.rms:.4f} > tolerance "
                       f"{tolerance:.4f}")
    return replace(figure, reason=f"rms {measured.rms:.4f} within tolerance "
                   f"{tolerance:.4f}")


def _load(path: Path, side: str):
    try:
        return load_image(path)
    except UnreadableImage as error:
        raise UnreadableImage(f"{side}: {error}") from None


def _readability(path: Path) -> str:
    try:
        load_image(path)
    except UnreadableImage as error:
        return str(error)
    return ""


def _sha256(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def _hash_notes(entry: dict, path: Path, side: str = "") -> tuple[str, ...]:
    # A file edited or damaged after its build no longer matches the manifest.
    actual, recorded = _sha256(path), entry.get("sha256")
    if actual is None or recorded is None or actual == recorded:
        return ()
    where = f"{side}: " if side else ""
    return (f"{where}{path.name} does not match the sha256 in its manifest",)


def _size(size: tuple[int, int]) -> str:
    return f"{size[0]}x{size[1]}"


def manifest_changes(old: dict, new: dict) -> dict[str, Any]:
    """What differs between two manifest entries of one figure id.

    Returns:
        Field -> change, as described for ``FigureDiff.manifest``; empty when the
        provenance is the same.
    """
    changes: dict[str, Any] = {}
    for name in KEYED_FIELDS:
        before, after = old.get(name) or {}, new.get(name) or {}
        differing = {key: _pair(before, after, key)
                     for key in sorted(set(before) | set(after))
                     if _canonical(before, key) != _canonical(after, key)}
        if differing:
            changes[name] = differing
    for name in PLAIN_FIELDS:
        if _canonical(old, name) != _canonical(new, name):
            changes[name] = _pair(old, new, name)
    return changes


def _canonical(entry: dict, key: str) -> str | None:
    # JSON text tells 1 from 1.0 and true, which == on Python values does not.
    return json.dumps(entry[key], sort_keys=True) if key in entry else None


def _pair(old: dict, new: dict, key: str) -> dict[str, Any]:
    return {side: entry[key] for side, entry in (("old", old), ("new", new))
            if key in entry}


def describe_changes(changes: dict[str, Any]) -> list[str]:
    """The manifest changes in words, e.g. ``parameters: bars 3 -> 4``."""
    lines = []
    for name in KEYED_FIELDS:
        if name in changes:
            items = ", ".join(f"{key} {_arrow(pair, name in DIGESTS)}"
                              for key, pair in changes[name].items())
            lines.append(f"{name}: {items}")
    for name in PLAIN_FIELDS:
        if name in changes:
            lines.append(f"{name}: {_arrow(changes[name], name in DIGESTS)}")
    return lines


def _arrow(pair: dict[str, Any], is_digest: bool) -> str:
    def show(side: str) -> str:
        if side not in pair:
            return "(none)"
        value = pair[side]
        if is_digest and isinstance(value, str):
            return value[:8]
        return json.dumps(value)

    return f"{show('old')} -> {show('new')}"
