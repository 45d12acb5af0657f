"""The store of trained models: their keys (``keys``), the build cache's artifacts
(``artifacts``), the weights committed to the repository (``committed``), and where
each model comes from (``sources``).

Keys and sources are decided without TensorFlow, so the build's plan and ``status``
run without loading it; Keras is imported only where a model is read or written.
"""

from zspace import onednn  # noqa: F401  (before TensorFlow: see the module)
