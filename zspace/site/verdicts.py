"""The verdicts of the claims ledger, computed from one build's results.

Each condition of a claim (``zspace.site.claims``) is met, not met or undecided (two
face rates whose intervals overlap). The verdict is ``holds`` where every condition
is met, ``does not hold`` where none is met or undecided, ``partly`` otherwise, and
``untested`` for a claim without conditions or whose ``needs`` path the build did not
measure (a sweep that its configuration leaves out).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from zspace.site.claims import LEDGER, Claim, ClaimError, Condition
from zspace.site.result_paths import resolve
from zspace.site.templates import _number as number_text

VERDICTS = ("holds", "partly", "does not hold", "untested")
MET, UNDECIDED, NOT_MET = 1.0, 0.5, 0.0


@dataclass(frozen=True)
class Row:
    """One row of the ledger as the pages show it.

    Attributes:
        id: The claim's id.
        article: The article that tests it (``A`` to ``D``).
        claim: The claim in our words.
        figure: The figure that tests it; None where it is untested.
        verdict: One of :data:`VERDICTS`.
        value: The deciding number (None where untested, or a null result).
        number: The deciding number as the table gives it, with what it is measured
            against; "" where untested.
    """

    id: str
    article: str
    claim: str
    figure: str | None
    verdict: str
    value: float | None
    number: str


def ledger(claims: list[Claim], results: dict, figures: Iterable[str]) -> list[Row]:
    """The rows of the ledger for one build.

    Args:
        claims: The ledger (``zspace.site.claims.load``).
        results: The notebooks' results, merged.
        figures: The catalogue ids of the figures this build made.

    Raises:
        ClaimError: A tested claim names a result that is not there (outside what
            its ``needs`` covers) or a figure that this build did not make.
    """
    figures = set(figures)
    return [_row(claim, results, figures) for claim in claims]


def verdict(outcomes: list[float]) -> str:
    """``holds`` where every outcome is met, ``does not hold`` where none is met or
    undecided, ``partly`` otherwise."""
    if all(o == MET for o in outcomes):
        return "holds"
    return "does not hold" if all(o == NOT_MET for o in outcomes) else "partly"


def _row(claim: Claim, results: dict, figures: set[str]) -> Row:
    untested = Row(claim.id, claim.article, claim.text, None, "untested", None, "")
    if not claim.conditions:
        return untested
    try:
        if claim.needs and not _measured(results, claim.needs):
            return untested
        if claim.figure not in figures:
            raise ClaimError(f"{LEDGER}, claim {claim.id}: figure {claim.figure} was "
                             "not made by this build")
        outcomes = [o for c in claim.conditions for o in _outcomes(c, results)]
        value = _deciding_number(claim, results)
        against = (claim.against if not isinstance(claim.against, str)
                   else _number_at(results, claim.against))
    except KeyError as error:
        raise ClaimError(f"{LEDGER}, claim {claim.id}: {error.args[0]}") from None
    except (TypeError, ValueError) as error:
        raise ClaimError(f"{LEDGER}, claim {claim.id}: {error}") from None
    return Row(claim.id, claim.article, claim.text, claim.figure, verdict(outcomes),
               value, _text(claim, value, against))


def _measured(results: dict, path: str) -> bool:
    try:
        return all(value is not None for _, value in resolve(results, path))
    except KeyError:
        return False


def _outcomes(condition: Condition, results: dict) -> list[float]:
    """Met, undecided or not met, for each result the condition's path names."""
    outcomes = []
    for where, value in resolve(results, condition.path):
        if value is None:
            if condition.if_none is None:
                raise ValueError(f"{where} is null (if_none says what a null "
                                 "counts as)")
            outcome = MET if condition.if_none else NOT_MET
        else:
            outcome = _compare(condition, where, value, results)
        if not condition.expect and outcome != UNDECIDED:
            outcome = MET - outcome
        outcomes.append(outcome)
    return outcomes


def _compare(condition: Condition, where: str, value: Any, results: dict) -> float:
    if condition.subject == "flag":
        if not isinstance(value, bool):
            raise TypeError(f"{where} is not true or false but {value!r}")
        return MET if value else NOT_MET
    if condition.subject == "rate":
        return _compare_rates(condition, where, value, results)
    if condition.subject == "count":
        if not isinstance(value, list):
            raise TypeError(f"{where} is not a list")
        value = len(value)
    if condition.test == "equals":
        return MET if value == condition.other else NOT_MET
    other = condition.other
    if isinstance(other, str):
        other = _number_at(results, other)
    _check_number(value, where)
    if condition.test == "within":
        met = abs(value - other) <= condition.tolerance
    else:
        met = value > other if condition.test == "above" else value < other
    return MET if met else NOT_MET


def _compare_rates(condition: Condition, where: str, value: Any,
                   results: dict) -> float:
    """A face rate against a share or another rate: above, below or level as
    ``zspace.faces.compare`` says (``at_least`` counts level as met)."""
    from zspace.faces import compare

    if not isinstance(value, dict) or not {"rate", "low", "high"} <= set(value):
        raise TypeError(f"{where} is not a face rate (rate, low, high)")
    other = condition.other
    if isinstance(other, str):
        other = _single(results, other)
    found = compare(value, other)
    wanted = "below" if condition.test == "below" else "above"
    if found == wanted or (condition.test == "at_least" and found == "level"):
        return MET
    return UNDECIDED if found == "level" else NOT_MET


def _single(results: dict, path: str) -> Any:
    found = resolve(results, path)
    if len(found) != 1:
        raise ValueError(f"{path} names {len(found)} results where one is needed")
    return found[0][1]


def _number_at(results: dict, path: str) -> float | None:
    value = _single(results, path)
    if value is not None:
        _check_number(value, path)
    return value


def _check_number(value: Any, where: str) -> None:
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise TypeError(f"{where} is not a number but {value!r}")


def _deciding_number(claim: Claim, results: dict) -> float | None:
    found = resolve(results, claim.number)
    if len(found) > 1 and not claim.pick:
        raise ValueError(f"{claim.number} names {len(found)} results: say which "
                         "(pick = \"max\" or \"min\")")
    present = [value for _, value in found if value is not None]
    for value in present:
        _check_number(value, claim.number)
    if not present:
        return None
    return (min if claim.pick == "min" else max)(present)


def _format(value: float | None, style: str) -> str:
    """At most three significant digits, as the ``num`` filter writes them."""
    if value is None:
        return "none"
    return f"{number_text(100 * value)} %" if style == "pct" else number_text(value)


def _text(claim: Claim, value: float | None, against: float | None) -> str:
    text = f"{claim.measure} {_format(value, claim.format)}"
    if claim.against is not None:
        text += f" against {_format(against, claim.format)}"
        if claim.reference:
            text += f" ({claim.reference})"
    return text
