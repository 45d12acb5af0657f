"""Sweeps in the configuration: points as model variants with keys of their own,
clear errors, figure ids per point, and the smoke profile's two-point sweep end to end
(``smoke_build``, shared with test_pipeline_e2e.py)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from zspace import config as config_module
from zspace import paths
from zspace.config import load_config
from zspace.data.dataset import DatasetCard
from zspace.errors import ConfigError
from zspace.pipeline import engine
from zspace.pipeline import notebooks as nb
from zspace.pipeline.plan import make_plan
from zspace.store import keys

CARD = DatasetCard("synthetic", "test", 384, 128, 32, "0" * 64)


def _names(config, name):
    sweep = next(s for s in config.parsed_sweeps if s.name == name)
    return [v.name for v in keys.sweep_variants(sweep, config)]


def test_points_become_variants_and_the_models_own_point_is_the_model():
    config = load_config("smoke", ["sweeps.kl.kl_factor=[0.5, 1, 5]"])
    assert _names(config, "kl") == ["vae@kl_factor=0.5", "vae@kl_factor=1", "vae"]
    variants = {v.name: v for v in keys.all_variants(config)}
    assert variants["vae@kl_factor=0.5"].model_config.kl_factor == 0.5
    assert variants["vae@kl_factor=0.5"].train_config == config.train
    found = [keys.artifact_key(v.spec(CARD)) for v in variants.values()]
    assert len(set(found)) == len(found)  # a key of its own for every variant
    assert keys.variant("vae@kl_factor=1", config).model_config.kl_factor == 1.0
    assert keys.base_name("vae@kl_factor=1") == "vae"


def test_a_sweep_over_two_keys_covers_their_grid_and_sweeps_share_points():
    config = load_config("smoke", [
        "sweeps.kl.kl_factor=[1, 5]",
        'sweeps.grid.model="vae"', 'sweeps.grid.decoder=["upsample"]',
        "sweeps.grid.kl_factor=[1, 2]"])
    assert _names(config, "grid") == ["vae@decoder=upsample,kl_factor=1",
                                      "vae@decoder=upsample,kl_factor=2"]
    names = [v.name for v in keys.all_variants(config)]
    assert names.count("vae@kl_factor=1") == 1 and len(names) == len(set(names))


def test_fixed_settings_hold_for_every_point_and_equal_points_are_one_model():
    config = load_config("smoke", [
        "sweeps.kl.kl_factor=[1, 5]", "sweeps.kl.fixed={num_epochs = 3}",
        'sweeps.dec.model="vae"', 'sweeps.dec.decoder=["transpose", "upsample"]',
        "sweeps.dec.fixed={num_epochs = 3}"])
    assert _names(config, "kl") == ["vae@kl_factor=1,num_epochs=3", "vae@num_epochs=3"]
    assert _names(config, "dec") == ["vae@num_epochs=3",
                                      "vae@decoder=upsample,num_epochs=3"]
    variants = {v.name: v for v in keys.all_variants(config)}
    assert variants["vae@num_epochs=3"].model_config.num_epochs == 3
    assert [p.label for p in config.parsed_sweeps[0].points] == ["kl_factor=1",
                                                                 "kl_factor=5"]
    with pytest.raises(ConfigError, match="sweeps.kl.fixed: unknown key epochs"):
        load_config("smoke", ["sweeps.kl.fixed={epochs = 3}"])


def test_sweeps_are_parsed_once_when_the_configuration_is_loaded(tmp_path,
                                                                  monkeypatch):
    parsed = []
    parse = config_module._sweep
    monkeypatch.setattr(config_module, "_sweep",
                        lambda name, *rest: parsed.append(name) or parse(name, *rest))
    config = load_config("default")
    assert parsed == list(config.sweeps) and len(parsed) == 3
    plan = make_plan(config, tmp_path, card=CARD)
    plan.rows()
    for stage in plan.notebooks:
        plan.inputs(stage)
    keys.all_variants(config)
    assert parsed == list(config.sweeps)  # the plan and the keys read them as parsed


def test_changing_one_value_changes_the_key_of_that_point_only():
    before = load_config("smoke", ["sweeps.kl.kl_factor=[1, 2, 5]"])
    after = load_config("smoke", ["sweeps.kl.kl_factor=[1, 3, 5]"])

    def keyed(config):
        return {v.name: keys.artifact_key(v.spec(CARD))
                for v in keys.all_variants(config)}

    old, new = keyed(before), keyed(after)
    assert set(new) - set(old) == {"vae@kl_factor=3"}
    assert set(old) - set(new) == {"vae@kl_factor=2"}
    assert all(old[name] == new[name] for name in set(old) & set(new))


@pytest.mark.parametrize("override, message", [
    ("sweeps.kl.kl_factor=[]", "sweeps.kl.kl_factor: expected a non-empty list"),
    ("sweeps.kl.kl_factor=2", "sweeps.kl.kl_factor: expected a non-empty list"),
    ("sweeps.kl.kl_factr=[1]", "sweeps.kl: unknown key kl_factr"),
    ('sweeps.kl.model="gan"', "sweeps.kl.model: 'gan' is not a model"),
    ("sweeps.kl.kl_factor=[1, 1.0]", "sweeps.kl.kl_factor: expected distinct values"),
    ("sweeps.kl.kl_factor=[-1]", "sweeps.kl.kl_factor: expected 0 or more"),
    ('sweeps.new.z_dim=[8]', "sweeps.new: expected model = one of ae, vae, wide_ae"),
])
def test_bad_sweeps_are_configuration_errors(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config("smoke", [override])


def test_a_bad_sweep_exits_2_from_the_command_line():
    done = subprocess.run([sys.executable, str(paths.ROOT / "pipeline.py"), "--config",
                           "smoke", "--set", "sweeps.kl.kl_factor=[]", "status"],
                          capture_output=True, text=True, cwd=paths.ROOT)
    assert done.returncode == 2
    assert "sweeps.kl.kl_factor: expected a non-empty list of values" in done.stderr


def test_point_figures_get_ids_and_files_named_by_sweep_and_point(tmp_path):
    spec = nb.NotebookSpec(tmp_path / "x.ipynb", {"X1": "X1-a.png"}, ("vae",), {},
                           sweeps=("kl", "other"),
                           sweep_figures={"kl": {"X2": "X2-sweep.png"}},
                           point_figures={"kl": {"X3": "X3-point.png"}})
    expanded = nb.expand(spec, {"kl": ["kl_factor=1", "kl_factor=5"]})
    assert expanded.figures == {
        "X1": "X1-a.png", "X2": "X2-sweep.png",
        "X3@kl.kl_factor=1": "X3-point@kl.kl_factor=1.png",
        "X3@kl.kl_factor=5": "X3-point@kl.kl_factor=5.png"}
    # Without the sweep configured its figures are not expected at all.
    assert nb.expand(spec, {}).figures == {"X1": "X1-a.png"}
    assert nb.expand(expanded, {"kl": ["kl_factor=1", "kl_factor=5"]}) == expanded


@pytest.mark.slow
def test_the_smoke_sweep_end_to_end(smoke_build):
    build_root, site = smoke_build
    config = load_config("smoke")
    manifest = json.loads((site / "figures" / "manifest.json").read_text())
    for label in ("kl_factor=1", "kl_factor=5"):
        entry = manifest[f"D2@kl.{label}"]
        assert entry["point"] == {"sweep": "kl", "label": label}
        assert entry["file"] == f"D2-kl-faces@kl.{label}.png"
    assert {"vae", "vae@kl_factor=1"} <= set(manifest["D1"]["models"])
    article = (site / "D-open-questions.md").read_text()
    assert "| 1 | 1 |" in article and "| 5 | 1 |" in article  # one row per point
    assert "[D. Questions the blog left open](D-open-questions.md)" in (
        site / "index.md").read_text()

    rows = dict(engine.status(config, build_root))
    assert rows["sweep kl (vae at kl_factor=1, kl_factor=5)"] == "fresh"
    # One changed value: one point to train, named by status, and trained alone.
    changed = load_config("smoke", ["sweeps.kl.kl_factor=[2, 5]"])
    rows = dict(engine.status(changed, build_root))
    assert rows["sweep kl (vae at kl_factor=2, kl_factor=5)"] == (
        "stale: 1 of 2 points (kl_factor=2)")
    stale = [name for name, state in rows.items()
             if name.startswith("model") and state != "fresh"]
    assert stale == ["model vae@kl_factor=2"]
    made = engine.train(changed, build_root, progress=False)
    assert [m.name for m in made if not m.loaded_from_cache] == ["vae@kl_factor=2"]
    plan = make_plan(changed, build_root)
    stage = next(s for s in plan.notebooks if s.spec.name == "90_open_questions")
    assert "D2@kl.kl_factor=2" in stage.spec.figures
    assert [p["model"] for p in plan.inputs(stage)["sweeps"]["kl"]["points"]] == [
        "vae@kl_factor=2", "vae"]
