"""One cloud or several pockets: the mixture scan on clouds whose answer is known."""

import numpy as np
import pytest

from zspace.errors import ConfigError
from zspace.latent.fragments import mixture_scan, projection_dims

DIM = 20
N = 4000


def _gaussian(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((N, DIM)) * np.linspace(3.0, 0.5, DIM)


def _blobs(count: int, distance: float, seed: int = 1) -> np.ndarray:
    """``count`` unit Gaussian blobs whose centres lie ``distance`` apart."""
    rng = np.random.default_rng(seed)
    centres = np.eye(count, DIM) * distance / np.sqrt(2)
    return centres[rng.integers(count, size=N)] + rng.standard_normal((N, DIM))


def _skewed(seed: int = 2) -> np.ndarray:
    """One connected cloud, lopsided in a few directions (log-normal there)."""
    rng = np.random.default_rng(seed)
    return np.column_stack([np.exp(rng.standard_normal((N, 3))),
                            rng.standard_normal((N, DIM - 3))])


def test_one_gaussian_cloud_is_one_cloud():
    scan = mixture_scan(_gaussian())
    assert scan["ks"] == [1, 2, 3, 5, 8]
    assert len(scan["heldout_loglik"]) == len(scan["bic"]) == 5
    assert scan["best_k"] == 1 or scan["gain_per_point"] < 0.05
    assert scan["best_k_bic"] == 1
    assert scan["ambiguous_share"] > 0.3  # the pieces overlap
    assert scan["separation"] < 3.0


def test_three_separate_blobs_are_pockets():
    scan = mixture_scan(_blobs(3, 10.0))
    assert scan["best_k"] >= 3 and scan["best_k_bic"] == 3
    assert scan["gain_per_point"] > 0.5
    assert scan["gain_per_point"] > 5 * scan["gain_se"]
    assert scan["ambiguous_share"] < 0.05
    assert scan["separation"] > 4.0
    at_three = scan["ks"].index(3)
    assert scan["ambiguous_by_k"][at_three] < 0.01
    assert scan["separation_by_k"][at_three] > 8.0
    assert scan["separation_by_k"][0] is None and scan["ambiguous_by_k"][0] is None


def test_a_lopsided_cloud_gains_from_a_mixture_but_its_pieces_overlap():
    scan = mixture_scan(_skewed())
    assert scan["best_k"] > 1 and scan["gain_per_point"] > 0.3
    assert scan["ambiguous_share"] > 0.1 and scan["separation"] < 3.0


def test_projection_keeps_the_share_and_the_cap():
    ratio = np.array([0.5, 0.3, 0.1, 0.05, 0.05])
    assert projection_dims(ratio, 0.8, 50) == 2
    assert projection_dims(ratio, 0.85, 50) == 3
    assert projection_dims(ratio, 0.9, 50) == 3
    assert projection_dims(ratio, 0.99, 2) == 2
    scan = mixture_scan(_gaussian(), share=0.5, max_dims=4)
    assert scan["dims"] <= 4 and 0 < scan["variance_kept"] < 1


def test_a_scan_needs_one_gaussian_and_a_mixture():
    points = _gaussian()
    with pytest.raises(ConfigError):
        mixture_scan(points, ks=(2, 3))
    with pytest.raises(ConfigError):
        mixture_scan(points, ks=(1,))
    with pytest.raises(ConfigError):
        mixture_scan(points, heldout_share=1.0)
    with pytest.raises(ConfigError):
        mixture_scan(points[:10], ks=(1, 8))


def test_the_figure_draws_one_panel_per_question():
    from zspace.plots.latent import mixture_scan_figure

    scan = mixture_scan(_blobs(3, 10.0))
    figure = mixture_scan_figure(scan, (0.05, 4.0))
    gain, ambiguous, apart = figure.axes
    assert list(gain.lines[0].get_xdata()) == scan["ks"]
    assert list(ambiguous.lines[0].get_xdata()) == [2, 3, 5, 8]
    assert apart.lines[0].get_ydata()[1] == pytest.approx(scan["separation_by_k"][2])
