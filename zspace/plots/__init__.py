"""Figure builders the analysis notebooks share. Image grids live in
:mod:`zspace.latent.grids`; these add charts and put panels together.

Every figure is a ``matplotlib.figure.Figure`` on the Agg canvas (no pyplot state),
saved with :func:`zspace.latent.grids.save_png` so equal inputs give equal bytes.
"""
