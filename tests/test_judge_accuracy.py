import numpy as np
import pytest

from zspace.errors import DataError
from zspace.networks.judge_accuracy import attribute_accuracy, rotation_accuracy

NAMES = ["glasses", "beard", "face_width", "constant"]


def _data(n=200, seed=0):
    """Training and test attributes: two binary ones (standardised, so their two
    values are not 0 and 1), one continuous, one constant."""
    rng = np.random.default_rng(seed)

    def draw(count):
        return np.column_stack([
            np.where(rng.random(count) < 0.3, 1.53, -0.65),  # glasses: 30 % high
            np.where(rng.random(count) < 0.9, -0.33, 3.0),  # beard: 90 % low
            rng.normal(0.0, 1.0, count),
            np.zeros(count)])

    return draw(5 * n), draw(n)


def test_perfect_predictions_score_full_marks():
    train, truth = _data()
    found = attribute_accuracy(truth, truth, train, NAMES)
    assert sorted(found["binary"]) == ["beard", "glasses"]
    assert list(found["continuous"]) == ["face_width"]
    assert (found["n_binary"], found["n_continuous"], found["n_constant"]) == (2, 1, 1)
    assert found["binary_accuracy_mean"] == 1.0
    assert found["continuous_correlation_mean"] == pytest.approx(1.0)
    assert found["continuous_r2_mean"] == pytest.approx(1.0)
    assert found["n_test"] == 200


def test_sides_of_the_midpoint_decide_a_binary_attribute():
    train, truth = _data()
    predicted = truth.copy()
    # Glasses: a shrunk prediction stays on its side of the midpoint 0.44 ...
    predicted[:, 0] = 0.44 + 0.1 * (truth[:, 0] - 0.44)
    # ... beard: the first 50 predictions cross to the wrong side.
    predicted[:50, 1] = np.where(truth[:50, 1] > 1.335, -0.33, 3.0)
    found = attribute_accuracy(predicted, truth, train, NAMES)
    assert found["binary"]["glasses"]["accuracy"] == 1.0
    assert found["binary"]["beard"]["accuracy"] == pytest.approx(0.75)
    assert found["binary_accuracy_min"] == {"attribute": "beard", "accuracy": 0.75}
    # Always naming "no beard" is right as often as beards are absent.
    assert found["binary"]["beard"]["majority"] == pytest.approx(
        np.mean(truth[:, 1] < 1.335))


def test_noisy_continuous_predictions_correlate_less():
    train, truth = _data()
    rng = np.random.default_rng(1)
    predicted = truth.copy()
    predicted[:, 2] = truth[:, 2] + rng.normal(0.0, 1.0, len(truth))
    found = attribute_accuracy(predicted, truth, train, NAMES)
    r = found["continuous"]["face_width"]["r"]
    assert 0.6 < r < 0.8  # 1 / sqrt(2) in expectation
    assert found["continuous_correlation_min"] == {"attribute": "face_width", "r": r}
    assert found["continuous_r2_mean"] < 0.2  # the noise costs as much as the signal


def test_no_attribute_of_a_kind_gives_none():
    train, truth = _data()
    found = attribute_accuracy(truth[:, 2:], truth[:, 2:], train[:, 2:], NAMES[2:])
    assert found["binary_accuracy_mean"] is None
    assert found["binary_accuracy_min"] is None


def test_shapes_that_disagree_are_refused():
    train, truth = _data()
    with pytest.raises(DataError):
        attribute_accuracy(truth[:, :3], truth, train, NAMES)
    with pytest.raises(DataError):
        attribute_accuracy(truth, truth, train, NAMES[:3])


def test_rotation_accuracy_counts_the_named_turns():
    logits = np.eye(4)[[0, 1, 2, 3, 0]]
    assert rotation_accuracy(logits, np.array([0, 1, 2, 3, 1])) == pytest.approx(0.8)
    with pytest.raises(DataError):
        rotation_accuracy(logits, np.array([0, 1]))
