"""The Jinja2 environment the pages render in: strict about missing values, and
with the report's number filters. Shared by the article pages and the explorer page.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup


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


# Markdown's own punctuation in a user's string: backslash-escaped. An underscore
# only at a word's edge, where it could start or end emphasis (``leaky_relu`` stays).
_MARKDOWN_SPECIALS = re.compile(r"([\\`*\[\]|])|(?<![0-9A-Za-z])_|_(?![0-9A-Za-z])")
_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}


def markdown_text(value: Any, for_html: bool) -> str:
    """``value`` as literal text in Markdown (a user's path, name or setting): its
    Markdown punctuation escaped, on one line (a table cell ends at a newline).

    For the HTML pages the template's autoescaping writes ``<``, ``>`` and ``&`` as
    entities; for the Markdown pages this does, so no raw HTML gets through.
    """
    text = " ".join(str(value).splitlines())
    text = _MARKDOWN_SPECIALS.sub(lambda m: "\\" + m.group(0), text)
    if not for_html:
        text = re.sub(r"[&<>]", lambda m: _ENTITIES[m.group(0)], text)
    return text


def code_span(value: Any, for_html: bool, table: bool = False) -> str:
    """``value`` as one Markdown code span, fenced by more backticks than it holds.

    Markdown escapes a code span's content itself, so for the HTML pages the span is
    marked safe: autoescaping it first would show ``&#34;&gt;`` on the page.

    Args:
        value: The text.
        for_html: Rendering for the HTML pages (an autoescaping environment).
        table: The span is in a table cell, where GitHub needs ``|`` escaped even
            inside code (Python-Markdown, which renders the HTML, does not).
    """
    text = " ".join(str(value).splitlines())
    if table and not for_html:
        text = text.replace("|", "\\|")
    fence = "`" * (max(map(len, re.findall("`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    span = f"{fence}{pad}{text}{pad}{fence}"
    return Markup(span) if for_html else span


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
    # User strings (paths, names, settings) in the Markdown of the pages.
    env.filters["md"] = lambda value: markdown_text(value, autoescape)
    env.filters["code"] = lambda value, table=False: code_span(value, autoescape, table)
    return env
