import numpy as np
import pytest

from zspace.latent import ellipses


def test_expected_share_for_two_degrees_of_freedom():
    np.testing.assert_allclose(
        ellipses.expected_share(np.array([1.0, 2.0, 3.0])),
        [0.3935, 0.8647, 0.9889],
        atol=1e-4,
    )


def test_share_inside_k_sigma_ellipse_matches_theory():
    cov = np.array([[2.0, 1.4], [1.4, 1.5]])
    points = np.random.default_rng(0).multivariate_normal([1.0, -1.0], cov, 40000)
    for k in (1.0, 2.0, 2.2, 3.0):
        measured = ellipses.share_inside(points, [1.0, -1.0], cov, k)
        assert measured == pytest.approx(ellipses.expected_share(k), abs=0.01)


def test_ellipse_share_table_on_fitted_pairs():
    z = np.random.default_rng(1).standard_normal((20000, 4)) @ np.diag([1, 2, 3, 4.0])
    rows = ellipses.ellipse_share_table(z, [(0, 1), (2, 3)], k_sigmas=(1.0, 2.0))
    assert len(rows) == 4
    for row in rows:
        assert row["measured"] == pytest.approx(row["expected"], abs=0.015)


def test_confidence_ellipse_axes_and_angle():
    # Axis-aligned: variances 9 and 1 give half-axes 3k and k.
    width, height, angle = ellipses.confidence_ellipse([0, 0], np.diag([9.0, 1.0]), 2.0)
    assert (width, height) == pytest.approx((12.0, 4.0))
    assert angle == pytest.approx(0.0, abs=1e-9)
    # Rotated by 30 degrees.
    t = np.radians(30.0)
    rot = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
    cov = rot @ np.diag([4.0, 0.25]) @ rot.T
    width, height, angle = ellipses.confidence_ellipse([5, 5], cov, 1.0)
    assert (width, height, angle) == pytest.approx((4.0, 1.0, 30.0))


def test_ellipse_polygon_lies_on_the_k_sigma_contour():
    cov = np.array([[2.0, 0.8], [0.8, 1.0]])
    polygon = ellipses.ellipse_polygon([1.0, 2.0], cov, 2.5, num_points=50)
    assert polygon.shape == (50, 2)
    np.testing.assert_allclose(polygon[0], polygon[-1])
    d2 = ellipses.mahalanobis_sq(polygon, [1.0, 2.0], cov)
    np.testing.assert_allclose(d2, 2.5**2)
