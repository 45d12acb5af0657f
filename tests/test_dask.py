"""The Dask executor (zspace.pipeline.distributed): the same figures as the local
one, a worker killed mid-training, GPU workers, and the errors of a cluster that
cannot be used.

The smoke build on Dask is compared with conftest's ``smoke_build`` (the local
executor, shared with test_pipeline_e2e.py) and starts from a copy of its data
cache, so it trains every model and makes every set and notebook anew.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from distributed import Client, LocalCluster, WorkerPlugin

from tests import test_build as tiny
from zspace import cli, paths
from zspace.config import load_config
from zspace.errors import SchedulerUnreachable, UnsharedFolder
from zspace.pipeline import engine, tasks, trainjob

pytestmark = pytest.mark.slow

NEEDS_AE = """
run = zspace.notebook.start(inputs_file, output_dir)
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
fig, ax = plt.subplots(figsize=(2, 2))
ax.plot(range(3))
run.save_figure(fig, "X3-ae")
run.record(ae=1)
"""


@pytest.fixture
def project(tmp_path, monkeypatch):
    """test_build.py's two notebooks and a third that needs the AE (one epoch)."""
    analysis = tiny.two_notebooks(tmp_path, monkeypatch)
    tiny._notebook(analysis / "third.ipynb", "", NEEDS_AE, {"X3": "X3-ae.png"})
    third = analysis / "third.ipynb"
    notebook = json.loads(third.read_text())
    notebook["metadata"]["zspace"]["models"] = ["ae"]
    third.write_text(json.dumps(notebook))
    tiny._templates(tmp_path / "templates")
    return tmp_path


def _settings(project: Path, *overrides: str) -> list[str]:
    """The ``--set`` values of a Dask build of the project (one epoch, no seeds)."""
    (project / "tiny.toml").write_text(tiny.TINY_PROFILE)
    return [f"build.analysis_dir={project / 'analysis'}",
            f"build.templates_dir={project / 'templates'}", "build.executor=dask",
            "train.num_epochs=1", "train.stop_improvement=0.0", "seeds.ae=[]",
            # the fused kernel is compiled once per build folder: minutes on 2 cores
            "speed.fuse_batch_norm=false", *overrides]


def _arguments(project: Path, *overrides: str) -> list[str]:
    return ["--config", str(project / "tiny.toml"), "--build-dir",
            str(project / "build"),
            *[a for s in _settings(project, *overrides) for a in ("--set", s)]]


def test_without_dask_the_executor_is_a_configuration_error(project, monkeypatch,
                                                             capsys):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import fails
    assert cli.main(["build", *_arguments(project)]) == 2
    assert 'pip install -e ".[dask]"' in capsys.readouterr().err
    assert not (project / "build" / "cache").exists()  # before anything ran


def _cluster(processes: bool = True) -> LocalCluster:
    """One worker with one thread and no GPU."""
    return LocalCluster(n_workers=1, threads_per_worker=1, processes=processes,
                        dashboard_address="127.0.0.1:0")


def _closed_port() -> int:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        return listener.getsockname()[1]


def test_an_unreachable_scheduler_is_exit_5_within_30_seconds(project, capsys):
    address = f"tcp://127.0.0.1:{_closed_port()}"
    started = time.monotonic()
    code = cli.main(["build", *_arguments(project, f"build.scheduler={address}")])
    assert code == SchedulerUnreachable.exit_code == 5
    assert time.monotonic() - started < 30
    assert f"the Dask scheduler at {address} (build.scheduler) did not answer" in (
        capsys.readouterr().err)
    assert not (project / "build" / "smoke" / "site").exists()


class OtherRoot(WorkerPlugin):
    """Makes its worker see ``other`` where the client sees ``root``: a worker on a
    machine that does not mount the build folder."""

    def __init__(self, root: str, other: str):
        self.root, self.other = root, other

    def setup(self, worker):
        self.real = tasks.seen
        tasks.seen = lambda folder: Path(str(folder).replace(self.root, self.other))

    def teardown(self, worker):
        tasks.seen = self.real


def test_a_worker_that_sees_another_build_folder_is_exit_2(project, capsys):
    build = project / "build"
    with _cluster(processes=False) as cluster, Client(cluster) as client:
        client.register_plugin(OtherRoot(str(build), str(project / "elsewhere")))
        code = cli.main(["build", *_arguments(
            project, f"build.scheduler={cluster.scheduler_address}")])
    assert code == UnsharedFolder.exit_code == 2
    error = capsys.readouterr().err
    assert "do not see the build folder" in error and str(build / "smoke") in error
    # The worker's reply went where it sees the folder, which is not the client's.
    assert list((project / "elsewhere" / "smoke").rglob("*.*"))


def _scheduler_states(client: Client) -> dict[str, str]:
    return client.run_on_scheduler(lambda dask_scheduler: {
        str(key): task.state for key, task in dask_scheduler.tasks.items()})


def _start_gpu_worker(address: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "distributed.cli.dask_worker", address, "--nthreads",
         "1", "--resources", "GPU=1", "--no-dashboard"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def test_training_waits_for_a_worker_with_a_gpu(project):
    with _cluster() as cluster, Client(cluster) as client:
        config = load_config(project / "tiny.toml", _settings(
            project, f"build.scheduler={cluster.scheduler_address}",
            "build.gpus_per_training=1"))
        outcome = []

        def build():
            try:
                outcome.append(engine.build(config, project / "build", progress=False))
            except Exception as error:  # reported by the test's thread
                outcome.append(error)

        thread = threading.Thread(target=build)
        thread.start()
        deadline = time.monotonic() + 120
        while not any(key.startswith("model ae-") and state == "no-worker"
                      for key, state in _scheduler_states(client).items()):
            assert time.monotonic() < deadline and thread.is_alive()
            time.sleep(0.5)
        # The worker without a GPU runs the notebooks that need no model meanwhile.
        while not (project / "build" / "smoke" / "notebooks" / "second").is_dir():
            assert time.monotonic() < deadline
            time.sleep(0.5)
        assert not any(key.startswith("model ae-") and state != "no-worker"
                       for key, state in _scheduler_states(client).items())
        gpu_worker = _start_gpu_worker(cluster.scheduler_address)
        try:
            thread.join(600)
            assert not thread.is_alive(), "the build did not finish in 10 minutes"
            workers = client.scheduler_info(n_workers=-1)["workers"]
        finally:
            gpu_worker.terminate()
            gpu_worker.wait(30)
    assert outcome and isinstance(outcome[0], Path), outcome
    assert (outcome[0] / "figures" / "X3-ae.png").is_file()
    gpu = [a for a, info in workers.items() if info["resources"].get("GPU")]
    log = (project / "build" / "smoke" / "build.log").read_text()
    assert f"model ae: made on {gpu[0]}" in log


def test_dask_smoke_build_after_a_killed_worker_has_the_local_figures(
        smoke_build, tmp_path, monkeypatch):
    local_root, local_site = smoke_build
    build = tmp_path / "build"
    # Not what is compared: the prepared data set and the compiled fused kernel. And
    # every model but the AE, which trains on a worker that dies: the other eight
    # would only retrain what the local build made (the time of a smoke build's
    # training); the AE shows that a killed training resumes to the same weights.
    shutil.copytree(local_root / "cache" / "data", build / "cache" / "data")
    shutil.copytree(local_root / "kernels", build / "kernels")
    shutil.copytree(local_root / "cache" / "models", build / "cache" / "models",
                    ignore=lambda folder, names: [n for n in names
                                                  if n.startswith("ae-")])
    killed = tmp_path / "killed"
    # Read by each training: the first epoch to end kills its worker, once.
    monkeypatch.setenv(trainjob.FAULT_KILL_TRAINING_ONCE, str(killed))
    site = engine.build(load_config("smoke", ['build.executor="dask"']), build,
                        progress=False)
    assert killed.is_file()
    log = (build / "smoke" / "build.log").read_text()
    # The killed training resumed from the checkpoint its worker left, whose key
    # lock was free again.
    assert log.count("resumed after epoch 1") == 1
    assert "[notebook 20_vae_generation]" in log and "running: " in log
    diff = subprocess.run(
        [sys.executable, str(paths.ROOT / "pipeline.py"), "diff", str(local_site),
         str(site), "--build-dir", str(tmp_path / "diff-build"), "--html",
         str(tmp_path / "diff")], capture_output=True, text=True, timeout=300)
    assert diff.returncode == 0, diff.stdout + diff.stderr
