"""Dominated and narrowly escaping samplers on hand-made quality-variety curves."""

import pytest

from zspace.faces import FaceRate
from zspace.latent.frontier import (
    beats,
    compare_curves,
    interpolate_at,
    interval_verdict,
    matches,
    nearest_variety,
    truncation_match,
)


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


def knob(value: float, faces: int, variety: float | None) -> dict:
    return {**point(faces, variety), "value": value}


# A Gaussian's std scale: more variety, fewer faces as it grows.
GAUSSIAN = [knob(0.5, 290, 0.2), knob(1.0, 240, 0.4), knob(1.5, 150, 0.6)]


def test_interpolation_along_a_curve_finds_the_knob_between_two_points():
    found = interpolate_at(GAUSSIAN, "variety", 0.3)
    assert found["value"] == pytest.approx(0.75)
    assert found["faces"]["rate"] == pytest.approx(265 / 300)
    found = interpolate_at(GAUSSIAN, "faces", 195 / 300)
    assert found["value"] == pytest.approx(1.25)
    assert found["variety"] == pytest.approx(0.5)
    assert found["variety_interval"] == pytest.approx([0.48, 0.52])
    assert interpolate_at(GAUSSIAN, "variety", 0.9) is None  # beyond the curve
    assert interpolate_at([knob(1.0, 200, None)] + GAUSSIAN[1:], "variety", 0.3) is None


def test_the_ellipse_gains_loses_or_ties_against_the_gaussian_at_its_face_rate():
    gains = truncation_match(knob(0.7, 195, 0.6), GAUSSIAN)
    assert gains["verdict"] == "gains"
    assert gains["at_face_rate"]["scale"] == pytest.approx(1.25)
    assert gains["at_variety"]["scale"] == pytest.approx(1.5)
    assert gains["at_variety"]["verdict"] == "gains"  # 195 faces, not 150
    assert truncation_match(knob(0.7, 195, 0.51), GAUSSIAN)["verdict"] == "level"
    assert truncation_match(knob(0.7, 195, 0.44), GAUSSIAN)["verdict"] == "loses"
    assert truncation_match(knob(0.7, 195, None), GAUSSIAN)["verdict"] is None
    assert interval_verdict((0.1, 0.2), (0.3, 0.4)) == "loses"


def test_the_point_nearest_a_variety_is_the_closest_measured_one():
    assert nearest_variety(GAUSSIAN, 0.55)["value"] == 1.5
    assert nearest_variety([knob(1.0, 10, None)], 0.5) is None
