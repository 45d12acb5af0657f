"""The claims ledger file: each claim of the blog series once, in our words, with the
figure that tests it, the number that decides it and the conditions its verdict
follows from (``zspace.site.verdicts`` computes the verdicts).

The claims are data, ``report/claims.toml`` beside the templates, and nothing in the
file is a verdict: each tested claim lists conditions on the notebooks' merged results,
so a changed result changes the verdict like any other number of the report. A
condition is one of::

    flag = "path"                       a boolean result: met where true
    value = "path", above = x           a number against a number or a path
        (or below = x, equals = x, within = [x, tolerance])
    count = "path", above = x           the length of a list (or below, equals)
    rate = "path", above = x            a face rate against a share or another rate
        (or below, at_least), by zspace.faces.compare: apart is met or not met,
        overlapping intervals leave the condition undecided

Any condition may add ``expect = false`` (met where the comparison fails) and
``if_none = true`` or ``false`` (what a null result counts as; otherwise a null is an
error). Paths are those of ``zspace.site.result_paths``. A claim without conditions is
untested, and has no figure or number.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zspace.errors import BuildError
from zspace.site import result_paths

LEDGER = "claims.toml"
MAX_WORDS = 25

_KEYS = {"id", "article", "claim", "figure", "measure", "number", "format", "against",
         "reference", "pick", "needs", "conditions"}
_TESTED_ONLY = ("figure", "measure", "number", "format", "against", "reference",
                "pick", "needs")
_SUBJECTS = ("flag", "value", "count", "rate")
_TESTS = {"flag": (), "value": ("above", "below", "equals", "within"),
          "count": ("above", "below", "equals"), "rate": ("above", "below", "at_least")}
_ID = re.compile(r"[a-z0-9]+(-[a-z0-9]+)*")
_FIGURE = re.compile(r"[A-Z][0-9]+")


class ClaimError(BuildError):
    """The claims ledger is malformed, or names a result or figure that is missing."""


@dataclass(frozen=True)
class Condition:
    """One comparison on the results (see the module docstring)."""

    subject: str  # flag, value, count or rate
    path: str
    test: str = ""  # above, below, equals, within or at_least; "" for a flag
    other: Any = None  # a number, a path or, for equals, a literal
    tolerance: float = 0.0
    expect: bool = True
    if_none: bool | None = None


@dataclass(frozen=True)
class Claim:
    """One claim of the blog as the ledger states it.

    Attributes:
        id: Its name in the ledger (``vae-random-faces``).
        article: The article that tests it.
        text: The claim in our words.
        figure: The figure that tests it (None: untested).
        measure: What the deciding number is (``face rate``).
        number: The results path of the deciding number.
        format: ``num`` or ``pct``.
        against: What the number is compared with: a number or a results path.
        reference: What ``against`` is (``real test images``).
        pick: ``max`` or ``min`` where ``number`` names several results.
        needs: A results path that a build without this test lacks (a sweep).
        conditions: The conditions of the verdict (none: untested).
    """

    id: str
    article: str
    text: str
    figure: str | None = None
    measure: str = ""
    number: str | None = None
    format: str = "num"
    against: str | float | None = None
    reference: str = ""
    pick: str | None = None
    needs: str | None = None
    conditions: tuple[Condition, ...] = ()


def load(path: Path, articles: Iterable[str]) -> list[Claim]:
    """Read and check the ledger.

    Args:
        path: The ledger file (``report/claims.toml``).
        articles: The article keys a claim may name.

    Returns:
        The claims in the file's order.

    Raises:
        ClaimError: The file is not TOML, or an entry is malformed; the message names
            the entry and what is wrong with it.
    """
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as error:
        raise ClaimError(f"{path.name}: not valid TOML ({error})") from None
    extra = sorted(set(data) - {"claim"})
    if extra:
        raise ClaimError(f"{path.name}: unknown top-level key {extra[0]!r} (only "
                         "[[claim]] entries)")
    claims, seen = [], set()
    for number, entry in enumerate(data.get("claim", []), 1):
        claim = parse_claim(entry, set(articles), f"{path.name}, claim {number}")
        if claim.id in seen:
            raise ClaimError(f"{path.name}: claim id {claim.id!r} is used twice")
        seen.add(claim.id)
        claims.append(claim)
    return claims


def parse_claim(entry: dict, articles: set[str], where: str) -> Claim:
    """One ``[[claim]]`` entry, checked; ``where`` names it in errors."""
    if isinstance(entry.get("id"), str):
        where = f"{where} ({entry['id']})"

    def fail(problem: str) -> ClaimError:
        return ClaimError(f"{where}: {problem}")

    unknown = sorted(set(entry) - _KEYS)
    if unknown:
        raise fail(f"unknown key {unknown[0]!r}")
    for key in ("id", "article", "claim"):
        if not isinstance(entry.get(key), str) or not entry[key].strip():
            raise fail(f"needs {key} = \"...\"")
    if not _ID.fullmatch(entry["id"]):
        raise fail("the id must be lower-case words joined by hyphens")
    if entry["article"] not in articles:
        raise fail(f"article {entry['article']!r} is not one of {sorted(articles)}")
    if "\n" in entry["claim"] or len(entry["claim"].split()) > MAX_WORDS:
        raise fail(f"the claim must be one line of at most {MAX_WORDS} words")
    conditions = tuple(parse_condition(c, fail) for c in entry.get("conditions", []))
    if not conditions:
        given = [key for key in _TESTED_ONLY if key in entry]
        if given:
            raise fail(f"an untested claim (no conditions) has no {given[0]}")
        return Claim(entry["id"], entry["article"], entry["claim"])
    _check_tested(entry, fail)
    return Claim(entry["id"], entry["article"], entry["claim"], entry["figure"],
                 entry["measure"], entry["number"], entry.get("format", "num"),
                 entry.get("against"), entry.get("reference", ""), entry.get("pick"),
                 entry.get("needs"), conditions)


def _check_tested(entry: dict, fail: Callable[[str], ClaimError]) -> None:
    """The keys a tested claim has: a figure of its article, a number and what it
    is measured against."""
    for key in ("figure", "measure", "number"):
        if not isinstance(entry.get(key), str) or not entry[key]:
            raise fail(f"a tested claim needs {key} = \"...\"")
    figure = entry["figure"]
    if not _FIGURE.fullmatch(figure) or figure[0] != entry["article"]:
        raise fail(f"figure {figure!r} is not a figure of article {entry['article']}")
    if entry.get("format", "num") not in ("num", "pct"):
        raise fail("format is \"num\" or \"pct\"")
    if entry.get("pick") not in (None, "min", "max"):
        raise fail("pick is \"min\" or \"max\"")
    for key in ("number", "needs"):
        if key in entry:
            _check_path(entry[key], fail)
    against = entry.get("against", 0.0)
    if isinstance(against, str):
        _check_path(against, fail)
    elif not isinstance(against, int | float) or isinstance(against, bool):
        raise fail("against is a number or a path")
    if "reference" in entry and ("against" not in entry
                                 or not isinstance(entry["reference"], str)):
        raise fail("reference is text that says what the against value is")


def parse_condition(table: Any, fail: Callable[[str], ClaimError]) -> Condition:
    """One condition table, checked; ``fail(problem)`` makes the error."""
    if not isinstance(table, dict):
        raise fail("each condition is a table, { rate = \"...\", above = 0.5 }")
    subjects = [s for s in _SUBJECTS if s in table]
    if len(subjects) != 1:
        raise fail(f"a condition has exactly one of {', '.join(_SUBJECTS)}: {table}")
    subject = subjects[0]
    tests = [t for t in _TESTS[subject] if t in table]
    if subject != "flag" and len(tests) != 1:
        raise fail(f"a {subject} condition has exactly one of "
                   f"{', '.join(_TESTS[subject])}: {table}")
    unknown = sorted(set(table) - {subject, *tests, "expect", "if_none"})
    if unknown:
        raise fail(f"unknown key {unknown[0]!r} in condition {table}")
    _check_path(table[subject], fail)
    test = tests[0] if tests else ""
    other, tolerance = table.get(test), 0.0
    if test == "within":
        if (not isinstance(other, list) or len(other) != 2
                or not isinstance(other[1], int | float)):
            raise fail(f"within is [number or path, tolerance]: {table}")
        other, tolerance = other
    if test and test != "equals":
        if isinstance(other, str):
            _check_path(other, fail)
        elif not isinstance(other, int | float) or isinstance(other, bool):
            raise fail(f"{test} is a number or a path: {table}")
    for key in ("expect", "if_none"):
        if key in table and not isinstance(table[key], bool):
            raise fail(f"{key} is true or false: {table}")
    return Condition(subject, table[subject], test, other, float(tolerance),
                     table.get("expect", True), table.get("if_none"))


def paths_of(claim: Claim) -> list[str]:
    """Every results path a claim reads."""
    named = [claim.number, claim.needs,
             claim.against if isinstance(claim.against, str) else None]
    for condition in claim.conditions:
        named.append(condition.path)
        if isinstance(condition.other, str) and condition.test != "equals":
            named.append(condition.other)
    return [path for path in named if path]


def _check_path(path: Any, fail: Callable[[str], ClaimError]) -> None:
    if not result_paths.is_path(path):
        raise fail(f"{path!r} is not a results path (keys joined by dots)")
