"""Variety of an image set without a network: how alike random pairs of its images are.

A sampler that returns the mean face has a perfect face rate; the face rate alone
cannot tell it from a good generator. Following Odena et al. (2017), variety is read
from multi-scale SSIM between random pairs of distinct images of one set: near 1 where
every image is alike, lower the more they differ. Real images are the reference: a
generator whose pairs are more alike than real pairs has lost variety.

Multi-scale SSIM here is Wang, Simoncelli and Bovik's (2003) formula, as
``tf.image.ssim_multiscale`` computes it (in NumPy here, about 9 times as fast on our
CPUs: :func:`ms_ssim_batch`) on luminance: the contrast-structure term at
every scale and the luminance term at the coarsest, each raised to its scale's
weight, and multiplied. Three scales (a 64 px image is 16 px at the third, the smoke
profile's 32 px images 8 px) with the first three of Wang et al.'s five weights,
renormalised to sum to 1 so that the value sits on single-scale SSIM's scale, and a
7 px Gaussian window of standard deviation 1.5 px.

Pixel similarity counts everything that differs as variety: pixel noise scores
above real faces (about 0.90 against 0.81), and a set of near-blank squares scores
like a set of distinct faces. So the reports measure the variety of the *faces* a
sampler makes (:func:`variety_of_faces`): among the images in which the face judge
found exactly one face, given where it found at least ``MIN_FACES``. The face rate
says how often a sampler makes a face, this how different its faces are; a sampler
that returned the mean face would score 100 % and 0. Noise and faceless images drop
out that way, but blotches on a face still count as difference: real faces are the
target, and a sampler whose faces vary more than real ones is not better for it.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from zspace.errors import DataError

# The first three of Wang et al.'s scale weights (0.0448, 0.2856, 0.3001), summing to 1.
SCALE_WEIGHTS = np.array([0.0448, 0.2856, 0.3001]) / 0.6305
_LUMINANCE = np.array([0.299, 0.587, 0.114])
WINDOW = 7  # px: the Gaussian window's side
WINDOW_SIGMA = 1.5  # px: its standard deviation (Wang et al.'s)
# Fewer faces than this give no variety of faces: a value over a few dozen
# detections would rank samplers on the detector's stray hits.
MIN_FACES = 50
# Two pairs that share no image: the fewest that give an interval.
MIN_IMAGES = 4
MIN_SIDE = WINDOW * 2 ** (len(SCALE_WEIGHTS) - 1)  # the window fits the last level


def settings() -> dict:
    """The measure's settings, as the Methods page states them."""
    return {"scales": len(SCALE_WEIGHTS),
            "weights": [round(float(w), 4) for w in SCALE_WEIGHTS],
            "window": WINDOW, "window_sigma": WINDOW_SIGMA, "min_faces": MIN_FACES}


def ms_ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Multi-scale SSIM of two images (h, w, 3) or (h, w), uint8 or in [0, 1]."""
    return float(ms_ssim_batch(np.asarray(a)[None], np.asarray(b)[None])[0])


def ms_ssim_batch(a: np.ndarray, b: np.ndarray, weights=SCALE_WEIGHTS,
                  window: int = WINDOW, batch_size: int = 500) -> np.ndarray:
    """Multi-scale SSIM of each pair ``(a[i], b[i])`` of two image stacks (n, h, w, 3)
    or (n, h, w), by Wang et al.'s formula, one scale per weight.

    The arithmetic is ``tf.image.ssim_multiscale``'s, step for step, in NumPy: a
    Gaussian window over the positions where it fits whole, the contrast-structure
    term at every scale but the last, the whole SSIM at the last, each clipped at 0
    and raised to its weight, and 2 x 2 means between scales. TensorFlow's own runs
    fifteen depthwise convolutions, slow on our CPUs; this runs about 9 times as fast
    (``benchmarks/variety.py``: 2,549 against 280 pairs a second) and agrees with it
    within 3e-5, TensorFlow's float32 rounding (a test checks both).
    """
    values = [_ms_ssim(_luminance(a[i:i + batch_size]),
                       _luminance(b[i:i + batch_size]), weights, window)
              for i in range(0, len(a), batch_size)]
    return np.concatenate(values) if values else np.zeros(0)


def _ms_ssim(x: np.ndarray, y: np.ndarray, weights, window: int) -> np.ndarray:
    """MS-SSIM of luminance stacks (n, h, w) in [0, 1] (see :func:`ms_ssim_batch`)."""
    c1, c2 = 0.01**2, 0.03**2  # Wang et al.'s K1 and K2, for values in [0, 1]
    terms = []
    for level in range(len(weights)):
        if level:
            x, y = _halved(x), _halved(y)
        taps = _gaussian_taps(min(window, *x.shape[1:]), WINDOW_SIGMA)
        mean_x, mean_y = _window_mean(x, taps), _window_mean(y, taps)
        both = 2.0 * mean_x * mean_y
        squares = mean_x**2 + mean_y**2
        luminance = (both + c1) / (squares + c1)
        cs = ((2.0 * _window_mean(x * y, taps) - both + c2)
              / (_window_mean(x**2 + y**2, taps) - squares + c2))
        last = level == len(weights) - 1
        terms.append((luminance * cs if last else cs).mean(axis=(1, 2)))
    return np.prod([np.maximum(t, 0.0) ** w for t, w in
                    zip(terms, weights, strict=True)], axis=0)


def _gaussian_taps(size: int, sigma: float) -> np.ndarray:
    """A normalised 1-d Gaussian of ``size`` taps; the window is their outer product."""
    coords = np.arange(size) - (size - 1) / 2.0
    taps = np.exp(-0.5 * coords**2 / sigma**2)
    return taps / taps.sum()


def _window_mean(images: np.ndarray, taps: np.ndarray) -> np.ndarray:
    """Gaussian-weighted means of (n, h, w) over every window inside the image."""
    size = len(taps)
    rows = sliding_window_view(images, size, axis=1) @ taps
    return sliding_window_view(rows, size, axis=2) @ taps


def _halved(images: np.ndarray) -> np.ndarray:
    """(n, h, w) at half the size: means of 2 x 2 blocks, an odd side first
    mirrored by one pixel, as TensorFlow pads it."""
    odd = (0, images.shape[1] % 2, images.shape[2] % 2)
    if any(odd):
        images = np.pad(images, [(0, o) for o in odd], mode="symmetric")
    n, h, w = images.shape
    return images.reshape(n, h // 2, 2, w // 2, 2).mean(axis=(2, 4))


def disjoint_pairs(n: int, n_pairs: int,
                   rng: np.random.Generator | int = 0) -> np.ndarray:
    """Up to ``n_pairs`` random pairs of indices below ``n``, no index in two pairs.

    Pairs that share no image are independent draws, so the spread of their values
    gives an honest interval; pairs drawn with replacement would share images and
    narrow it without limit as more are drawn.

    Returns:
        (min(n_pairs, n // 2), 2) int array.
    """
    order = np.random.default_rng(rng).permutation(n)
    count = min(int(n_pairs), n // 2)
    return order[: 2 * count].reshape(count, 2)


def pair_ms_ssim(images: np.ndarray, n_pairs: int = 400,
                 rng: np.random.Generator | int = 0) -> np.ndarray:
    """Multi-scale SSIM of random pairs of images, no image in two pairs.

    Args:
        images: (n, h, w, 3) uint8 images, n >= 2, h and w at least ``MIN_SIDE``.
        n_pairs: Pairs wanted; at most ``n // 2`` are drawn (:func:`disjoint_pairs`).
        rng: A generator or a seed.

    Returns:
        One value per pair, 1 for identical images; real faces sit well below, noise
        near 0.

    Raises:
        DataError: Fewer than two images, or images too small for three levels.
    """
    images = np.asarray(images)
    if images.ndim != 4 or len(images) < 2:
        raise DataError(f"variety needs at least two images (n, h, w, 3), got shape "
                        f"{images.shape}")
    if min(images.shape[1:3]) < MIN_SIDE:
        raise DataError(f"variety needs images of at least {MIN_SIDE} px for its "
                        f"{len(SCALE_WEIGHTS)} scales, got {images.shape[1:3]}")
    pairs = disjoint_pairs(len(images), n_pairs, rng)
    return ms_ssim_batch(images[pairs[:, 0]], images[pairs[:, 1]])


def pairwise_ms_ssim(images: np.ndarray, n_pairs: int = 400,
                     rng: np.random.Generator | int = 0) -> float:
    """The mean of :func:`pair_ms_ssim`: 1 for identical images."""
    return float(np.mean(pair_ms_ssim(images, n_pairs, rng)))


def variety(images: np.ndarray, n_pairs: int = 400,
            rng: np.random.Generator | int = 0) -> dict[str, float]:
    """Variety = 1 - mean pairwise MS-SSIM, with a 95 % interval over the pairs
    (independent: no image is in two of them).

    Returns:
        ``variety``, ``low``, ``high`` and ``n_pairs`` (those drawn: at most half
        the images).

    Raises:
        DataError: Fewer than four images (two pairs), or images too small.
    """
    if len(images) < MIN_IMAGES:
        raise DataError(f"variety needs at least four images for an interval over "
                        f"two pairs, got {len(images)}")
    values = 1.0 - pair_ms_ssim(images, n_pairs, rng)
    half = 1.96 * float(values.std(ddof=1)) / np.sqrt(len(values))
    mean = float(values.mean())
    return {"variety": mean, "low": mean - half, "high": mean + half,
            "n_pairs": len(values)}


def variety_of_faces(images: np.ndarray, faces_per_image: np.ndarray,
                     n_pairs: int = 400, rng: np.random.Generator | int = 0,
                     min_faces: int = MIN_FACES) -> dict:
    """:func:`variety` among the images in which the face judge found one face.

    Args:
        images: (n, h, w, 3) uint8 images.
        faces_per_image: (n,) faces found in each image (the face rate counts an
            image with exactly one).
        n_pairs: Random pairs of those images.
        rng: A generator or a seed.
        min_faces: Fewer such images give no value.

    Returns:
        ``variety``, ``low``, ``high`` and ``n_pairs`` as :func:`variety` gives them,
        all None (and ``n_pairs`` 0) under ``min_faces``; ``n_faces``, the images
        measured.

    Raises:
        DataError: ``faces_per_image`` does not give one count per image.
    """
    counts = np.asarray(faces_per_image)
    if counts.shape != (len(images),):
        raise DataError(f"variety_of_faces needs one face count per image: "
                        f"{len(images)} images, counts of shape {counts.shape}")
    keep = np.flatnonzero(counts == 1)
    if len(keep) < max(min_faces, MIN_IMAGES):
        return {"variety": None, "low": None, "high": None, "n_pairs": 0,
                "n_faces": int(len(keep))}
    return {**variety(np.asarray(images)[keep], n_pairs, rng),
            "n_faces": int(len(keep))}


def _luminance(images: np.ndarray) -> np.ndarray:
    """Luminance in [0, 1] of images (..., 3), or the images themselves if grey."""
    images = np.asarray(images)
    scaled = (images / 255.0 if np.issubdtype(images.dtype, np.integer)
              else images.astype(np.float64))
    return scaled @ _LUMINANCE if scaled.shape[-1:] == (3,) else scaled
