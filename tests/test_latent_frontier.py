"""Dominated and narrowly escaping samplers on hand-made quality-variety curves."""

from zspace.faces import FaceRate
from zspace.latent.frontier import beats, compare_curves, matches


def point(faces: int, variety: float | None, n: int = 300, half: float = 0.02) -> dict:
    return {"faces": FaceRate.from_counts([1] * faces + [0] * (n - faces)).as_dict(),
            "variety": variety,
            "variety_interval": None if variety is None
            else [variety - half, variety + half]}


def curve(*points: dict) -> dict:
    return {"points": list(points)}


def test_a_point_beats_another_only_when_no_worse_on_both_axes_and_better_on_one():
    assert beats(point(280, 0.7), point(270, 0.6))
    assert beats(point(270, 0.7), point(270, 0.6))
    assert not beats(point(270, 0.6), point(270, 0.6))  # equal: better on neither
    assert not beats(point(290, 0.5), point(270, 0.6))  # a trade, not a win
    assert not beats(point(280, None), point(10, 0.1))  # no variety, no verdict


def test_a_tie_inside_the_intervals_matches_but_does_not_beat():
    q, p = point(271, 0.595), point(270, 0.6)
    assert not beats(q, p)
    assert matches(q, p)
    assert not matches(point(200, 0.9), point(270, 0.6))  # far below on faces


def test_curves_are_dominated_nearly_dominated_or_unmeasured():
    curves = {
        "best": curve(point(295, 0.7), point(250, 0.85)),
        "worse": curve(point(280, 0.6), point(240, 0.8)),  # beaten everywhere
        "close": curve(point(296, 0.69), point(251, 0.84)),  # ties inside the noise
        "blank": curve(point(10, None), point(5, None)),
    }
    verdicts = compare_curves(curves)
    assert verdicts["dominated"]["worse"] == ["best", "close"]
    assert verdicts["dominated"]["best"] == []
    assert verdicts["nearly_dominated"] == {"best": ["close"], "close": ["best"],
                                           "blank": []}
    assert verdicts["unmeasured"] == ["blank"]
    assert verdicts["dominated"]["blank"] == []
