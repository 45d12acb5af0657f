"""Pixel and perceptual distances between two versions of a figure, and their heatmap.

Images are compared as RGB in [0, 1], transparent pixels laid over white as a reader
sees them. When the sizes differ, the new version is resized to the old one's size
before any pixel distance, and the result says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import imagehash
import numpy as np
from PIL import Image
from skimage.metrics import structural_similarity

from zspace.errors import ZspaceError

# Half an 8-bit grey level of RMS: rebuilds on another machine (other BLAS, other
# font hinting) stay below it, a changed parameter does not.
DEFAULT_TOLERANCE = 0.5 / 255
# The heatmap magnifies differences at most this much, so noise does not look like
# a change.
MAX_GAIN = 10.0


class UnreadableImage(ZspaceError):
    """A figure file is missing or cannot be decoded; the diff reports it."""


@dataclass(frozen=True)
class PixelDistance:
    """How far apart two versions of a figure are.

    Attributes:
        rms: Root mean square difference over pixels and channels, in [0, 1].
        max: Largest difference of any channel of any pixel, in [0, 1].
        ssim: Structural similarity (1 = identical); None for images under 3 px.
        phash: Hamming distance of the 64-bit perceptual hashes (0 = alike).
        size_a: (width, height) of the old version.
        size_b: (width, height) of the new version.
    """

    rms: float
    max: float
    ssim: float | None
    phash: int
    size_a: tuple[int, int]
    size_b: tuple[int, int]

    @property
    def resized(self) -> bool:
        """Whether the new version was resized to the old one's size first."""
        return self.size_a != self.size_b


def load_image(path: Path) -> Image.Image:
    """Decode a figure as RGB over a white background.

    Raises:
        UnreadableImage: The file is missing, truncated or not an image.
    """
    try:
        with Image.open(path) as image:
            image.load()
            rgba = image.convert("RGBA")
    except FileNotFoundError:
        raise UnreadableImage(f"{path.name} is missing") from None
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as error:
        raise UnreadableImage(f"cannot decode {path.name}: {error}") from None
    white = Image.new("RGBA", rgba.size, "white")
    return Image.alpha_composite(white, rgba).convert("RGB")


def _fit(a: Image.Image, b: Image.Image) -> tuple[np.ndarray, np.ndarray]:
    """Both images as float arrays of A's shape, (height, width, 3) in [0, 1]."""
    if b.size != a.size:
        b = b.resize(a.size, Image.Resampling.BILINEAR)
    return (np.asarray(a, dtype=np.float64) / 255.0,
            np.asarray(b, dtype=np.float64) / 255.0)


def _ssim(x: np.ndarray, y: np.ndarray) -> float | None:
    side = min(x.shape[:2])
    if side < 3:
        return None
    # The window must be odd and fit in the image; 7 is skimage's default.
    window = min(7, side if side % 2 else side - 1)
    return float(structural_similarity(x, y, channel_axis=2, data_range=1.0,
                                       win_size=window))


def distance(a: Image.Image, b: Image.Image) -> PixelDistance:
    """Pixel (RMS, max, SSIM) and perceptual-hash distances from ``a`` to ``b``."""
    x, y = _fit(a, b)
    difference = np.abs(x - y)
    return PixelDistance(
        rms=float(np.sqrt(np.mean(difference**2))),
        max=float(difference.max()),
        ssim=_ssim(x, y),
        # The hash is taken on each image as it is: it is meant to survive resizing.
        phash=int(imagehash.phash(a) - imagehash.phash(b)),
        size_a=a.size,
        size_b=b.size,
    )


def write_heatmap(a: Image.Image, b: Image.Image, path: Path) -> float:
    """Write where and how much ``b`` differs from ``a``, as a PNG of A's size.

    The per-pixel largest channel difference is magnified so that the largest one is
    full scale (by at most ``MAX_GAIN``), coloured with ``inferno``, and laid over a
    dim grey copy of ``a`` so the changes can be placed in the figure.

    Returns:
        The magnification used.
    """
    picture, gain = heatmap(a, b)
    picture.save(path)
    return gain


def heatmap(a: Image.Image, b: Image.Image, factor: int = 1) -> tuple[Image.Image,
                                                                       float]:
    """The difference heatmap of :func:`write_heatmap` and its magnification.

    Args:
        a: The old version.
        b: The new version (resized to A's size first if needed).
        factor: Shrink by this whole factor, keeping each block's largest
            difference, so a one-pixel change stays visible in a thumbnail.
    """
    from matplotlib import colormaps

    x, y = _fit(a, b)
    difference = np.abs(x - y).max(axis=2)  # (height, width)
    underlay = x.mean(axis=2)
    if factor > 1:
        difference = _pooled(difference, factor, np.max)
        underlay = _pooled(underlay, factor, np.mean)
    gain = 1.0 / max(float(difference.max()), 1.0 / MAX_GAIN)
    heat = colormaps["inferno"](np.clip(difference * gain, 0.0, 1.0))[..., :3]
    pixels = np.clip(0.3 * underlay[..., None] + heat, 0.0, 1.0)
    return Image.fromarray((pixels * 255).round().astype(np.uint8)), gain


def _pooled(values: np.ndarray, factor: int, reduce) -> np.ndarray:
    """``values`` (h, w) reduced over factor x factor blocks (edges padded)."""
    height, width = -(-values.shape[0] // factor), -(-values.shape[1] // factor)
    padded = np.pad(values, ((0, height * factor - values.shape[0]),
                             (0, width * factor - values.shape[1])), mode="edge")
    return reduce(padded.reshape(height, factor, width, factor), axis=(1, 3))
