"""A figure diff as Markdown for a pull-request comment, with thumbnails beside it.

The summary is one table with a row per figure that is not unchanged (figure,
status, verdict, RMS, SSIM, why) and small before / after / difference PNGs, written
into a folder next to the Markdown file (``<stem>-images/``) and linked relatively, so
the file and its folder can be uploaded, committed or attached together. Unchanged
figures get no row and no image.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from urllib.parse import quote

from PIL import Image

from zspace.diff.compare import DiffResult, FigureDiff
from zspace.diff.images import UnreadableImage, heatmap, load_image

DEFAULT_NAME = "figure-diff.md"  # the file written into a folder given as target
THUMBNAIL_WIDTH = 320  # px: the largest width of a thumbnail
# The thumbnails' file names end so; stale ones are removed before new are written.
KINDS = ("before", "after", "difference")


def markdown_file(target: Path) -> Path:
    """The Markdown file ``target`` means: itself, or ``figure-diff.md`` in it when
    it is a folder (one that exists, or a name without a suffix)."""
    target = Path(target)
    if target.is_dir() or (not target.exists() and not target.suffix):
        return target / DEFAULT_NAME
    return target


def write_markdown(result: DiffResult, target: Path) -> Path:
    """Write the pull-request summary of ``result`` and its thumbnails.

    Call it while both sides' files exist (a revision's are removed when its side
    is closed).

    Args:
        result: The comparison.
        target: A ``.md`` file, or a folder for ``figure-diff.md``.

    Returns:
        The Markdown file written.
    """
    file = markdown_file(target)
    images = file.with_name(f"{file.stem}-images")
    file.parent.mkdir(parents=True, exist_ok=True)
    if images.is_dir():
        for old in images.glob("*.png"):
            if old.stem.endswith(tuple(f"-{kind}" for kind in KINDS)):
                old.unlink()
    shown = [f for f in result.figures if f.status != "unchanged"]
    rows = [_row(figure, images, file.parent) for figure in shown]
    file.write_text(_document(result, rows))
    return file


def _document(result: DiffResult, rows: list[str]) -> str:
    counts = ", ".join(f"{n} {status}" for status, n in result.counts().items() if n)
    tolerance = result.tolerance
    lines = [f"### Figure diff: `{result.a.argument}` → `{result.b.argument}`", "",
             f"{counts} (tolerance: RMS {tolerance:.4f}, {tolerance * 255:.2f} grey "
             "levels).", "",
             f"- A: {_cell(result.a.description)}",
             f"- B: {_cell(result.b.description)}", ""]
    if not rows:
        return "\n".join([*lines, "No figure changed beyond the tolerance.", ""])
    lines += ["| figure | status | verdict | RMS | SSIM | why | before | after "
              "| difference |",
              "| --- | --- | --- | ---: | ---: | --- | --- | --- | --- |", *rows, "",
              "Verdict: *layout shift* (the same content moved by up to 3 px), "
              "*text* (the difference lies in characters) or *content*. Difference: "
              "|A − B|, magnified, over a dim copy of A.", ""]
    return "\n".join(lines)


def _row(figure: FigureDiff, images: Path, base: Path) -> str:
    d = figure.distance
    verdict = (f"{figure.verdict.kind} ({figure.verdict.detail})" if figure.verdict
               else "-")
    why = "; ".join([*figure.why, *([figure.reason] if figure.status != "changed"
                                    and figure.reason else []), *figure.notes])
    cells = [f"**{figure.figure_id}**", figure.status, verdict,
             "-" if d is None else f"{d.rms:.4f}",
             "-" if d is None or d.ssim is None else f"{d.ssim:.3f}", why or "-",
             *_thumbnails(figure, images, base)]
    return "| " + " | ".join(_cell(cell) for cell in cells) + " |"


def _thumbnails(figure: FigureDiff, images: Path, base: Path) -> list[str]:
    """Markdown images of the before / after / difference thumbnails ("-": none)."""
    decoded = {}
    for side, file in (("before", figure.file_a), ("after", figure.file_b)):
        if file is not None:
            try:
                decoded[side] = load_image(file)
            except UnreadableImage:
                pass
    pictures: dict[str, Image.Image] = {}
    for side, image in decoded.items():
        pictures[side] = _shrunk(image)
    if len(decoded) == 2:
        # Each thumbnail pixel shows the largest difference of the pixels it covers.
        factor = max(1, math.ceil(decoded["before"].width / THUMBNAIL_WIDTH))
        heat, _ = heatmap(decoded["before"], decoded["after"], factor)
        pictures["difference"] = heat.resize(pictures["before"].size,
                                             Image.Resampling.NEAREST)
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", figure.figure_id)
    links = []
    for kind in KINDS:
        if kind not in pictures:
            links.append("-")
            continue
        images.mkdir(parents=True, exist_ok=True)
        path = images / f"{stem}-{kind}.png"
        pictures[kind].save(path)
        target = quote(path.relative_to(base).as_posix())
        links.append(f"![{figure.figure_id} {kind}]({target})")
    return links


def _shrunk(image: Image.Image) -> Image.Image:
    if image.width <= THUMBNAIL_WIDTH:
        return image
    height = max(1, round(image.height * THUMBNAIL_WIDTH / image.width))
    return image.resize((THUMBNAIL_WIDTH, height), Image.Resampling.LANCZOS)


def _cell(text: str) -> str:
    # A pipe would end the table cell; a line break would end the row.
    return str(text).replace("|", "\\|").replace("\n", " ")
