"""Model-level tests: builder shapes, losses, one train step, save/load in safe mode."""

import dataclasses
import json
import os
import subprocess
import sys
import zipfile

import keras
import numpy as np
import pytest
import tensorflow as tf

from zspace import paths
from zspace.config import ModelConfig
from zspace.errors import ConfigError
from zspace.networks import AE, VAE, build_decoder, build_encoder
from zspace.networks.autoencoders import kl_loss, reconstruction_loss
from zspace.store.artifacts import DOCUMENTS, MANIFEST, MODEL_FILE, write_artifact
from zspace.store.keys import file_digest
from zspace.training.inputs import evaluation_batches, training_batches
from zspace.training.runtime import make_optimizer

TINY = ModelConfig(kind="vae", z_dim=6, filters=(8, 16), kernels=(3, 3), strides=(2, 2))


def _images(n=8, size=16, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, size, size, 3), dtype=np.float32)


def _model(config=TINY, size=16, dtype="float32"):
    keras.utils.set_random_seed(3)
    shape = (size, size, 3)
    parts = (build_encoder(config, shape, dtype), build_decoder(config, shape, dtype))
    if config.kind == "vae":
        model = VAE(*parts, loss=config.loss, kl_factor=config.kl_factor, seed=3)
    else:
        model = AE(*parts, loss=config.loss, seed=3)
    model.compile(optimizer=make_optimizer(1e-3, "float32"))
    return model


@pytest.mark.parametrize("kind", ["ae", "vae"])
@pytest.mark.parametrize("decoder", ["transpose", "upsample"])
@pytest.mark.parametrize("size,padding", [(16, "same"), (20, "valid"), (15, "same")])
def test_encoder_and_decoder_shapes(kind, decoder, size, padding):
    config = dataclasses.replace(TINY, kind=kind, decoder=decoder, padding=padding)
    encoder = build_encoder(config, (size, size, 3))
    decoder_model = build_decoder(config, (size, size, 3))
    z = encoder(_images(5, size))
    outputs = z if kind == "vae" else [z]
    assert [tuple(t.shape) for t in outputs] == [(5, 6)] * len(outputs)
    images = decoder_model(np.zeros((5, 6), np.float32))
    assert tuple(images.shape) == (5, size, size, 3)
    assert images.dtype == tf.float32
    assert float(tf.reduce_min(images)) >= 0.0 and float(tf.reduce_max(images)) <= 1.0


def test_default_architectures_follow_the_blog():
    vae = build_encoder(ModelConfig(kind="vae"), (64, 64, 3))
    convs = [layer for layer in vae.layers if isinstance(layer, keras.layers.Conv2D)]
    assert [c.filters for c in convs] == [32, 64, 128, 256]
    assert [c.kernel_size for c in convs] == [(3, 3)] * 4
    assert [tuple(t.shape) for t in vae.outputs] == [(None, 256), (None, 256)]
    decoder = build_decoder(ModelConfig(kind="vae"), (64, 64, 3))
    deconvs = [layer for layer in decoder.layers
               if isinstance(layer, keras.layers.Conv2DTranspose)]
    assert [d.filters for d in deconvs] == [128, 64, 32, 3]
    wide = ModelConfig(kind="ae", z_dim=1600, filters=(64, 64, 128, 128),
                       kernels=(5, 5, 3, 3))
    encoder = build_encoder(wide, (64, 64, 3))
    assert tuple(encoder.output.shape) == (None, 1600)
    assert not any(isinstance(layer, keras.layers.Lambda)
                   for layer in [*vae.layers, *decoder.layers, *encoder.layers])


def test_impossible_architecture_is_a_config_error():
    config = dataclasses.replace(TINY, padding="valid", kernels=(5, 5))
    with pytest.raises(ConfigError, match="leaves no pixels"):
        build_encoder(config, (8, 8, 3))


def test_losses_match_hand_computation():
    images = np.array([[[[0.0, 1.0, 0.5]]]], np.float32)  # (1, 1, 1, 3)
    output = np.array([[[[0.1, 0.8, 0.5]]]], np.float32)
    bce = -np.mean([np.log(0.9), np.log(0.8), 0.5 * np.log(0.5) * 2])
    assert float(reconstruction_loss(images, output, "bce")[0]) == pytest.approx(bce)
    logits = np.log(output / (1.0 - output))
    assert float(reconstruction_loss(images, output, "bce", logits)[0]) == (
        pytest.approx(bce, rel=1e-5))
    mse = np.mean([0.01, 0.04, 0.0])
    assert float(reconstruction_loss(images, output, "mse")[0]) == pytest.approx(mse)
    z_mean = np.array([[1.0, 0.0]], np.float32)
    z_log_var = np.array([[0.0, np.log(4.0)]], np.float32)
    expected = 0.5 * (1.0 + (4.0 - 1.0 - np.log(4.0)))
    assert float(kl_loss(z_mean, z_log_var)[0]) == pytest.approx(expected)


@pytest.mark.parametrize("kind", ["ae", "vae"])
def test_train_step_reports_the_losses_and_lowers_them(kind):
    model = _model(dataclasses.replace(TINY, kind=kind))
    batch = tf.constant(_images(16))
    first = {k: float(v) for k, v in model.train_step(batch).items()}
    expected = {"total_loss", "reconstruction_loss", "mse"}
    if kind == "vae":
        expected |= {"kl_loss", "kl_share"}
        assert 0.0 < first["kl_share"] < 1.0
        assert first["total_loss"] == pytest.approx(
            first["reconstruction_loss"] + 5.0 * first["kl_loss"], rel=1e-5)
    assert set(first) == expected
    for _ in range(30):
        model.reset_metrics()
        last = {k: float(v) for k, v in model.train_step(batch).items()}
    assert last["reconstruction_loss"] < first["reconstruction_loss"]
    assert last["total_loss"] < first["total_loss"]


@pytest.mark.parametrize("kind", ["ae", "vae"])
def test_save_and_load_in_safe_mode_give_identical_outputs(kind, tmp_path):
    model = _model(dataclasses.replace(TINY, kind=kind, dropout=0.1))
    model.fit(_images(32), batch_size=16, epochs=1, verbose=0)
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras", safe_mode=True)
    assert type(loaded) is type(model)
    images = _images(4, seed=1)
    np.testing.assert_array_equal(loaded(images), model(images))
    np.testing.assert_array_equal(loaded.decoder(np.ones((2, 6), np.float32)),
                                  model.decoder(np.ones((2, 6), np.float32)))
    encoded, reference = loaded.encoder(images), model.encoder(images)
    for a, b in zip(tf.nest.flatten(encoded), tf.nest.flatten(reference), strict=True):
        np.testing.assert_array_equal(a, b)
    if kind == "vae":
        assert loaded.kl_factor == model.kl_factor


def test_a_model_saved_under_the_old_module_names_still_loads(tmp_path):
    # Artifacts cached before the models package was split name their classes'
    # modules zspace.models.*; reading one alone (no network imported) must work.
    folder = tmp_path / "vae-0123"
    write_artifact(folder, _model(), {name: {} for name in DOCUMENTS})
    saved = folder / MODEL_FILE
    with zipfile.ZipFile(saved) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    config = files["config.json"].decode()
    assert '"zspace.networks.autoencoders"' in config
    old = config.replace('"zspace.networks.', '"zspace.models.')
    files["config.json"] = old.encode()
    with zipfile.ZipFile(saved, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    manifest = json.loads((folder / MANIFEST).read_text())
    (folder / MANIFEST).write_text(json.dumps({**manifest,
                                               MODEL_FILE: file_digest(saved)}))
    script = ("import sys\nfrom pathlib import Path\n"
              "from zspace.store.artifacts import read_artifact\n"
              "print(type(read_artifact(Path(sys.argv[1]))[0]).__name__)")
    env = {**os.environ, "PYTHONPATH": str(paths.ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run([sys.executable, "-c", script, str(folder)],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["VAE"]


def test_vae_sampling_depends_on_the_step_not_on_hidden_state():
    model = _model()
    z_mean = tf.zeros((4, 6))
    z_log_var = tf.zeros((4, 6))
    first = model.sample(z_mean, z_log_var)
    np.testing.assert_array_equal(first, model.sample(z_mean, z_log_var))
    model.optimizer.iterations.assign_add(1)
    assert not np.allclose(first, model.sample(z_mean, z_log_var))
    draws = model.sample(tf.zeros((4000, 6)), tf.zeros((4000, 6))).numpy()
    assert abs(draws.mean()) < 0.05 and abs(draws.std() - 1.0) < 0.05


@pytest.mark.parametrize("precision", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision_keeps_outputs_and_losses_float32(precision):
    model = _model(dtype=precision)
    model.compile(optimizer=make_optimizer(1e-3, precision))
    assert model.decoder.output.dtype == "float32"
    assert model.encoder.get_layer("conv_0").compute_dtype == precision[6:]
    assert model.encoder.get_layer("z_mean").compute_dtype == "float32"
    batch = tf.constant(_images(8))
    first = model.train_step(batch)
    assert all(v.dtype == tf.float32 for v in first.values())
    for _ in range(10):
        last = model.train_step(batch)
    assert np.isfinite(float(last["total_loss"]))
    # float16 scales the loss; steps whose scaled gradients overflow are skipped
    # while the scale settles, bfloat16 needs no scaling.
    scaled = isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    assert scaled == (precision == "mixed_float16")
    assert 0 < model.optimizer.iterations.numpy() <= 11


def _indexed_images(n, size=4):
    # Image i is filled with the value i: a batch tells which images it holds.
    return np.broadcast_to(np.arange(n, dtype=np.uint8)[:, None, None, None],
                           (n, size, size, 3)).copy()


def test_training_batches_see_every_image_once_in_an_order_keyed_by_epoch(tmp_path):
    np.save(tmp_path / "train.npy", _indexed_images(100))
    images = np.load(tmp_path / "train.npy", mmap_mode="r")  # as the data cache
    stream = [np.asarray(batch) for batch in
              training_batches(images, 16, seed=4, first_epoch=0, num_epochs=3)]
    assert len(stream) == 3 * 6 and all(b.shape == (16, 4, 4, 3) for b in stream)
    assert all(b.dtype == np.float32 and b.max() <= 1.0 for b in stream)
    epochs = [np.concatenate([b[:, 0, 0, 0] for b in stream[e * 6:(e + 1) * 6]])
              for e in range(3)]
    ids = [np.rint(e * 255).astype(int) for e in epochs]
    assert all(len(set(i)) == 96 for i in ids)  # 96 distinct images, 4 left over
    assert not np.array_equal(ids[0], ids[1])
    resumed = [np.asarray(batch)[:, 0, 0, 0] for batch in
               training_batches(images, 16, seed=4, first_epoch=1, num_epochs=3)]
    np.testing.assert_array_equal(np.concatenate(resumed[:6]), epochs[1])


def test_evaluation_batches_keep_order_and_remainder():
    batches = [np.asarray(b) for b in evaluation_batches(_indexed_images(37), 16)]
    assert [len(b) for b in batches] == [16, 16, 5]
    ids = np.rint(np.concatenate([b[:, 0, 0, 0] for b in batches]) * 255)
    np.testing.assert_array_equal(ids, np.arange(37))
