"""Speed of the face judge (zspace/faces.py), one image per call against whole sets.

Run: ``python benchmarks/face_judge.py [--n 400] [--size 64] [--candidates]``.

The judge is timed on real synthetic faces at the data set's size, judged one image
per call (what a naive loop over a figure's images does) and as whole sets in one call
(what the notebooks do). dlib's HOG detector has no batched mode, so the two should be
close: the ratio shows how little the per-call overhead (input checks, resizing) costs.
The last line turns the measured rate into the judge's share of a default build, from
the number of images the default notebooks judge.

``--candidates`` also times the detectors that were measured against it, where they
are installed (``pip install mtcnn face-recognition-models``): MTCNN one image per
call and in batches of 64, and dlib's CNN detector one by one and in batches of 32.
Prints numbers only: no timing is asserted anywhere.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from zspace.data.synthetic import generate
from zspace.faces import FaceJudge, shuffle_pixels

# Images the default profile's notebooks judge (their parameter defaults): A4 1,000;
# A6 9 x 500 and 500 real ones for the reference band; B1 the same; B3 2 x 1,000;
# C7 4 x 1,000; C8 9 x 500; C9 6 samplers, real, noise and shuffled sets and the
# held-out sanity row, 1,000 each; 6 validation sets of 1,000.
DEFAULT_BUILD_IMAGES = (1_000 + 5_000) + (5_000 + 2_000) + (4_000 + 4_500) \
    + (10_000 + 6_000)


def _rate(func, images) -> tuple[float, object]:
    start = time.perf_counter()
    result = func(images)
    return len(images) / (time.perf_counter() - start), result


def _judge(images: np.ndarray) -> None:
    judge = FaceJudge()
    judge.count_faces(images[:4])  # warm-up
    one_rate, one = _rate(lambda x: np.concatenate(
        [judge.count_faces(x[i:i + 1]) for i in range(len(x))]), images)
    set_rate, whole = _rate(judge.count_faces, images)
    assert np.array_equal(one, whole)
    faces = np.mean(whole == 1)
    print(f"{'judge (dlib HOG, 160 px)':34s} {one_rate:8.1f} {set_rate:8.1f} "
          f"{set_rate / one_rate:6.2f}   face rate {faces:.1%}")
    minutes = DEFAULT_BUILD_IMAGES / set_rate / 60
    print(f"\ndefault build: {DEFAULT_BUILD_IMAGES:,} images judged, about "
          f"{minutes:.1f} min of one core at {set_rate:.0f} images/s (notebooks run "
          "two at a time)")


def _upscaled(images: np.ndarray, size: int = 160) -> list[np.ndarray]:
    from PIL import Image

    return [np.asarray(Image.fromarray(i).resize((size, size),
                                                 Image.Resampling.BICUBIC))
            for i in images]


def _mtcnn(images: list[np.ndarray]) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from mtcnn import MTCNN

    detector = MTCNN()
    detector.detect_faces(images[0])  # warm-up: builds the three networks

    def count(found) -> int:
        return sum(1 for face in found if face["confidence"] >= 0.9)

    one_rate, one = _rate(lambda x: [count(detector.detect_faces(i)) for i in x],
                          images)
    batch_rate, _ = _rate(lambda x: [count(f) for s in range(0, len(x), 64)
                                     for f in detector.detect_faces(x[s:s + 64])],
                          images)
    print(f"{'MTCNN (0.9, 160 px)':34s} {one_rate:8.1f} {batch_rate:8.1f} "
          f"{batch_rate / one_rate:6.2f}   face rate {np.mean(np.array(one) == 1):.1%}")


def _dlib_cnn(images: list[np.ndarray]) -> None:
    import dlib
    import face_recognition_models

    detector = dlib.cnn_face_detection_model_v1(
        face_recognition_models.cnn_face_detector_model_location())
    one_rate, one = _rate(lambda x: [len(detector(i, 0)) for i in x], images)
    batch_rate, _ = _rate(lambda x: [len(f) for s in range(0, len(x), 32)
                                     for f in detector(x[s:s + 32], 0, batch_size=32)],
                          images)
    print(f"{'dlib CNN (160 px)':34s} {one_rate:8.1f} {batch_rate:8.1f} "
          f"{batch_rate / one_rate:6.2f}   face rate {np.mean(np.array(one) == 1):.1%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=400, help="faces to judge")
    parser.add_argument("--size", type=int, default=64, help="image size in pixels")
    parser.add_argument("--candidates", action="store_true",
                        help="also time MTCNN and dlib's CNN detector if installed")
    args = parser.parse_args()
    faces, _ = generate(args.n, args.size, seed=2024, start=1_000_000, workers=1,
                        progress=False)
    print(f"{args.n} synthetic faces at {args.size} px, one CPU thread\n")
    print(f"{'detector':34s} {'1/call':>8s} {'set':>8s} {'ratio':>6s}   (images/s)")
    _judge(faces)
    noise = FaceJudge().rate(shuffle_pixels(faces))
    print(f"shuffled pixels: face rate {noise.rate:.1%}")
    if not args.candidates:
        return
    print()
    images = _upscaled(faces[: min(args.n, 100)])
    for name, candidate in (("mtcnn", _mtcnn), ("dlib CNN", _dlib_cnn)):
        try:
            candidate(images)
        except ImportError as error:
            print(f"{name}: not installed ({error.name})")


if __name__ == "__main__":
    main()
