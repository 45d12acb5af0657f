"""The nearest training image: copies are found at distance 0 and the right row."""

import numpy as np
import pytest

from zspace.errors import DataError
from zspace.latent.novelty import nearest, summary


def test_copies_of_references_are_found_at_distance_zero_and_their_row():
    rng = np.random.default_rng(0)
    references = rng.normal(size=(500, 16)).astype(np.float32)
    rows = np.array([3, 499, 0, 250])
    queries = np.concatenate([references[rows], rng.normal(5.0, 1.0, (3, 16))])
    index, distance = nearest(queries, references, batch=2)
    assert index[:4].tolist() == rows.tolist()
    assert distance[:4] == pytest.approx(0.0, abs=1e-6)
    assert (distance[4:] > 1.0).all()


def test_matches_brute_force_whatever_the_batch():
    rng = np.random.default_rng(1)
    queries, references = rng.normal(size=(37, 5)), rng.normal(size=(91, 5))
    full = np.linalg.norm(queries[:, None] - references[None], axis=2)
    for batch in (1, 8, 1000):
        index, distance = nearest(queries, references, batch=batch)
        assert index.tolist() == full.argmin(axis=1).tolist()
        assert distance == pytest.approx(full.min(axis=1))


def test_mismatched_features_raise():
    with pytest.raises(DataError):
        nearest(np.zeros((2, 3)), np.zeros((4, 5)))
    with pytest.raises(DataError):
        nearest(np.zeros((2, 3)), np.zeros((0, 3)))


def test_summary_counts_near_copies_below_the_cut():
    result = summary(np.array([0.1, 0.2, 3.0, 4.0]), near_copy=0.5)
    assert result == {"median": pytest.approx(1.6), "near_copies": 0.5, "n": 4}
