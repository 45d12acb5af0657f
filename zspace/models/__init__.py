"""The blog's convolutional AE and VAE, the wide AE and the judge: built, trained,
cached and resumed.

Entry points: :func:`train_all` (every model of a configuration),
:func:`train_or_load_named` and :func:`train_or_load` (one model). Trained models
are :class:`AE` and :class:`VAE` instances with ``.encoder`` and ``.decoder``;
:func:`zspace.models.judge.feature_extractor` gives the judge's feature network.

Names are imported on first use, so ``zspace.models.keys`` and
``zspace.models.sources`` (and so the build's plan and ``status``) run without
loading TensorFlow.
"""

import importlib
import os

# TensorFlow's oneDNN kernels are off by default on CPUs without AVX-512 (AMD's, for
# one); on this project's two-core AVX2 machine they train the models about 1.4x
# faster. The variable counts only if set before TensorFlow is first imported, so
# import zspace.models (or set it) before anything else imports TensorFlow; set it
# to 0 to opt out. Results differ from the other kernels in the last bits only.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

_EXPORTS = {
    "AE": "zspace.models.autoencoders",
    "VAE": "zspace.models.autoencoders",
    "build_decoder": "zspace.models.architecture",
    "build_encoder": "zspace.models.architecture",
    "TrainedModel": "zspace.models.training",
    "build_model": "zspace.models.training",
    "train_all": "zspace.models.training",
    "train_or_load": "zspace.models.training",
    "train_or_load_named": "zspace.models.training",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'zspace.models' has no attribute {name!r}")
