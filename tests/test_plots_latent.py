import io

import numpy as np
import pytest
from matplotlib.figure import Figure

from zspace.plots import latent
from zspace.plots.canvas import save_png


def _z(seed=0, n=600, dim=6):
    """Correlated Gaussian z-points (n, dim): a stand-in for an AE's training z."""
    rng = np.random.default_rng(seed)
    mixing = rng.normal(size=(dim, dim)) / np.sqrt(dim) + np.eye(dim)
    return rng.standard_normal((n, dim)) @ mixing.T


def _png(figure):
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()


def _builders(seed=0):
    """Every builder of the module on the same synthetic input."""
    z = _z(seed)
    pcs = np.linalg.svd(z - z.mean(0), full_matrices=False)[1] ** 2
    faces = np.random.default_rng(seed).integers(0, 256, (3, 4, 12, 12, 3), np.uint8)
    return {
        "histograms": lambda: latent.component_histograms(z, [0, 3, 5], bins=20),
        "correlation": lambda: latent.correlation_figure(np.corrcoef(z, rowvar=False)),
        "ellipses": lambda: latent.pair_density_ellipses(z, [(0, 1), (2, 4)]),
        "variance": lambda: latent.explained_variance_figure(pcs / pcs.sum()),
        "scatter": lambda: latent.pair_scatter(
            z, z[:5], [(0, 1), (1, 2)], z.mean(0), np.cov(z, rowvar=False), 2.2,
            title="synthetic"),
        "comparison": lambda: latent.sampler_comparison_figure(
            list(faces), ["a", "b", "c"], {"Frechet": [3.0, 1.0, 200.0],
                                           "precision": [0.1, 0.9, 0.5]},
            log_scale=["Frechet"]),
    }


@pytest.mark.parametrize("name", list(_builders()))
def test_builders_return_figures_with_equal_bytes_for_equal_input(name):
    first = _builders(seed=0)[name]()
    assert isinstance(first, Figure)
    assert _png(first) == _png(_builders(seed=0)[name]())
    assert _png(first) != _png(_builders(seed=1)[name]())


def test_one_histogram_panel_per_component_with_a_normal_curve():
    figure = latent.component_histograms(_z(), [0, 1, 2, 3, 4], columns=3)
    assert len(figure.axes) == 5
    assert "z[4]" in figure.axes[4].get_title()
    assert all(len(axes.lines) == 1 for axes in figure.axes)


def test_ellipse_legend_reports_normal_shares_for_normal_points():
    z = np.random.default_rng(3).standard_normal((20000, 2)) * [1.0, 3.0]
    figure = latent.pair_density_ellipses(z, [(0, 1)], sigma_levels=(1.0, 2.0))
    texts = [t.get_text() for t in figure.axes[0].get_legend().get_texts()]
    # Measured share, then in brackets the normal's 39.3 % and 86.5 %.
    assert texts[0].startswith("1 sigma: 39.") and texts[0].endswith("(39.3%)")
    assert texts[1].startswith("2 sigma: 86.") and texts[1].endswith("(86.5%)")


def test_ellipse_in_pair_scatter_has_the_level_times_sigma_half_axes():
    sigmas = np.array([3.0, 1.0, 0.5])
    figure = latent.pair_scatter(np.zeros((4, 3)), np.zeros((2, 3)), [(0, 2)],
                                 np.zeros(3), np.diag(sigmas**2), level=2.2)
    outline = figure.axes[0].lines[0].get_xydata()
    np.testing.assert_allclose(np.abs(outline).max(axis=0), [6.6, 1.1], rtol=1e-3)


@pytest.mark.parametrize(("share", "needed"), [(0.5, 1), (0.6, 2), (0.9, 3),
                                               (0.95, 4), (1.0, 4)])
def test_components_for_share(share, needed):
    cumulative = np.cumsum([0.5, 0.3, 0.1, 0.0999999])
    assert latent.components_for_share(cumulative, share) == needed


def test_variance_figure_marks_each_threshold(tmp_path):
    ratio = np.array([0.6, 0.25, 0.1, 0.04, 0.01])
    figure = latent.explained_variance_figure(ratio, thresholds=(0.9, 0.99))
    labels = [t.get_text() for t in figure.axes[1].get_legend().get_texts()]
    assert labels[1:] == ["90% with 3 components", "99% with 4 components"]
    assert save_png(figure, tmp_path / "c4.png").stat().st_size > 0


def test_comparison_bars_carry_their_values(monkeypatch):
    charts = []
    original = latent.stack
    # Keep the chart figure on its way into the stacked panel.
    monkeypatch.setattr(latent, "stack",
                        lambda panels: charts.append(panels[1]) or original(panels))
    faces = np.zeros((2, 3, 8, 8, 3), np.uint8)
    latent.sampler_comparison_figure(list(faces), ["a", "b"],
                                     {"FD": [0.29, 115.3], "P": [0.86, 0.0]},
                                     log_scale=["FD"])
    fd, precision = charts[0].axes
    assert fd.get_yscale() == "log" and precision.get_yscale() == "linear"
    assert [t.get_text() for t in fd.texts] == ["0.29", "115"]
