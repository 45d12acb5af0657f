"""Speed of the vectorised PCA-ellipse sampler against a plain loop over vectors.

Run: ``python benchmarks/samplers.py [--n 10000] [--n-reference 200]``.

Both draw the same distribution: components visited once in a random order per
vector, each bounded by the tightest elliptic condition with the components drawn
before it, then the inverse PCA. The reference does this one vector and one pair at a
time in Python; the library does it one component position at a time for all vectors.
The reference is timed on fewer vectors and both are reported as vectors per second.
Prints numbers only: no timing is asserted anywhere.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from zspace.latent.pca_ellipse import PcaEllipseSampler, satisfies_pairwise

Z_DIM = 256
COMPONENTS = (50, 120)


def synthetic_z_points(n: int = 20_000, seed: int = 0) -> np.ndarray:
    """Correlated Gaussian z-points (n, 256) with AE-like spreads (2.2 on average)."""
    rng = np.random.default_rng(seed)
    rotation, _ = np.linalg.qr(rng.standard_normal((Z_DIM, Z_DIM)))
    spreads = 5.0 * np.exp(-np.arange(Z_DIM) / 60.0) + 0.2
    return (rng.standard_normal((n, Z_DIM)) * spreads) @ rotation.T


def reference_sample(
    sampler: PcaEllipseSampler, n: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """The straightforward version: a loop over vectors and, inside, over pairs.

    Returns:
        PCA-space vectors (n, k) and z-vectors (n, z_dim).
    """
    a = sampler.half_axes
    fact = sampler.fact
    k = sampler.n_components
    v = np.zeros((n, k))
    for row in range(n):
        drawn: list[int] = []
        for j in rng.permutation(k):
            limit = fact * a[j]
            for i in drawn:  # the condition of pair (i, j), for every earlier i
                share = 1.0 - v[row, i] ** 2 / (fact * a[i]) ** 2
                limit = min(limit, fact * a[j] * np.sqrt(max(share, 0.0)))
            v[row, j] = rng.uniform(-limit, limit)
            drawn.append(j)
    z = np.array([vector @ sampler.pca.components_ + sampler.pca.mean_ for vector in v])
    return v, z


def _timed(func, *args):
    start = time.perf_counter()
    result = func(*args)
    return result, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000, help="vectors, vectorised")
    parser.add_argument("--n-reference", type=int, default=200, help="vectors, loop")
    args = parser.parse_args()
    z_points = synthetic_z_points()
    print(f"z_dim {Z_DIM}, {len(z_points)} z-points; level 2.35, fact 0.7")
    for k in COMPONENTS:
        sampler, fit_s = _timed(PcaEllipseSampler.fit, z_points, k)
        rng = np.random.default_rng(0)
        sampler.sample(10, rng)  # warm-up
        v_fast = sampler.sample_pca(args.n, rng)  # for the check below
        _, fast_s = _timed(sampler.sample, args.n, rng)
        (v_ref, _), ref_s = _timed(reference_sample, sampler, args.n_reference, rng)
        fast_rate, ref_rate = args.n / fast_s, args.n_reference / ref_s
        valid = satisfies_pairwise(v_fast, sampler.bounds).all() and (
            satisfies_pairwise(v_ref, sampler.bounds).all()
        )
        print(
            f"k={k:4d}: fit {fit_s:.3f} s | vectorised {args.n} vectors in "
            f"{fast_s:.3f} s = {fast_rate:,.0f}/s | loop {args.n_reference} vectors "
            f"in {ref_s:.3f} s = {ref_rate:,.0f}/s | ratio {fast_rate / ref_rate:,.0f}x"
            f" | all pairwise conditions hold: {valid}"
        )


if __name__ == "__main__":
    main()
