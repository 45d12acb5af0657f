"""The held-out stopping rule: one function for the window, its gain and the
decision, recorded in the history by the trainer's checkpoint."""

import pytest

from zspace.config import TrainConfig
from zspace.training.stopping import GAIN, WINDOW, StoppingRule, monitored, record


def rule(improvement=0.01, min_epochs=5, smoothing=1, window=0.2):
    return StoppingRule(window, improvement, min_epochs, smoothing)


def stops(values, **settings) -> bool:
    return rule(**settings).read_values(values).stop


def test_the_rule_reads_the_held_out_squared_error_where_there_is_one():
    assert monitored({"val_total_loss": [1.0], "val_mse": [0.1]}) == "val_mse"
    assert monitored({"val_total_loss": [1.0]}) == "val_total_loss"
    assert monitored({"val_loss": [1.0]}) == "val_loss"
    # A squared error still falling by 7 % a fifth keeps training going; the same
    # history of a BCE loss sitting on its floor (a 0.1 % fall) would have stopped.
    mse = [0.01 * 0.965**epoch for epoch in range(12)]
    bce = [2270.0 + m for m in mse]
    assert not stops(mse, improvement=0.05, min_epochs=10)
    assert stops(bce, improvement=0.05, min_epochs=10)


def test_window_gain_and_decision():
    falling = [100 / (epoch + 1) for epoch in range(10)]
    assert not stops(falling)
    flat = [100.0] * 5 + [99.95] * 5
    assert stops(flat)
    assert not stops(flat, min_epochs=11)  # too early to judge
    assert not stops(flat, improvement=0.0)  # rule off
    # Ten epochs: the last fifth is epochs 9 and 10, compared with epoch 8.
    reading = rule().read_values([10.0] * 7 + [5.0, 4.98, 4.97])
    assert (reading.window, reading.compared_with_epoch) == (2, 8)
    assert reading.gain == pytest.approx(0.03 / 5.0)
    assert reading.stop
    assert not stops([10.0] * 7 + [5.0, 4.9, 4.8])


def test_no_reading_before_two_epochs():
    reading = rule().read_values([1.0])
    assert reading.gain is None and not reading.stop


def test_smoothing_averages_both_ends_of_the_window():
    # One lucky epoch at the window's start: the raw rule sees no gain and stops
    # while the curve still falls by about 6 % a window.
    values = [10.0 * 0.97**epoch for epoch in range(14)]
    values[-4] *= 0.94  # a noisy low at the epoch the window starts from
    assert stops(values, improvement=0.05)
    assert not stops(values, improvement=0.05, smoothing=3)
    reading = rule(smoothing=3).read_values(values)
    assert reading.window == 3
    assert reading.before == pytest.approx(sum(values[-6:-3]) / 3)
    assert reading.after == pytest.approx(sum(values[-3:]) / 3)


def test_the_rule_comes_from_the_training_configuration():
    found = StoppingRule.of(TrainConfig(stop_window=0.3, stop_improvement=0.02,
                                        min_epochs=4, stop_smoothing=2))
    assert found == StoppingRule(0.3, 0.02, 4, 2)


def test_record_appends_one_reading_per_epoch():
    history = {"val_mse": []}
    readings = []
    for value in (4.0, 3.0, 2.9, 2.89):
        history["val_mse"].append(value)
        readings.append(record(history, rule(min_epochs=3)))
    assert history[GAIN][0] is None
    assert history[GAIN][1:] == [r.gain for r in readings[1:]]
    assert history[WINDOW] == [r.window for r in readings]
    assert readings[-1].stop and not readings[-2].stop


def test_a_window_of_every_epoch_looks_back_to_the_first():
    reading = rule(window=1.0, min_epochs=2).read_values([10.0, 9.99, 9.98])
    assert (reading.window, reading.compared_with_epoch) == (2, 1)
    assert reading.gain == pytest.approx(0.002) and reading.stop
