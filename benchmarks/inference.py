"""Inference speed: a Keras model called eagerly per batch against its traced graph.

Run: ``python benchmarks/inference.py [--n 4096] [--profile default]``.

Every encoder, decoder and judge-feature pass of the build goes through
``zspace.latent.zpoints``, which traces each model once (``inference``). This
times the default profile's AE encoder, AE decoder and judge feature extractor,
built with fresh weights (the speed does not depend on them), both ways on the same
inputs in one process, prints images per second and the ratio, and says whether the
two gave the same bits. Prints numbers only: no timing is asserted anywhere.
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def _eager(model, batches):
    return np.concatenate([np.asarray(model(b, training=False)) for b in batches])


def _traced(forward, batches):
    return np.concatenate([np.asarray(forward(b)) for b in batches])


def _time(func, *args) -> tuple[float, np.ndarray]:
    func(*args)  # warm: the first call traces or builds kernels
    start = time.perf_counter()
    out = func(*args)
    return time.perf_counter() - start, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=4096, help="inputs per model")
    parser.add_argument("--profile", default="default")
    args = parser.parse_args()

    from zspace.config import load_config
    from zspace.latent.zpoints import inference
    from zspace.networks.architecture import build_decoder, build_encoder
    from zspace.networks.judge import build_judge, feature_extractor

    config = load_config(args.profile)
    size = config.data.image_size
    shape = (size, size, 3)
    rng = np.random.default_rng(0)
    images = rng.random((args.n, *shape), dtype=np.float32)
    ae = config.models.ae
    z = rng.standard_normal((args.n, ae.z_dim)).astype(np.float32)
    models = {
        "AE encoder": (build_encoder(ae, shape), images),
        "AE decoder": (build_decoder(ae, shape), z),
        "judge features": (feature_extractor(build_judge(config.judge, shape, 4)),
                           images),
    }
    print(f"{args.n} inputs per model, batches of 256, {args.profile} profile")
    print(f"{'model':<16}{'eager/s':>10}{'traced/s':>10}{'traced/eager':>14}"
          "  same bits")
    for name, (model, inputs) in models.items():
        batches = [inputs[i:i + 256] for i in range(0, len(inputs), 256)]
        eager, a = _time(_eager, model, batches)
        traced, b = _time(_traced, inference(model), batches)
        print(f"{name:<16}{args.n / eager:>10.0f}{args.n / traced:>10.0f}"
              f"{eager / traced:>14.2f}  {np.array_equal(a, b)}")


if __name__ == "__main__":
    main()
