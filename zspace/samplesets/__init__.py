"""Sample sets: each sampler's images drawn once, judged once, and stored under a key.

:mod:`~zspace.samplesets.spec` names the sets (no TensorFlow), :mod:`.make` draws and
judges them in a worker process, and :mod:`.stored` reads one back for a notebook.
"""
