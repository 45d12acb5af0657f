"""Image grids with row and column labels: the layout of every image figure.

A grid is a ``matplotlib.figure.Figure`` on the Agg canvas (no pyplot state); save it
with :func:`zspace.plots.canvas.save_png`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from zspace.errors import DataError
from zspace.plots.canvas import DPI

_LABEL_INCHES = 1.2  # room left of the grid for row labels
_TITLE_INCHES = 0.4  # room above the grid for the title
_COLUMN_LABEL_INCHES = 0.3  # room above the first row for column labels


def _check_rows(rows: Sequence[np.ndarray]) -> list[np.ndarray]:
    rows = [np.asarray(row) for row in rows]
    if not rows or any(row.ndim not in (3, 4) or len(row) == 0 for row in rows):
        raise DataError(
            "image_grid needs one or more non-empty rows of images "
            "(k, h, w, 3) or (k, h, w)"
        )
    return rows


def _show(ax, image: np.ndarray) -> None:
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    if image.ndim == 2:
        vmax = 255 if image.dtype == np.uint8 else 1.0
        ax.imshow(image, cmap="gray", vmin=0, vmax=vmax, interpolation="nearest")
    else:
        ax.imshow(image, interpolation="nearest")


def _margins(fig: Figure, n_rows: int, n_cols: int, scale: float, labels: tuple,
             row_label_chars: int = 0):
    """Place the axes grid in inch margins that depend only on the label lengths, so
    the layout never depends on how text happens to render."""
    has_row_labels, has_col_labels, has_title = labels
    # About 0.085 inch per character of the default 10 pt font, plus a gap.
    left = (max(_LABEL_INCHES, 0.085 * row_label_chars + 0.2) if has_row_labels
            else 0.1)
    top = (
        0.1
        + (_TITLE_INCHES if has_title else 0)
        + (_COLUMN_LABEL_INCHES if has_col_labels else 0)
    )
    width, height = left + n_cols * scale + 0.1, top + n_rows * scale + 0.1
    fig.set_size_inches(width, height)
    fig.subplots_adjust(
        left=left / width,
        right=1 - 0.1 / width,
        top=1 - top / height,
        bottom=0.1 / height,
        wspace=0.04,
        hspace=0.04,
    )


def image_grid(
    rows: Sequence[np.ndarray],
    row_labels: Sequence[str] | None = None,
    col_labels: Sequence[str] | None = None,
    title: str | None = None,
    scale: float = 1.0,
) -> Figure:
    """Lay out rows of images, one row per array, with optional labels.

    Args:
        rows: Image arrays, each (k, h, w, 3) uint8 (or floats in [0, 1], or
            greyscale (k, h, w)); rows may differ in length, shorter ones leave blank
            cells on the right.
        row_labels: One label per row, written left of it.
        col_labels: One label per column, written above the first row.
        title: Figure title.
        scale: Side of one image cell in inches (at :data:`DPI` = 100 dots each).

    Returns:
        A ``matplotlib.figure.Figure`` on the Agg canvas; save it with
            :func:`zspace.plots.canvas.save_png`.

    Raises:
        DataError: On empty rows or labels that do not match the grid.
    """
    rows = _check_rows(rows)
    n_rows, n_cols = len(rows), max(len(row) for row in rows)
    if row_labels is not None and len(row_labels) != n_rows:
        raise DataError(f"{len(row_labels)} row labels for {n_rows} rows")
    if col_labels is not None and len(col_labels) != n_cols:
        raise DataError(f"{len(col_labels)} column labels for {n_cols} columns")
    fig = Figure(dpi=DPI)
    FigureCanvasAgg(fig)
    labels = (row_labels is not None, col_labels is not None, title is not None)
    longest = max((len(line) for label in row_labels or [] for line in
                   str(label).splitlines()), default=0)
    _margins(fig, n_rows, n_cols, scale, labels, longest)
    axes = fig.subplots(n_rows, n_cols, squeeze=False)
    for r, row in enumerate(rows):
        for c, ax in enumerate(axes[r]):
            ax.set_xticks([])
            ax.set_yticks([])
            if c < len(row):
                _show(ax, row[c])
            else:
                ax.set_axis_off()
        if row_labels is not None:
            axes[r, 0].set_ylabel(row_labels[r], rotation=0, ha="right", va="center")
    for c, label in enumerate(col_labels or []):
        axes[0, c].set_title(label, fontsize="small")
    if title is not None:
        fig.suptitle(title, y=1 - 0.1 / fig.get_size_inches()[1], va="top")
    return fig
