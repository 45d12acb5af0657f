"""Paths into the notebooks' merged results, as the claims ledger names its numbers.

A path is dotted keys (``reconstruction.vae_over_ae``), each optionally followed by list
selectors in brackets:

- ``[-1]``, ``[0]``: the element at that index;
- ``[decoder=upsample]``: in a list of dicts, the first whose ``decoder`` is that
  value (numbers compare as numbers: ``[kl_factor=0.5]``);
- ``[kl_factor=min]``, ``[kl_factor=max]``: the dict with the smallest or largest
  ``kl_factor``;
- ``[factors=7]``: in a list of numbers, the element at the position of 7 in the
  sibling list ``factors`` (``sharpening.laplacian_variance[factors=7]``).

A key ``*`` stands for every value of a dict, so one path can name several results.
"""

from __future__ import annotations

import re
from typing import Any

# One step: a key after the start or a dot, or a [selector].
_STEP = re.compile(r"(?:^|\.)([^.\[\]]+)|\[([^\[\]]+)\]")


def steps(path: str) -> list[tuple[str, str]] | None:
    """``[(kind, text)]``, kind ``key`` or ``select``; None where ``path`` is
    malformed (``a..b``, ``[0]`` first, unbalanced brackets)."""
    found, end = [], 0
    for match in _STEP.finditer(path):
        if match.start() != end:
            return None
        key, selector = match.groups()
        found.append(("key", key) if key is not None else ("select", selector))
        end = match.end()
    if end != len(path) or not found or found[0][0] != "key":
        return None
    return found


def is_path(path: Any) -> bool:
    """Whether ``path`` is a well-formed results path."""
    return isinstance(path, str) and bool(path) and steps(path) is not None


def top_key(path: str) -> str:
    """The result a path starts from: the name a notebook recorded it under."""
    return steps(path)[0][1]


def resolve(results: dict, path: str) -> list[tuple[str, Any]]:
    """Every ``(concrete path, value)`` that ``path`` names in ``results``: one,
    unless the path has ``*``. A null on the way gives a null value.

    Raises:
        KeyError: The results hold nothing at some step; the message names it.
    """
    found: list[tuple[str, Any, Any]] = [("", None, results)]  # (where, parent, value)
    for kind, text in steps(path) or []:
        step = []
        for where, parent, value in found:
            if value is None:
                step.append((where, None, None))
            elif kind == "key" and text == "*" and isinstance(value, dict):
                step.extend((f"{where}.{k}".lstrip("."), value, v)
                            for k, v in value.items())
            elif kind == "key" and isinstance(value, dict) and text in value:
                step.append((f"{where}.{text}".lstrip("."), value, value[text]))
            elif kind == "select" and isinstance(value, list):
                step.append((f"{where}[{text}]", value,
                             _select(parent, value, text, where)))
            else:
                raise KeyError(f"{where or 'the results'} has no {text!r}")
        found = step
    return [(where, value) for where, _, value in found]


def _select(parent: Any, items: list, selector: str, where: str) -> Any:
    if re.fullmatch(r"-?\d+", selector):
        index = int(selector)
        if not -len(items) <= index < len(items):
            raise KeyError(f"{where} has no element {index}")
        return items[index]
    key, eq, wanted = selector.partition("=")
    if not eq:
        raise KeyError(f"{where}: [{selector}] is neither an index nor key=value")
    if items and all(isinstance(item, dict) for item in items):
        if any(key not in item for item in items):
            raise KeyError(f"{where}: an element has no {key!r}")
        if wanted in ("min", "max"):
            return (min if wanted == "min" else max)(items, key=lambda i: i[key])
        matches = [item for item in items if _equal(item[key], wanted)]
    else:  # parallel lists: the position of the value in the sibling list
        keys = parent.get(key) if isinstance(parent, dict) else None
        if not isinstance(keys, list) or len(keys) != len(items):
            raise KeyError(f"{where}: no sibling list {key!r} of the same length")
        matches = [item for item, k in zip(items, keys, strict=True)
                   if _equal(k, wanted)]
    if not matches:
        raise KeyError(f"{where} has no element with {key} = {wanted}")
    return matches[0]


def _equal(value: Any, wanted: str) -> bool:
    try:
        return float(value) == float(wanted)
    except (TypeError, ValueError):
        return str(value) == wanted
