"""Variety's multi-scale SSIM: the NumPy arithmetic against TensorFlow's own.

Run: ``python benchmarks/variety.py [--pairs 500]``.

``zspace.latent.variety.ms_ssim_batch`` computes ``tf.image.ssim_multiscale``'s
formula in NumPy. This times both on the same pairs of synthetic faces (the size of
one sample set's variety), each once warm, in one process, and prints pairs per
second, the ratio and the largest difference between the two. Prints numbers only: no
timing is asserted anywhere.
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=500)
    parser.add_argument("--size", type=int, default=64)
    args = parser.parse_args()

    import tensorflow as tf

    from zspace.data.synthetic import generate
    from zspace.latent.variety import (
        SCALE_WEIGHTS,
        WINDOW,
        WINDOW_SIGMA,
        _luminance,
        ms_ssim_batch,
    )

    faces, _ = generate(2 * args.pairs, args.size, seed=3, progress=False)
    a, b = faces[:args.pairs], faces[args.pairs:]

    def tensorflow():
        return tf.image.ssim_multiscale(
            tf.constant(_luminance(a)[..., None], tf.float32),
            tf.constant(_luminance(b)[..., None], tf.float32), max_val=1.0,
            power_factors=tuple(float(w) for w in SCALE_WEIGHTS),
            filter_size=WINDOW, filter_sigma=WINDOW_SIGMA).numpy()

    def numpy():
        return ms_ssim_batch(a, b)

    seconds, values = {}, {}
    for name, run in (("tf.image.ssim_multiscale", tensorflow), ("NumPy", numpy)):
        run()  # warm
        start = time.perf_counter()
        values[name] = run()
        seconds[name] = time.perf_counter() - start
        print(f"{name:<26}{args.pairs / seconds[name]:>10.0f} pairs/s")
    print(f"TensorFlow / NumPy time: "
          f"{seconds['tf.image.ssim_multiscale'] / seconds['NumPy']:.1f}")
    print(f"largest difference: "
          f"{np.abs(values['NumPy'] - values['tf.image.ssim_multiscale']).max():.1e}")


if __name__ == "__main__":
    main()
