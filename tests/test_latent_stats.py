import numpy as np
import pytest

from zspace.errors import DataError
from zspace.latent import stats


def _correlated(n=20000, seed=0):
    cov = np.array([[4.0, 1.2, 0.0], [1.2, 1.0, -0.3], [0.0, -0.3, 0.25]])
    mean = np.array([1.0, -2.0, 0.5])
    rng = np.random.default_rng(seed)
    return rng.multivariate_normal(mean, cov, size=n), mean, cov


def test_fit_mvn_recovers_known_mean_and_covariance():
    z, mean, cov = _correlated()
    fitted_mean, fitted_cov = stats.fit_mvn(z)
    np.testing.assert_allclose(fitted_mean, mean, atol=0.05)
    np.testing.assert_allclose(fitted_cov, cov, atol=0.08)


def test_describe_components_tells_normal_from_skewed():
    rng = np.random.default_rng(1)
    z = np.column_stack([rng.normal(3.0, 2.0, 5000), rng.exponential(1.0, 5000)])
    d = stats.describe_components(z)
    np.testing.assert_allclose(d["mean"], [3.0, 1.0], atol=0.08)
    np.testing.assert_allclose(d["std"], [2.0, 1.0], atol=0.08)
    # Exponential: skewness 2, excess kurtosis 6; normal: both 0.
    assert abs(d["skew"][0]) < 0.15 and 1.6 < d["skew"][1] < 2.4
    assert abs(d["kurtosis"][0]) < 0.3 and d["kurtosis"][1] > 4
    assert d["normality_p"][0] > 1e-3 and d["normality_p"][1] < 1e-10


def test_histogram_with_normal_is_a_density_with_matching_fit():
    values = np.random.default_rng(2).normal(0.5, 1.5, 10000)
    h = stats.histogram_with_normal(values, bins=40)
    assert h["density"].shape == (40,) and h["edges"].shape == (41,)
    assert np.sum(h["density"] * np.diff(h["edges"])) == pytest.approx(1.0)
    assert h["mean"] == pytest.approx(0.5, abs=0.05)
    assert h["std"] == pytest.approx(1.5, abs=0.05)
    # The fitted curve is a normal density: integrates to ~1, peaks at the mean.
    assert np.trapezoid(h["pdf"], h["x"]) == pytest.approx(1.0, abs=1e-3)
    assert h["x"][np.argmax(h["pdf"])] == pytest.approx(0.5, abs=0.1)


def test_correlation_matrix_matches_numpy_and_survives_constant_columns():
    z, _, cov = _correlated(n=5000)
    corr = stats.correlation_matrix(z)
    np.testing.assert_allclose(corr, np.corrcoef(z, rowvar=False), atol=1e-10)
    assert corr[0, 1] == pytest.approx(1.2 / 2.0, abs=0.03)
    with_constant = np.column_stack([z, np.full(len(z), 7.0)])
    corr = stats.correlation_matrix(with_constant)
    assert np.isfinite(corr).all() and corr[3, 3] == 1.0 and corr[0, 3] == 0.0


def test_radii_and_component_ranges():
    z = np.array([[3.0, 4.0], [0.0, -1.0], [-6.0, 8.0]])
    np.testing.assert_allclose(stats.radii(z), [5.0, 1.0, 10.0])
    np.testing.assert_allclose(
        stats.radii(z, center=[3.0, 4.0]), [0.0, np.hypot(3, 5), np.hypot(9, 4)]
    )
    ranges = stats.component_ranges(z, quantiles=(0.0, 1.0))
    np.testing.assert_allclose(ranges["min"], [-6.0, -1.0])
    np.testing.assert_allclose(ranges["max"], [3.0, 8.0])
    np.testing.assert_allclose(ranges["low"], ranges["min"])


def test_bad_points_raise_a_data_error():
    with pytest.raises(DataError):
        stats.fit_mvn(np.zeros(5))
    with pytest.raises(DataError):
        stats.radii(np.array([[np.nan, 1.0]]))
