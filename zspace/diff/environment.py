"""What differs between the environments two builds recorded for one figure.

Each figure's manifest entry may carry ``environment`` (:mod:`zspace.environment`):
the renderer (matplotlib, FreeType), the CPU features oneDNN and OpenBLAS choose their
kernels by, NumPy's BLAS and the machine. When the pixels changed but the provenance
did not, this is where the reason usually is.
"""

from __future__ import annotations

from typing import Any

from zspace.environment import GROUPS


def describe_environment_changes(old: dict | None, new: dict | None) -> list[str]:
    """What differs between two figures' environments, one line per group.

    Args:
        old: Side A's ``environment`` entry, None when A's manifest has none.
        new: Side B's, likewise.

    Returns:
        E.g. ``["renderer: freetype 2.6.1 -> 2.13.2", "cpu: avx512_fp16 added"]``;
        one line saying which side recorded none when only one did; empty when
        both are equal or neither has one.
    """
    if old is None and new is None:
        return []
    if old is None or new is None:
        side = "A" if old is None else "B"
        return [f"environment: not recorded in {side} (built before it was)"]
    lines = []
    names = [g for g in GROUPS if g in old or g in new]
    names += sorted((set(old) | set(new)) - set(GROUPS))
    for group in names:
        parts = _group_changes(old.get(group), new.get(group))
        if parts:
            lines.append(f"{group}: {', '.join(parts)}")
    return lines


def _group_changes(old: Any, new: Any) -> list[str]:
    if old == new:
        return []
    if not isinstance(old, dict) or not isinstance(new, dict):
        return [f"{_show(old)} -> {_show(new)}"]
    parts = []
    for key in [*old, *(k for k in new if k not in old)]:
        before, after = old.get(key), new.get(key)
        if before == after:
            continue
        if isinstance(before, list) and isinstance(after, list):
            parts += [f"{flag} added" for flag in after if flag not in before]
            parts += [f"{flag} removed" for flag in before if flag not in after]
        else:
            parts.append(f"{key} {_show(before)} -> {_show(after)}")
    return parts


def _show(value: Any) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, list):
        return " ".join(map(str, value)) or "(none)"
    return str(value)
