"""Training: every model of a configuration trained, or loaded from the build cache
or the committed weights, and resumed after an interruption.

Entry points: :func:`train_all` (every model of a configuration),
:func:`train_or_load_named` and :func:`train_or_load` (one model), all in
:mod:`~.trainer`; :func:`build_model` gives a fresh, untrained model. The modules
around them: the fit loop (``fitting``, ``callbacks``, ``guard``, ``inputs``), the
stopping rule (``stopping``, ``convergence``), devices and strategies (``runtime``),
building and compiling (``factory``), and the golden trainings (``golden``).

Names are imported on first use, so importing the package loads no TensorFlow.
"""

import importlib

from zspace import onednn  # noqa: F401  (before TensorFlow: see the module)

_EXPORTS = {
    "TrainedModel": "zspace.training.trainer",
    "build_model": "zspace.training.factory",
    "train_all": "zspace.training.trainer",
    "train_or_load": "zspace.training.trainer",
    "train_or_load_named": "zspace.training.trainer",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'zspace.training' has no attribute {name!r}")
