"""The build session: what reaches the terminal, what the log keeps, and the scratch
folder, in a real process with real file descriptors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from zspace.pipeline import session

NOISY = """
import logging, os, sys, tempfile, warnings
from zspace.pipeline.session import open_session

folder, verbose = sys.argv[1], sys.argv[2] == "verbose"
with open_session(folder, capture=True, verbose=verbose) as opened:
    print("a progress line")
    os.write(1, b"C++ says something on stdout\\n")
    os.write(2, b"C++ says something on stderr\\n")
    logging.getLogger("zspace.training").info("our own message")
    logging.getLogger("tensorflow").warning("a library's warning")
    warnings.warn("a Python warning")
    handle, name = tempfile.mkstemp()
    os.close(handle)
    print("temporary file in scratch:", name.startswith(str(opened.scratch)),
          os.environ["TMPDIR"] == os.path.dirname(name))
print("after the session")
os.write(2, b"C++ after the session\\n")
"""


def _run(folder: Path, mode: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", NOISY, str(folder), mode],
                          capture_output=True, text=True, timeout=60)


def test_capture_keeps_the_terminal_to_progress_and_our_messages(tmp_path):
    folder = tmp_path / "smoke"
    result = _run(folder, "quiet")
    assert result.returncode == 0, result.stderr
    terminal = result.stdout + result.stderr
    assert "a progress line" in terminal and "our own message" in terminal
    assert "temporary file in scratch: True True" in terminal
    for noise in ("C++ says", "a library's warning", "a Python warning"):
        assert noise not in terminal
    # Once the session ends, the process's output is its own again.
    assert "after the session" in result.stdout
    assert "C++ after the session" in result.stderr
    log = (folder / session.LOG_FILE).read_text()
    for kept in ("C++ says something on stdout", "C++ says something on stderr",
                 "a library's warning", "a Python warning", "our own message"):
        assert kept in log
    assert "a progress line" not in log  # the build's own lines go in via Build.say
    assert not (folder / session.SCRATCH).exists()
    assert not (folder / "build.lock").exists()


def test_verbose_shows_everything_live(tmp_path):
    result = _run(tmp_path / "smoke", "verbose")
    assert result.returncode == 0, result.stderr
    terminal = result.stdout + result.stderr
    for shown in ("C++ says something on stdout", "C++ says something on stderr",
                  "a library's warning", "a Python warning", "our own message"):
        assert shown in terminal
    assert terminal.count("our own message") == 1


def test_each_session_keeps_the_previous_log(tmp_path):
    folder = tmp_path / "smoke"
    with session.open_session(folder) as first:
        first.log.line("the first build")
    with session.open_session(folder) as second:
        second.log.line("the second build")
    assert "the second build" in (folder / session.LOG_FILE).read_text()
    assert "the first build" in (folder / session.PREVIOUS_LOG).read_text()


@pytest.mark.parametrize("text, expected", [
    ("WARNING: All log messages before absl::InitializeLog() is called are written "
     "to STDERR\nI0000 00:00:1795576030.602835    3945 port.cc:153] oneDNN custom "
     "operations are on.\nSegmentation fault in conv2d\n",
     ["Segmentation fault in conv2d"]),
    ("W0000 00:00:1.5  12 allocator.cc:12] Allocation exceeds 10% of memory\n\n",
     ["W0000 00:00:1.5  12 allocator.cc:12] Allocation exceeds 10% of memory"]),
    ("".join(f"line {i}\n" for i in range(30)), [f"line {i}" for i in range(10, 30)]),
])
def test_relevant_lines_drop_known_noise_only(text, expected):
    assert session.relevant_lines(text) == expected


def test_stopping_the_kernels_kills_an_uncounted_kernel_but_not_other_children():
    from zspace.pipeline.kernels import Kernels

    sleep = [sys.executable, "-c", "import time; time.sleep(60)"]
    # Started like a kernel (a session of its own) but never reported to Kernels.
    kernel = subprocess.Popen(sleep, start_new_session=True)
    helper = subprocess.Popen(sleep)
    try:
        kernels = Kernels()
        kernels.close()  # not stopped: leaves every process alone
        assert kernel.poll() is None and helper.poll() is None
        kernels.stop()
        assert kernel.wait(10) == -9
        assert helper.poll() is None
    finally:
        for process in (kernel, helper):
            process.kill()
            process.wait()


def test_kernels_get_a_fixed_thread_count_that_keys_their_notebooks(tmp_path):
    from zspace.pipeline import notebooks as nb
    from zspace.pipeline.kernels import THREAD_VARIABLES, Kernels
    from zspace.pipeline.plan import notebook_key

    env = Kernels(threads=1).environment({"OMP_NUM_THREADS": "8", "PATH": "/bin"})
    assert {env[name] for name in THREAD_VARIABLES} == {"1"}
    assert env["PATH"] == "/bin"
    untouched = Kernels().environment({"OMP_NUM_THREADS": "8"})
    assert untouched["OMP_NUM_THREADS"] == "8"
    assert "TF_NUM_INTRAOP_THREADS" not in untouched

    notebook = tmp_path / "n.ipynb"
    notebook.write_text("{}")
    spec = nb.NotebookSpec(notebook, figures={}, models=(), defaults={})
    one, two = (notebook_key(spec, {}, "data", {}, n).digest for n in (1, 2))
    assert one != two
