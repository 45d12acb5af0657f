"""The blog's convolutional AE and VAE, the wide AE and the judge: built, trained,
cached and resumed.

Entry points: :func:`train_all` (every model of a configuration) and
:func:`train_or_load` (one model). Trained models are :class:`AE` and :class:`VAE`
instances with ``.encoder`` and ``.decoder``; :func:`judge.feature_extractor` gives
the judge's feature network.
"""

import os

# TensorFlow's oneDNN kernels are off by default on CPUs without AVX-512 (such as
# AMD's); on a two-core AVX2 machine they train these models ~1.4x faster. The
# variable only counts before TensorFlow is first imported; set it to 0 to opt out.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

from zspace.models import judge  # noqa: E402
from zspace.models.architecture import build_decoder, build_encoder  # noqa: E402
from zspace.models.autoencoders import AE, VAE  # noqa: E402
from zspace.models.training import (  # noqa: E402
    TrainedModel,
    build_model,
    train_all,
    train_or_load,
)

__all__ = [
    "AE",
    "VAE",
    "TrainedModel",
    "build_decoder",
    "build_encoder",
    "build_model",
    "judge",
    "train_all",
    "train_or_load",
]
