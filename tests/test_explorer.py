"""The explorer: decoder export, its NumPy reference, bundles, and the page in Chromium.

The browser test builds its decoders on the spot (random weights and batch
statistics, no training), so it runs in seconds; the explorer of a real smoke build
is tested in test_pipeline_e2e.py.
"""

from __future__ import annotations

import dataclasses
import shutil

import keras
import nbformat
import numpy as np
import pytest

from tests.explorer_page import (
    canvas_pixels,
    decode_in_page,
    model_bundle,
    next_frame,
    opened,
    random_decoder,
    write_page,
)
from tests.test_build import project  # noqa: F401 (a fixture)
from zspace.config import ModelConfig
from zspace.errors import BuildError, ModelError
from zspace.explorer.bundle import (
    Geometry,
    Start,
    array,
    bundle_object,
    read_bundle,
    write_bundle,
)
from zspace.explorer.program import export_decoder, run_program
from zspace.latent.pca_ellipse import PcaEllipseSampler, satisfies_pairwise

TOLERANCE = 2 / 255
SMALL = ModelConfig(kind="ae", z_dim=16, filters=(8, 16, 16, 32))
ARCHITECTURES = {
    "transpose": (SMALL, 32),
    # Odd sizes need output padding (7 -> 14 -> 27) or cropping after up-sampling.
    "odd": (SMALL, 27),
    "upsample": (dataclasses.replace(SMALL, decoder="upsample", activation="elu"), 28),
    "wide": (dataclasses.replace(SMALL, kernels=(5, 5, 3, 3), batch_norm=False,
                                 activation="relu"), 32),
}


def _points(z_dim: int, seed: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.concatenate([np.zeros((1, z_dim)), rng.standard_normal((3, z_dim)),
                           4 * rng.standard_normal((2, z_dim))]).astype(np.float32)


@pytest.mark.parametrize("architecture", sorted(ARCHITECTURES))
def test_reference_runs_the_exported_program_like_keras(architecture):
    config, size = ARCHITECTURES[architecture]
    decoder = random_decoder(config, size, seed=1)
    z = _points(config.z_dim)
    expected = np.asarray(decoder(z, training=False))
    got = run_program(export_decoder(decoder), z)
    assert got.shape == expected.shape == (len(z), size, size, 3)
    assert np.abs(got - expected).max() < 1e-4
    assert expected.min() < 0.1 and expected.max() > 0.9  # the sigmoid's ends are used


def test_export_names_a_layer_it_cannot_run():
    z = keras.Input((4,))
    x = keras.layers.Dense(12)(z)
    x = keras.layers.Reshape((2, 2, 3))(x)
    x = keras.layers.GaussianNoise(0.1, name="noise")(x)
    with pytest.raises(ModelError, match=r"noise \(GaussianNoise\)"):
        export_decoder(keras.Model(z, x))


def test_bundle_round_trip_and_ellipse_radii(tmp_path):
    decoder = random_decoder(SMALL, 32, seed=2)
    program = export_decoder(decoder)
    rng = np.random.default_rng(0)
    codes = rng.standard_normal((400, SMALL.z_dim)) * np.linspace(3, 0.5, SMALL.z_dim)
    sampler = PcaEllipseSampler.fit(codes, 10, level=2.35, fact=0.7)
    geometry = Geometry.of_sampler(sampler)
    starts = [Start("pca", "PCA ellipse", "samplers", sampler.sample(1, rng)[0])]
    written = write_bundle(tmp_path / "ae.js",
                           bundle_object("ae", "AE", program, geometry, starts))
    bundle = read_bundle(tmp_path / written["file"])
    assert written["bytes"] == (tmp_path / "ae.js").stat().st_size
    dense = next(op for op in bundle["ops"] if op["op"] == "dense")
    assert dense["kernel"]["blob"] == "f16" and dense["bias"]["blob"] == "f32"
    # Kernels come back exactly (the weights are float16 values already).
    np.testing.assert_array_equal(array(bundle, dense["kernel"]),
                                  program.tensors["dense/kernel"])
    np.testing.assert_array_equal(array(bundle, bundle["geometry"]["sigmas"]),
                                  sampler.sigmas.astype(np.float32))
    # The pair radius decides the ellipse test exactly as the sampler's conditions.
    points = np.concatenate([sampler.sample(200, rng), codes[:200]])
    v = sampler.pca.transform(points)
    for level in (2.35, 0.7 * 2.35):
        inside = geometry.pair_radius(points) <= level
        np.testing.assert_array_equal(
            inside, satisfies_pairwise(v, level * sampler.sigmas, tolerance=0))
        assert 0 < inside.mean() < 1
    assert (geometry.pair_radius(sampler.sample(100, rng)) <= 0.7 * 2.35 + 1e-9).all()


def test_bundle_rejects_an_unknown_precision_and_a_wrong_start():
    decoder = random_decoder(SMALL, 32, seed=2)
    program = export_decoder(decoder)
    codes = np.random.default_rng(0).standard_normal((100, SMALL.z_dim))
    geometry = Geometry.of_sampler(PcaEllipseSampler.fit(codes, 4))
    with pytest.raises(BuildError, match="weights_dtype"):
        bundle_object("ae", "AE", program, geometry, [], weights_dtype="int8")
    with pytest.raises(BuildError, match="start short: expected 16 values"):
        bundle_object("ae", "AE", program, geometry,
                      [Start("short", "short", "samplers", np.zeros(3))])


@pytest.mark.browser
def test_page_decodes_within_2_of_255_of_keras_offline(tmp_path):
    decoders, entries, geometries = {}, [], {}
    for seed, name in enumerate(("transpose", "upsample", "wide")):
        config, _ = ARCHITECTURES[name]
        decoders[name] = random_decoder(config, 32, seed=10 + seed)
        entry, geometries[name] = model_bundle(tmp_path, name, name, decoders[name],
                                               seed=seed)
        entries.append(entry)
    page_file = write_page(tmp_path, entries, image_size=32)
    with opened(page_file) as (page, events):
        errors = {}
        for name, decoder in decoders.items():
            z = _points(decoder.input_shape[-1])
            expected = np.asarray(decoder(z, training=False))
            errors[name] = float(np.abs(
                decode_in_page(page, name, z, expected.shape[1:]) - expected).max())
        assert max(errors.values()) <= TOLERANCE, errors

        # The UI: the first model's sampler point is inside the ellipse, and moving
        # PC 1 to 3 sigma takes it outside and draws what Keras draws there.
        page.select_option("#zx-start", "pca_ellipse")
        geometry = geometries["transpose"]
        bundle = read_bundle(tmp_path / "explorer" / "transpose.js")
        start = array(bundle, bundle["starts"][1]["z"])
        assert page.inner_text("#zx-mahalanobis") == \
            f"{geometry.mahalanobis_radius(start[None])[0]:.2f}"
        assert page.inner_text("#zx-inside") == "inside"
        page.locator("#zx-pc-0").fill("3")
        next_frame(page)
        u = geometry.coordinates(start[None])[0]
        moved = start + (3 - u[0]) * geometry.sigmas[0] * geometry.components[0]
        assert page.inner_text("#zx-pc-0 + output") == "3.00"
        assert page.inner_text("#zx-inside") == "outside"
        assert page.inner_text("#zx-pair") == \
            f"{geometry.pair_radius(moved[None])[0]:.2f}"
        keras_image = np.asarray(decoders["transpose"](moved[None].astype(np.float32),
                                                       training=False))[0]
        shown = canvas_pixels(page).astype(int)
        assert np.abs(shown - np.floor(keras_image * 255 + 0.5)).max() <= 2

        # Switching models keeps the starting point and redraws with the new decoder.
        page.select_option("#zx-model", "wide")
        page.wait_for_function("zspaceExplorer.state.model.bundle.name === 'wide'")
        assert page.input_value("#zx-start") == "pca_ellipse"
    assert events["errors"] == []
    assert all(url.startswith(("file://", "data:")) for url in events["requests"])
    assert any(url.endswith("explorer/wide.js") for url in events["requests"])


THIRD = """
run = zspace.notebook.start(inputs_file, output_dir)
import pathlib
folder = pathlib.Path(output_dir) / "extra"
folder.mkdir()
(folder / "data.js").write_text("var answer = 42;")
run.record(third=1)
"""


@pytest.mark.slow
def test_a_notebooks_site_folder_is_published_beside_the_pages(project,  # noqa: F811
                                                              executed):
    from tests.test_build import _build, _notebook

    _notebook(project / "analysis" / "third.ipynb", "", THIRD, {})
    notebook = nbformat.read(project / "analysis" / "third.ipynb", as_version=4)
    notebook.metadata["zspace"]["site"] = ["extra"]
    nbformat.write(notebook, project / "analysis" / "third.ipynb")
    site = _build(project)
    assert (site / "extra" / "data.js").read_text() == "var answer = 42;"
    # No explorer results here: no explorer page and no link to one.
    assert not (site / "explorer.html").exists()
    assert "explorer" not in (site / "index.html").read_text()
    # A lost output folder makes the notebook run again.
    shutil.rmtree(project / "build" / "smoke" / "notebooks" / "third" / "extra")
    executed.clear()
    _build(project)
    assert executed == ["third"]
