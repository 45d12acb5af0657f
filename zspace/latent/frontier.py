"""Which samplers' quality-variety curves are beaten by another's (figure C10).

Each sampler's knob traces a curve of points, each with a face rate (a face-rate dict
with its interval) and a variety of its faces (``variety``, None where too few faces
gave one, and its ``variety_interval``). A sampler is *dominated* where another has,
for every point of its curve, a point at least as good on both axes and better on one,
on the point estimates. It escapes only *narrowly* where that holds once a tie inside
the beaten point's 95 % intervals counts as no worse.
"""

from __future__ import annotations

from collections.abc import Callable

Point = dict
Relation = Callable[[Point, Point], bool]


def beats(q: Point, p: Point) -> bool:
    """Whether q is at least as good as p on both axes and better on one (a point
    without a variety beats nothing and is beaten by none)."""
    return _no_worse_and_better(q, p, p["faces"]["rate"], p["variety"])


def matches(q: Point, p: Point) -> bool:
    """Whether q is no worse than p on either axis up to p's own intervals, and
    better on one by the point estimates: a tie inside the noise counts."""
    return (p["variety"] is not None and _no_worse_and_better(
        q, p, p["faces"]["low"], p["variety_interval"][0]))


def _no_worse_and_better(q: Point, p: Point, rate_floor: float,
                         variety_floor: float) -> bool:
    """q reaches both floors and beats p on one axis by the point estimates."""
    if q["variety"] is None or p["variety"] is None:
        return False
    better = q["faces"]["rate"] > p["faces"]["rate"] or q["variety"] > p["variety"]
    return q["faces"]["rate"] >= rate_floor and q["variety"] >= variety_floor and better


def beaten_by(curves: dict[str, dict], relation: Relation) -> dict[str, list[str]]:
    """Per sampler, the others with a point that ``relation``-beats each of its
    points that has a variety (none for a curve without such a point).

    Args:
        curves: Sampler name -> ``{"points": [...]}``.
        relation: :func:`beats` or :func:`matches`.
    """
    found = {}
    for name, curve in curves.items():
        measured = [p for p in curve["points"] if p["variety"] is not None]
        found[name] = sorted(
            other for other in curves if other != name and measured and all(
                any(relation(q, p) for q in curves[other]["points"]) for p in measured))
    return found


def compare_curves(curves: dict[str, dict]) -> dict[str, dict | list]:
    """The verdicts on a set of curves.

    Returns:
        ``dominated`` (name -> the samplers that dominate it), ``nearly_dominated``
        (the same for samplers that escape only inside the intervals) and
        ``unmeasured`` (samplers with no point that has a variety, compared with
        none).
    """
    dominated = beaten_by(curves, beats)
    nearly = {name: others for name, others in beaten_by(curves, matches).items()
              if not dominated[name]}
    unmeasured = [name for name, curve in curves.items()
                  if all(p["variety"] is None for p in curve["points"])]
    return {"dominated": dominated, "nearly_dominated": nearly,
            "unmeasured": unmeasured}
