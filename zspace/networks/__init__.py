"""The networks: the blog's convolutional encoder and decoder, the AE and the VAE
around them, the judge, and the layers and speed-ups they are built from.

:class:`AE` and :class:`VAE` have ``.encoder`` and ``.decoder``;
:func:`zspace.networks.judge.feature_extractor` gives the judge's feature network.
Building and training them is :mod:`zspace.training`'s part.

Names are imported on first use, so importing the package loads no TensorFlow.
"""

import importlib

from zspace import onednn  # noqa: F401  (before TensorFlow: see the module)

_EXPORTS = {
    "AE": "zspace.networks.autoencoders",
    "VAE": "zspace.networks.autoencoders",
    "build_decoder": "zspace.networks.architecture",
    "build_encoder": "zspace.networks.architecture",
}

__all__ = sorted(_EXPORTS)


def register_classes() -> None:
    """Register the networks' Keras classes (the AE, the VAE, the judge and the
    custom layers) before a saved model is loaded.

    A saved model names each class by its registered name and its module; Keras
    imports the module only where the name is not registered, and a model saved
    before these modules moved here names a module that no longer exists.
    """
    for module in ("autoencoders", "judge", "layers", "speed"):
        importlib.import_module(f"zspace.networks.{module}")


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'zspace.networks' has no attribute {name!r}")
