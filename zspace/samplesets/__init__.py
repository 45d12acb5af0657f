"""Sample sets: each sampler's images drawn once, judged once, and stored under a key.

:mod:`~zspace.samplesets.spec` names the sets (no TensorFlow) and :mod:`.stored`
reads one back for a notebook. The build draws and judges them in worker processes
(:mod:`zspace.pipeline.setmaker`).
"""
