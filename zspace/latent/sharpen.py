"""Sharpening of decoder output, and two numbers that measure what it does.

- :func:`sharpen`: PIL's ``ImageEnhance.Sharpness`` at any factor (0 blurs, 1 leaves the
  image as it is, above 1 sharpens).
- :func:`laplacian_variance`: variance of the Laplacian of the luma, the usual focus
  measure: it grows with edge contrast and falls with blur.
- :func:`checkerboard_energy`: the share of an image's spectral energy at the
  frequencies of a pattern that repeats every ``period`` pixels; stride-2 transposed
  convolutions leave such a pattern (the crossing-line artifacts), and sharpening
  amplifies it.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageEnhance

from zspace.errors import ConfigError, DataError

# ITU-R BT.601 luma weights, the ones PIL uses for mode "L".
_LUMA = np.array([0.299, 0.587, 0.114])


def _batch(images: np.ndarray) -> np.ndarray:
    """Images as a batch (n, h, w, c); a single (h, w, c) image becomes n = 1."""
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[None]
    if images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise DataError(f"expected images (n, h, w, 1 or 3), got {images.shape}")
    return images


def _luma(images: np.ndarray) -> np.ndarray:
    """Luma (n, h, w) in [0, 1]: uint8 is divided by 255, floats are taken as [0, 1]."""
    images = _batch(images)
    scale = 255.0 if images.dtype == np.uint8 else 1.0
    if images.shape[-1] == 1:
        return images[..., 0] / scale
    return images @ _LUMA / scale


def sharpen(images: np.ndarray, factor: float) -> np.ndarray:
    """Apply ``PIL.ImageEnhance.Sharpness`` to each image.

    Args:
        images: uint8 images (n, h, w, 3) or one image (h, w, 3).
        factor: Enhancement factor >= 0: 0 gives PIL's smoothed image, 1 the original,
            larger values sharpen more (the blog shows 3, 6 and 7).

    Returns:
        uint8 array of the input's shape.

    Raises:
        ConfigError: If ``factor`` is negative or not finite.
        DataError: If the images are not uint8 RGB.
    """
    if not np.isfinite(factor) or factor < 0:
        raise ConfigError(f"sharpening factor must be >= 0, got {factor}")
    batch = _batch(images)
    if batch.dtype != np.uint8 or batch.shape[-1] != 3:
        raise DataError(
            f"sharpen needs uint8 RGB images, got {batch.dtype} {batch.shape}"
        )
    out = np.stack(
        [
            np.asarray(ImageEnhance.Sharpness(Image.fromarray(im)).enhance(factor))
            for im in batch
        ]
    )
    return out.reshape(np.shape(images))


def laplacian_variance(images: np.ndarray) -> np.ndarray:
    """Variance of the 4-neighbour Laplacian of the luma, per image.

    Args:
        images: uint8 images, or floats in [0, 1]; (n, h, w, c) or (h, w, c).

    Returns:
        float64 array (n,); computed on luma in [0, 1] over interior pixels, so it does
        not depend on the image's dtype.
    """
    x = _luma(images)
    lap = (
        x[:, 1:-1, :-2]
        + x[:, 1:-1, 2:]
        + x[:, :-2, 1:-1]
        + x[:, 2:, 1:-1]
        - 4.0 * x[:, 1:-1, 1:-1]
    )  # (n, h - 2, w - 2)
    return lap.reshape(len(lap), -1).var(axis=1)


def _periodic_hann(size: int) -> np.ndarray:
    """The periodic Hann window: its DFT is exactly three bins, [-1/4, 1/2, -1/4]."""
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(size) / size)


def _pattern_mask(h: int, w: int, period: int) -> np.ndarray:
    """Boolean (h, w): the 3 x 3 bins around each frequency of a period-p pattern."""
    mask = np.zeros((h, w), dtype=bool)
    for a in range(period):
        for b in range(period):
            if a == b == 0:
                continue
            rows = (a * h // period + np.arange(-1, 2)) % h
            cols = (b * w // period + np.arange(-1, 2)) % w
            mask[np.ix_(rows, cols)] = True
    return mask


def checkerboard_energy(images: np.ndarray, period: int = 2) -> np.ndarray:
    """Share of spectral energy at the frequencies of a ``period``-pixel pattern.

    A pattern repeating every p pixels in both directions has its spectrum on the
    frequencies (a / p, b / p) cycles per pixel, a, b in 0..p-1, not both 0. For the
    default p = 2 (the last stride-2 layer's artifact) these are (0, 1/2), (1/2, 0) and
    (1/2, 1/2): alternating columns, alternating rows, and the checkerboard. p = 4 also
    takes in the pattern of the second-to-last stride-2 layer.

    The luma (in [0, 1]) is cropped to a multiple of p on each side, its mean removed,
    and multiplied by a 2-d Hann window, so the jump between opposite image borders
    does not leak energy onto the frequency axes. The window spreads a pure tone over
    exactly the 3 x 3 bins around it, so the measure is the energy |FFT|^2 in those
    bins around each pattern frequency divided by the total. A pure period-p pattern
    scores 1, white noise about 9 (p^2 - 1) / (h w), a constant image 0.

    Args:
        images: uint8 images, or floats in [0, 1]; (n, h, w, c) or (h, w, c), with
            h, w >= 4 p.
        period: Period p of the pattern in pixels, >= 2.

    Returns:
        float64 array (n,) of shares in [0, 1].
    """
    if int(period) < 2:
        raise ConfigError(f"period must be at least 2, got {period}")
    x = _luma(images)
    h, w = (x.shape[1] // period) * period, (x.shape[2] // period) * period
    if min(h, w) < 4 * period:
        raise DataError(f"images of {h}x{w} pixels are too small for period {period}")
    x = x[:, :h, :w] - x[:, :h, :w].mean(axis=(1, 2), keepdims=True)
    window = np.outer(_periodic_hann(h), _periodic_hann(w))  # (h, w)
    power = np.abs(np.fft.fft2(x * window)) ** 2  # (n, h, w)
    at_pattern = power[:, _pattern_mask(h, w, period)].sum(axis=1)
    total = power.sum(axis=(1, 2))
    return np.divide(at_pattern, total, out=np.zeros_like(total), where=total > 1e-20)


def enlarge_crop(
    images: np.ndarray, top: int, left: int, size: int, scale: int = 4
) -> np.ndarray:
    """Cut a square from each image and enlarge it by pixel repetition.

    Args:
        images: Images (n, h, w, c).
        top: Row of the crop's upper edge.
        left: Column of the crop's left edge.
        size: Side of the crop in pixels.
        scale: Enlargement; every pixel becomes a scale x scale block, so artifacts
            stay visible instead of being smoothed by interpolation.

    Returns:
        Array (n, size * scale, size * scale, c) of the input's dtype.
    """
    crop = _batch(images)[:, top : top + size, left : left + size]
    return crop.repeat(scale, axis=1).repeat(scale, axis=2)
