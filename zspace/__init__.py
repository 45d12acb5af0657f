"""zspace: a reproducible paper generator for AE/VAE latent-space research."""

__version__ = "0.1.0"
