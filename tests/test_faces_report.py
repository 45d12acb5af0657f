"""The articles' claims about faces follow the measured face rates, not typed-in words.

The smoke build's own results are rendered again with a few numbers changed: where a
measurement flips, the verdict in the prose must flip with it.
"""

from __future__ import annotations

import copy
import json
import shutil

import pytest

from zspace import paths
from zspace.config import load_config
from zspace.site import pages as report

pytestmark = pytest.mark.slow


@pytest.fixture
def context(smoke_build) -> dict:
    build_root, site = smoke_build
    results = {}
    for file in sorted((build_root / "smoke" / "notebooks").glob("*/results.json")):
        results.update(json.loads(file.read_text()))
    return {"results": results,
            "manifest": json.loads((site / "figures" / "manifest.json").read_text()),
            "provenance": {"config": load_config("smoke").to_dict(), "dataset": {}}}


@pytest.fixture
def render(tmp_path):
    """Render one article's Markdown the way the report stage does (the index, which
    needs a whole build's provenance, is swapped for a stub)."""
    templates = tmp_path / "templates"
    shutil.copytree(paths.REPORT_TEMPLATES, templates)
    (templates / "index.md.j2").write_text("# index\n")

    def article(name: str, context: dict) -> str:
        site = tmp_path / "site"
        shutil.rmtree(site, ignore_errors=True)
        site.mkdir()
        report.render_site(site, context, report.Links(), templates, html_pages=False)
        text = (site / f"{report.page_name(name)}.md").read_text()
        return " ".join(text.split())

    return article


def _rate(faces: int, n: int = 1000) -> dict:
    from zspace.faces import FaceRate

    return FaceRate.from_counts([1] * faces + [0] * (n - faces)).as_dict()


def _with(context: dict, **changes) -> dict:
    changed = copy.deepcopy(context)
    changed["results"].update(changes)
    return changed


def test_the_smoke_build_records_face_rates_and_sanity_rows(context):
    results = context["results"]
    for key in ("real", "noise", "broken"):
        row = results["face_sanity"][key]
        assert 0 <= row["low"] <= row["rate"] <= row["high"] <= 1
    assert results["face_sanity"]["noise"]["rate"] <= 0.01
    series = results["r_limit_series"]
    assert len(series["faces"]) == len(series["r_limits"])
    assert set(results["judge_validation"]["agreement"]) == {"frechet", "precision",
                                                             "recall"}


def test_a4_verdict_follows_the_face_rate(context, render):
    many = render("A", _with(context, vae_normal_faces=_rate(900)))
    few = render("A", _with(context, vae_normal_faces=_rate(100)))
    assert "a face rate of 90 % [88 %, 92 %]" in many
    assert "The detector's rate supports the claim: it finds a face in most samples" \
        in many
    assert "does not support the claim: it finds no face in most samples" in few
    assert "a face rate of 10 % [8 %, 12 %]" in few


def test_a6_verdict_follows_the_intervals(context, render):
    results = context["results"]
    series = copy.deepcopy(results["r_limit_series"])
    series["faces"] = [_rate(950)] + [_rate(500)] * (len(series["faces"]) - 2) \
        + [_rate(50)]
    falls = render("A", _with(context, r_limit_series=series, r_limit_degrades=True,
                               r_limit_best_faces=series["faces"][0],
                               r_limit_best=series["r_limits"][0]))
    flat = render("A", _with(context, r_limit_series=series, r_limit_degrades=False,
                              r_limit_best_faces=series["faces"][0],
                              r_limit_best=series["r_limits"][0]))
    assert "The two intervals do not overlap, so the detector's rate supports the " \
        "claim" in falls
    assert "the detector's rate does not support the claim" in flat
    assert "confirm" not in falls and "confirm" not in flat
    assert "the face rate is 5 % [4 %, 7 %]" in falls


def test_c8_names_a_best_setting_only_where_the_intervals_part(context, render):
    c8 = copy.deepcopy(context["results"]["c8_pca_ellipse"])
    c8["best"].update(n_components=120, fact=0.8, faces=_rate(700))
    c8["worst"].update(n_components=50, fact=0.6, faces=_rate(300))
    apart = render("C", _with(context, c8_pca_ellipse={**c8, "faces_differ": True}))
    c8["worst"]["faces"] = _rate(680)
    level = render("C", _with(context, c8_pca_ellipse={**c8, "faces_differ": False}))
    assert "The best setting, 120 components with fact 0.8" in apart
    assert "these two intervals do not overlap" in apart
    assert "The settings tie: their face rates are level within their intervals" \
        in level
    assert "names no best setting" in level
    assert "The best setting," not in level and "; the weakest," not in level


def test_the_own_judge_is_kept_or_retired_by_its_rank_correlation(context, render):
    validation = copy.deepcopy(context["results"]["judge_validation"])
    for row in validation["agreement"].values():
        row.update(rho=0.9, agrees=True)
    kept = render("C", _with(context, judge_validation=validation))
    for row in validation["agreement"].values():
        row.update(rho=0.2, agrees=False)
    retired = render("C", _with(context, judge_validation=validation))
    assert "The judge network earns its place" in kept
    assert "retired" not in kept
    assert "It is retired from the claims in these articles" in retired
    assert "It ranks the sets differently from the detector by its Frechet distance, " \
        "precision and recall." in retired
    assert "| 0.2 | no |" in retired and "| 0.9 | yes |" in kept


def test_a3_names_the_models_that_ran_into_their_cap(context, render):
    def stopping(gains: dict[str, tuple[float, bool]]) -> dict:
        return {"improvement": 0.05, "window": 0.2, "smoothing": 1, "min_epochs": 10,
                "max_epochs": 60, "bce_floor": 2236.9,
                "models": {name: {"epochs": 10, "compared_with_epoch": 8,
                                  "max_epochs": 10 if capped else 60,
                                  "improvement": gain, "capped": capped,
                                  "loss_improvement": 0.001, "above_floor": 0.04}
                           for name, (gain, capped) in gains.items()}}

    mixed = render("A", _with(context, stopping=stopping(
        {"AE": (0.03, False), "wide AE": (0.09, True)})))
    done = render("A", _with(context, stopping=stopping(
        {"AE": (0.03, False), "VAE": (0.01, False)})))
    assert "removed less than 5 % of it" in mixed
    assert "each end a mean" not in mixed
    smoothed = render("A", _with(context, stopping={
        **stopping({"AE": (0.03, False)}), "smoothing": 3}))
    assert "(each end a mean over 3 epochs)" in smoothed
    assert "| AE | 10 | 3.0 % (since epoch 8) | the rule |" in mixed
    assert "| wide AE | 10 | 9.0 % | its cap of 10 epochs |" in mixed
    assert "The wide AE had not levelled off" in mixed
    assert "had not levelled off" not in done
    assert "a perfect copy would still score 2,237 per image" in done
    without = copy.deepcopy(stopping({"AE": (0.03, False)}))
    del without["bce_floor"], without["models"]["AE"]["above_floor"]
    assert "perfect copy" not in render("A", _with(context, stopping=without))


def _variety(value: float | None, half: float = 0.01, n_faces: int = 900) -> dict:
    if value is None:
        return {"variety": None, "low": None, "high": None, "n_pairs": 0,
                "n_faces": n_faces, "recall": 0.0}
    return {"variety": value, "low": value - half, "high": value + half,
            "n_pairs": 1000, "n_faces": n_faces, "recall": 0.5}


def test_c_calls_faces_less_or_more_varied_only_where_the_intervals_part(context,
                                                                          render):
    varieties = copy.deepcopy(context["results"]["sampler_variety"])
    varieties.update(real_train=_variety(0.78), ae_pca_ellipse=_variety(0.55),
                     ae_gmm=_variety(0.85), ae_gaussian=_variety(0.785),
                     vae_normal=_variety(0.6), ae_normal=_variety(None, n_faces=12),
                     ae_uniform=_variety(None, n_faces=30))
    text = render("C", _with(context, sampler_variety=varieties))
    assert "Faces less varied than real ones, with intervals that do not touch: " \
        "AE, PCA ellipse; VAE, N(0, I)." in text
    assert "More varied than real faces: AE, GMM (10)." in text
    assert "Too few faces to measure: AE, N(0, I); AE, uniform" in text
    assert "| too few faces (12) |" in text
    varieties.update(ae_pca_ellipse=_variety(0.775), vae_normal=_variety(0.79))
    level = render("C", _with(context, sampler_variety=varieties))
    assert "No sampler's faces are clearly less varied than real ones." in level


def test_d_names_every_latent_step_smaller_than_the_seeds_spread(context, render):
    questions = copy.deepcopy(context["results"]["open_questions"])
    mse = {64: 0.00507, 128: 0.00374, 256: 0.00324, 512: 0.00292}
    points = [{"label": f"z_dim={z}", "z_dim": z, "model": f"ae@z_dim={z}",
               "epochs": 8, "mse": value} for z, value in mse.items()]
    gains = [{"from": a["z_dim"], "to": b["z_dim"], "drop": a["mse"] - b["mse"],
              "share": (a["mse"] - b["mse"]) / a["mse"]}
             for a, b in zip(points[:-1], points[1:], strict=True)]
    questions["sweeps"]["latent"] = {
        "points": points, "gains": gains, "stops_paying": gains[-1],
        "payoff_share": 0.1, "values_per_image": 12288,
        "base_mse": {"values": [0.0030, 0.0036], "low": 0.0030, "high": 0.0036}}
    context = copy.deepcopy(context)
    # The smoke profile sweeps no latent size: its figures borrow D1's entry.
    for figure_id in ["D5", *(f"D6@latent.{p['label']}" for p in points)]:
        context["manifest"][figure_id] = context["manifest"]["D1"]
    wide = render("D", _with(context, open_questions=questions))
    assert "Some steps are smaller than the spread between the AE's seeds: " \
        "128 to 256, 256 to 512." in wide
    assert "On single trainings, more dimensions stop paying off at the step from " \
        "256 to 512" in wide
    assert "| 9.9 % |" in wide  # one decimal: the prose's threshold reads true
    questions["sweeps"]["latent"]["base_mse"].update(low=0.0030, high=0.0031)
    narrow = render("D", _with(context, open_questions=questions))
    assert "smaller than the spread" not in narrow
    assert "More dimensions stop paying off" in narrow
    assert "says nothing about CelebA at 96 px" in narrow
    assert "A size trained to the stopping rule would tell" in narrow
    stopped = {"z_dim": 512, "epochs": 30, "mse": 0.0025, "budget_mse": 0.00292}
    questions["sweeps"]["latent"]["stopped"] = stopped
    pays = render("D", _with(context, open_questions=questions))
    assert "the budget made part of the plateau" in pays
    stopped["mse"] = 0.0031  # within the default AE's seeds: no better
    level = render("D", _with(context, open_questions=questions))
    assert "the plateau is the size's, not the budget's" in level


def _point(value: float, rate: int, variety: float | None, n: int = 300) -> dict:
    return {"value": value, "faces": _rate(rate, n), "variety": variety,
            "variety_interval": None if variety is None
            else [variety - 0.02, variety + 0.02],
            "n_faces": rate}


def test_c10_names_narrow_escapes_and_curves_without_a_variety(context, render):
    from zspace.latent.frontier import compare_curves

    curves = {
        "ae_gaussian": {"label": "AE, Gaussian", "knob": "std scale", "points": [
            _point(0.5, 290, 0.50), _point(1.0, 250, 0.80)]},
        # Each point lies inside the intervals of a Gaussian point and the other way
        # round: each is a hair better on one axis, a hair worse on the other.
        "ae_gmm": {"label": "AE, GMM (10)", "knob": "std scale", "points": [
            _point(0.5, 291, 0.49), _point(1.0, 251, 0.79)]},
        "ae_pca_ellipse": {"label": "AE, PCA ellipse", "knob": "fact", "points": [
            _point(0.3, 300, 0.20), _point(1.1, 280, 0.70)]},
        "vae_normal": {"label": "VAE, N(0, s^2 I)", "knob": "s", "points": [
            _point(0.5, 20, None), _point(2.0, 10, None)]},
    }
    qv = copy.deepcopy(context["results"]["quality_variety"])
    real = {"faces": _rate(297, 300), "variety": 0.79,
            "variety_interval": [0.77, 0.81]}
    qv.update(curves=curves, real=real, **compare_curves(curves), winner=None,
              best_at_target={})
    text = render("C", _with(context, quality_variety=qv))
    assert "None of the other samplers is dominated" in text
    assert "If a tie within the 95 % intervals counts as a match, AE, Gaussian " \
        "(by AE, GMM (10)); AE, GMM (10) (by AE, Gaussian) are dominated. They " \
        "escape only by differences too small to measure." in text
    assert "dominated too" not in text
    assert "AE, PCA ellipse (by" not in text
    assert "compared with no other: VAE, N(0, s^2 I)." in text
    assert "| too few faces (20) |" in text
