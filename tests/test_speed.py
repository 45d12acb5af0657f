"""Training speed-ups (zspace.networks.speed): keys, construction, the same
arithmetic, the same weights, and what a machine without a compiler is told."""

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from zspace import paths
from zspace.config import JudgeConfig, ModelConfig, SpeedConfig, load_config
from zspace.data.dataset import Dataset, DatasetCard, content_hash
from zspace.errors import EnvironmentProblem
from zspace.networks import speed
from zspace.networks.architecture import BATCH_NORM_MOMENTUM, LEAKY_SLOPE
from zspace.networks.autoencoders import reconstruction_loss
from zspace.networks.layers import FusedBatchNormalization
from zspace.store import committed, keys
from zspace.training import train_or_load
from zspace.training.factory import build_model, compiled_model

CONFIG = load_config("default")
CARD = DatasetCard("synthetic", "tests", 64, 16, 64, "0" * 16)
OPTIONS = [f.name for f in dataclasses.fields(SpeedConfig)]
TINY = ModelConfig(kind="vae", z_dim=6, filters=(8, 16), kernels=(3, 3), strides=(2, 2))
TRAIN = dataclasses.replace(CONFIG.train, num_epochs=2, batch_size=16,
                            stop_improvement=0.0)
# Every option that pays on a CPU (XLA does not).
EVERY = SpeedConfig(fused_loss=True, fused_adam=True, fuse_batch_norm=True,
                    subpixel_output=True)


# Every option off: the plain training step.
OFF = SpeedConfig(**{name: False for name in OPTIONS})


def _on(name):
    return dataclasses.replace(OFF, **{name: True})


def _dataset(num_train=64, num_test=16, size=16):
    rng = np.random.default_rng(4)
    train = rng.integers(0, 256, (num_train, size, size, 3), dtype=np.uint8)
    test = rng.integers(0, 256, (num_test, size, size, 3), dtype=np.uint8)
    card = DatasetCard("synthetic", "tests", num_train, num_test, size,
                       content_hash(train, test))
    return Dataset(train, test, None, None, card)


needs_compiler = pytest.mark.skipif(
    not (os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++")),
    reason="fuse_batch_norm builds its kernel with a C++ compiler")


@pytest.fixture(scope="module")
def kernel_dir(tmp_path_factory):
    """One kernel folder for the module: the kernel compiles once (about 10 s)."""
    return tmp_path_factory.mktemp("build") / "kernels"


@pytest.fixture
def no_compiler(monkeypatch):
    """A machine without a C++ compiler (and a fresh kernel cache before and after)."""
    monkeypatch.delenv("CXX", raising=False)
    monkeypatch.setattr(shutil, "which", lambda name, *args, **kwargs: None)
    speed.kernels.cache_clear()
    yield
    speed.kernels.cache_clear()


# --- keys ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", [*keys.MODEL_NAMES, keys.JUDGE])
def test_no_option_is_part_of_a_key(name):
    # The same arithmetic in another order: the manifest records the options.
    model_config = keys.model_config_for(name, CONFIG)
    plain = keys.ModelVariant(name, model_config, CONFIG.train, None).spec(CARD)
    for options in (OFF, CONFIG.speed, EVERY, *map(_on, OPTIONS)):
        spec = keys.ModelVariant(name, model_config, CONFIG.train, options).spec(CARD)
        assert spec == plain and "speed" not in spec
        assert keys.artifact_key(spec) == keys.artifact_key(plain)


def test_speed_options_come_from_the_configuration():
    config = load_config("smoke", [f"speed.{name}=false" for name in OPTIONS])
    assert CONFIG.speed.active() and not config.speed.active()
    assert config.speed == OFF
    fast = load_config("smoke", ["speed.jit_compile=true",
                                 "speed.fuse_batch_norm=false"]).speed
    assert fast.jit_compile and fast.fused_loss  # the defaults stay on


# --- construction --------------------------------------------------------------------


def test_the_factory_builds_the_options_in_where_they_apply():
    dataset = _dataset()
    options = dataclasses.replace(OFF, fused_loss=True, fused_adam=True,
                                  subpixel_output=True, jit_compile=True)
    fast = compiled_model("vae", TINY, TRAIN, dataset, speed=options)
    assert fast.fused_loss and fast.jit_compile
    assert type(fast.optimizer) is speed.FusedAdam
    assert isinstance(fast.decoder.get_layer("deconv_1"), speed.SubpixelConv2DTranspose)
    # No options for the judge, a pretrained model, or with speed=None.
    pretrained = dataclasses.replace(TINY, pretrained="/no/such.keras")
    for name, config, given in (("judge", JudgeConfig(), options),
                                ("vae", pretrained, options), ("vae", TINY, None)):
        plain = compiled_model(name, config, TRAIN, dataset, speed=given)
        assert type(plain.optimizer) is keras.optimizers.Adam and not plain.jit_compile
        assert not getattr(plain, "fused_loss", False)
        assert not any(type(layer).__module__ == speed.__name__
                       for layer in _layers(plain))


def _layers(model):
    """The layers of an AE's or VAE's encoder and decoder, or the judge's."""
    parts = [getattr(model, part) for part in ("encoder", "decoder")
             if hasattr(model, part)]
    return [layer for part in parts for layer in part.layers] if parts else model.layers


@needs_compiler
@pytest.mark.parametrize("kind", ["ae", "vae"])
def test_weights_move_between_models_with_and_without_the_options(kind, kernel_dir,
                                                                  tmp_path):
    model_config = dataclasses.replace(TINY, kind=kind)
    dataset = _dataset()
    fast = compiled_model(kind, model_config, TRAIN, dataset, speed=EVERY,
                          kernel_dir=kernel_dir)
    plain = build_model(kind, model_config, TRAIN, dataset)
    assert any(isinstance(layer, speed.BatchNormLeakyReLU) for layer in _layers(fast))
    # The same weight list: count, order, names, shapes, and (same seed) values.
    assert ([(w.path, tuple(w.shape), w.dtype) for w in fast.weights]
            == [(w.path, tuple(w.shape), w.dtype) for w in plain.weights])
    for a, b in zip(fast.weights, plain.weights, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    # Trained with the options, published, loaded into a model built without them.
    images = dataset.test.astype(np.float32) / 255
    fast.fit(dataset.train.astype(np.float32) / 255, epochs=1, batch_size=16,
             verbose=0)
    committed.round_weights(fast)
    manifest = committed.write(tmp_path, kind, fast, {})
    found = committed.CommittedModel(kind, json.loads(manifest.read_text()),
                                tmp_path / f"{kind}.weights.bin")
    committed.load_into(plain, found)
    for a, b in zip(fast.weights, plain.weights, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    np.testing.assert_allclose(plain.predict(images, verbose=0),
                               fast.predict(images, verbose=0), atol=1e-5)


@needs_compiler
def test_a_model_trained_with_the_options_saves_and_loads_in_safe_mode(kernel_dir,
                                                                       tmp_path):
    dataset = _dataset()
    fast = compiled_model("vae", TINY, TRAIN, dataset, speed=EVERY,
                          kernel_dir=kernel_dir)
    fast.fit(dataset.train.astype(np.float32) / 255, epochs=1, batch_size=16,
             verbose=0)
    fast.save(tmp_path / "model.keras")
    again = keras.saving.load_model(tmp_path / "model.keras", safe_mode=True)
    assert type(again.optimizer) is speed.FusedAdam and again.fused_loss
    assert ([v.numpy().tolist() for v in again.optimizer.variables]
            == [v.numpy().tolist() for v in fast.optimizer.variables])
    images = dataset.test.astype(np.float32) / 255
    np.testing.assert_array_equal(again.predict(images, verbose=0),
                                  fast.predict(images, verbose=0))


# --- the same arithmetic -------------------------------------------------------------


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


@pytest.mark.parametrize("loss", ["bce", "mse"])
def test_a_model_built_with_fused_loss_has_the_plain_losses_and_gradients(loss):
    model_config = dataclasses.replace(TINY, loss=loss)
    dataset = _dataset()
    images = tf.constant(dataset.train[:16].astype(np.float32) / 255)
    results = []
    for options in (None, _on("fused_loss")):
        model = compiled_model("vae", model_config, TRAIN, dataset, speed=options)
        model.optimizer.build(model.trainable_variables)  # sample() reads its step
        with tf.GradientTape() as tape:
            losses = model._compute_losses(images, training=True)
        gradients = tape.gradient(losses["total_loss"], model.trainable_variables)
        results.append(({k: v.numpy() for k, v in losses.items()},
                        [g.numpy() for g in gradients]))
    (plain, plain_grads), (fused, fused_grads) = results
    for name in plain:
        np.testing.assert_allclose(fused[name], plain[name], rtol=1e-5)
    for a, b in zip(fused_grads, plain_grads, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4)


def test_fused_adam_updates_as_adam_does_with_the_same_variables():
    rng = np.random.default_rng(1)
    start = [rng.normal(size=shape).astype(np.float32) for shape in ((3, 4), (4,))]
    gradients = [[tf.constant(rng.normal(size=s.shape), tf.float32) for s in start]
                 for _ in range(3)]
    results = []
    for optimizer in (keras.optimizers.Adam(1e-2), speed.FusedAdam(1e-2)):
        variables = [keras.Variable(value) for value in start]
        for step in gradients:
            optimizer.apply_gradients(zip(step, variables, strict=True))
        results.append((optimizer, [v.numpy() for v in variables]))
    (adam, plain), (fused_adam, fused) = results
    # Steps of about 1e-2; the kernel rounds alpha's terms in another order.
    for a, b in zip(fused, plain, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    # Adam's state layout, so a saved optimizer state reads the same.
    assert ([tuple(v.shape) for v in fused_adam.variables]
            == [tuple(v.shape) for v in adam.variables])
    for a, b in zip(fused_adam.variables, adam.variables, strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6)


@needs_compiler
@pytest.mark.parametrize("shape", [(8, 6, 6, 5), (64, 16, 16, 32)])
def test_fused_batch_norm_matches_the_layers_it_replaces(shape, kernel_dir):
    x = tf.Variable(tf.random.stateless_normal(shape, (1, 2)) * 3 + 1)
    channels = shape[-1]
    norm = FusedBatchNormalization(momentum=BATCH_NORM_MOMENTUM)
    fused = speed.BatchNormLeakyReLU(LEAKY_SLOPE, kernel_dir,
                                     momentum=BATCH_NORM_MOMENTUM)
    for layer in (norm, fused):
        layer.build(x.shape)
        layer.gamma.assign(tf.linspace(0.5, 2.0, channels))
        layer.beta.assign(tf.linspace(-1.0, 1.0, channels))
    upstream = tf.random.stateless_normal(x.shape, (3, 4))

    def plain(x):
        return keras.layers.LeakyReLU(LEAKY_SLOPE)(norm(x, training=True))

    results = []
    for layer, forward in ((norm, plain), (fused, lambda x: fused(x, training=True))):
        with tf.GradientTape() as tape:
            y = forward(x)  # one call: one update of the moving statistics
            total = tf.reduce_sum(y * upstream)
        grads = tape.gradient(total, [x, layer.gamma, layer.beta])
        results.append([y.numpy(), *(g.numpy() for g in grads),
                        layer.moving_mean.numpy(), layer.moving_variance.numpy()])
    plain_y, plain_dx, plain_dgamma, plain_dbeta, *plain_moving = results[0]
    fused_y, fused_dx, fused_dgamma, fused_dbeta, *fused_moving = results[1]
    np.testing.assert_allclose(fused_y, plain_y, rtol=1e-4, atol=1e-5)
    # Where the normalised value is within rounding of zero, the leaky ReLU's
    # gradient may take either side in either implementation: leave those out.
    pixels = x.numpy().reshape(-1, channels).astype(np.float64)
    normalised = ((pixels - pixels.mean(0)) / np.sqrt(pixels.var(0) + norm.epsilon)
                  * norm.gamma.numpy() + norm.beta.numpy()).reshape(shape)
    clear = np.abs(normalised) > 1e-4
    np.testing.assert_allclose(fused_dx[clear], plain_dx[clear], rtol=1e-3, atol=1e-5)
    np.testing.assert_allclose(fused_dgamma, plain_dgamma, rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(fused_dbeta, plain_dbeta, rtol=1e-3, atol=1e-3)
    # The moving statistics move as the plain layer's, so inference agrees too.
    for plain_value, fused_value in zip(plain_moving, fused_moving, strict=True):
        np.testing.assert_allclose(fused_value, plain_value, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(fused(x, training=False),
                               keras.layers.LeakyReLU(LEAKY_SLOPE)(norm(x)),
                               rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kernel,stride,channels", [(3, 2, 3), (5, 2, 3), (3, 3, 2),
                                                    (4, 2, 1)])
def test_subpixel_layer_is_the_transposed_convolution(kernel, stride, channels):
    x = tf.Variable(tf.random.stateless_normal((2, 5, 5, 4), (5, 6)))
    results = []
    for layer_class in (keras.layers.Conv2DTranspose, speed.SubpixelConv2DTranspose):
        layer = layer_class(channels, kernel, strides=stride, padding="same")
        layer.build(x.shape)
        layer.kernel.assign(tf.random.stateless_normal(layer.kernel.shape, (7, 8)))
        layer.bias.assign(tf.linspace(-1.0, 1.0, channels))
        with tf.GradientTape() as tape:
            y = layer(x)
            upstream = tf.sin(tf.range(tf.size(y), dtype=tf.float32))
            total = tf.reduce_sum(y * tf.reshape(upstream, tf.shape(y)))
        grads = tape.gradient(total, [x, layer.kernel, layer.bias])
        results.append([y.numpy(), *(g.numpy() for g in grads)])
    assert results[1][0].shape == (2, 5 * stride, 5 * stride, channels)
    for plain, fused in zip(*results, strict=True):
        np.testing.assert_allclose(fused, plain, rtol=1e-4, atol=1e-5)


# --- the kernel: where it goes, and without a compiler --------------------------------


@needs_compiler
def test_the_kernel_is_compiled_into_the_build_folder_given(tmp_path, monkeypatch):
    # The repository's build/ moved aside: nothing may land there.
    monkeypatch.setattr(paths, "BUILD", tmp_path / "repository-build")
    build_root = tmp_path / "elsewhere"
    model_config = dataclasses.replace(TINY, kind="ae")
    train = dataclasses.replace(TRAIN, num_epochs=1)
    trained = train_or_load("ae", model_config, train, _dataset(), build_root,
                            progress=False, speed=_on("fuse_batch_norm"))
    assert trained.meta["speed"]["fuse_batch_norm"] and trained.meta["device"] == "cpu"
    assert len(list((build_root / "kernels").glob("bn_leaky_relu-*.so"))) == 1
    assert not (tmp_path / "repository-build").exists()


def test_fused_batch_norm_without_a_compiler_says_what_it_needs(no_compiler, tmp_path):
    with pytest.raises(EnvironmentProblem) as raised:
        build_model("ae", dataclasses.replace(TINY, kind="ae"), TRAIN, _dataset(),
                    speed=_on("fuse_batch_norm"), kernel_dir=tmp_path / "kernels")
    message = str(raised.value)
    for needed in ("speed.fuse_batch_norm", "c++", "g++", "PATH", "install",
                   "speed.fuse_batch_norm=false"):
        assert needed in message
    assert raised.value.exit_code == 5
    assert not (tmp_path / "kernels").exists()


# Debian's cross compiler (g++-aarch64-linux-gnu, which .ci/run installs).
CROSS = "aarch64-linux-gnu-g++"


@pytest.mark.skipif(shutil.which(CROSS) is None,
                    reason=f"no {CROSS}: apt-get install g++-aarch64-linux-gnu")
def test_the_kernel_compiles_off_x86(tmp_path):
    def compile_for_aarch64(source):
        # -S: aarch64 code, not assembled. GCC's -fsyntax-only lets the x86 clones
        # through; code generation refuses target("avx512f") off x86.
        return subprocess.run([CROSS, "-S", "-o", os.devnull, "-w",
                               *tf.sysconfig.get_compile_flags(), str(source)],
                              capture_output=True, text=True, timeout=300)

    done = compile_for_aarch64(speed.KERNEL_SOURCE)
    assert done.returncode == 0, done.stderr[-3000:]
    # The check sees x86 clones that are not kept to x86.
    clones = tmp_path / "clones.cc"
    clones.write_text('__attribute__((target_clones("avx512f", "avx2", "default")))\n'
                      "int twice(int x) { return 2 * x; }\n")
    assert "avx512f" in compile_for_aarch64(clones).stderr


def expect_environment_problem(monkeypatch, compiler: Path, kernels: Path) -> None:
    """Compiling the kernel into ``kernels`` with ``CXX=compiler`` is the
    environment error that names the way out."""
    monkeypatch.setenv("CXX", str(compiler))
    speed.kernels.cache_clear()
    try:
        with pytest.raises(EnvironmentProblem, match="speed.fuse_batch_norm=false"):
            speed.kernels(kernels)
    finally:
        speed.kernels.cache_clear()


def test_a_compiler_that_does_not_run_is_an_environment_problem(monkeypatch, tmp_path):
    expect_environment_problem(monkeypatch, tmp_path / "no-such-compiler",
                               tmp_path / "kernels")


def test_the_command_line_exits_5_without_a_compiler(tmp_path):
    empty = tmp_path / "bin"
    empty.mkdir()
    env = {**{k: v for k, v in os.environ.items() if k != "CXX"},
           "PATH": str(empty)}  # no c++, no g++
    result = subprocess.run(
        [sys.executable, str(paths.ROOT / "pipeline.py"), "train", "--quiet",
         "--config", "smoke", "--build-dir", str(tmp_path / "build"),
         "--set", "speed.fuse_batch_norm=true", "--set", "data.num_train=256",
         "--set", "data.num_test=16"],
        capture_output=True, text=True, env=env, cwd=paths.ROOT, timeout=300)
    assert result.returncode == 5, result.stderr
    assert "speed.fuse_batch_norm=false" in result.stderr
    assert "Traceback" not in result.stderr


# --- training ------------------------------------------------------------------------


@needs_compiler
@pytest.mark.slow
def test_training_with_every_option_lands_where_plain_training_does(tmp_path):
    dataset = _dataset()
    plain = train_or_load("vae", TINY, TRAIN, dataset, tmp_path / "plain",
                          progress=False)
    fast = train_or_load("vae", TINY, TRAIN, dataset, tmp_path, progress=False,
                         speed=EVERY)
    # One key: the options are recorded beside it, in the meta.
    assert fast.key == plain.key and not fast.loaded_from_cache
    assert fast.meta["speed"] == dataclasses.asdict(EVERY)
    assert plain.meta["speed"] == dataclasses.asdict(OFF)
    for metric in ("total_loss", "val_total_loss"):
        np.testing.assert_allclose(fast.history[metric], plain.history[metric],
                                   rtol=1e-4)
    # The artifact reloads in safe mode, without its kernel folder: inference runs
    # the plain batch norm ops and gives the trained model's numbers.
    again = train_or_load("vae", TINY, TRAIN, dataset, tmp_path, progress=False,
                          speed=EVERY)
    assert again.loaded_from_cache
    images = dataset.test.astype(np.float32) / 255
    np.testing.assert_allclose(again.model.predict(images, verbose=0),
                               fast.model.predict(images, verbose=0), atol=1e-6)
