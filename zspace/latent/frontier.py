"""Which samplers' quality-variety curves are beaten by another's (figure C10).

Each sampler's knob traces a curve of points, each with a face rate (a face-rate dict
with its interval) and a variety of its faces (``variety``, None where too few faces
gave one, and its ``variety_interval``). A sampler is *dominated* where another has,
for every point of its curve, a point at least as good on both axes and better on one,
on the point estimates. It escapes only *narrowly* where that holds once a tie inside
the beaten point's 95 % intervals counts as no worse.

A point of one curve is also matched against another curve by linear interpolation
along it (:func:`truncation_match`: the PCA ellipse against the fitted Gaussian, at
the same face rate and at the same variety).
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


def _on(point: Point, axis: str) -> tuple[float, float, float]:
    """A point's estimate and 95 % interval on ``axis`` ("faces" or "variety")."""
    if axis == "faces":
        return point["faces"]["rate"], point["faces"]["low"], point["faces"]["high"]
    return point["variety"], *point["variety_interval"]


def interpolate_at(points: list[Point], axis: str, target: float) -> Point | None:
    """The point where a curve first reaches ``target`` on ``axis``, linearly
    interpolated between the two neighbouring measured points that bracket it.

    Args:
        points: A curve's points in knob order (``value``, ``faces``, ``variety``,
            ``variety_interval``); those without a variety are skipped.
        axis: "faces" (the face rate) or "variety".
        target: The value to reach on that axis.

    Returns:
        A point of the same shape (knob ``value``, face rate with ``low`` and
        ``high``, variety and its interval, all interpolated), or None where no
        two neighbours bracket ``target``.
    """
    measured = [p for p in points if p["variety"] is not None]
    for a, b in zip(measured, measured[1:], strict=False):
        ya, yb = _on(a, axis)[0], _on(b, axis)[0]
        if min(ya, yb) <= target <= max(ya, yb):
            t = 0.0 if ya == yb else (target - ya) / (yb - ya)

            def mix(u: float, v: float, t: float = t) -> float:
                return u + t * (v - u)

            return {"value": mix(a["value"], b["value"]),
                    "faces": {k: mix(a["faces"][k], b["faces"][k])
                              for k in ("rate", "low", "high")},
                    "variety": mix(a["variety"], b["variety"]),
                    "variety_interval": [mix(u, v) for u, v in zip(
                        a["variety_interval"], b["variety_interval"], strict=True)]}
    return None


def interval_verdict(own: tuple[float, float], other: tuple[float, float]) -> str:
    """"gains" where the interval ``own`` lies above ``other``, "loses" below,
    "level" where they overlap."""
    if own[0] > other[1]:
        return "gains"
    return "loses" if own[1] < other[0] else "level"


def truncation_match(ellipse: Point, gaussian: list[Point]) -> dict:
    """The PCA ellipse's point against the fitted Gaussian's curve, matched once on
    the face rate and once on the variety.

    Args:
        ellipse: One point of the PCA ellipse (face rate, variety and interval).
        gaussian: The Gaussian's curve points along its std scale.

    Returns:
        ``at_face_rate``: the Gaussian's ``scale`` with the ellipse's face rate, its
        ``variety`` (and interval) there against ``pca_variety``; ``at_variety``:
        the ``scale`` with the ellipse's variety, its ``faces`` there against
        ``pca_faces``; each with a ``verdict`` ("gains", "level", "loses": the
        ellipse's interval above, overlapping or below the Gaussian's), or None
        where the curve does not reach the ellipse's value. ``verdict`` is the
        variety's at the matched face rate.
    """
    found: dict = {"at_face_rate": None, "at_variety": None, "verdict": None}
    if ellipse["variety"] is None:
        return found
    rate_match = interpolate_at(gaussian, "faces", ellipse["faces"]["rate"])
    if rate_match is not None:
        found["at_face_rate"] = {
            "scale": rate_match["value"], "variety": rate_match["variety"],
            "variety_interval": rate_match["variety_interval"],
            "pca_variety": ellipse["variety"],
            "pca_variety_interval": ellipse["variety_interval"],
            "verdict": interval_verdict(ellipse["variety_interval"],
                                        rate_match["variety_interval"])}
        found["verdict"] = found["at_face_rate"]["verdict"]
    variety_match = interpolate_at(gaussian, "variety", ellipse["variety"])
    if variety_match is not None:
        pca_faces = ellipse["faces"]
        found["at_variety"] = {
            "scale": variety_match["value"], "faces": variety_match["faces"],
            "pca_faces": pca_faces,
            "verdict": interval_verdict((pca_faces["low"], pca_faces["high"]),
                                        (variety_match["faces"]["low"],
                                         variety_match["faces"]["high"]))}
    return found


def nearest_variety(points: list[Point], target: float) -> Point | None:
    """The measured point of a curve whose variety is closest to ``target`` (the
    first of equals), or None where no point has a variety."""
    measured = [p for p in points if p["variety"] is not None]
    return min(measured, key=lambda p: abs(p["variety"] - target), default=None)
