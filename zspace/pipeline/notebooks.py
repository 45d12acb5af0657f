"""The analysis notebooks: what each declares, checking parameters, running papermill.

Each notebook in ``analysis/`` has a first cell tagged ``parameters`` and, in its
metadata under ``zspace``, the figures it writes and the models it needs::

    {"zspace": {"figures": {"A4": "A4-vae-normal-samples.png"}, "models": ["vae"]}}

and optionally ``"site": ["explorer"]``: folders of its output that the report
publishes into the site as they are.

A notebook that quotes sample sets (``zspace.samplesets``) names them under
``"sets"``: a single set or a whole series by its name. The plan makes them before the
notebook runs and passes each set's folder and key.

A notebook over sweeps (``config.sweeps``) names them under ``"sweeps"`` and
receives each one's points and models. Its figures that depend on which sweeps are
configured are declared per sweep: ``"sweep_figures": {"kl": {"D1": "D1-kl.png"}}``
is written once when sweep ``kl`` is configured, ``"point_figures": {"kl": {"D2":
"D2-kl-faces.png"}}`` once per point, as figure ``D2@kl.kl_factor=0.5`` in the file
``D2-kl-faces@kl.kl_factor=0.5.png`` (:func:`expand`): the catalogue id, the
provenance and the figure diff all name the sweep and the point.

The pipeline injects two reserved parameters into every notebook: ``inputs_file``
(the inputs manifest the plan wrote: the resolved configuration, the data-cache
folder, and each model's artifact folder and key) and ``output_dir`` (where the
notebook writes its figures and ``results.json``).
"""

from __future__ import annotations

import ast
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
import papermill

from zspace.errors import BuildError, ConfigError
from zspace.notebook import RESULTS_FILE
from zspace.pipeline.kernels import Kernels
from zspace.pipeline.session import relevant_lines

RESERVED = ("inputs_file", "output_dir")


@dataclass(frozen=True)
class NotebookSpec:
    """One analysis notebook as the pipeline sees it.

    Attributes:
        path: The notebook file.
        figures: Catalogue id -> file name of each figure it writes.
        models: Names of the models it needs (``ae``, ``vae``, ``wide_ae``, ``judge``).
        defaults: Its parameters and their default values (reserved ones excluded).
        site: Folders of its output published into the site (e.g. ``explorer``).
        sweeps: Names of the sweeps it reads (those configured are passed in).
        sweep_figures: Per sweep, the figures written once where it is configured.
        point_figures: Per sweep, the figures written once per point.
        sets: Names of the sample sets (or series) it reads.
    """

    path: Path
    figures: dict[str, str]
    models: tuple[str, ...]
    defaults: dict[str, Any]
    site: tuple[str, ...] = ()
    sweeps: tuple[str, ...] = ()
    sweep_figures: dict[str, dict[str, str]] = field(default_factory=dict)
    point_figures: dict[str, dict[str, str]] = field(default_factory=dict)
    sets: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return self.path.stem


def read_spec(path: Path) -> NotebookSpec:
    """Read a notebook's declared figures, models and parameter defaults.

    Raises:
        BuildError: The notebook has no ``parameters`` cell, no ``zspace`` metadata,
            lacks a reserved parameter, or has a default that is not a Python literal.
    """
    notebook = nbformat.read(path, as_version=4)
    meta = notebook.metadata.get("zspace")
    if not meta or "figures" not in meta:
        raise BuildError(f"{path.name}: no 'zspace' metadata naming its figures")
    tags = [cell.metadata.get("tags", ()) for cell in notebook.cells]
    if not any("parameters" in cell_tags for cell_tags in tags):
        raise BuildError(f"{path.name}: no cell tagged 'parameters'")
    declared = papermill.inspect_notebook(str(path))
    cell = next(c for c, t in zip(notebook.cells, tags, strict=True)
                if "parameters" in t)
    unparsed = sorted(_assigned_names(cell.source) - set(declared))
    if unparsed:
        # papermill skips a line it cannot parse with a mere warning; the parameter
        # would then be impossible to override, so it is an error here.
        raise BuildError(f"{path.name}: papermill cannot read parameter(s) "
                         f"{', '.join(unparsed)} of the parameters cell (keep one "
                         "plain 'name = literal' per line)")
    absent = [name for name in RESERVED if name not in declared]
    if absent:
        raise BuildError(f"{path.name}: its parameters cell must declare "
                         f"{', '.join(absent)} (the pipeline sets them)")
    defaults = {}
    for name, info in declared.items():
        if name in RESERVED:
            continue
        try:
            defaults[name] = ast.literal_eval(info["default"])
        except (ValueError, SyntaxError):
            raise BuildError(f"{path.name}: parameter {name} = {info['default']} is "
                             "not a literal; the pipeline cannot check it") from None
    sweeps = tuple(meta.get("sweeps", ()))
    per_sweep = {kind: {name: dict(figures)
                        for name, figures in meta.get(kind, {}).items()}
                 for kind in ("sweep_figures", "point_figures")}
    for kind, tables in per_sweep.items():
        undeclared = sorted(set(tables) - set(sweeps))
        if undeclared:
            raise BuildError(f"{path.name}: {kind} names sweep(s) "
                             f"{', '.join(undeclared)} that its 'sweeps' does not list")
    return NotebookSpec(path, dict(meta["figures"]), tuple(meta.get("models", ())),
                        defaults, tuple(meta.get("site", ())), sweeps,
                        per_sweep["sweep_figures"], per_sweep["point_figures"],
                        tuple(meta.get("sets", ())))


def point_figure(figure_id: str, file: str, sweep: str, label: str) -> tuple[str, str]:
    """The catalogue id and file of figure ``figure_id`` at one point of a sweep."""
    stem, dot, suffix = file.rpartition(".")
    return f"{figure_id}@{sweep}.{label}", f"{stem}@{sweep}.{label}{dot}{suffix}"


def expand(spec: NotebookSpec, points: dict[str, list[str]]) -> NotebookSpec:
    """``spec`` with the figures it writes for the configured sweeps added.

    Args:
        spec: The notebook as read.
        points: The point labels of each configured sweep it reads.
    """
    figures = dict(spec.figures)
    for sweep in spec.sweeps:
        if sweep not in points:
            continue
        figures.update(spec.sweep_figures.get(sweep, {}))
        for figure_id, file in spec.point_figures.get(sweep, {}).items():
            figures.update(point_figure(figure_id, file, sweep, label)
                           for label in points[sweep])
    return dataclasses.replace(spec, figures=figures)


def _assigned_names(source: str) -> set[str]:
    try:
        tree = ast.parse(source)
    except SyntaxError as error:
        raise BuildError(f"the parameters cell is not valid Python: {error}") from None
    names = set()
    for node in tree.body:
        if isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(t.id for t in targets if isinstance(t, ast.Name))
    return names


def resolve_parameters(spec: NotebookSpec, overrides: dict[str, Any]) -> dict[str, Any]:
    """The notebook's defaults with ``overrides`` applied, after checking them.

    Raises:
        ConfigError: An override names a parameter the notebook does not have, or its
            type differs from the default's (an int is accepted for a float).
    """
    resolved = dict(spec.defaults)
    for name, value in overrides.items():
        key = f"notebooks.{spec.name}.{name}"
        if name not in spec.defaults:
            known = ", ".join(sorted(spec.defaults)) or "none"
            raise ConfigError(f"unknown notebook parameter {key} "
                              f"(parameters of {spec.path.name}: {known})")
        resolved[name] = _check_type(value, spec.defaults[name], key)
    return resolved


def _check_type(value: Any, default: Any, key: str) -> Any:
    if isinstance(default, bool) or isinstance(value, bool):
        if isinstance(default, bool) and isinstance(value, bool):
            return value
    elif isinstance(default, float) and isinstance(value, int | float):
        return float(value)
    elif isinstance(default, list | tuple) and isinstance(value, list | tuple):
        if all(_same_kind(v, default[0]) for v in value) if default else True:
            return list(value)
    elif type(value) is type(default):
        return value
    raise ConfigError(f"{key}: expected {type(default).__name__} like the notebook's "
                      f"default {default!r}, got {value!r}")


def _same_kind(value: Any, example: Any) -> bool:
    if isinstance(example, float):
        return isinstance(value, int | float) and not isinstance(value, bool)
    return type(value) is type(example)


def execute(spec: NotebookSpec, parameters: dict[str, Any], output: Path,
            kernels: Kernels | None = None) -> None:
    """Run one notebook with papermill; the executed copy is written to ``output``.

    No working folder is passed: papermill changes the process's working folder for
    that, which races when notebooks run in parallel threads. Notebooks write only to
    the absolute ``output_dir`` they are given.

    Args:
        spec: The notebook.
        parameters: Its parameters, reserved ones included.
        output: Where the executed notebook goes.
        kernels: The build's kernels (scratch folder, output capture, stop switch);
            None: a kernel with the system's temporary folder, output not captured.

    Raises:
        BuildError: A cell failed; the message names the notebook, the cell and the
            error, points at the executed notebook kept for inspection, and quotes
            the kernel's last lines of captured output that are not known noise.
    """
    output.parent.mkdir(parents=True, exist_ok=True)
    kernels = kernels or Kernels()
    captured = kernels.output_file(spec.name)
    try:
        papermill.execute_notebook(
            str(spec.path), str(output), parameters=parameters,
            kernel_name="python3", progress_bar=False,
            kernel_manager_class=kernels.manager_class(spec.name))
    except papermill.PapermillExecutionError as error:
        number, first_line = _source_cell(output, error.cell_index)
        raise BuildError(
            f"notebook {spec.path.name} failed in cell {number} ({first_line!r}): "
            f"{error.ename}: {error.evalue}\n"
            f"  the executed notebook is kept at {output}"
            f"{_kernel_output(captured)}") from None
    except Exception as error:  # the kernel died or could not start
        raise BuildError(f"notebook {spec.path.name} could not run: "
                         f"{type(error).__name__}: {error}\n"
                         f"  the executed notebook is kept at {output}"
                         f"{_kernel_output(captured)}") from None


def _kernel_output(captured: Path | None) -> str:
    """The kernel's last relevant lines of output, indented, for an error message."""
    if captured is None or not captured.is_file():
        return ""
    lines = relevant_lines(captured.read_text(errors="replace"))
    if not lines:
        return ""
    return ("\n  the kernel's last lines of output (all of it is in build.log):\n"
            + "\n".join(f"    {line}" for line in lines))


def _source_cell(executed: Path, index: int) -> tuple[int, str]:
    """The failing cell's 1-based position in the source notebook and its first line.

    papermill inserts an ``injected-parameters`` cell, so the executed notebook's cell
    index is one more than the user's own notebook shows after the parameters cell;
    the error banners it adds afterwards are not counted in ``index``.
    """
    cells = [cell for cell in nbformat.read(executed, as_version=4).cells
             if "papermill-error-cell-tag" not in cell.metadata.get("tags", ())]
    injected = sum(1 for cell in cells[:index]
                   if "injected-parameters" in cell.metadata.get("tags", ()))
    lines = [line for line in cells[index].source.splitlines() if line.strip()]
    return index - injected + 1, lines[0].strip() if lines else ""


def outputs_exist(spec: NotebookSpec, folder: Path) -> bool:
    """Whether ``folder`` holds everything notebook ``spec`` writes: its results, its
    figures and its site folders."""
    return (folder / RESULTS_FILE).is_file() and all(
        (folder / file).is_file() for file in spec.figures.values()) and all(
        (folder / name).is_dir() for name in spec.site)
