"""Latent-space analysis: z-points, statistics, PCA, samplers, sharpening, metrics.

Each concern has its own module; import from them directly, e.g.
``from zspace.latent.samplers import make_sampler``. No module imports TensorFlow:
:mod:`zspace.latent.zpoints` and :mod:`zspace.latent.metrics` only call the Keras
models they are given.
"""
