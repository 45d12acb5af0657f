"""The independent face judge: real weights on the project's real (synthetic) faces."""

from __future__ import annotations

import numpy as np
import pytest

from zspace.data.synthetic import TEST_INDEX_OFFSET, generate
from zspace.errors import BuildError, DataError
from zspace.faces import (
    FaceJudge,
    FaceRate,
    check_sanity,
    rank_agreement,
    sanity_limits,
    shuffle_pixels,
    wilson_interval,
)


@pytest.fixture(scope="module")
def faces() -> np.ndarray:
    """Held-out faces of the default data set (64 px), as the judge sees them."""
    images, _ = generate(24, 64, seed=2024, start=TEST_INDEX_OFFSET, workers=1,
                         progress=False)
    return images


@pytest.fixture(scope="module")
def judge() -> FaceJudge:
    return FaceJudge()


def test_real_faces_rate_high(faces, judge):
    rate = judge.rate(faces)
    assert rate.n == len(faces)
    assert rate.rate >= 0.9
    assert rate.low < rate.rate <= rate.high


def test_noise_and_shuffled_pixels_rate_zero(faces, judge):
    noise = np.random.default_rng(0).integers(0, 256, faces.shape, dtype=np.uint8)
    shuffled = shuffle_pixels(faces, rng=1)
    assert judge.rate(noise).faces == 0
    assert judge.rate(shuffled).faces == 0
    # Shuffling keeps every colour of every image, only the places change.
    assert np.array_equal(np.sort(shuffled.reshape(len(faces), -1, 3), axis=1),
                          np.sort(faces.reshape(len(faces), -1, 3), axis=1))


def test_face_rate_of_a_set_with_a_known_count_of_faces(faces, judge):
    """12 single faces, 6 noise tiles and 4 tiles with two faces side by side: only
    the 12 hold exactly one face."""
    noise = np.random.default_rng(2).integers(0, 256, (6, 64, 64, 3), dtype=np.uint8)
    pairs = np.concatenate([faces[[0, 2, 3, 5]], faces[[12, 14, 15, 17]]], axis=2)
    counts = np.concatenate([judge.count_faces(faces[:12]), judge.count_faces(noise),
                             judge.count_faces(pairs)])
    assert counts.tolist() == [1] * 12 + [0] * 6 + [2] * 4
    rate = FaceRate.from_counts(counts)
    assert (rate.faces, rate.n) == (12, 22)
    assert rate.rate == pytest.approx(12 / 22)


@pytest.mark.parametrize("successes, n, low, high", [
    # Newcombe (1998), Statistics in Medicine 17:857-872: the worked examples of the
    # score method without continuity correction.
    (81, 263, 0.2553, 0.3662),
    (15, 148, 0.0624, 0.1605),
    (0, 20, 0.0, 0.1611),
    (1, 29, 0.0061, 0.1718),
])
def test_wilson_interval_matches_published_values(successes, n, low, high):
    assert wilson_interval(successes, n) == pytest.approx((low, high), abs=5e-5)


def test_wilson_interval_and_judge_reject_bad_input(judge):
    with pytest.raises(DataError, match="successes"):
        wilson_interval(3, 0)
    with pytest.raises(DataError, match="successes"):
        wilson_interval(5, 4)
    with pytest.raises(DataError, match=r"uint8 RGB images \(n, h, w, 3\)"):
        judge.count_faces(np.zeros((2, 64, 64, 3), dtype=np.float32))
    with pytest.raises(DataError, match="n >= 1"):
        judge.count_faces(np.zeros((0, 64, 64, 3), dtype=np.uint8))


def _row(label, faces, n, expected, limit):
    return {**FaceRate.from_counts([1] * faces + [0] * (n - faces)).as_dict(),
            "label": label, "expected": expected, "limit": limit}


def test_sanity_rows_stop_a_build_naming_the_judge_and_the_rows():
    limits = sanity_limits(64)
    good = {"real": _row("real held-out", 97, 100, *limits["real"]),
            "noise": _row("pixel noise", 0, 100, *limits["noise"]),
            "broken": _row("shuffled", 1, 100, *limits["broken"])}
    check_sanity(good)
    bad = {**good, "real": _row("real held-out", 90, 100, *limits["real"]),
           "broken": _row("shuffled", 5, 100, *limits["broken"])}
    with pytest.raises(BuildError) as error:
        check_sanity(bad, "the test judge")
    message = str(error.value)
    assert "the test judge" in message
    assert "real held-out: face rate 0.900" in message and "at least 0.95" in message
    assert "shuffled: face rate 0.050" in message and "at most 0.01" in message
    assert "pixel noise" not in message


def test_small_images_have_a_lower_bar_for_real_faces():
    assert sanity_limits(64)["real"] == ("at least", 0.95)
    assert sanity_limits(32)["real"] == ("at least", 0.85)
    assert sanity_limits(32)["noise"] == ("at most", 0.01)


def test_rank_agreement():
    rates = [0.9, 0.5, 0.1, 0.0]
    assert rank_agreement(rates, [1.0, 2.0, 5.0, 9.0], higher_is_better=False) == 1.0
    assert rank_agreement(rates, [1.0, 2.0, 5.0, 9.0]) == -1.0
    assert rank_agreement(rates, [0.2, 0.8, 0.1, 0.05]) == pytest.approx(0.8)
    assert rank_agreement([0.0, 0.0, 0.0], [1.0, 2.0, 3.0]) is None


def test_a_stricter_threshold_from_kept_scores_equals_a_stricter_judge(faces, judge):
    stricter = judge.threshold + 0.4
    kept = judge.count_faces(faces[:24], threshold=stricter)
    assert np.array_equal(kept, FaceJudge(threshold=stricter).count_faces(faces[:24]))
    assert kept.sum() <= judge.count_faces(faces[:24]).sum()
    with pytest.raises(ValueError, match="below the judge's"):
        judge.count_faces(faces[:2], threshold=judge.threshold - 0.1)


def test_rates_over_seeds_pool_the_images_and_keep_each_seeds_rate():
    from zspace.faces import over_seeds

    pooled = over_seeds([_rate(80, 100), _rate(90, 100), _rate(70, 100)])
    assert (pooled["faces"], pooled["n"], pooled["n_seeds"]) == (240, 300, 3)
    assert pooled["rate"] == pytest.approx(0.8) == pooled["mean"]
    assert (pooled["seed_low"], pooled["seed_high"]) == (0.7, 0.9)
    assert (pooled["low"], pooled["high"]) == pytest.approx(wilson_interval(240, 300))
    with pytest.raises(DataError, match="one seed at least"):
        over_seeds([])


def test_two_rates_differ_only_where_the_intervals_and_the_seeds_separate():
    from zspace.faces import compare, over_seeds

    high = over_seeds([_rate(900, 1000), _rate(880, 1000)])
    low = over_seeds([_rate(700, 1000), _rate(720, 1000)])
    assert compare(high, low) == "above" and compare(low, high) == "below"
    # Pooled intervals apart, but one seed of the lower model reaches the other's:
    # the gap is a seed's, not the model's.
    spread = over_seeds([_rate(650, 1000), _rate(700, 1000), _rate(890, 1000)])
    assert spread["high"] < high["low"]
    assert compare(high, spread) == "level"
    # Against a plain share, and for single rates, the intervals decide.
    assert compare(high, 0.5) == "above" and compare(_rate(400, 1000), 0.5) == "below"
    assert compare(_rate(500, 1000), 0.5) == "level"


def _rate(faces: int, n: int) -> dict:
    from zspace.faces import FaceRate

    return FaceRate.from_counts([1] * faces + [0] * (n - faces)).as_dict()


def test_crossing_brackets_where_the_rate_falls_below_the_level():
    from zspace.faces import crossing

    def point(x, rate):
        return {"x": x, "faces": {"rate": rate, "low": rate - 0.05,
                                  "high": rate + 0.05}}

    points = [point(1.0, 0.9), point(0.05, 0.1), point(0.2, 0.6), point(0.1, 0.3)]
    found = crossing(points, level=0.45)
    assert (found["below"]["x"], found["above"]["x"]) == (0.1, 0.2)
    assert found["level"] == 0.45
    assert crossing([point(0.1, 0.8), point(1.0, 0.9)], level=0.45) is None
    assert crossing([point(0.1, 0.1), point(1.0, 0.2)], level=0.45) is None
    assert crossing([], level=0.5) is None
