"""How much of a reconstruction loss any model could still remove.

Binary cross-entropy against a target pixel t is smallest when the prediction equals t,
and that minimum is the pixel's entropy, zero only for pure black or white. Faces are
mostly grey levels, so the per-image loss of a perfect copy is in the thousands, and
a stopping rule that reads the raw loss sees tiny relative gains long before the
reconstructions stop improving. The part above this floor is the honest measure.

Nothing here shapes the weights.
"""

from __future__ import annotations

import numpy as np
from scipy.special import entr


def bce_floor(images: np.ndarray, batch: int = 500) -> float:
    """The mean per-image BCE loss of a perfect reconstruction of ``images``.

    Reduced like ``autoencoders.reconstruction_loss``: mean over the channels, sum
    over the pixels, then the mean over the images.

    Args:
        images: (n, h, w, c) targets: floats in [0, 1], or 8-bit integers (0..255)
            as the data sets store them, scaled like the training input.
        batch: Images per step, to bound the memory of float64 intermediates.

    Returns:
        The floor, in the loss's units (per image).

    Raises:
        ValueError: ``images`` is empty, not 4-D, or has values outside [0, 1].
    """
    images = np.asarray(images)
    if images.ndim != 4 or len(images) == 0:
        raise ValueError(f"bce_floor needs a non-empty (n, h, w, c) array, "
                         f"got shape {images.shape}")
    total = 0.0
    for start in range(0, len(images), batch):
        t = images[start:start + batch].astype(np.float64)
        if images.dtype == np.uint8:
            t /= 255.0
        if t.min() < 0 or t.max() > 1:
            raise ValueError(f"bce_floor needs values in [0, 1], "
                             f"got {t.min():.3g} .. {t.max():.3g}")
        total += float((entr(t) + entr(1.0 - t)).mean(axis=-1).sum())
    return total / len(images)


def gain_above(before: float, after: float, floor: float) -> float:
    """The share of the loss above ``floor`` that went between ``before`` and ``after``.

    Returns:
        (before - after) / (before - floor); 0 when ``before`` is at the floor.
    """
    excess = before - floor
    return float((before - after) / excess) if excess > 0 else 0.0
