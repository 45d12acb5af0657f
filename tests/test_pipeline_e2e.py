"""The real pipeline on the smoke profile: data, models, every notebook, the report.

One cold build per test session (a few minutes on 2 cores, the ``smoke_build``
fixture of conftest.py) feeds all tests here.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from zspace.config import load_config
from zspace.files import sha256_of
from zspace.pipeline import engine

pytestmark = pytest.mark.slow

CATALOGUE = ["A1", "A2", "A3", "A4", "A5", "A6", "A7", "A8", "A9", "B1", "B2",
             "B3", "C1", "C2", "C3", "C4", "C5", "C6", "C7", "C8", "C9", "C10", "C11",
             "C12",
             # the smoke profile's two-point sweep kl: a figure of the sweep, and one
             # per point named by the sweep and the point
             "D1", "D2@kl.kl_factor=1", "D2@kl.kl_factor=5", "D7"]
# What the articles show: a sweep's grid (D7) in place of its points' own figures.
SHOWN = [f for f in CATALOGUE if not f.startswith("D2@")]
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"


def test_every_catalogue_figure_is_built_and_listed(smoke_build):
    _, site = smoke_build
    manifest = json.loads((site / "figures" / "manifest.json").read_text())
    assert sorted(manifest) == sorted(CATALOGUE)
    for figure_id, entry in manifest.items():
        path = site / "figures" / entry["file"]
        assert entry["file"].startswith(f"{figure_id.partition('@')[0]}-")
        assert sha256_of(path) == entry["sha256"]
        assert entry["dataset"] and entry["code"] and entry["notebook"]


def test_pages_reference_only_files_that_exist(smoke_build):
    _, site = smoke_build
    pages = sorted(site.glob("*.html")) + sorted(site.glob("*.md"))
    # index, Methods and four articles, twice; the explorer (HTML only)
    assert len(pages) == 13
    for page in pages:
        text = page.read_text()
        assert "{{" not in text and "{%" not in text
        if page.suffix == ".html":
            targets = re.findall(r'(?:src|href)="([^"#]+)', text)
        else:
            targets = re.findall(r"\]\(([^)#\s]+)", text)
        local = [t for t in targets if "://" not in t]
        assert local, page
        for target in local:
            assert (site / target).exists(), f"{page.name} links {target}"


def test_every_figure_appears_in_an_article(smoke_build):
    """Every figure is shown, except a sweep point's own figure where the article shows
    the sweep's grid (D2's points in D7); those stay in the catalogue for the diff."""
    _, site = smoke_build
    html = "".join(p.read_text() for p in site.glob("*.html"))
    for figure_id in SHOWN:
        assert f'id="fig-{figure_id}"' in html
    for figure_id in set(CATALOGUE) - set(SHOWN):
        assert f'id="fig-{figure_id}"' not in html


def test_index_carries_the_provenance(smoke_build):
    _, site = smoke_build
    index = (site / "index.html").read_text()
    for expected in ("synthetic", "tensorflow", "papermill", "data.image_size",
                     "notebook 20_vae_generation"):
        assert expected in index


def test_noop_rebuild_executes_nothing(smoke_build, executed):
    build_root, _ = smoke_build
    engine.build(load_config("smoke"), build_root, progress=False)
    assert executed == []
    assert all(state == "fresh" for _, state in
               engine.status(load_config("smoke"), build_root))


def test_changed_parameter_reruns_exactly_its_notebook(smoke_build, executed):
    build_root, site = smoke_build
    config = load_config("smoke", ["notebooks.30_reconstructions.n_per_seed=3"])
    statuses = dict(engine.status(config, build_root))
    stale = sorted(name for name, state in statuses.items() if state != "fresh")
    assert stale == ["notebook 30_reconstructions", "report"]
    try:
        engine.build(config, build_root, progress=False)
        assert executed == ["30_reconstructions"]
        manifest = json.loads((site / "figures" / "manifest.json").read_text())
        assert manifest["A7"]["parameters"]["n_per_seed"] == 3
    finally:
        # The smoke build is the session's: later tests expect its own A7 back.
        engine.build(load_config("smoke"), build_root, progress=False)


@pytest.mark.browser
def test_pages_load_in_a_browser(smoke_build):
    from tests.browser import check_pages

    _, site = smoke_build
    report = check_pages(sorted(site.glob("*.html")), ARTIFACTS / "report")
    for page, seen in report.items():
        assert all(width > 0 for width in seen["images"].values()), (page, seen)
        assert seen["broken_links"] == [], page
        assert seen["screenshot"].stat().st_size > 0
    total_images = sum(len(seen["images"]) for seen in report.values())
    assert total_images == len(SHOWN)


@pytest.mark.browser
def test_explorer_runs_the_builds_decoders_offline(smoke_build):
    """The explorer page decodes like the build's Keras decoders, from file://."""
    import numpy as np

    from tests.explorer_page import decode_in_page, opened
    from zspace.data import load_dataset
    from zspace.explorer.bundle import array, read_bundle
    from zspace.training import train_or_load_named

    build_root, site = smoke_build
    config = load_config("smoke")
    dataset = load_dataset(config.data, build_root, progress=False)
    explorer = json.loads((build_root / "smoke" / "notebooks" / "80_explorer"
                           / "results.json").read_text())["explorer"]
    assert [m["name"] for m in explorer["models"]] == ["ae", "vae", "wide_ae"]
    errors = {}
    with opened(site / "explorer.html") as (page, events):
        for entry in explorer["models"]:
            bundle = read_bundle(site / "explorer" / entry["file"])
            z = np.stack([array(bundle, s["z"]) for s in bundle["starts"]])
            decoder = train_or_load_named(entry["name"], config, dataset, build_root,
                                          progress=False).model.decoder
            expected = np.asarray(decoder(z, training=False))
            got = decode_in_page(page, entry["name"], z, expected.shape[1:])
            errors[entry["name"]] = float(np.abs(got - expected).max())
        # The sampler's own point lies in its region; the radius is the notebook's.
        page.select_option("#zx-start", "pca_ellipse")
        assert page.inner_text("#zx-region") == "inside"
        radius = explorer["models"][0]["starts"]["pca_ellipse"]["mahalanobis"]
        assert page.inner_text("#zx-mahalanobis") == f"{radius:.2f}"
    assert max(errors.values()) <= 2 / 255, errors
    assert events["errors"] == []
    assert all(url.startswith(("file://", "data:")) for url in events["requests"])
    # The Markdown pages link to it and say that a code host cannot run it.
    for page in ("index.md", "A-vae-faces.md", "C-fragmentation.md"):
        text = (site / page).read_text()
        assert "](explorer.html)" in text and "code host" in text, page


def test_a_notebook_whose_artifact_is_gone_fails_naming_it_and_trains_nothing(
        smoke_build, tmp_path):
    from zspace.pipeline.plan import make_plan
    from zspace.pipeline.runner import Build, run_notebooks

    build_root, _ = smoke_build
    config = load_config("smoke")
    made = make_plan(config, build_root)
    stage = next(s for s in made.notebooks if s.spec.name == "40_ae_latent_space")
    inputs = made.inputs(stage)
    # The artifact the plan named, removed before the notebook runs: a copy of the
    # manifest points into an empty folder instead of deleting the shared cache.
    gone = tmp_path / "cache" / "models" / f"vae-{inputs['models']['vae']['key']}"
    inputs["models"]["vae"]["folder"] = str(gone)
    models_before = sorted((build_root / "cache" / "models").iterdir())
    failures = run_notebooks(Build(config, build_root, progress=False),
                             [(stage, inputs)])
    assert len(failures) == 1
    message = str(failures[0])
    assert "40_ae_latent_space" in message and str(gone) in message
    assert "missing" in message
    assert sorted((build_root / "cache" / "models").iterdir()) == models_before
    assert not gone.exists() and not list(tmp_path.rglob("*.partial"))
    # The failed run is kept for inspection; the finished one is untouched.
    folder = build_root / "smoke" / "notebooks"
    assert (folder / "40_ae_latent_space.failed").is_dir()
    assert (folder / "40_ae_latent_space" / "results.json").is_file()


def _results(build_root: Path, notebook: str) -> dict:
    folder = build_root / "smoke" / "notebooks" / notebook
    return json.loads((folder / "results.json").read_text())


def test_notebooks_that_read_one_set_report_one_number(smoke_build):
    """The VAE's and the AE's N(0, I) face rates, quoted in A4, B3, C7, C9 and D1:
    each drawn and judged once, so one number wherever it appears."""
    build_root, _ = smoke_build
    a, b = _results(build_root, "20_vae_generation"), _results(build_root,
                                                             "40_ae_latent_space")
    c7, c9 = _results(build_root, "60_pca_ellipse"), _results(build_root,
                                                            "70_sampler_comparison")
    d = _results(build_root, "90_open_questions")
    vae = [a["vae_normal_faces"], b["b3_quality"]["vae"]["faces"],
           c9["sampler_comparison"]["vae_normal"]["faces"],
           d["open_questions"]["sweeps"]["kl"]["base_faces"]]
    assert all(rate == vae[0] for rate in vae), vae
    assert vae[0]["n"] == 128  # the smoke profile's sets.n, over the seeds
    ae = [b["b3_quality"]["ae"]["faces"], c7["c7_naive_quality"]["normal"]["faces"],
          c9["sampler_comparison"]["ae_normal"]["faces"]]
    assert all(rate == ae[0] for rate in ae), ae
    assert (b["b3_quality"]["ae"]["frechet"]
            == c9["sampler_comparison"]["ae_normal"]["frechet"])


def _set_folders(build_root: Path) -> set[str]:
    return {p.name for p in (build_root / "cache" / "sets").iterdir() if p.is_dir()}


def test_changed_sampler_parameter_remakes_its_set_alone(smoke_build, executed):
    build_root, _ = smoke_build
    config = load_config("smoke", ["sets.ae_gmm.n_components=3"])
    statuses = dict(engine.status(config, build_root))
    stale = sorted(name for name, state in statuses.items() if state != "fresh")
    assert stale == ["notebook 70_sampler_comparison", "report", "set ae_gmm"]
    before = _set_folders(build_root)
    try:
        engine.build(config, build_root, progress=False)
        assert executed == ["70_sampler_comparison"]
        made = _set_folders(build_root) - before
        assert len(made) == 1 and made.pop().startswith("gmm-")
        comparison = _results(build_root, "70_sampler_comparison")
        assert comparison["sampler_settings"]["gmm_components"] == 3
    finally:
        engine.build(load_config("smoke"), build_root, progress=False)


def test_damaged_set_is_found_and_remade(smoke_build, executed):
    from zspace.pipeline.plan import make_plan

    build_root, _ = smoke_build
    config = load_config("smoke")
    stage = next(s for s in make_plan(config, build_root).sets
                 if s.point.name == "real_test")
    images = stage.folder / "images.npy"
    original = images.read_bytes()
    images.write_bytes(original[:100])  # cut short, as a full disk might leave it
    statuses = dict(engine.status(config, build_root))
    assert statuses["set real_test"].startswith("stale: damaged (images.npy has")
    engine.build(config, build_root, progress=False)
    assert images.read_bytes() == original  # the same set, drawn again
    assert executed == []  # its readers' inputs are unchanged
    assert dict(engine.status(config, build_root))["set real_test"] == "fresh"
