"""Training tests: determinism, the artifact cache, resume after SIGKILL, pretrained
files, the judge, train_all. Distributed training: test_training_distributed.py."""

import dataclasses
import inspect
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import keras
import numpy as np
import pytest

from zspace import paths
from zspace.config import (
    Config,
    DataConfig,
    JudgeConfig,
    ModelConfig,
    ModelsConfig,
    SeedsConfig,
    TrainConfig,
)
from zspace.data import cache_entry
from zspace.data.cache import save_entry
from zspace.data.dataset import Dataset, DatasetCard, content_hash
from zspace.errors import ModelError
from zspace.networks import VAE, judge
from zspace.pipeline.plan import make_plan
from zspace.training import runtime, train_all, train_or_load, train_or_load_named

TINY = ModelConfig(kind="vae", z_dim=6, filters=(8, 16), kernels=(3, 3), strides=(2, 2))
TRAIN = TrainConfig(num_epochs=2, batch_size=16, seed=5)

def tiny_dataset(num_train=64, num_test=16, size=16, attributes=0):
    """Random uint8 images (and, optionally, attributes they show)."""
    rng = np.random.default_rng(11)
    train = rng.integers(0, 256, (num_train, size, size, 3), dtype=np.uint8)
    test = rng.integers(0, 256, (num_test, size, size, 3), dtype=np.uint8)
    train_attr = test_attr = None
    if attributes:
        # Channel means: attributes a network can read off the images.
        train_attr = (train.mean(axis=(1, 2))[:, :attributes] / 255).astype(np.float32)
        test_attr = (test.mean(axis=(1, 2))[:, :attributes] / 255).astype(np.float32)
    card = DatasetCard("synthetic", "tests", num_train, num_test, size,
                       content_hash(train, test),
                       attribute_names=("red", "green", "blue")[:attributes])
    return Dataset(train, test, train_attr, test_attr, card)


# Scripts run in subprocesses build the same data set from the same source.
SCRIPT_HEADER = (
    "import numpy as np\n"
    "from zspace.data.dataset import Dataset, DatasetCard, content_hash\n\n"
    + inspect.getsource(tiny_dataset)
)


def _weights(model):
    return [w.numpy() for w in model.weights]


def script_command(tmp_path, body):
    """A Python script (the data set's source, then ``body``) and its environment."""
    script = tmp_path / "script.py"
    script.write_text(SCRIPT_HEADER + textwrap.dedent(body))
    # The same CPU kernels as this process, so that results agree to the bit.
    onednn = "1" if runtime.onednn_enabled() else "0"
    env = {**os.environ, "PYTHONPATH": str(paths.ROOT), "TF_ENABLE_ONEDNN_OPTS": onednn}
    return [sys.executable, str(script)], env


def run_script(tmp_path, body) -> dict:
    """Run ``body`` as :func:`script_command`'s script; its ``RESULTS`` line, parsed."""
    command, env = script_command(tmp_path, body)
    finished = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True,
                              text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr[-3000:]
    line = next(x for x in finished.stdout.splitlines() if x.startswith("RESULTS "))
    return json.loads(line.removeprefix("RESULTS "))


@pytest.mark.slow
def test_same_config_and_seed_give_identical_weights(tmp_path):
    dataset = tiny_dataset()
    first = train_or_load("vae", TINY, TRAIN, dataset, tmp_path / "a", progress=False)
    second = train_or_load("vae", TINY, TRAIN, dataset, tmp_path / "b", progress=False)
    assert not second.loaded_from_cache
    for a, b in zip(_weights(first.model), _weights(second.model), strict=True):
        np.testing.assert_array_equal(a, b)
    other = train_or_load("vae", TINY, dataclasses.replace(TRAIN, seed=6), dataset,
                          tmp_path / "a", progress=False)
    assert other.key != first.key
    assert not np.array_equal(_weights(other.model)[0], _weights(first.model)[0])


@pytest.mark.slow
def test_second_call_loads_the_artifact(tmp_path):
    dataset = tiny_dataset()
    trained = train_or_load("ae", dataclasses.replace(TINY, kind="ae"), TRAIN, dataset,
                            tmp_path, progress=False)
    assert trained.path == paths.model_artifact(tmp_path, "ae", trained.key)
    assert sorted(p.name for p in trained.path.iterdir()) == [
        "config.json", "dataset.json", "history.json", "manifest.json", "meta.json",
        "model.keras"]
    assert len(trained.history["total_loss"]) == 2
    assert len(trained.history["val_total_loss"]) == 2
    started = time.perf_counter()
    loaded = train_or_load("ae", dataclasses.replace(TINY, kind="ae"), TRAIN, dataset,
                           tmp_path, progress=False)
    assert time.perf_counter() - started < 5
    assert loaded.loaded_from_cache and loaded.key == trained.key
    assert loaded.history == trained.history
    assert loaded.seconds == pytest.approx(trained.seconds)
    images = dataset.test[:4].astype(np.float32) / 255
    np.testing.assert_array_equal(loaded.model(images), trained.model(images))
    # A different data set is a different key.
    changed = dataclasses.replace(dataset, train=dataset.train[::-1].copy(),
                                  card=dataclasses.replace(dataset.card,
                                                           content_hash="other"))
    retrained = train_or_load("ae", dataclasses.replace(TINY, kind="ae"), TRAIN,
                              changed, tmp_path, progress=False)
    assert retrained.key != trained.key and not retrained.loaded_from_cache


@pytest.mark.slow
def test_corrupt_artifact_is_rebuilt_not_loaded(tmp_path):
    dataset = tiny_dataset()
    config = dataclasses.replace(TRAIN, num_epochs=1)
    trained = train_or_load("vae", TINY, config, dataset, tmp_path, progress=False)
    model_file = trained.path / "model.keras"
    damages = {
        "a partial write": lambda: model_file.write_bytes(
            model_file.read_bytes()[:500]),
        "no manifest": lambda: (trained.path / "manifest.json").unlink(),
        "an edited file": lambda: (trained.path / "history.json").write_text("{}"),
    }
    for damage in damages.values():
        damage()
        rebuilt = train_or_load("vae", TINY, config, dataset, tmp_path, progress=False)
        assert not rebuilt.loaded_from_cache
        assert rebuilt.history["total_loss"] == trained.history["total_loss"]
    assert train_or_load("vae", TINY, config, dataset, tmp_path,
                         progress=False).loaded_from_cache


@pytest.mark.slow
def test_run_killed_after_first_epoch_resumes_and_matches(tmp_path):
    body = f"""
    import os, time
    from pathlib import Path
    import keras
    from zspace.config import ModelConfig, TrainConfig
    from zspace.training import train_or_load

    class Stall(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if os.environ.get("STALL"):
                time.sleep(60)  # the test kills us here, after the checkpoint

    result = train_or_load(
        "vae", {TINY!r}, {dataclasses.replace(TRAIN, num_epochs=3)!r},
        tiny_dataset(), Path("build"), progress=False, callbacks=[Stall()])
    epochs = len(result.history["total_loss"])
    print("RESUMED", result.meta["resumed_from_epoch"], epochs)
    """
    command, env = script_command(tmp_path, body)
    process = subprocess.Popen(command, cwd=tmp_path, env={**env, "STALL": "1"},
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    records = paths.model_cache_dir(tmp_path / "build")
    deadline = time.monotonic() + 120
    while not list(records.glob("*.partial/checkpoint/latest.json")):
        assert process.poll() is None, process.stdout.read().decode()[-3000:]
        assert time.monotonic() < deadline, "no checkpoint within two minutes"
        time.sleep(0.2)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL
    record = json.loads(next(records.glob("*.partial/checkpoint/latest.json"))
                        .read_text())
    assert record["epochs_done"] == 1

    finished = subprocess.run(command, cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stdout[-3000:] + finished.stderr[-3000:]
    assert "RESUMED 1 3" in finished.stdout
    assert not list(records.glob("*.partial"))

    # The resumed run ends exactly where an uninterrupted one does.
    resumed = train_or_load("vae", TINY, dataclasses.replace(TRAIN, num_epochs=3),
                            tiny_dataset(), tmp_path / "build", progress=False)
    assert resumed.loaded_from_cache and len(resumed.history["epoch_seconds"]) == 3
    straight = train_or_load("vae", TINY, dataclasses.replace(TRAIN, num_epochs=3),
                             tiny_dataset(), tmp_path / "straight", progress=False)
    assert straight.meta["resumed_from_epoch"] == 0
    for a, b in zip(_weights(resumed.model), _weights(straight.model), strict=False):
        np.testing.assert_array_equal(a, b)
    assert resumed.history["total_loss"] == straight.history["total_loss"]


@pytest.mark.slow
def test_pretrained_file_is_checked_and_used(tmp_path):
    dataset = tiny_dataset()
    # Trained "on a GPU": mixed precision; adopted here into a float32 model.
    elsewhere = train_or_load("vae", TINY,
                              dataclasses.replace(TRAIN, precision="mixed_bfloat16"),
                              dataset, tmp_path / "gpu", progress=False)
    assert elsewhere.model.encoder.get_layer("conv_0").compute_dtype == "bfloat16"
    pretrained = dataclasses.replace(
        TINY, pretrained=str(elsewhere.path / "model.keras"))
    adopted = train_or_load("vae", pretrained, TRAIN, dataset, tmp_path / "here",
                            progress=False)
    assert isinstance(adopted.model, VAE)
    assert adopted.model.encoder.get_layer("conv_0").compute_dtype == "float32"
    assert adopted.history == elsewhere.history  # history.json came along
    for a, b in zip(_weights(adopted.model), _weights(elsewhere.model), strict=True):
        np.testing.assert_array_equal(a, b)
    assert train_or_load("vae", pretrained, TRAIN, dataset, tmp_path / "here",
                         progress=False).loaded_from_cache

    wrong = dataclasses.replace(pretrained, z_dim=7)
    with pytest.raises(ModelError, match=r"model\.keras.*does not match.*z_mean"):
        train_or_load("vae", wrong, TRAIN, dataset, tmp_path / "here", progress=False)
    as_ae = dataclasses.replace(pretrained, kind="ae")
    with pytest.raises(ModelError, match="a VAE instead of a AE"):
        train_or_load("ae", as_ae, TRAIN, dataset, tmp_path / "here", progress=False)
    missing = dataclasses.replace(TINY, pretrained=str(tmp_path / "nowhere.keras"))
    with pytest.raises(ModelError, match="nowhere.keras not found"):
        train_or_load("vae", missing, TRAIN, dataset, tmp_path / "here", progress=False)


@pytest.mark.slow
@pytest.mark.parametrize("attributes", [3, 0])
def test_judge_learns_its_task_and_exposes_features(tmp_path, attributes):
    dataset = tiny_dataset(num_train=128, attributes=attributes)
    config = JudgeConfig(num_epochs=4, feature_dim=10)
    trained = train_or_load("judge", config, TRAIN, dataset, tmp_path, progress=False)
    assert trained.config["task"] == ("attributes" if attributes else "rotation")
    assert trained.history["loss"][-1] < trained.history["loss"][0]
    features = judge.feature_extractor(trained.model)
    images = dataset.test[:5].astype(np.float32) / 255
    assert tuple(features(images).shape) == (5, 10)
    reloaded = keras.saving.load_model(trained.path / "model.keras", safe_mode=True)
    np.testing.assert_allclose(judge.feature_extractor(reloaded)(images),
                               features(images), rtol=1e-6)


@pytest.mark.slow
def test_train_all_makes_every_model_and_the_plan_sees_them(tmp_path):
    small = ModelConfig(kind="ae", z_dim=4, filters=(4, 8), kernels=(3, 3),
                        strides=(2, 2), num_epochs=1)
    config = Config(
        data=DataConfig(image_size=16, num_train=64, num_test=16),
        models=ModelsConfig(ae=small, vae=dataclasses.replace(small, kind="vae"),
                            wide_ae=dataclasses.replace(small, z_dim=12)),
        train=dataclasses.replace(TRAIN, num_epochs=1),
        judge=JudgeConfig(num_epochs=1, feature_dim=4),
        seeds=SeedsConfig(ae=(), vae=()),  # one variant per model here
    )
    dataset = tiny_dataset(attributes=2)
    # Put the data set where the data stage would, so the plan reads its card.
    save_entry(cache_entry(config.data, tmp_path), dataset)
    names = ["ae", "vae", "wide_ae", "judge"]
    plan = make_plan(config, tmp_path, models=names)
    assert [stage.source.kind for stage in plan.models] == ["train"] * 4
    models = train_all(config, dataset, tmp_path, progress=False)
    assert sorted(models) == sorted(names)
    assert tuple(models["wide_ae"].model.encoder.output.shape) == (None, 12)
    assert models["judge"].config["task"] == "attributes"
    plan = make_plan(config, tmp_path, models=names)
    assert all(stage.fresh for stage in plan.models)
    assert plan.model_keys() == {name: models[name].key for name in names}
    again = train_all(config, dataset, tmp_path, progress=False)
    assert all(m.loaded_from_cache for m in again.values())
    with pytest.raises(ModelError, match="unknown model 'gan'"):
        train_or_load_named("gan", config, dataset, tmp_path)
