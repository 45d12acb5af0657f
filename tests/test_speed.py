"""Opt-in training speed-ups (zspace.models.speed): keys, and the same arithmetic."""

import dataclasses
import os
import shutil

import keras
import numpy as np
import pytest
import tensorflow as tf

from zspace.config import JudgeConfig, ModelConfig, SpeedConfig, load_config
from zspace.data.dataset import Dataset, DatasetCard, content_hash
from zspace.errors import ConfigError
from zspace.models import keys, speed, train_or_load
from zspace.models.architecture import LEAKY_SLOPE
from zspace.models.autoencoders import reconstruction_loss
from zspace.models.layers import FusedBatchNormalization
from zspace.versioning import code_digest

CONFIG = load_config("default")
CARD = DatasetCard("synthetic", "tests", 64, 16, 64, "0" * 16)
OPTIONS = [f.name for f in dataclasses.fields(SpeedConfig)]


def _on(name):
    return dataclasses.replace(SpeedConfig(), **{name: True})


@pytest.mark.parametrize("name", [*keys.MODEL_NAMES, keys.JUDGE])
def test_keys_stay_as_they_were_with_every_option_off(name):
    model_config = keys.model_config_for(name, CONFIG)
    before = keys.model_spec(name, model_config, CONFIG.train, CARD)
    for off in (SpeedConfig(), CONFIG.speed):
        spec = keys.model_spec(name, model_config, CONFIG.train, CARD, off)
        assert spec == before
        assert keys.artifact_key(spec) == keys.artifact_key(before)
    assert "speed" not in before


@pytest.mark.parametrize("option", OPTIONS)
def test_an_option_on_changes_the_key_of_the_models_it_trains(option):
    vae = CONFIG.models.vae
    plain = keys.artifact_key(keys.model_spec("vae", vae, CONFIG.train, CARD))
    spec = keys.model_spec("vae", vae, CONFIG.train, CARD, _on(option))
    assert keys.artifact_key(spec) != plain
    assert spec["speed"][option] is True
    assert spec["speed"]["code"] == code_digest(*keys.SPEED_CODE)
    # The judge and pretrained files take no options: their keys stay.
    pretrained = dataclasses.replace(vae, pretrained="/no/such.keras")
    for name, config in (("judge", JudgeConfig()), ("vae", pretrained)):
        assert (keys.model_spec(name, config, CONFIG.train, CARD, _on(option))
                == keys.model_spec(name, config, CONFIG.train, CARD))


def test_speed_options_come_from_the_configuration():
    config = load_config("smoke", ["speed.fused_loss=true", "speed.fused_adam=true"])
    assert config.speed.active() and not CONFIG.speed.active()
    assert (config.speed.fused_loss, config.speed.fused_adam) == (True, True)


def test_fused_loss_matches_the_plain_loss_and_its_gradient():
    rng = np.random.default_rng(0)
    images = tf.constant(rng.random((4, 8, 8, 3)), tf.float32)
    logits = tf.Variable(rng.normal(0, 4, (4, 8, 8, 3)).astype(np.float32))
    weights = tf.constant(rng.random(4), tf.float32)  # a per-image upstream gradient
    results = []
    for fused in (False, True):
        with tf.GradientTape() as tape:
            probabilities = tf.sigmoid(logits)
            loss = (speed.bce_from_logits(images, logits, probabilities) if fused
                    else reconstruction_loss(images, probabilities, "bce", logits))
            total = tf.reduce_sum(loss * weights)
        results.append((loss.numpy(), tape.gradient(total, logits).numpy()))
    (plain, plain_grad), (fused, fused_grad) = results
    np.testing.assert_allclose(fused, plain, rtol=1e-5)
    np.testing.assert_allclose(fused_grad, plain_grad, rtol=1e-4, atol=1e-7)


needs_compiler = pytest.mark.skipif(
    not (os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++")),
    reason="fuse_batch_norm builds its kernel with a C++ compiler")


@needs_compiler
@pytest.mark.parametrize("shape", [(8, 6, 6, 5), (64, 16, 16, 32)])
def test_fused_batch_norm_matches_the_layers_it_replaces(shape):
    x = tf.Variable(tf.random.stateless_normal(shape, (1, 2)) * 3 + 1)
    channels = shape[-1]
    norm = FusedBatchNormalization(momentum=0.9)
    norm.build(x.shape)
    norm.gamma.assign(tf.linspace(0.5, 2.0, channels))
    norm.beta.assign(tf.linspace(-1.0, 1.0, channels))
    upstream = tf.random.stateless_normal(x.shape, (3, 4))
    results = []
    for fused in (False, True):
        with tf.GradientTape() as tape:
            if fused:
                y, mean, variance = speed.batch_norm_leaky_relu(
                    x, norm.gamma, norm.beta, norm.epsilon, LEAKY_SLOPE)
            else:
                y = keras.layers.LeakyReLU(LEAKY_SLOPE)(norm(x, training=True))
            total = tf.reduce_sum(y * upstream)
        grads = tape.gradient(total, [x, norm.gamma, norm.beta])
        results.append([y.numpy(), *(g.numpy() for g in grads)])
    # Where the normalised value is within rounding of zero, the leaky ReLU's
    # gradient may take either side in either implementation: leave those out.
    pixels = x.numpy().reshape(-1, channels).astype(np.float64)
    normalised = ((pixels - pixels.mean(0)) / np.sqrt(pixels.var(0) + norm.epsilon)
                  * norm.gamma.numpy() + norm.beta.numpy()).reshape(shape)
    clear = np.abs(normalised) > 1e-4
    (plain_y, plain_dx, *plain_rest), (fused_y, fused_dx, *fused_rest) = results
    np.testing.assert_allclose(fused_y, plain_y, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(fused_dx[clear], plain_dx[clear], rtol=1e-3, atol=1e-5)
    for plain, fused in zip(plain_rest, fused_rest, strict=True):
        np.testing.assert_allclose(fused, plain, rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(mean, pixels.mean(0), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(variance, pixels.var(0, ddof=1), rtol=1e-4)


def test_fused_batch_norm_without_a_compiler_says_what_it_needs(monkeypatch):
    monkeypatch.setenv("CXX", "/no/such/compiler")
    speed.kernels.cache_clear()
    try:
        with pytest.raises(ConfigError, match="speed.fuse_batch_norm"):
            speed.kernels()
    finally:
        speed.kernels.cache_clear()


@pytest.mark.parametrize("kernel,stride,channels", [(3, 2, 3), (5, 2, 3), (3, 3, 2),
                                                    (4, 2, 1)])
def test_subpixel_transpose_is_the_transposed_convolution(kernel, stride, channels):
    layer = keras.layers.Conv2DTranspose(channels, kernel, strides=stride,
                                         padding="same")
    x = tf.Variable(tf.random.stateless_normal((2, 5, 5, 4), (5, 6)))
    layer.build(x.shape)
    layer.bias.assign(tf.linspace(-1.0, 1.0, channels))
    results = []
    for subpixel in (False, True):
        with tf.GradientTape() as tape:
            y = (speed.subpixel_transpose(x, layer.kernel, layer.bias, stride)
                 if subpixel else layer(x))
            upstream = tf.sin(tf.range(tf.size(y), dtype=tf.float32))
            total = tf.reduce_sum(y * tf.reshape(upstream, tf.shape(y)))
        grads = tape.gradient(total, [x, layer.kernel, layer.bias])
        results.append([y.numpy(), *(g.numpy() for g in grads)])
    assert results[1][0].shape == (2, 5 * stride, 5 * stride, channels)
    for plain, fused in zip(*results, strict=True):
        np.testing.assert_allclose(fused, plain, rtol=1e-4, atol=1e-5)


@needs_compiler
@pytest.mark.slow
def test_training_with_every_option_lands_where_plain_training_does(tmp_path):
    rng = np.random.default_rng(4)
    train = rng.integers(0, 256, (64, 16, 16, 3), dtype=np.uint8)
    test = rng.integers(0, 256, (16, 16, 16, 3), dtype=np.uint8)
    card = DatasetCard("synthetic", "tests", 64, 16, 16, content_hash(train, test))
    dataset = Dataset(train, test, None, None, card)
    model_config = ModelConfig(kind="vae", z_dim=6, filters=(8, 16), kernels=(3, 3),
                               strides=(2, 2))
    train_config = dataclasses.replace(CONFIG.train, num_epochs=2, batch_size=16,
                                       stop_improvement=0.0)
    every = SpeedConfig(fused_loss=True, fused_adam=True, fuse_batch_norm=True,
                        subpixel_output=True)
    plain = train_or_load("vae", model_config, train_config, dataset, tmp_path,
                          progress=False)
    fast = train_or_load("vae", model_config, train_config, dataset, tmp_path,
                         progress=False, speed=every)
    assert fast.key != plain.key and fast.config["speed"]["fused_loss"]
    for metric in ("total_loss", "val_total_loss"):
        np.testing.assert_allclose(fast.history[metric], plain.history[metric],
                                   rtol=1e-4)
    # The artifact holds the ordinary model: it reloads with the plain layers.
    again = train_or_load("vae", model_config, train_config, dataset, tmp_path,
                          progress=False, speed=every)
    assert again.loaded_from_cache
    images = test.astype(np.float32) / 255
    np.testing.assert_allclose(again.model.predict(images, verbose=0),
                               fast.model.predict(images, verbose=0), atol=1e-6)
