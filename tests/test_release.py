"""Released model weights (``publish-models``): the release writes them, a build loads
the committed weights by key with no training, retrains on a changed key or a damaged
file; float16 storage."""

import dataclasses
import json
import logging

import numpy as np
import pytest

from zspace.config import (
    BuildConfig,
    Config,
    DataConfig,
    JudgeConfig,
    ModelConfig,
    ModelsConfig,
    SeedsConfig,
    TrainConfig,
)
from zspace.data import cache_entry, cache_key
from zspace.data.cache import save_entry
from zspace.release import release_models
from zspace.store import committed
from zspace.training import fitting, train_or_load_named
from zspace.training.trainer import train_all

pytestmark = pytest.mark.slow

SMALL = ModelConfig(kind="ae", z_dim=4, filters=(4, 8), kernels=(3, 3), strides=(2, 2))
NAMES = ("ae", "vae", "wide_ae", "judge")


def tiny_config(tmp_path, **train) -> Config:
    return Config(
        name="tiny",
        data=DataConfig(image_size=16, num_train=64, num_test=16),
        seeds=SeedsConfig(ae=(), vae=()),  # one variant per model here
        models=ModelsConfig(ae=SMALL, vae=dataclasses.replace(SMALL, kind="vae"),
                            wide_ae=dataclasses.replace(SMALL, z_dim=12)),
        train=TrainConfig(num_epochs=1, batch_size=16, seed=5, **train),
        judge=JudgeConfig(num_epochs=1, feature_dim=4),
        build=BuildConfig(models_dir=str(tmp_path / "models")),
    )


@pytest.fixture(scope="module")
def released(tmp_path_factory):
    """A tiny configuration whose models were trained and released once."""
    from tests.test_training import tiny_dataset

    tmp_path = tmp_path_factory.mktemp("published")
    config = tiny_config(tmp_path)
    dataset = tiny_dataset(attributes=2)
    manifests = release_models(config, dataset, tmp_path / "trainer", progress=False)
    return config, dataset, manifests, tmp_path


def no_training(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a training step ran")

    monkeypatch.setattr(fitting, "fit", refuse)


def test_the_release_writes_weights_and_manifests(released):
    config, dataset, manifests, tmp_path = released
    folder = committed.folder_for(config)
    assert folder == tmp_path / "models" / "tiny"
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        f"{name}{suffix}" for name in NAMES for suffix in (".json", ".weights.bin"))
    ae = json.loads((folder / "ae.json").read_text())
    assert ae["epochs"] == 1 and ae["max_epochs"] == 1
    assert ae["spec"]["dataset"] == dataset.card.content_hash
    assert ae["data_cache_key"] == cache_key(config.data)
    assert {"total_loss", "val_total_loss"} <= set(ae["final"])
    assert ae["meta"]["machine"]["cpus"] >= 1
    # Weights only: float16 floats, and exactly the model's variables.
    sizes = [np.prod(t["shape"], dtype=int) * np.dtype(t["dtype"]).itemsize
             for t in ae["tensors"]]
    assert ae["bytes"] == sum(sizes) == (folder / "ae.weights.bin").stat().st_size
    assert {t["dtype"] for t in ae["tensors"] if "float" in t["dtype"]} == {"float16"}


def test_a_fresh_build_loads_them_without_training(released, monkeypatch):
    config, dataset, manifests, tmp_path = released
    no_training(monkeypatch)
    fresh = tmp_path / "fresh-clone"
    save_entry(cache_entry(config.data, fresh), dataset)
    models = train_all(config, dataset, fresh, progress=False)
    for manifest in manifests:
        loaded = models[manifest["name"]]
        assert loaded.loaded_from_cache and loaded.key == manifest["key"]
        assert loaded.history == manifest["history"]
        assert loaded.meta["published"].endswith(f"{manifest['name']}.weights.bin")
    # The trainer's own cache now holds the same rounded weights a clone loads.
    again = train_or_load_named("vae", config, dataset, tmp_path / "trainer",
                                progress=False)
    for mine, theirs in zip(again.model.weights, models["vae"].model.weights,
                            strict=True):
        np.testing.assert_array_equal(mine.numpy(), theirs.numpy())


def test_float16_storage_keeps_reconstructions_within_tolerance(released):
    _, _, manifests, _ = released
    for manifest in manifests:
        check = manifest["float16_check"]
        if manifest["name"] == "judge":
            assert check["max_output_change"] < 0.05
            continue
        # Half a grey level of RMS is the figure diff's tolerance.
        assert check["max_pixel_change"] < 2 / 255
        assert abs(check["held_out_mse_float16"] - check["held_out_mse_float32"]) < 1e-4


def test_a_changed_configuration_retrains_and_says_why(released, caplog):
    config, dataset, _, tmp_path = released
    changed = dataclasses.replace(config, train=dataclasses.replace(
        config.train, learning_rate=1e-3))
    with caplog.at_level(logging.WARNING):
        trained = train_or_load_named("ae", changed, dataset, tmp_path / "other",
                                      progress=False)
    assert not trained.loaded_from_cache
    assert "train.learning_rate" in caplog.text and "training instead" in caplog.text


def test_a_damaged_weights_file_is_reported_and_never_loaded(released, caplog):
    config, dataset, manifests, tmp_path = released
    copy = tmp_path / "damaged"
    target = dataclasses.replace(config, build=BuildConfig(models_dir=str(copy)))
    source = committed.folder_for(config)
    (copy / "tiny").mkdir(parents=True)
    for file in source.iterdir():
        (copy / "tiny" / file.name).write_bytes(file.read_bytes())
    weights = copy / "tiny" / "ae.weights.bin"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0x01  # one flipped bit
    weights.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING):
        trained = train_or_load_named("ae", target, dataset, tmp_path / "third",
                                      progress=False)
    assert not trained.loaded_from_cache and "published" not in trained.meta
    assert "ae.weights.bin is damaged" in caplog.text


def test_retrain_ignores_cache_and_committed_weights(released):
    config, dataset, manifests, tmp_path = released
    trained = train_or_load_named("ae", config, dataset, tmp_path / "trainer",
                                  progress=False, retrain=True)
    assert not trained.loaded_from_cache
    assert trained.key == next(m["key"] for m in manifests if m["name"] == "ae")


def test_changed_parts_name_the_change_in_words():
    old = {"semantics": 1, "dataset": "a" * 64, "model": {"kl_factor": 5.0},
           "keras": "3.10.0"}
    new = {"semantics": 2, "dataset": "b" * 64, "model": {"kl_factor": 2.0},
           "keras": "3.10.0"}
    assert committed.changed_parts(old, new) == [
        "data", "model.kl_factor 5.0 -> 2.0", "training semantics 1 -> 2"]


def test_the_release_makes_or_loads_each_model_once(released, monkeypatch):
    from zspace.training import trainer

    config, dataset, manifests, tmp_path = released
    made = []
    real = trainer._make

    def counting(job, *args, **kwargs):
        made.append(job.name)
        return real(job, *args, **kwargs)

    monkeypatch.setattr(trainer, "_make", counting)
    again = release_models(config, dataset, tmp_path / "trainer", progress=False)
    assert sorted(made) == sorted(NAMES)
    assert [m["key"] for m in again] == [m["key"] for m in manifests]
