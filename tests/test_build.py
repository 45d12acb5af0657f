"""The build engine on two tiny notebooks: caching, parameters, failure, publishing.

The real analysis notebooks are built end to end in test_pipeline_e2e.py; these tests
use notebooks without models so that each build takes seconds.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import nbformat
import pytest

from zspace import paths
from zspace.config import load_config
from zspace.errors import BuildError, ConfigError
from zspace.files import sha256_of
from zspace.pipeline import engine, plan
from zspace.pipeline.plan import make_plan

FIRST = """
run = zspace.notebook.start(inputs_file, output_dir)
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
fig, ax = plt.subplots(figsize=(2, 2))
ax.plot(range(points))
run.save_figure(fig, "X1-line")
run.record(total=points * scale, label=label)
"""
SECOND = """
run = zspace.notebook.start(inputs_file, output_dir)
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
fig, ax = plt.subplots(figsize=(2, 2))
ax.bar(range(3), [1, bars, 2])
run.save_figure(fig, "X2-bars")
if fail:
    raise ValueError("made to fail")
run.record(bars=bars)
"""


def _notebook(path: Path, parameters: str, body: str, figures: dict) -> None:
    reserved = 'inputs_file = ""\noutput_dir = ""\n'
    cells = [nbformat.v4.new_code_cell(reserved + parameters),
             nbformat.v4.new_code_cell("import zspace.notebook"),
             nbformat.v4.new_code_cell(body)]
    cells[0].metadata["tags"] = ["parameters"]
    notebook = nbformat.v4.new_notebook(cells=cells)
    notebook.metadata["kernelspec"] = {"name": "python3", "language": "python",
                                       "display_name": "Python 3"}
    notebook.metadata["zspace"] = {"figures": figures, "models": []}
    nbformat.write(notebook, path)


def _templates(folder: Path) -> None:
    (folder / "articles").mkdir(parents=True)
    layout = Path(__file__).parents[1] / "report" / "layout.html.j2"
    (folder / "layout.html.j2").write_text(layout.read_text())
    (folder / "style.css").write_text("body { color: black; }")
    (folder / "index.md.j2").write_text("# Index\n\nTotal {{ results.total | num }}.\n")
    (folder / "articles" / "A.md.j2").write_text(
        "# A\n\n{{ figure('X1', 'A line of ' ~ results.label ~ '.') }}\n")
    (folder / "articles" / "B.md.j2").write_text(
        "# B\n\n{{ figure('X2', 'Bars.') }} Bars: {{ results.bars }}.\n")
    (folder / "articles" / "C.md.j2").write_text("# C\n\nNothing here.\n")


def two_notebooks(root: Path, monkeypatch) -> Path:
    """``root/analysis`` with the notebooks ``first`` (X1) and ``second`` (X2); returns
    the folder. Shared by the build, diff and Dask tests."""
    # Key the notebooks on the one module they use, so that edits elsewhere in the
    # package (the models, say) do not make these notebooks stale mid-test.
    monkeypatch.setattr(plan, "notebook_code",
                        lambda: [paths.ROOT / "zspace" / "notebook.py"])
    analysis = root / "analysis"
    analysis.mkdir()
    _notebook(analysis / "first.ipynb", "points = 5\nscale = 1.5\nlabel = 'five'",
              FIRST, {"X1": "X1-line.png"})
    _notebook(analysis / "second.ipynb", "bars = 3\nfail = False", SECOND,
              {"X2": "X2-bars.png"})
    return analysis


@pytest.fixture
def project(tmp_path, monkeypatch):
    two_notebooks(tmp_path, monkeypatch)
    _templates(tmp_path / "templates")
    return tmp_path


# The smoke profile's data, without its overrides for the real notebooks.
TINY_PROFILE = """
name = "smoke"
[data]
image_size = 32
num_train = 384
num_test = 128
"""


def _config(project, *overrides):
    profile = project / "tiny.toml"
    profile.write_text(TINY_PROFILE)
    return load_config(profile, [f"build.analysis_dir={project / 'analysis'}",
                                 f"build.templates_dir={project / 'templates'}",
                                 *overrides])


def _build(project, *overrides, **kwargs):
    return engine.build(_config(project, *overrides), project / "build",
                       progress=False, **kwargs)


def test_cold_build_publishes_pages_figures_and_manifest(project, executed):
    site = _build(project)
    assert sorted(executed) == ["first", "second"]
    manifest = json.loads((site / "figures" / "manifest.json").read_text())
    assert set(manifest) == {"X1", "X2"}
    for entry in manifest.values():
        assert sha256_of(site / "figures" / entry["file"]) == entry["sha256"]
    assert manifest["X1"]["parameters"] == {"points": 5, "scale": 1.5, "label": "five"}
    assert (site / "notebooks" / "first.ipynb").is_file()
    index = (site / "index.html").read_text()
    assert "Total 7.5." in index
    article = (site / "A-vae-faces.html").read_text()
    assert 'src="figures/X1-line.png"' in article and "A line of five." in article
    assert "notebooks/first.ipynb" in article
    assert "![Figure X1](figures/X1-line.png)" in (site / "A-vae-faces.md").read_text()


def test_noop_rebuild_executes_nothing(project, executed):
    _build(project)
    executed.clear()
    _build(project)
    assert executed == []
    statuses = dict(engine.status(_config(project), project / "build"))
    assert set(statuses.values()) == {"fresh"}


def test_changed_parameter_reruns_only_its_notebook(project, executed):
    _build(project)
    executed.clear()
    changed = ("notebooks.second.bars=4",)
    statuses = dict(engine.status(_config(project, *changed), project / "build"))
    assert statuses["notebook second"] == "stale: parameters changed: bars"
    assert statuses["notebook first"] == "fresh"
    assert statuses["report"].startswith("stale: notebooks changed")
    site = _build(project, *changed)
    assert executed == ["second"]
    assert "Bars: 4." in (site / "B-ae-latent-space.html").read_text()


def test_unknown_or_mistyped_parameter_fails_before_any_notebook(project, executed):
    with pytest.raises(ConfigError, match="unknown notebook parameter "
                                          "notebooks.first.pointz"):
        _build(project, "notebooks.first.pointz=3")
    with pytest.raises(ConfigError, match="notebooks.first.points: expected int"):
        _build(project, "notebooks.first.points='many'")
    with pytest.raises(ConfigError, match="notebooks.third: no notebook"):
        _build(project, "notebooks.third.x=1")
    assert executed == []


def test_failing_notebook_keeps_the_published_report(project, executed):
    site = _build(project)
    before = {p: p.read_bytes() for p in site.rglob("*") if p.is_file()}
    with pytest.raises(BuildError) as failure:
        _build(project, "notebooks.second.fail=true", "notebooks.first.points=6")
    message = str(failure.value)
    assert "notebook second.ipynb failed in cell 3 ('run = zspace" in message
    assert "ValueError: made to fail" in message
    assert "published report is unchanged" in message
    kept = project / "build" / "smoke" / "notebooks" / "second.failed" / "second.ipynb"
    assert kept.is_file() and str(kept) in message
    after = {p: p.read_bytes() for p in site.rglob("*") if p.is_file()}
    assert after == before


# C-level output of a kernel, then its death: what a crashing native library does.
CRASH = """
import os
os.write(2, b"native library: out of cheese\\n")
if crash:
    os._exit(3)
"""


def test_a_dying_kernel_shows_its_output_and_leaves_no_files(project, monkeypatch):
    system_tmp = project / "system-tmp"
    system_tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(system_tmp))
    monkeypatch.setattr(tempfile, "tempdir", str(system_tmp))
    _notebook(project / "analysis" / "third.ipynb", "crash = True", CRASH, {})
    with pytest.raises(BuildError) as failure:
        _build(project)
    message = str(failure.value)
    assert "notebook third.ipynb could not run" in message
    assert "native library: out of cheese" in message
    folder = project / "build" / "smoke"
    log = (folder / "build.log").read_text()
    assert "[notebook third] native library: out of cheese" in log
    assert "notebook first: done" in log
    # No kernel socket folder, no temporary file, no scratch folder, no lock.
    assert list(system_tmp.iterdir()) == []
    assert sorted(p.name for p in folder.iterdir()) == [
        ".zspace-profile", "build.log", "config.json", "notebooks", "state.json"]


def test_the_notebook_that_took_longest_last_time_starts_first(project, executed):
    _build(project, "build.parallel_notebooks=1")
    assert executed == ["first", "second"]  # a new folder: the order they come in
    state_file = project / "build" / "smoke" / "state.json"
    stages = json.loads(state_file.read_text())
    stages["notebook first"]["seconds"] = 1.0
    stages["notebook second"]["seconds"] = 60.0
    state_file.write_text(json.dumps(stages))
    executed.clear()
    _build(project, "build.parallel_notebooks=1", force=True)
    assert executed == ["second", "first"]


def test_force_and_only(project, executed):
    _build(project)
    executed.clear()
    _build(project, force=True, only=("first",))
    assert executed == ["first"]
    executed.clear()
    _build(project, "notebooks.first.points=9", "notebooks.second.bars=9",
           only=("second",))
    assert executed == ["second"]
    with pytest.raises(ConfigError, match="--only third: no such stage"):
        _build(project, only=("third",))


def test_missing_result_in_a_template_stops_the_build(project):
    (project / "templates" / "articles" / "C.md.j2").write_text(
        "{{ results.nowhere }}\n")
    with pytest.raises(BuildError, match="C.md.j2.*nowhere"):
        _build(project)
    assert not (project / "build" / "smoke" / "site").exists()


def _planned_stale(project, *overrides) -> set[str]:
    rows = engine.status(_config(project, *overrides), project / "build")
    return {name for name, state in rows if state != "fresh"}


def test_status_and_build_agree_after_each_kind_of_change(project, executed,
                                                          monkeypatch):
    _build(project)
    # A parameter: its notebook and the report.
    executed.clear()
    stale = _planned_stale(project, "notebooks.first.points=6")
    assert stale == {"notebook first", "report"}
    _build(project, "notebooks.first.points=6")
    assert {f"notebook {name}" for name in executed} == stale - {"report"}
    assert _planned_stale(project, "notebooks.first.points=6") == set()
    # The data: its stage and every notebook (their inputs changed).
    executed.clear()
    changed = ("notebooks.first.points=6", "data.num_train=256")
    stale = _planned_stale(project, *changed)
    assert stale == {"data", "notebook first", "notebook second", "report"}
    _build(project, *changed)
    assert {f"notebook {name}" for name in executed} == stale - {"data", "report"}
    assert _planned_stale(project, *changed) == set()
    # The library code the notebooks run.
    code = project / "library.py"
    code.write_text("VERSION = 1\n")
    monkeypatch.setattr(plan, "notebook_code", lambda: [code])
    _build(project, *changed)
    executed.clear()
    code.write_text("VERSION = 2\n")
    rows = dict(engine.status(_config(project, *changed), project / "build"))
    assert rows["notebook first"] == rows["notebook second"] == "stale: code changed"
    _build(project, *changed)
    assert sorted(executed) == ["first", "second"]
    assert _planned_stale(project, *changed) == set()


def test_each_notebook_gets_the_inputs_manifest_of_the_plan(project):
    config = _config(project)
    _build(project)
    made = make_plan(config, project / "build")
    stage = made.notebooks[0]
    recorded = json.loads((project / "build" / "smoke" / "notebooks"
                           / stage.spec.name / "inputs.json").read_text())
    assert recorded == made.inputs(stage)
    assert recorded["data"]["folder"] == str(made.data.entry)
    assert recorded["data"]["content_hash"] == made.data.card.content_hash
    assert recorded["config"] == config.to_dict()
