"""A figure diff as a terminal table, as JSON, and as an HTML page.

The page folder holds copies of both versions of every figure that is not unchanged,
their difference heatmaps and the report's stylesheet, so it opens from the file
system and can be moved or attached as it is.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2

from zspace import paths
from zspace.diff.compare import STATUSES, DiffResult, FigureDiff
from zspace.diff.images import UnreadableImage, load_image, write_heatmap
from zspace.diff.sources import DiffError
from zspace.files import write_json_atomic

TEMPLATE = "diff.html.j2"
# Sub-folders of the page folder that the page owns and rewrites each time.
IMAGE_FOLDERS = ("a", "b", "heat")
OWNED = ("index.html", "style.css", *IMAGE_FOLDERS)
COLUMNS = ("figure", "status", "verdict", "rms", "max", "ssim", "phash", "why")


def _number(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _why(figure: FigureDiff) -> str:
    parts = list(figure.why)
    if figure.status in ("unreadable", "added", "removed") or (
            figure.distance and figure.distance.resized):
        parts += [figure.reason] if figure.reason else []
    return "; ".join(parts + list(figure.notes))


def summary_text(result: DiffResult) -> str:
    """A table of every figure and a line of counts, for the terminal."""
    rows = [COLUMNS]
    for figure in result.figures:
        d = figure.distance
        rows.append((figure.figure_id, figure.status,
                     figure.verdict.kind if figure.verdict else "-",
                     _number(d and d.rms), _number(d and d.max),
                     _number(d and d.ssim, 3), "-" if d is None else str(d.phash),
                     _why(figure)))
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS) - 1)]
    lines = [f"A: {result.a.description}", f"B: {result.b.description}", ""]
    lines += ["  ".join([*(cell.ljust(width) for cell, width
                           in zip(row[:-1], widths, strict=True)), row[-1]]).rstrip()
              for row in rows]
    counts = ", ".join(f"{n} {status}" for status, n in result.counts().items())
    lines += ["", f"{len(result.figures)} figures: {counts} "
              f"(tolerance: rms {result.tolerance:.4f})"]
    return "\n".join(lines)


def write_json(result: DiffResult, file: Path, page: Path | None = None) -> None:
    """Write the summary (``DiffResult.to_dict`` and the page's path) as JSON."""
    summary = result.to_dict() | {"page": str(page) if page else None}
    if str(file) == "-":
        print(json.dumps(summary, indent=2))
    else:
        write_json_atomic(file, summary)


def write_page(result: DiffResult, folder: Path,
               templates: Path = paths.REPORT_TEMPLATES) -> Path:
    """Write the HTML page of ``result`` with its images into ``folder``.

    Args:
        result: The comparison.
        folder: Output folder; created if needed. Only its ``index.html``,
            ``style.css`` and image sub-folders are replaced.
        templates: Folder holding ``diff.html.j2`` and ``style.css``.

    Returns:
        The page, ``folder/index.html``.

    Raises:
        DiffError: ``folder`` holds files that are not the page's.
    """
    folder.mkdir(parents=True, exist_ok=True)
    # The page replaces its own files only; a folder holding anything else is the
    # user's, and none of it is removed.
    foreign = sorted(p.name for p in folder.iterdir()
                     if p.name not in OWNED and p.suffix != ".json")
    if foreign:
        names = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
        raise DiffError(f"page folder {folder} holds other files ({names}); choose "
                        "a new or empty folder")
    for name in IMAGE_FOLDERS:
        shutil.rmtree(folder / name, ignore_errors=True)
        (folder / name).mkdir()
    figures = [_page_figure(figure, folder) for figure in result.figures]
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(templates),
                             autoescape=True, undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True)
    env.filters["number"] = _number
    html = env.get_template(TEMPLATE).render(
        a=result.a.to_dict(), b=result.b.to_dict(), tolerance=result.tolerance,
        counts=result.counts(), changed=result.changed, statuses=STATUSES,
        figures=figures)
    shutil.copyfile(templates / "style.css", folder / "style.css")
    page = folder / "index.html"
    page.write_text(html)
    return page


def _page_figure(figure: FigureDiff, folder: Path) -> dict[str, Any]:
    """The template's view of one figure, copying its images into ``folder``."""
    view = figure.to_dict() | {"why_text": _why(figure), "src_a": None,
                               "src_b": None, "heat": None, "gain": None}
    if figure.status == "unchanged":
        return view
    images = {}
    for side, file in (("a", figure.file_a), ("b", figure.file_b)):
        if file is None:
            continue
        try:
            images[side] = load_image(file)
        except UnreadableImage:
            continue  # the reason is in the summary; a broken <img> would add nothing
        shutil.copyfile(file, folder / side / file.name)
        view[f"src_{side}"] = f"{side}/{quote(file.name)}"
    if len(images) == 2:
        name = f"{figure.file_a.stem}.png"
        view["gain"] = write_heatmap(images["a"], images["b"], folder / "heat" / name)
        view["heat"] = f"heat/{quote(name)}"
    return view
