"""The device a model trains on and the speed options it applies there
(zspace.networks.devices): the table, the GPU branch, the replicas rule, XLA with the
fused kernel, and what the build log and the manifest say."""

import dataclasses
import json
import logging
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from test_training import run_script, tiny_dataset

from zspace import paths
from zspace.config import ModelConfig, SpeedConfig, TrainConfig, load_config
from zspace.errors import ConfigError
from zspace.networks import devices, speed
from zspace.training import train_or_load
from zspace.training.factory import compiled_model

TINY = ModelConfig(kind="vae", z_dim=6, filters=(8, 16), kernels=(3, 3), strides=(2, 2))
TRAIN = TrainConfig(num_epochs=1, batch_size=16, seed=5)
OPTIONS = [f.name for f in dataclasses.fields(SpeedConfig)]

needs_compiler = pytest.mark.skipif(
    not (os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++")),
    reason="the CPU branch builds the fused kernel with a C++ compiler")


@pytest.fixture
def on_a_gpu(monkeypatch):
    """The GPU branch, forced through the device function on this machine."""
    monkeypatch.setattr(devices, "training_device", lambda: devices.GPU)


# --- the device and the table --------------------------------------------------------


def test_the_device_is_a_gpu_wherever_tensorflow_lists_one(monkeypatch):
    here = devices.GPU if tf.config.list_logical_devices("GPU") else devices.CPU
    assert devices.training_device() == here
    gpu = tf.config.LogicalDevice("/job:localhost/replica:0/task:0/device:GPU:0", "GPU")
    monkeypatch.setattr(tf.config, "list_logical_devices",
                        lambda kind=None: [gpu] if kind == "GPU" else [])
    assert devices.training_device() == devices.GPU


@pytest.mark.parametrize(("device", "replicas", "precision", "off"), [
    ("cpu", 1, "float32", set()),  # as today: every option configured
    ("cpu", 1, "mixed_bfloat16", set()),
    ("cpu", 2, "float32", {"fused_adam"}),
    ("cpu", 1, "mixed_float16", {"fused_adam"}),
    ("gpu", 1, "float32", {"fuse_batch_norm", "subpixel_output"}),
    ("gpu", 2, "float32", {"fuse_batch_norm", "subpixel_output", "fused_adam"}),
    ("gpu", 1, "mixed_float16", {"fuse_batch_norm", "subpixel_output", "fused_adam"}),
])
def test_each_device_applies_the_options_of_its_table(device, replicas, precision,
                                                      off):
    configured = SpeedConfig()
    applied, skipped = devices.applied_options(configured, device, replicas, precision)
    assert set(skipped) == off
    on = {name for name in OPTIONS if getattr(configured, name)}
    assert {name for name in OPTIONS if getattr(applied, name)} == on - off
    # Applying it again changes nothing (the trainer records what the factory built).
    assert devices.applied_options(applied, device, replicas, precision) == (applied,
                                                                             {})


def test_the_readme_gives_each_option_on_each_device():
    text = (paths.ROOT / "README.md").read_text()
    for name in OPTIONS:
        row = re.search(rf"^\| `{name}` \|([^|]*)\|([^|]*)\|$", text, re.MULTILINE)
        assert row, f"the README's device table has no row for {name}"
        cpu, gpu = (cell.strip() for cell in row.groups())
        assert cpu.startswith("as configured")
        assert gpu.startswith("off") == (name in devices.CPU_ONLY), name


# --- the GPU branch ------------------------------------------------------------------


def _layers(model):
    return [layer for part in (model.encoder, model.decoder) for layer in part.layers]


def _op_types(model, size=16, batch=16) -> set[str]:
    """The op types of the model's training step, traced."""
    step = tf.function(model.train_step)
    images = tf.TensorSpec((batch, size, size, 3), tf.float32)
    return {op.type for op in step.get_concrete_function(images).graph.get_operations()}


def test_the_gpu_branch_builds_no_custom_op(on_a_gpu, tmp_path):
    kernel_dir = tmp_path / "kernels"
    model = compiled_model("vae", TINY, TRAIN, tiny_dataset(), speed=SpeedConfig(),
                           kernel_dir=kernel_dir)
    assert not [layer.name for layer in _layers(model)
                if type(layer).__module__ == speed.__name__]
    ops = _op_types(model)
    assert not [op for op in ops if op.startswith("Zspace")]
    assert "FusedBatchNormV3" in ops  # the op cuDNN runs on a GPU
    assert not kernel_dir.exists()  # nothing compiled: a GPU needs no C++ compiler
    # The options a GPU keeps; one step trains.
    assert model.fused_loss and type(model.optimizer) is speed.FusedAdam
    images = tiny_dataset().train.astype(np.float32) / 255
    history = model.fit(images, epochs=1, batch_size=16, verbose=0).history
    assert np.isfinite(history["total_loss"][0])


@needs_compiler
def test_the_cpu_branch_keeps_the_fused_kernel(tmp_path):
    model = compiled_model("vae", TINY, TRAIN, tiny_dataset(), speed=SpeedConfig(),
                           kernel_dir=tmp_path / "kernels", device=devices.CPU)
    assert {"ZspaceBatchNormLeakyRelu", "ZspaceBatchNormLeakyReluGrad"} <= _op_types(
        model)
    assert any(isinstance(layer, speed.SubpixelConv2DTranspose)
               for layer in _layers(model))


# --- XLA and the fused kernel --------------------------------------------------------


def test_jit_compile_with_the_fused_kernel_is_refused_on_reading():
    with pytest.raises(ConfigError) as raised:
        load_config("smoke", ["speed.jit_compile=true"])  # fuse_batch_norm: default
    assert "speed.jit_compile" in str(raised.value)
    assert "speed.fuse_batch_norm" in str(raised.value)
    assert raised.value.exit_code == 2
    options = load_config("smoke", ["speed.jit_compile=true",
                                    "speed.fuse_batch_norm=false"]).speed
    assert options.jit_compile and not options.fuse_batch_norm


def test_the_command_line_refuses_jit_compile_with_the_fused_kernel(tmp_path):
    result = subprocess.run(
        [sys.executable, str(paths.ROOT / "pipeline.py"), "train", "--quiet",
         "--config", "smoke", "--build-dir", str(tmp_path / "build"),
         "--set", "speed.jit_compile=true"],
        capture_output=True, text=True, cwd=paths.ROOT, timeout=300)
    assert result.returncode == 2, result.stderr
    assert "speed.jit_compile" in result.stderr
    assert "speed.fuse_batch_norm" in result.stderr
    assert "Traceback" not in result.stderr


def test_options_made_in_code_are_refused_where_the_kernel_would_run():
    both = SpeedConfig(jit_compile=True)  # fuse_batch_norm is on by default
    with pytest.raises(ConfigError, match="speed.fuse_batch_norm"):
        devices.applied_options(both, devices.CPU)
    applied, skipped = devices.applied_options(both, devices.GPU)
    assert applied.jit_compile and not applied.fuse_batch_norm
    assert "fuse_batch_norm" in skipped


# --- the build log and the manifest --------------------------------------------------


@pytest.mark.slow
def test_the_meta_and_the_log_name_the_device_and_the_options(on_a_gpu, tmp_path,
                                                              caplog):
    with caplog.at_level(logging.INFO, logger="zspace"):
        trained = train_or_load("vae", TINY, TRAIN, tiny_dataset(), tmp_path,
                                progress=False, speed=SpeedConfig())
    assert trained.meta["device"] == "gpu"
    assert trained.meta["speed"] == dataclasses.asdict(dataclasses.replace(
        SpeedConfig(), fuse_batch_norm=False, subpixel_output=False))
    stored = json.loads((trained.path / "meta.json").read_text())
    assert (stored["device"], stored["speed"]) == ("gpu", trained.meta["speed"])
    line = next(r.getMessage() for r in caplog.records
                if r.getMessage().startswith("vae: trains on the GPU"))
    assert "fused_loss, fused_adam;" in line and "not here: fuse_batch_norm" in line


# --- the replicas rule ---------------------------------------------------------------

MIRRORED = """
import dataclasses, json
import tensorflow as tf
# Two logical CPUs, configured before TensorFlow initialises its devices.
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import keras
from pathlib import Path
from zspace.config import ModelConfig, SpeedConfig, TrainConfig
from zspace.networks import devices, speed
from zspace.training import runtime, train_or_load
from zspace.training.factory import compiled_model

model = ModelConfig(kind="vae", z_dim=6, filters=(8, 16), kernels=(3, 3),
                    strides=(2, 2))
options = SpeedConfig(fuse_batch_norm=False)  # the rule is Adam's
mirrored = runtime.get_strategy("mirrored")
results = {}
for device in ("cpu", "gpu"):
    devices.training_device = lambda device=device: device  # the branch, forced
    train = TrainConfig(num_epochs=1, batch_size=16, seed=5, strategy="mirrored")
    two = compiled_model("vae", model, train, tiny_dataset(), mirrored, speed=options)
    one = compiled_model("vae", model, dataclasses.replace(train, strategy="default"),
                         tiny_dataset(), speed=options)
    trained = train_or_load("vae", model, train, tiny_dataset(), Path(device),
                            progress=False, speed=options)
    results[device] = {"two": type(two.optimizer).__name__,
                       "one": type(one.optimizer).__name__,
                       "replicas": trained.meta["replicas"],
                       "device": trained.meta["device"],
                       "speed": trained.meta["speed"],
                       "loss": trained.history["total_loss"]}
# FusedAdam itself refuses to build for two replicas.
with mirrored.scope():
    variable = keras.Variable(1.0)
    try:
        speed.FusedAdam(1e-3).build([variable])
        results["refused"] = ""
    except ValueError as error:
        results["refused"] = str(error)
print("RESULTS", json.dumps(results))
"""


@pytest.mark.slow
def test_two_replicas_train_with_keras_adam_on_either_device(tmp_path):
    results = run_script(tmp_path, MIRRORED)
    for device in ("cpu", "gpu"):
        run = results[device]
        assert (run["two"], run["one"]) == ("Adam", "FusedAdam"), device
        assert (run["replicas"], run["device"]) == (2, device)
        assert run["speed"]["fused_adam"] is False and run["speed"]["fused_loss"]
        assert np.isfinite(run["loss"]).all()
    assert "one replica only" in results["refused"]
