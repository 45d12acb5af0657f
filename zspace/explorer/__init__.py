"""The report's latent-space explorer: decoders exported for the browser.

:mod:`zspace.explorer.program` turns a Keras decoder into operations a short
JavaScript interpreter (``report/explorer.js``) runs, with a NumPy reference of that
interpreter; :mod:`zspace.explorer.bundle` writes a model's program, latent geometry
and starting points as the script the explorer page loads.
"""
