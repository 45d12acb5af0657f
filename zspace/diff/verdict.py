"""What kind of change a changed figure shows: a layout shift, text, or its content.

The distances say how much a figure changed; the verdict says what a reader would
see. Each kind is tried in turn, and the first that *explains* the change wins: what
is left after undoing it holds at most ``1 - EXPLAINED`` of the squared difference
and is within the diff's tolerance (RMS).

``layout shift``
    Things moved by a few pixels and are otherwise the same: an axes frame placed one
    pixel lower, a legend, the whole figure under a taller title. The changed pixels
    (any channel off by more than ``CHANGED``) are grown by ``SEARCH`` px and split
    into regions (connected parts, joined where their boxes overlap); each region is
    compared again with version B moved by every offset of up to ``SEARCH`` px in x
    and y, and keeps its best offset. At least one offset is not zero.
``text``
    The difference lies within text. Text is what the figures' fonts draw: dark,
    grey marks of at most ``MAX_GLYPH`` px either way (characters; 10 to 14 pt at
    100 dpi) with nothing coloured in their box, standing on light paper, in either
    version; each mark's box grown by ``TEXT_MARGIN`` px (its antialiased edge) is
    masked. Long lines (frames, curves), coloured markers with dark outlines and
    marks inside images are not text.
``content``
    Anything else: the data or what is drawn changed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

LAYOUT_SHIFT, TEXT, CONTENT = "layout shift", "text", "content"
VERDICTS = (LAYOUT_SHIFT, TEXT, CONTENT)
EXPLAINED = 0.9  # share of the squared difference a kind must account for
SEARCH = 3  # px: the largest offset tried in x and in y
CHANGED = 1.5 / 255  # a pixel differs from this on; one grey level is rounding
MAX_GLYPH = 24  # px: the largest character, either way
TEXT_MARGIN = 2  # px around a character that its antialiasing touches
INK = 0.6  # luminance below which a grey pixel is ink
GREY = 0.25  # largest spread of the channels of ink (text is black or grey)
PAPER = 0.7  # mean luminance around a character: text stands on light paper
_LUMINANCE = np.array([0.299, 0.587, 0.114])
_EIGHT = np.ones((3, 3), bool)  # 8-connectivity


@dataclass(frozen=True)
class Verdict:
    """The kind of a figure's change and what showed it.

    Attributes:
        kind: One of ``VERDICTS``.
        detail: For people, e.g. ``"1 region moved by (+1, 0) px"``.
    """

    kind: str
    detail: str


def classify(a: np.ndarray, b: np.ndarray, tolerance: float) -> Verdict:
    """Say whether ``b`` differs from ``a`` by a layout shift, text, or content.

    Args:
        a: Version A as floats in [0, 1], (height, width, 3).
        b: Version B, likewise; a different size is padded with white at the
            bottom and right, as both would be laid on a page.
        tolerance: The diff's RMS tolerance, in [0, 1].

    Returns:
        The verdict. Equal images count as ``content`` with nothing to explain; the
        diff asks only about figures that changed.
    """
    x, y = _same_size(a, b)
    squared = ((x - y) ** 2).sum(axis=2)  # (height, width)
    total = float(squared.sum())
    if total == 0.0:
        return Verdict(CONTENT, "no difference")

    def explains(left: float) -> bool:
        return (left <= (1 - EXPLAINED) * total
                and np.sqrt(left / x.size) <= tolerance)

    left, moves = _after_shifts(x, y, squared)
    if moves and explains(left):
        return Verdict(LAYOUT_SHIFT, _describe_moves(moves))
    text = _text_regions(x) | _text_regions(y)
    outside = float(squared[~text].sum())
    if explains(outside):
        return Verdict(TEXT, f"{1 - outside / total:.0%} of the difference lies in "
                       "text")
    share = 1 - left / total
    return Verdict(CONTENT, f"shifts explain {share:.0%}, text "
                   f"{1 - outside / total:.0%} of the difference")


def _same_size(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    height, width = max(a.shape[0], b.shape[0]), max(a.shape[1], b.shape[1])

    def pad(image):
        return np.pad(image, ((0, height - image.shape[0]),
                              (0, width - image.shape[1]), (0, 0)),
                      constant_values=1.0)

    return pad(a), pad(b)


def _regions(changed: np.ndarray) -> list[tuple[slice, slice]]:
    """Boxes of the grown changed pixels, joined until no two overlap."""
    grown = ndimage.binary_dilation(changed, _EIGHT, iterations=SEARCH)
    count = -1
    while True:
        labels, found = ndimage.label(grown, _EIGHT)
        boxes = ndimage.find_objects(labels)
        if found == count:
            return list(boxes)
        count = found
        # Fill each box: boxes that overlap become one part at the next labelling.
        grown = np.zeros_like(grown)
        for rows, cols in boxes:
            grown[rows, cols] = True


def _after_shifts(x: np.ndarray, y: np.ndarray, squared: np.ndarray
                  ) -> tuple[float, list[tuple[int, int]]]:
    """The squared difference left when each region of B takes its best offset.

    Returns:
        What is left over the whole image, and the non-zero offsets (dx, dy) of
        the regions that moved.
    """
    changed = np.abs(x - y).max(axis=2) > CHANGED
    compared = ndimage.binary_dilation(changed, _EIGHT, iterations=SEARCH)
    padded = np.pad(y, ((SEARCH, SEARCH), (SEARCH, SEARCH), (0, 0)),
                    constant_values=1.0)
    left = float(squared.sum())
    moves = []
    for rows, cols in _regions(changed):
        r, c = np.nonzero(compared[rows, cols])
        r, c = r + rows.start, c + cols.start  # the compared pixels of the region
        before = float(squared[r, c].sum())
        best, offset = before, (0, 0)
        for dy in range(-SEARCH, SEARCH + 1):
            for dx in range(-SEARCH, SEARCH + 1):
                if dx == dy == 0:
                    continue
                moved = padded[r + SEARCH + dy, c + SEARCH + dx]  # (k, 3)
                energy = float(((x[r, c] - moved) ** 2).sum())
                if energy < best:
                    best, offset = energy, (dx, dy)
        if offset != (0, 0):
            left -= before - best
            moves.append(offset)
    return max(left, 0.0), moves


def _describe_moves(moves: list[tuple[int, int]]) -> str:
    regions = f"{len(moves)} region{'s' if len(moves) > 1 else ''}"
    if len(set(moves)) == 1:
        dx, dy = moves[0]
        return f"{regions} moved by ({_signed(dx)}, {_signed(dy)}) px (x, y)"
    largest = max(max(abs(dx), abs(dy)) for dx, dy in moves)
    return f"{regions} moved by up to {largest} px"


def _signed(value: int) -> str:
    return f"{value:+d}" if value else "0"


def _text_regions(image: np.ndarray) -> np.ndarray:
    """Where ``image`` has text: character boxes grown by ``TEXT_MARGIN``, (h, w)."""
    luminance = image @ _LUMINANCE
    spread = image.max(axis=2) - image.min(axis=2)
    grey = spread < GREY
    ink = (luminance < INK) & grey
    labels, _ = ndimage.label(ink, _EIGHT)
    text = np.zeros(ink.shape, bool)
    height, width = ink.shape
    for number, (rows, cols) in enumerate(ndimage.find_objects(labels), 1):
        if (rows.stop - rows.start > MAX_GLYPH or cols.stop - cols.start > MAX_GLYPH
                or not grey[rows, cols].all()):
            continue  # a line, or a coloured marker's outline
        r0, r1 = max(rows.start - TEXT_MARGIN, 0), min(rows.stop + TEXT_MARGIN, height)
        c0, c1 = max(cols.start - TEXT_MARGIN, 0), min(cols.stop + TEXT_MARGIN, width)
        around = luminance[r0:r1, c0:c1][labels[r0:r1, c0:c1] != number]
        if around.size == 0 or around.mean() >= PAPER:
            text[r0:r1, c0:c1] = True
    return text
