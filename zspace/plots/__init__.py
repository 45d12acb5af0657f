"""Figure builders the analysis notebooks share: image grids (:mod:`~.grids`),
charts and panels (:mod:`~.common`, and one module per article's topic), with axes
rounded by :mod:`~.limits`.

Every figure is a ``matplotlib.figure.Figure`` on the Agg canvas (no pyplot state),
saved with :func:`zspace.plots.canvas.save_png` so equal inputs give equal bytes.
"""
