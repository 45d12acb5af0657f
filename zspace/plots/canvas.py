"""Figures on the Agg canvas, and the PNG writer every figure goes through.

Figures are built with ``matplotlib.figure.Figure`` and the Agg canvas, never through
pyplot, so no global state or interactive backend is involved. :func:`save_png` writes
them without the "Software" metadata entry, so identical inputs give byte-identical
files and the figure diff sees only real changes. Before a figure is drawn, its data
are placed where they lie rather than on whole pixels (:func:`steady_drawing`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import PathCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.markers import MarkerStyle
from matplotlib.transforms import IdentityTransform

DPI = 100  # dots per inch of every figure and PNG


def new_figure(width: float, height: float) -> Figure:
    """An empty figure of ``width`` x ``height`` inches on the Agg canvas."""
    figure = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(figure)
    return figure


def steady_drawing(figure: Figure) -> Figure:
    """Draw the data of ``figure`` where they lie, not on whole pixels.

    Agg snaps straight horizontal and vertical edges (bars, histogram steps, error
    bars, bands) to the pixel grid, and stamps every marker of a line or of a
    one-colour scatter at a whole pixel: a value that moves by a hundredth of a pixel
    can move a bar's edge or a marker by a whole one. Here snapping is turned off for
    everything drawn in the axes, a line's markers become a scatter of their own, and
    a one-colour scatter gets a colour per point; such collections are drawn
    antialiased at their exact positions. Frames, ticks and grid lines stay crisp:
    the layout places them, not the data; so do axes drawn without their axis
    (diagrams, image grids), whose contents the layout places too. Safe to call more
    than once.

    Returns:
        ``figure``, changed in place.
    """
    for axes in figure.axes:
        if not axes.axison:
            continue
        for line in list(axes.lines):
            line.set_snap(False)
            _markers_as_scatter(axes, line)
        for artist in [*axes.collections, *axes.patches]:
            artist.set_snap(False)
            if isinstance(artist, PathCollection) and artist.get_array() is None:
                _colour_per_point(artist)
    return figure


def _markers_as_scatter(axes: Axes, line: Line2D) -> None:
    marker = line.get_marker()
    if marker in (None, "None", "none", " ", "") or line.get_markersize() <= 0:
        return
    points = np.column_stack([line.get_xdata(orig=False), line.get_ydata(orig=False)])
    style = MarkerStyle(marker, line.get_fillstyle())
    count = max(len(points), 2)  # two colours or more: never stamped
    edge = np.repeat([line.get_markeredgecolor()], count, axis=0)
    face = (np.repeat([line.get_markerfacecolor()], count, axis=0)
            if style.is_filled() else "none")
    markers = PathCollection(
        [style.get_path().transformed(style.get_transform())],
        sizes=[line.get_markersize() ** 2], offsets=points,
        offset_transform=line.get_transform(), facecolors=face, edgecolors=edge,
        linewidths=[line.get_markeredgewidth()], alpha=line.get_alpha(),
        zorder=line.get_zorder(), clip_on=line.get_clip_on(), snap=False)
    markers.set_transform(IdentityTransform())  # sizes are in points, as scatter's
    axes.add_collection(markers, autolim=False)
    line.set_marker("None")


def _colour_per_point(collection: PathCollection) -> None:
    count = max(len(collection.get_offsets()), 2)
    for get, set_ in ((collection.get_facecolor, collection.set_facecolor),
                      (collection.get_edgecolor, collection.set_edgecolor)):
        colours = np.asarray(get())
        if len(colours) == 1:
            set_(np.repeat(colours, count, axis=0))


def rasterize(figure: Figure) -> np.ndarray:
    """The figure as an RGB uint8 array (height, width, 3), as it would be saved
    (after :func:`steady_drawing`)."""
    steady_drawing(figure)
    figure.canvas.draw()
    return np.asarray(figure.canvas.buffer_rgba())[..., :3].copy()


def save_png(fig: Figure, path: str | Path, dpi: int = DPI) -> Path:
    """Write ``fig`` as a PNG with no tool or time metadata; return the path.

    Identical figures give byte-identical files. The data are drawn where they lie,
    not snapped to whole pixels (:func:`steady_drawing`), so a value that moves in
    its last bits does not move a marker or a bar by a pixel.
    """
    steady_drawing(fig)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=dpi, metadata={"Software": None})
    return path
