"""How many of its latent dimensions a VAE uses.

A dimension that carries no information about the image has an encoder mean that
does not vary between images and a posterior equal to the prior, N(0, 1): its KL
divergence is 0 and the decoder learns to ignore it. Two counts of the dimensions in
use, both over held-out images:

- Burda et al. (2016), "Importance Weighted Autoencoders": a unit is active where
  the variance over images of its encoder mean exceeds 0.01.
- The KL criterion: a dimension is active where its KL divergence from N(0, 1),
  averaged over the images, exceeds 0.1 nats.

The functions work on encoder outputs, arrays (n, z_dim); :func:`encode_distribution`
makes them from a VAE's encoder in batches.
"""

from __future__ import annotations

import numpy as np

from zspace.errors import DataError
from zspace.latent.zpoints import inference, predict_in_batches

BURDA_THRESHOLD = 0.01  # variance over images of z_mean
KL_THRESHOLD = 0.1  # nats per dimension
TOP_K = 10


def _check_pair(z_mean: np.ndarray, z_log_var: np.ndarray) -> None:
    if z_mean.ndim != 2 or z_mean.shape != z_log_var.shape or len(z_mean) == 0:
        raise DataError(f"expected z_mean and z_log_var of one shape (n, z_dim) with "
                        f"n > 0, got {z_mean.shape} and {z_log_var.shape}")


def kl_per_dimension(z_mean: np.ndarray, z_log_var: np.ndarray) -> np.ndarray:
    """The KL divergence of each dimension's posterior from N(0, 1), in nats.

    Args:
        z_mean: Encoder means (n, z_dim).
        z_log_var: Encoder log-variances (n, z_dim).

    Returns:
        float64 (z_dim,): per dimension, the mean over the images of
        ``0.5 * (z_mean^2 + exp(z_log_var) - z_log_var - 1)``; their sum is the
        VAE's KL loss averaged over the images.

    Raises:
        DataError: The arrays are not both (n, z_dim) with n > 0.
    """
    z_mean = np.asarray(z_mean, np.float64)
    z_log_var = np.asarray(z_log_var, np.float64)
    _check_pair(z_mean, z_log_var)
    terms = 0.5 * (np.square(z_mean) + np.exp(z_log_var) - z_log_var - 1.0)
    return terms.mean(axis=0)


def active_units(z_mean: np.ndarray, threshold: float = BURDA_THRESHOLD) -> int:
    """Burda et al.'s count: dimensions whose encoder mean varies over the images
    (variance above ``threshold``, default 0.01)."""
    z_mean = np.asarray(z_mean, np.float64)
    return int(np.sum(z_mean.var(axis=0) > threshold))


def top_share(kl: np.ndarray, k: int = TOP_K) -> float:
    """The share of the total KL that the ``k`` largest dimensions carry (0 where
    the total is 0)."""
    kl = np.sort(np.asarray(kl, np.float64))[::-1]
    total = kl.sum()
    return float(kl[:k].sum() / total) if total > 0 else 0.0


def active_dimensions(z_mean: np.ndarray, z_log_var: np.ndarray,
                      burda_threshold: float = BURDA_THRESHOLD,
                      kl_threshold: float = KL_THRESHOLD, k: int = TOP_K) -> dict:
    """Every measure of the dimensions in use, over one set of images.

    Args:
        z_mean: Encoder means (n, z_dim).
        z_log_var: Encoder log-variances (n, z_dim).
        burda_threshold: Variance of z_mean above which a unit is active.
        kl_threshold: KL in nats above which a dimension is active.
        k: How many of the largest dimensions :func:`top_share` sums.

    Returns:
        ``kl_sorted`` (per-dimension KL, largest first), ``order`` (the dimensions
        in that order), ``total_kl``, ``active_burda``, ``active_kl``, ``top_share``
        (of the ``k`` largest) and ``n_images``.
    """
    kl = kl_per_dimension(z_mean, z_log_var)
    # Stable, so equal values (the inactive dimensions' zeros) keep index order.
    order = np.argsort(-kl, kind="stable")
    return {"kl_sorted": kl[order].tolist(), "order": order.tolist(),
            "total_kl": float(kl.sum()),
            "active_burda": active_units(z_mean, burda_threshold),
            "active_kl": int(np.sum(kl > kl_threshold)),
            "top_share": top_share(kl, k), "n_images": len(z_mean)}


def encode_distribution(encoder, images: np.ndarray,
                        batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """A VAE encoder's two outputs for uint8 images, computed in batches.

    (:func:`zspace.latent.zpoints.encode` keeps only ``z_mean``.)

    Args:
        encoder: The VAE's ``.encoder``: float32 images in [0, 1] to
            ``[z_mean, z_log_var]``.
        images: uint8 array (n, h, w, c).
        batch_size: Images encoded at once.

    Returns:
        ``(z_mean, z_log_var)``, float32 arrays (n, z_dim).

    Raises:
        DataError: The encoder does not return two outputs of one shape.
    """

    forward = inference(encoder)

    def both(batch, training=False):
        outputs = forward(batch)
        if not isinstance(outputs, list | tuple) or len(outputs) != 2:
            raise DataError("expected a VAE encoder returning [z_mean, z_log_var]")
        # (batch, 2 * z_dim): one array, so it passes through the batching as is.
        return np.concatenate([np.asarray(o) for o in outputs], axis=1)

    joined = predict_in_batches(both, images, batch_size)
    z_dim = joined.shape[1] // 2
    return joined[:, :z_dim], joined[:, z_dim:]


def traversal(z_dim: int, dimension: int, values, start: np.ndarray | None = None,
              ) -> np.ndarray:
    """z-vectors that move one coordinate through ``values``, the others fixed.

    Args:
        z_dim: Length of a z-vector.
        dimension: The coordinate that moves.
        values: Its values, one z-vector each.
        start: The vector the others are taken from (default: zeros).

    Returns:
        float32 (len(values), z_dim).
    """
    base = np.zeros(z_dim, np.float32) if start is None else np.asarray(start)
    z = np.tile(base.astype(np.float32), (len(values), 1))
    z[:, dimension] = values
    return z
