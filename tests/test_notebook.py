"""What a notebook may load: exactly the inputs manifest the plan wrote."""

from __future__ import annotations

import json

import pytest

from zspace import notebook
from zspace.config import load_config
from zspace.errors import BuildError


def _inputs(tmp_path, models: dict) -> str:
    path = tmp_path / "inputs.json"
    path.write_text(json.dumps({
        "config": load_config("smoke").to_dict(),
        "data": {"folder": str(tmp_path / "no-data"), "content_hash": "abc"},
        "models": models}))
    return str(path)


def test_a_model_the_notebook_does_not_declare_is_refused(tmp_path):
    run = notebook.start(_inputs(tmp_path, {}), str(tmp_path / "out"))
    with pytest.raises(BuildError, match="model vae is not among this notebook's "
                                         "inputs"):
        run.model("vae")


def test_a_missing_artifact_is_named_and_nothing_is_trained(tmp_path):
    folder = tmp_path / "cache" / "models" / "ae-0123456789abcdef"
    inputs = _inputs(tmp_path, {"ae": {"folder": str(folder),
                                       "key": "0123456789abcdef"}})
    run = notebook.start(inputs, str(tmp_path / "out"))
    with pytest.raises(BuildError, match=f"{folder}.*missing"):
        run.model("ae")
    assert not (tmp_path / "cache" / "models").exists()


def test_a_damaged_artifact_is_named(tmp_path):
    folder = tmp_path / "ae-0123456789abcdef"
    folder.mkdir()
    (folder / "manifest.json").write_text("{")
    inputs = _inputs(tmp_path, {"ae": {"folder": str(folder),
                                       "key": "0123456789abcdef"}})
    with pytest.raises(BuildError, match="model ae: its artifact is damaged"):
        notebook.start(inputs, str(tmp_path / "out")).model("ae")


def test_a_missing_data_set_is_named_not_prepared(tmp_path):
    run = notebook.start(_inputs(tmp_path, {}), str(tmp_path / "out"))
    with pytest.raises(BuildError, match="no-data is missing"):
        _ = run.dataset
    assert not (tmp_path / "no-data").exists()


def test_outside_a_build_the_manifest_is_asked_for(tmp_path):
    with pytest.raises(BuildError, match="inputs manifest"):
        notebook.start(str(tmp_path / "nowhere.json"), str(tmp_path / "out"))


def test_seeds_come_in_seed_order_after_the_model_itself(tmp_path, monkeypatch):
    models = {name: {"folder": str(tmp_path / name), "key": name}
              for name in ("ae@seed=10", "vae", "ae", "ae@seed=2")}
    run = notebook.start(_inputs(tmp_path, models), str(tmp_path / "out"))
    monkeypatch.setattr(run, "trained", lambda name: name)
    assert run.seeds("ae") == ["ae", "ae@seed=2", "ae@seed=10"]
    assert run.seeds("vae") == ["vae"]
