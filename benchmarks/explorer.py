"""Speed and size of the explorer page's in-browser decoders, against Keras.

Run: ``python benchmarks/explorer.py [--size 64] [--updates 60] [--loads 3]``.

The three decoders of the default profile (AE, VAE, wide AE) are built at ``--size``
px with random weights and batch statistics (the arithmetic, and so the time, is
that of trained ones), exported into bundles and opened in headless Chromium from
the file system, as a reader opens the report. Measured in the page:

- first image: from the start of navigation to the first decoded face on screen
  (loading the AE bundle, decoding base64 and float16, folding batch norm, one
  decode, drawing), median over ``--loads`` fresh page loads;
- compile: loading and preparing a model's bundle when it is first picked;
- update: what one slider movement costs (move the point, decode, draw, update the
  readouts), median and 95th percentile over ``--updates`` moves;
- decode: the decoder alone.

The reference, in the same run: Keras' decoder on one z-vector (a traced
``tf.function``, its fastest path for single images) and the NumPy reference
interpreter. Also printed: the size of each bundle and of the whole explorer. No
timing is asserted anywhere.

``--tfjs FILE`` also times TensorFlow.js on the same architectures in the same page,
for the choice explained at the top of ``report/explorer.js``; FILE is its bundle,
e.g. ``package/dist/tf.es2017.min.js`` from ``npm pack @tensorflow/tfjs@4.22.0``.
Only its CPU backend is timed: the page is opened as a file (no ``.wasm`` fetch) and
without a GPU.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from tests.explorer_page import model_bundle, opened, random_decoder, write_page  # noqa: E402
from zspace.config import ModelsConfig  # noqa: E402
from zspace.explorer.program import export_decoder, run_program  # noqa: E402

LABELS = {"ae": "AE", "vae": "VAE", "wide_ae": "wide AE"}


def keras_ms(decoder, z: np.ndarray, repeats: int) -> float:
    """Median milliseconds of Keras' decoder on one z-vector (traced function)."""
    import tensorflow as tf

    call = tf.function(lambda x: decoder(x, training=False))
    call(z)  # trace
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call(z).numpy()
        times.append(1000 * (time.perf_counter() - started))
    return statistics.median(times)


def numpy_ms(program, z: np.ndarray, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run_program(program, z)
        times.append(1000 * (time.perf_counter() - started))
    return statistics.median(times)


DECODE_TIMES = """(count) => {
    const m = zspaceExplorer.state.model;
    const z = Float32Array.from(m.starts[0].z);
    const times = [];
    for (let n = 0; n < count; n++) {
        const started = performance.now();
        m.decode(z);
        times.push(performance.now() - started);
    }
    return times;
}"""


# The decoder of a bundle rebuilt from TensorFlow.js layers (default initial weights:
# the arithmetic, and so the time, is the same), then timed on one z-vector.
TFJS_TIMES = """async (count) => {
    await tf.setBackend("cpu");
    await tf.ready();
    const bundle = zspaceExplorer.state.model.bundle;
    const model = tf.sequential();
    let first = true;
    const shape = () => first ? { inputShape: [bundle.z_dim] } : {};
    for (const op of bundle.ops) {
        let layer = null;
        if (op.op === "dense") {
            layer = tf.layers.dense({ units: op.out[0], useBias: !!op.bias,
                                      ...shape() });
        } else if (op.op === "reshape") {
            layer = tf.layers.reshape({ targetShape: op.out });
        } else if (op.op === "conv_transpose") {
            layer = tf.layers.conv2dTranspose({ filters: op.out[2], kernelSize: op.size,
                strides: op.stride, padding: "same", useBias: !!op.bias });
        } else if (op.op === "batch_norm") {
            layer = tf.layers.batchNormalization({ epsilon: op.epsilon });
        } else if (op.op === "activation" && op.activation === "leaky_relu") {
            layer = tf.layers.leakyReLU({ alpha: op.alpha });
        } else if (op.op === "activation") {
            layer = tf.layers.activation({ activation: op.activation });
        } else {
            throw new Error("no TensorFlow.js layer for " + op.op);
        }
        model.add(layer);
        first = false;
    }
    const z = tf.randomNormal([1, bundle.z_dim]);
    model.predict(z).dataSync();
    const times = [];
    for (let n = 0; n < count; n++) {
        const started = performance.now();
        const y = model.predict(z);
        y.dataSync();
        times.push(performance.now() - started);
        y.dispose();
    }
    return times;
}"""


def spread(values: list[float]) -> str:
    """``median (fastest, 95th percentile)``: under other load the median drifts up,
    the fastest run shows what the page needs when it has a core to itself."""
    return (f"{statistics.median(values):.1f} ({min(values):.1f}, "
            f"{float(np.quantile(values, 0.95)):.1f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--updates", type=int, default=60)
    parser.add_argument("--loads", type=int, default=3)
    parser.add_argument("--tfjs", type=Path, help="a TensorFlow.js bundle to time too")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="zspace-explorer-bench-"))
    configs = ModelsConfig()
    entries, reference = [], {}
    for seed, name in enumerate(LABELS):
        decoder = random_decoder(getattr(configs, name), args.size, seed)
        entry, _ = model_bundle(folder, name, LABELS[name], decoder, seed,
                                n_components=80)
        entries.append(entry)
        z = np.random.default_rng(seed).standard_normal(
            (1, decoder.input_shape[-1])).astype(np.float32)
        reference[name] = (keras_ms(decoder, z, 50),
                           numpy_ms(export_decoder(decoder), z, 10))
    page_file = write_page(folder, entries, args.size, n_components=80)

    first, results, tfjs = [], {}, {}
    for load in range(args.loads):
        with opened(page_file) as (page, events):
            first.append(page.evaluate("zspaceExplorer.timings.firstImage"))
            if load:
                continue
            for entry in entries:
                name = entry["name"]
                page.evaluate("(name) => zspaceExplorer.chooseModel(name)", name)
                compile_ms = page.evaluate(
                    "(name) => zspaceExplorer.timings.compile[name]", name)
                updates = page.evaluate("(n) => zspaceExplorer.timeUpdates(n)",
                                        args.updates)
                decodes = page.evaluate(DECODE_TIMES, args.updates)
                results[name] = (compile_ms, updates, decodes)
            if args.tfjs:
                page.add_script_tag(path=str(args.tfjs))
                for entry in entries:
                    page.evaluate("(name) => zspaceExplorer.chooseModel(name)",
                                  entry["name"])
                    tfjs[entry["name"]] = page.evaluate(TFJS_TIMES, 10)
            assert not events["errors"], events["errors"]

    print(f"explorer at {args.size} px, headless Chromium, {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.1f}")
    print(f"first image after page load (AE): median {statistics.median(first):.0f} ms "
          f"over {len(first)} loads ({', '.join(f'{t:.0f}' for t in first)})")
    print("times in ms; update and decode: median (fastest, 95th percentile)")
    print(f"{'model':8} {'bundle MB':>9} {'compile':>7} {'update':>19} "
          f"{'decode':>19} {'Keras':>6} {'NumPy':>6} {'decode/Keras':>12}")
    for entry in entries:
        name = entry["name"]
        compile_ms, updates, decodes = results[name]
        keras, numpy = reference[name]
        decode = statistics.median(decodes)
        print(f"{LABELS[name]:8} {entry['bytes'] / 1e6:9.2f} {compile_ms:7.0f} "
              f"{spread(updates):>19} {spread(decodes):>19} {keras:6.1f} "
              f"{numpy:6.1f} {decode / keras:12.2f}")
    for name, times in tfjs.items():
        megabytes = args.tfjs.stat().st_size / 1e6
        ratio = statistics.median(times) / statistics.median(results[name][2])
        print(f"TensorFlow.js {args.tfjs.name} ({megabytes:.1f} MB), CPU backend, "
              f"{LABELS[name]}: {spread(times)} ms per decode, {ratio:.1f} times the "
              "explorer's")
    static = sum((folder / "explorer" / f).stat().st_size
                 for f in ("explorer.js", "explorer.css"))
    page_bytes = page_file.stat().st_size
    total = sum(e["bytes"] for e in entries) + static + page_bytes
    print(f"size: bundles {sum(e['bytes'] for e in entries) / 1e6:.2f} MB, "
          f"interpreter and stylesheet {static / 1e3:.1f} kB, page "
          f"{page_bytes / 1e3:.1f} kB; the explorer adds {total / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
