"""Distributed training on a CPU: two replicas in one process (MirroredStrategy over
two logical devices) and two worker processes (MultiWorkerMirroredStrategy)."""

import dataclasses
import json
import socket
import subprocess

import pytest
from test_training import TINY, TRAIN, run_script, script_command, tiny_dataset

from zspace import paths
from zspace.store.artifacts import is_intact
from zspace.training import train_or_load

MIRRORED = """
import dataclasses, json
import tensorflow as tf
# Two logical CPUs, configured before TensorFlow initialises its devices.
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from pathlib import Path
from zspace.config import ModelConfig, TrainConfig
from zspace.training import train_or_load

model = ModelConfig(kind="ae", z_dim=6, filters=(8, 16), kernels=(3, 3), strides=(2, 2))
results = {}
for kind in ("ae", "vae"):
    for strategy in ("default", "mirrored"):
        train = TrainConfig(num_epochs=1, batch_size=16, seed=5, strategy=strategy)
        result = train_or_load(kind, dataclasses.replace(model, kind=kind), train,
                               tiny_dataset(), Path("build"), progress=False)
        results[f"{kind} {strategy}"] = [result.meta["replicas"], result.history]
print("RESULTS", json.dumps(results))
"""


@pytest.mark.slow
def test_two_replicas_give_the_loss_of_one(tmp_path):
    results = run_script(tmp_path, MIRRORED)
    # The VAE draws its noise per replica, so its two runs see different noise.
    for kind, tolerance in (("ae", 1e-4), ("vae", 2e-2)):
        (one, single), (two, mirrored) = (results[f"{kind} default"],
                                          results[f"{kind} mirrored"])
        assert (one, two) == (1, 2)
        for name in ("total_loss", "reconstruction_loss", "val_total_loss"):
            assert mirrored[name][0] == pytest.approx(single[name][0], rel=tolerance)


WORKER = """
import json, os, sys
os.environ["TF_CONFIG"] = json.dumps({
    "cluster": {"worker": sys.argv[1].split(",")},
    "task": {"type": "worker", "index": int(sys.argv[2])},
})
import dataclasses
from pathlib import Path
from zspace.config import ModelConfig, TrainConfig
from zspace.training import train_or_load

model = ModelConfig(kind="ae", z_dim=6, filters=(8, 16), kernels=(3, 3), strides=(2, 2))
train = TrainConfig(num_epochs=2, batch_size=16, seed=5, strategy="multiworker")
result = train_or_load("ae", model, train, tiny_dataset(), Path(sys.argv[3]),
                       progress=False)
print("RESULTS", json.dumps([result.meta["replicas"], result.history, result.key]))
"""


@pytest.mark.slow
def test_two_workers_train_like_one_process(tmp_path):
    command, env = script_command(tmp_path, WORKER)
    hosts = ",".join(f"localhost:{_free_port()}" for _ in range(2))
    build = tmp_path / "shared-build"
    workers = [subprocess.Popen([*command, hosts, str(index), str(build)],
                                cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
               for index in range(2)]
    outputs = [worker.communicate(timeout=300) for worker in workers]
    for worker, (_, stderr) in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, stderr[-3000:]
    (replicas, chief, key), (_, other, _) = (_result_line(out) for out, _ in outputs)
    assert replicas == 2
    assert chief["total_loss"] == other["total_loss"]
    # Only the chief wrote, and what it wrote is a complete artifact.
    folders = list(paths.model_cache_dir(build).iterdir())
    assert [f.name for f in folders] == [f"ae-{key}"] and is_intact(folders[0])
    single = train_or_load("ae", dataclasses.replace(TINY, kind="ae"), TRAIN,
                           tiny_dataset(), tmp_path / "single", progress=False)
    for epoch in range(2):
        assert chief["total_loss"][epoch] == pytest.approx(
            single.history["total_loss"][epoch], rel=1e-4)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("localhost", 0))
        return probe.getsockname()[1]


def _result_line(stdout: str):
    line = next(x for x in stdout.splitlines() if x.startswith("RESULTS "))
    return json.loads(line.removeprefix("RESULTS "))
