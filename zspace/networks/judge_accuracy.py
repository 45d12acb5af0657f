"""How well the judge network does its training task on held-out images.

The judge (:mod:`zspace.networks.judge`) regresses every attribute, standardised over
the training set, or names an image's turn. Its features are only as good as that
task is learnt, so the articles quote its score on the test split:

- a binary attribute (its training values take exactly two values): the share of
  images whose prediction falls on the true value's side of the midpoint between the
  two, next to the share that always naming the commoner training value would get;
- any other attribute: Pearson's r and R^2 between prediction and truth;
- the rotation task: the share of turns named right.

Pure NumPy, on arrays the notebook computes; no TensorFlow here.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from zspace.errors import DataError


def _pearson(x: np.ndarray, y: np.ndarray) -> float | None:
    if x.std() == 0 or y.std() == 0:
        return None
    return float(np.corrcoef(x, y)[0, 1])


def _r_squared(predicted: np.ndarray, truth: np.ndarray) -> float | None:
    spread = np.sum(np.square(truth - truth.mean()))
    if spread == 0:
        return None
    return float(1.0 - np.sum(np.square(truth - predicted)) / spread)


def _binary(column: np.ndarray, predicted: np.ndarray, truth: np.ndarray) -> dict:
    low, high = np.unique(column)
    midpoint = (low + high) / 2
    common_high = np.mean(column > midpoint) >= 0.5
    return {"accuracy": float(np.mean((predicted > midpoint) == (truth > midpoint))),
            "majority": float(np.mean((truth > midpoint) == common_high))}


def _lowest(scores: dict[str, float | None], key: str) -> dict | None:
    known = {name: value for name, value in scores.items() if value is not None}
    if not known:
        return None
    name = min(known, key=known.get)
    return {"attribute": name, key: known[name]}


def _mean(values) -> float | None:
    known = [v for v in values if v is not None]
    return float(np.mean(known)) if known else None


def attribute_accuracy(predicted: np.ndarray, truth: np.ndarray, train: np.ndarray,
                       names: Sequence[str]) -> dict:
    """The judge's score per attribute and over the binary and the other ones.

    Args:
        predicted: The judge's outputs on the test images (n, k).
        truth: The test images' attributes (n, k), on the scale of ``predicted``
            (standardised with the training mean and deviation).
        train: The training attributes on that scale (m, k): which are binary, and
            their two values.
        names: The k attribute names.

    Returns:
        ``binary`` (name -> ``accuracy``, ``majority``), ``continuous`` (name ->
        ``r``, ``r2``), ``binary_accuracy_mean``, ``binary_majority_mean``,
        ``binary_accuracy_min`` (``attribute``, ``accuracy``),
        ``continuous_correlation_mean``, ``continuous_correlation_min``
        (``attribute``, ``r``), ``continuous_r2_mean``, ``n_binary``,
        ``n_continuous``, ``n_constant`` and ``n_test``. Means and minima are None
        where no attribute is of that kind; an attribute constant over the training
        images is neither kind.

    Raises:
        DataError: The arrays' shapes do not agree with each other and ``names``.
    """
    predicted, truth, train = (np.asarray(a, np.float64)
                               for a in (predicted, truth, train))
    k = len(names)
    if (predicted.shape != truth.shape or predicted.ndim != 2
            or predicted.shape[1] != k or train.shape[1:] != (k,)):
        raise DataError(f"judge accuracy: predictions {predicted.shape}, truth "
                        f"{truth.shape} and training attributes {train.shape} do not "
                        f"agree with {k} attribute names")
    binary, continuous, constant = {}, {}, 0
    for j, name in enumerate(names):
        levels = len(np.unique(train[:, j]))
        if levels == 1:
            constant += 1
        elif levels == 2:
            binary[name] = _binary(train[:, j], predicted[:, j], truth[:, j])
        else:
            continuous[name] = {"r": _pearson(predicted[:, j], truth[:, j]),
                                "r2": _r_squared(predicted[:, j], truth[:, j])}
    accuracies = {n: v["accuracy"] for n, v in binary.items()}
    correlations = {n: v["r"] for n, v in continuous.items()}
    return {
        "binary": binary, "continuous": continuous,
        "binary_accuracy_mean": _mean(accuracies.values()),
        "binary_majority_mean": _mean(v["majority"] for v in binary.values()),
        "binary_accuracy_min": _lowest(accuracies, "accuracy"),
        "continuous_correlation_mean": _mean(correlations.values()),
        "continuous_correlation_min": _lowest(correlations, "r"),
        "continuous_r2_mean": _mean(v["r2"] for v in continuous.values()),
        "n_binary": len(binary), "n_continuous": len(continuous),
        "n_constant": constant, "n_test": len(truth),
    }


def rotation_accuracy(logits: np.ndarray, turns: np.ndarray) -> float:
    """The share of images whose turn (0-3 quarter turns) the judge names right.

    Args:
        logits: The judge's outputs (n, 4).
        turns: The true turns (n,).
    """
    logits, turns = np.asarray(logits), np.asarray(turns)
    if logits.ndim != 2 or len(logits) != len(turns) or len(turns) == 0:
        raise DataError(f"rotation accuracy: logits {logits.shape} for "
                        f"{turns.shape} turns")
    return float(np.mean(np.argmax(logits, axis=1) == turns))
