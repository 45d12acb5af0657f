"""How much of an image's structure lies in its background rather than on the face.

The blog says that far from the origin the backgrounds take over the decoded images.
This module turns that into a number, the **background share**: the share of an
image's local contrast that lies outside a fixed face region.

* Local contrast is the gradient magnitude of the luminance (central differences,
  luminance in [0, 1]): edges, texture and blotches count, flat areas do not, and a
  uniformly brighter or darker image does not move it.
* The face region is one centred ellipse, the same for every image, in shares of the
  frame (:data:`FACE_CENTRE`, :data:`FACE_HALF_AXES`). It is the mean head of the
  synthetic data set, whose layout follows aligned CelebA crops: the head's centre
  sits at 45.5 % of the height (eyes at 42 %, the centre 3.5 % below them), its
  half-width averages 0.285 of the frame and its half-height 0.37 (the half-width
  times a length of 1.3); ``tests/test_latent_background.py`` checks these values
  against the generator. The ellipse covers the face from the brow to the chin;
  hair, ears, neck, shoulders and the scene lie outside, so real images have a
  sizeable share too.

The share of an image is the contrast outside the ellipse over all its contrast: 1
where all structure is background, 0 where it is all on the face. An image with no
contrast at all (a blank image) has no background structure and scores 0. Structure
spread evenly over the frame scores the area outside the ellipse (about 0.67 at 64 px,
:func:`outside_area`): a share near it means the image no longer gathers its detail on
a face. Real test images are the reference a generator is read against.
"""

from __future__ import annotations

import numpy as np

from zspace.errors import DataError

#: The face ellipse's centre (x, y) as shares of the frame's width and height.
FACE_CENTRE = (0.5, 0.455)
#: Its half-axes (horizontal, vertical) as shares of the frame's width and height.
FACE_HALF_AXES = (0.285, 0.37)
_LUMINANCE = np.array([0.299, 0.587, 0.114])
# Below this total gradient (luminance units summed over the image) an image counts
# as blank: rounding noise of a flat uint8 image stays far below it.
_BLANK = 1e-6


def face_mask(height: int, width: int, centre: tuple[float, float] = FACE_CENTRE,
              half_axes: tuple[float, float] = FACE_HALF_AXES) -> np.ndarray:
    """The face region: (height, width) bool, true for pixels whose centre lies in
    the ellipse."""
    if height < 1 or width < 1:
        raise DataError(f"a face region needs a frame of at least 1 px, got "
                        f"{height} x {width}")
    y = (np.arange(height) + 0.5) / height
    x = (np.arange(width) + 0.5) / width
    return (((x[None, :] - centre[0]) / half_axes[0]) ** 2
            + ((y[:, None] - centre[1]) / half_axes[1]) ** 2) <= 1.0


def outside_area(height: int, width: int) -> float:
    """The share of the frame outside the face region: the background share of an
    image whose structure is spread evenly."""
    return float(1.0 - face_mask(height, width).mean())


def local_contrast(images: np.ndarray) -> np.ndarray:
    """Gradient magnitude of the luminance, (n, h, w), of images (n, h, w, 3) or
    (n, h, w), uint8 or in [0, 1]."""
    images = np.asarray(images)
    if images.ndim not in (3, 4) or (images.ndim == 4 and images.shape[-1] != 3):
        raise DataError(f"background share needs images (n, h, w, 3) or (n, h, w), "
                        f"got shape {images.shape}")
    if min(images.shape[1:3]) < 2:
        raise DataError(f"background share needs images of at least 2 px, got "
                        f"{images.shape[1:3]}")
    scaled = (images / 255.0 if np.issubdtype(images.dtype, np.integer)
              else images.astype(np.float64))
    luminance = scaled @ _LUMINANCE if images.ndim == 4 else scaled
    dy, dx = np.gradient(luminance, axis=(1, 2))
    return np.hypot(dx, dy)


def background_shares(images: np.ndarray) -> np.ndarray:
    """The background share of each image, (n,) in [0, 1] (0 for a blank image)."""
    contrast = local_contrast(images)
    outside = ~face_mask(*contrast.shape[1:])
    total = contrast.sum(axis=(1, 2))
    background = (contrast * outside).sum(axis=(1, 2))
    return np.where(total > _BLANK, background / np.maximum(total, _BLANK), 0.0)


def background_share(images: np.ndarray) -> dict[str, float]:
    """The mean background share of a set of images, with a 95 % interval.

    Returns:
        ``share`` (the mean over the images), ``low`` and ``high`` (its normal
        interval, 1.96 standard errors), ``n`` (images) and ``outside_area`` (the
        share that evenly spread structure would give).

    Raises:
        DataError: No images, or images of the wrong shape.
    """
    shares = background_shares(images)
    if len(shares) == 0:
        raise DataError("background share needs at least one image")
    mean = float(shares.mean())
    half = (1.96 * float(shares.std(ddof=1)) / np.sqrt(len(shares))
            if len(shares) > 1 else 0.0)
    return {"share": mean, "low": mean - half, "high": mean + half,
            "n": int(len(shares)),
            "outside_area": outside_area(*np.asarray(images).shape[1:3])}
