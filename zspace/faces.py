"""An independent face judge: a pretrained face detector counts faces (README, "The
report"; ``articles/C-fragmentation.md``, "the face detector (Methods)").

The judge is dlib's frontal face detector (histogram of oriented gradients features and
a linear classifier, trained by dlib's authors on photographs of real people). Its
weights are compiled into the ``dlib-bin`` wheel, so it needs no download, and it has
never seen this project's data: it cannot have learned the data set's shortcuts.

The detector scans windows of 80 x 80 pixels, so faces of 32 or 64 pixels are too small
for it: every image is first resized (bicubic) so that its height is
:data:`IMAGE_SIZE` pixels. An image *holds a face* when the detector finds exactly one
face with a score of at least :data:`THRESHOLD` (the margin of its linear classifier;
dlib's own default is 0). The **face rate** of a set is the share of such images, with
a Wilson score interval.

Why this threshold and size: on 1,000 held-out synthetic faces at 64 px the detector
finds one face in 97 % of the images at -0.2 and 95 % at dlib's default 0; on 300 at
32 px (the smoke profile) 97 % and 93 %. On pixel noise and on faces with their pixels
shuffled it finds none at either threshold.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from PIL import Image

from zspace.errors import BuildError, DataError

#: What the reports call the judge.
JUDGE_NAME = "dlib's HOG frontal face detector"
#: Height in pixels every image is resized to before detection.
IMAGE_SIZE = 160
#: Lowest detection score that counts as a face.
THRESHOLD = -0.2
#: Confidence level of the face rates' intervals.
CONFIDENCE = 0.95

#: Smallest image size (px) at which real faces must reach the full sanity bar. On
#: 500 held-out synthetic faces the face rate is 94 % at 32 px, 95 % at 40 px, 96 % at
#: 48 px and 98 % at 64 px: smaller faces, enlarged five times, keep too little detail.
FULL_BAR_SIZE = 48


def sanity_limits(image_size: int) -> dict[str, tuple[str, float]]:
    """The sanity rows every build computes and the face rate each must reach.

    Real held-out images need at least 95 % (85 % for images smaller than
    :data:`FULL_BAR_SIZE` px, such as the smoke profile's 32 px); pixel noise and the
    deliberately broken set at most 1 %.

    Returns:
        ``{"real": ("at least", 0.95), "noise": ("at most", 0.01), "broken": ...}``.
    """
    real = 0.95 if image_size >= FULL_BAR_SIZE else 0.85
    return {"real": ("at least", real), "noise": ("at most", 0.01),
            "broken": ("at most", 0.01)}


def wilson_interval(successes: int, n: int,
                    confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion (Wilson 1927).

    Unlike the normal approximation it stays inside [0, 1] and is not empty at 0 or n
    successes. Computed by :meth:`scipy.stats.binomtest` ``.proportion_ci``.

    Args:
        successes: Number of successes (0..n).
        n: Number of trials (at least 1).
        confidence: Confidence level, e.g. 0.95.

    Returns:
        ``(low, high)``.

    Raises:
        DataError: If the counts are out of range.
    """
    from scipy.stats import binomtest

    if n < 1 or not 0 <= successes <= n:
        raise DataError(f"a Wilson interval needs 0 <= successes <= n and n >= 1, "
                        f"got {successes} of {n}")
    interval = binomtest(int(successes), int(n)).proportion_ci(
        confidence_level=confidence, method="wilson")
    return float(interval.low), float(interval.high)


@dataclass(frozen=True)
class FaceRate:
    """The face rate of one image set.

    Attributes:
        faces: Images in which the judge found exactly one face.
        n: Images judged.
        rate: ``faces / n``.
        low: Lower end of the Wilson interval.
        high: Upper end of the Wilson interval.
    """

    faces: int
    n: int
    rate: float
    low: float
    high: float

    @classmethod
    def from_counts(cls, counts: np.ndarray,
                    confidence: float = CONFIDENCE) -> FaceRate:
        """The face rate of per-image face counts (n,)."""
        counts = np.asarray(counts)
        faces = int(np.sum(counts == 1))
        low, high = wilson_interval(faces, len(counts), confidence)
        return cls(faces, len(counts), faces / len(counts), low, high)

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def over_seeds(rates: list[dict], confidence: float = CONFIDENCE) -> dict:
    """One face rate over the training seeds of a model: the rates of the images of
    each seed's model, pooled.

    Args:
        rates: Per seed, a face-rate dict (``faces``, ``n``, ``rate``...), the
            model's own seed first.

    Returns:
        A face-rate dict of the pooled images (``faces``, ``n``, ``rate``, and
        ``low``/``high``: the Wilson interval of the pooled images) with ``mean``
        (the mean of the seeds' rates), ``seed_low``/``seed_high`` (the seeds'
        range), ``seeds`` (each seed's rate) and ``n_seeds``.

    Raises:
        DataError: ``rates`` is empty.
    """
    if not rates:
        raise DataError("a face rate over seeds needs the rate of one seed at least")
    faces, n = sum(r["faces"] for r in rates), sum(r["n"] for r in rates)
    low, high = wilson_interval(faces, n, confidence)
    each = [float(r["rate"]) for r in rates]
    return {"faces": faces, "n": n, "rate": faces / n, "low": low, "high": high,
            "mean": float(np.mean(each)), "seed_low": min(each), "seed_high": max(each),
            "seeds": each, "n_seeds": len(each)}


def rate_label(rate: dict) -> str:
    """``faces 84 %``, with the seeds' range where the rate is over seeds:
    ``faces 84 % (seeds 80-88 %)``."""
    text = f"faces {100 * rate['rate']:.0f} %"
    if rate.get("n_seeds", 1) > 1:
        text += (f" (seeds {100 * rate['seed_low']:.0f}-"
                 f"{100 * rate['seed_high']:.0f} %)")
    return text


def compare(a: dict | float, b: dict | float) -> str:
    """``above``, ``below`` or ``level``: whether face rate ``a`` differs from ``b``
    (either may be a plain share, ``0.5``, with no interval).

    Two rates differ only where both their intervals and, for rates over seeds
    (:func:`over_seeds`), their seeds' ranges separate: a gap that one training
    seed can close is no finding.
    """
    a, b = (x if isinstance(x, dict) else
            {"rate": float(x), "low": float(x), "high": float(x)} for x in (a, b))

    def apart(x: dict, y: dict) -> bool:
        return (x["low"] > y["high"]
                and x.get("seed_low", x["rate"]) > y.get("seed_high", y["rate"]))

    if apart(a, b):
        return "above"
    return "below" if apart(b, a) else "level"


def crossing(points: list[dict], level: float, key: str = "x") -> dict | None:
    """Where a face rate falls below ``level``: the neighbouring points, in order of
    ``point[key]``, whose rates lie on either side of it.

    Args:
        points: Each with ``key`` (the setting, e.g. a KL factor) and ``faces`` (a
            face rate with its interval).
        level: The rate that counts as "faces stop" (e.g. half the default's).

    Returns:
        ``{"below": point, "above": point, "level": level}`` for the first such pair
        from the smallest setting up, or None where the rates never fall below the
        level or never rise above it.
    """
    ordered = sorted(points, key=lambda p: p[key])
    for a, b in zip(ordered[:-1], ordered[1:], strict=True):
        sides = (a["faces"]["rate"] < level, b["faces"]["rate"] < level)
        if sides[0] != sides[1]:
            below, above = (a, b) if sides[0] else (b, a)
            return {"below": below, "above": above, "level": level}
    return None


def _check_images(images: np.ndarray) -> np.ndarray:
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3 \
            or len(images) == 0:
        raise DataError(f"the face judge needs uint8 RGB images (n, h, w, 3) with "
                        f"n >= 1, got {images.dtype} {images.shape}")
    return images


class FaceJudge:
    """Counts faces in images with dlib's HOG frontal face detector.

    Args:
        image_size: Height the images are resized to before detection.
        threshold: Lowest detection score that counts.
    """

    name = JUDGE_NAME

    def __init__(self, image_size: int = IMAGE_SIZE, threshold: float = THRESHOLD):
        import dlib

        self.image_size = int(image_size)
        self.threshold = float(threshold)
        self._detector = dlib.get_frontal_face_detector()

    def describe(self) -> dict[str, float | int | str]:
        """The judge's settings, for the report."""
        return {"name": self.name, "image_size": self.image_size,
                "threshold": self.threshold, "confidence": CONFIDENCE,
                "full_bar_size": FULL_BAR_SIZE}

    def _resized(self, image: np.ndarray) -> np.ndarray:
        height, width = image.shape[:2]
        if height == self.image_size:
            return np.ascontiguousarray(image)
        new_width = max(1, round(width * self.image_size / height))
        return np.asarray(Image.fromarray(image).resize(
            (new_width, self.image_size), Image.Resampling.BICUBIC))

    def detection_scores(self, images: np.ndarray) -> list[np.ndarray]:
        """The scores of the detections at or above the threshold in each image.

        The detector has no batched mode (and is not safe to share between threads),
        so images are judged one after the other. Keeping the scores lets a set be
        counted again at a stricter threshold without a second pass: non-maximum
        suppression only ever removes a box for a higher-scoring one, so the boxes
        a stricter run finds are exactly those of this run that clear it.

        Args:
            images: uint8 RGB images (n, h, w, 3); a read-only memmap is fine.

        Returns:
            One float array of scores per image.

        Raises:
            DataError: If ``images`` is not such an array.
        """
        images = _check_images(images)
        found = []
        for image in images:
            _, scores, _ = self._detector.run(self._resized(image), 0, self.threshold)
            found.append(np.asarray(scores, dtype=np.float64))
        return found

    def count_faces(self, images: np.ndarray,
                    threshold: float | None = None) -> np.ndarray:
        """Faces found at or above ``threshold`` (default: the judge's) in each image.

        Returns:
            int array (n,).

        Raises:
            DataError: If ``images`` is not such an array.
            ValueError: ``threshold`` is below the judge's own.
        """
        return counts_at(self.detection_scores(images), self.threshold, threshold)

    def rate(self, images: np.ndarray) -> FaceRate:
        """The face rate of ``images``: share with exactly one face, with its
        Wilson interval."""
        return FaceRate.from_counts(self.count_faces(images))


def counts_at(scores: list[np.ndarray], base: float,
              threshold: float | None = None) -> np.ndarray:
    """Faces per image at ``threshold`` from detection scores kept at ``base``.

    Raises:
        ValueError: ``threshold`` is below ``base`` (those detections were not kept).
    """
    if threshold is None or threshold == base:
        return np.array([len(s) for s in scores], dtype=np.int64)
    if threshold < base:
        raise ValueError(f"threshold {threshold} is below the judge's {base}: its "
                         "detections were not kept")
    return np.array([int(np.sum(s >= threshold)) for s in scores], dtype=np.int64)


def shuffle_pixels(images: np.ndarray,
                   rng: np.random.Generator | int = 0) -> np.ndarray:
    """The images with their pixel positions permuted, each image on its own.

    Colours and their histogram stay; every shape is destroyed. A judge that still
    finds faces here judges colour, not faces.
    """
    images = _check_images(images)
    rng = np.random.default_rng(rng)
    n, height, width, channels = images.shape
    flat = np.array(images).reshape(n, height * width, channels)
    order = rng.permuted(np.tile(np.arange(height * width), (n, 1)), axis=1)
    return np.take_along_axis(flat, order[:, :, None], axis=1).reshape(images.shape)


def check_sanity(rows: dict[str, dict], judge: str = JUDGE_NAME) -> None:
    """Stop the build if a sanity row misses its limit (see :func:`sanity_limits`).

    Args:
        rows: ``{"real": ..., "noise": ..., "broken": ...}``, each a face-rate dict
            (:meth:`FaceRate.as_dict`) with a ``label`` naming the set and the
            ``expected`` (``"at least"`` or ``"at most"``) and ``limit`` it must meet.
        judge: The judge's name, for the message.

    Raises:
        BuildError: Naming the judge and every failing row.
    """
    failures = []
    for key in ("real", "noise", "broken"):
        row = rows[key]
        kind, limit = row["expected"], row["limit"]
        ok = row["rate"] >= limit if kind == "at least" else row["rate"] <= limit
        if not ok:
            failures.append(f"{row['label']}: face rate {row['rate']:.3f} "
                            f"({row['faces']} of {row['n']}), expected {kind} "
                            f"{limit:.2f}")
    if failures:
        raise BuildError(f"the face judge ({judge}) failed its sanity rows: "
                         + "; ".join(failures)
                         + ". Its face rates cannot be trusted on these images "
                         "(too small? see zspace/faces.py).")


def rank_agreement(face_rates: list[float], values: list[float],
                   higher_is_better: bool = True) -> float | None:
    """Spearman's rank correlation between face rates and another quality measure.

    Args:
        face_rates: Face rate per set.
        values: The other measure per set, aligned with ``face_rates``.
        higher_is_better: False for distances (the Frechet distance): their sign is
            turned, so that +1 always means "ranks the sets as the face rate does".

    Returns:
        rho in [-1, 1], or None where either list is constant (no ranking to
        compare).
    """
    from scipy.stats import spearmanr

    values = np.asarray(values, dtype=float) * (1.0 if higher_is_better else -1.0)
    rates = np.asarray(face_rates, dtype=float)
    if len(rates) < 3 or np.ptp(rates) == 0 or np.ptp(values) == 0:
        return None
    return float(spearmanr(rates, values).statistic)
