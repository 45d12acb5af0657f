"""Figure diff: which figures changed between two versions of the report, how and why.

A version is a build folder, an archived build (every build archives its figures and
manifest) or a git revision of the repository's committed ``figures/``::

    result, page = figure_diff("HEAD", None)   # the working figures/ against HEAD
    print(summary_text(result))
    sys.exit(result.exit_code)                 # 1 when any figure changed

The pieces: :func:`open_side` resolves a version, :func:`compare_sides` measures every
figure, :func:`summary_text`, :func:`write_json`, :func:`write_page` and
:func:`write_markdown` (a pull-request summary) show the result.
"""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

from zspace import ownership, paths
from zspace.diff.compare import DiffResult, FigureDiff, compare_sides, manifest_changes
from zspace.diff.images import DEFAULT_TOLERANCE, PixelDistance
from zspace.diff.markdown import write_markdown
from zspace.diff.render import summary_text, write_json, write_page
from zspace.diff.sources import DiffError, Side, open_side

__all__ = ["DEFAULT_TOLERANCE", "DiffError", "DiffResult", "FigureDiff",
           "PixelDistance", "Side", "compare_sides", "default_page_folder",
           "figure_diff", "manifest_changes", "open_side", "summary_text",
           "write_json", "write_markdown", "write_page"]


def default_page_folder(build_root: Path, a: Side, b: Side) -> Path:
    """``build_root/diff/<A>-vs-<B>``, named after the two sides."""
    return build_root / "diff" / f"{a.slug}-vs-{b.slug}"


def figure_diff(old: str = "HEAD", new: str | None = None, *,
                repo: Path = paths.ROOT, build_root: Path | None = None,
                profile: str = "default", tolerance: float = DEFAULT_TOLERANCE,
                page_folder: Path | None = None,
                json_file: Path | None = None,
                markdown: Path | None = None) -> tuple[DiffResult, Path]:
    """Compare the figures of two versions and write the HTML page (and JSON).

    Args:
        old: Side A: a folder, an archived build id or a git revision.
        new: Side B, the same kinds; None: the working tree's ``figures/``.
        repo: The repository whose revisions and ``figures/`` are meant.
        build_root: The build folder holding ``archive/`` (default ``build/``).
        profile: The profile whose archives ``latest`` and ``previous`` name.
        tolerance: RMS difference in [0, 1] up to which a figure is unchanged.
        page_folder: Where the page goes (default ``build_root/diff/<A>-vs-<B>``).
        json_file: Also write the JSON summary there (``-``: standard output).
        markdown: Also write the pull-request summary there: a ``.md`` file, or a
            folder for ``figure-diff.md``; its thumbnails go beside it.

    Returns:
        The comparison and the page written. A revision's files are copied into
        the page folder and their temporary folder is removed before this returns,
        so the result's paths for that side no longer exist.

    Raises:
        DiffError: A side cannot be found or has no usable manifest (exit code 2).
    """
    build_root = paths.build_dir(build_root)
    with ExitStack() as stack:
        a = stack.enter_context(open_side(old, repo=repo, build_root=build_root,
                                          profile=profile))
        b = stack.enter_context(open_side(new, repo=repo, build_root=build_root,
                                          profile=profile))
        result = compare_sides(a, b, tolerance)
        if page_folder is None:
            ownership.claim(build_root)  # the page goes under the build root
        # Revisions live in temporary folders: the page copies their images before
        # the sides are closed.
        page = write_page(result, page_folder or default_page_folder(build_root, a, b))
        if markdown is not None:
            write_markdown(result, markdown)
    if json_file is not None:
        write_json(result, json_file, page)
    return result, page
