"""The Jinja2 environment the pages render in: strict about missing values, and
with the report's number filters. Shared by the article pages and the explorer page.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2


def _number(value: Any, digits: int = 3) -> str:
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:.{digits}g}" if abs(value) < 1000 else f"{value:,.0f}"


def _percent(value: float, digits: int = 1) -> str:
    return f"{100 * value:.{digits}f} %"


def _variety(value: dict) -> str:
    """A variety of faces (``zspace.latent.variety.variety_of_faces``) as the tables
    give it, ``0.777 [0.766, 0.788]``, or why there is none."""
    if value["variety"] is None:
        return f"too few faces ({value['n_faces']:,})"
    return (f"{_number(value['variety'])} [{_number(value['low'])}, "
            f"{_number(value['high'])}]")


def _flatten(tree: dict, prefix: str = "") -> list[tuple[str, Any]]:
    """(dotted key, value) pairs of a nested dict, for tables of the configuration."""
    rows = []
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            rows.extend(_flatten(value, f"{prefix}{key}."))
        else:
            rows.append((f"{prefix}{key}", value))
    return rows


def _versus(a: dict, b: dict | float) -> str:
    """``above``/``below``/``level``: face rate ``a`` against ``b``, a face rate or a
    share (``0.5``). Above or below only where the intervals and the training seeds'
    ranges both separate (``zspace.faces.compare``)."""
    from zspace.faces import compare

    return compare(a, b)


def template_environment(templates: Path, autoescape: bool) -> jinja2.Environment:
    """The Jinja2 environment of the pages: strict, with the report's filters."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(templates),
        autoescape=autoescape,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["num"] = _number
    env.filters["pct"] = _percent
    env.filters["flatten"] = _flatten
    env.filters["variety"] = _variety
    env.filters["versus"] = _versus
    return env
