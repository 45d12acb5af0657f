"""Training speed of the zspace VAE trainer against a plain Keras reference.

Run: ``.venv/bin/python benchmarks/train_throughput.py [--quick] [--rounds 3]``.

Both train the blog's VAE (filters 32-64-128-256, z_dim 256, BCE, fact 5, Adam 5e-4,
batch 128) on the same random images, at 64 and 96 px, in float32 and mixed
bfloat16. The reference is the model written the straightforward keras.io way:
Keras' own layers (``BatchNormalization`` included), a ``Sampling`` layer, a custom
``train_step``, fed from a float32 array with ``fit``. ``zspace`` is this package's
trainer: its builder, model, uint8 ``tf.data`` pipeline and compile settings
(``compiled_model``).

TensorFlow reads its oneDNN switch once, when it loads, and ``zspace.models`` turns
it on (it is off by default on CPUs without AVX-512). So each case runs two
processes, one with TensorFlow's defaults and one with oneDNN on, and each process
trains both models, alternating one epoch of each after a warm-up epoch: load from
other processes on a shared machine then hits both alike. The headline ratio is
zspace with oneDNN against the reference with TensorFlow's defaults (what each gets
out of the box); the per-process ratios separate the code from the switch. Rates
are the best epoch of ``--rounds``; the CPU time per image (all threads of the
process) is the steadier measure where other processes compete. The share of peak
divides the training FLOPs per CPU-second (3x the forward FLOPs of the convolutions
and dense layers per image) by those of a 4096 x 4096 matmul in the same run. The
closing table times every layer of the zspace model alone (forward and backward,
batch 128, 64 px) to show where a step's time goes.
Prints numbers only: no timing is asserted anywhere.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

BATCH = 128
CASES = ((64, "float32"), (64, "mixed_bfloat16"), (96, "float32"),
         (96, "mixed_bfloat16"))
SIDES = ("reference", "zspace")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3,
                        help="timed epochs of each model per process")
    parser.add_argument("--images", type=int, default=1536,
                        help="images per epoch at 64 px (half at 96 px)")
    parser.add_argument("--quick", action="store_true",
                        help="64 px float32 only, no layer breakdown")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(run_worker(json.loads(args.worker))))
        return
    peaks = {onednn: spawn({"task": "peak"}, onednn) for onednn in (False, True)}
    # Per CPU-second, a peak measured while other processes run is still a peak.
    peak = max(p["float32_cpu"] for p in peaks.values())
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} "
          f"at the start; 4096 x 4096 matmul, float32: "
          f"{max(p['float32'] for p in peaks.values()):.0f} GFLOP/s wall, "
          f"{peak:.0f} GFLOP per CPU-second (Eigen "
          f"{peaks[False]['float32_cpu']:.0f}, oneDNN "
          f"{peaks[True]['float32_cpu']:.0f}); bfloat16: "
          f"{max(p['bfloat16_cpu'] for p in peaks.values()):.0f} per CPU-second")
    print(f"\n{'case':<21}{'TensorFlow':<11}{'side':<11}{'img/s':>7}{'epochs':>11}"
          f"{'ratio':>7}{'cpu ms/img':>12}{'ratio':>7}{'% peak':>8}")
    for size, precision in CASES[:1] if args.quick else CASES:
        # bfloat16 is emulated on CPUs without bf16 units: fewer images there.
        images = args.images // (1 if size == 64 else 2) // (
            1 if precision == "float32" else 4)
        task = {"task": "compare", "size": size, "precision": precision,
                "images": images, "rounds": args.rounds}
        runs = {onednn: spawn(task, onednn) for onednn in (False, True)}
        for onednn, run in runs.items():
            for side in SIDES:
                rates, cpu = run[side], min(run["cpu"][side])
                # FLOP per CPU-second of training against the matmul's.
                share = 100 * run["flops_per_image"] / (cpu / 1000) / 1e9 / peak
                print(f"{size} px {precision:<15}"
                      f"{'oneDNN' if onednn else 'defaults':<11}{side:<11}"
                      f"{max(rates):>7.1f}{_span(rates):>11}"
                      f"{max(rates) / max(run['reference']):>7.2f}{cpu:>12.2f}"
                      f"{min(run['cpu']['reference']) / cpu:>7.2f}{share:>8.1f}")
        wall = max(runs[True]["zspace"]) / max(runs[False]["reference"])
        cpu = min(runs[False]["cpu"]["reference"]) / min(runs[True]["cpu"]["zspace"])
        print(f"{'':<21}zspace (oneDNN) against reference (defaults): {wall:.2f}x "
              f"in img/s, {cpu:.2f}x in CPU time per image")
    if not args.quick:
        print_breakdown(spawn({"task": "breakdown", "size": 64}, onednn=True))


def _span(rates: list[float]) -> str:
    return "-".join(f"{v:.0f}" for v in (min(rates), max(rates)))


def spawn(task: dict, onednn: bool) -> dict:
    """Run one task in a fresh Python with oneDNN on or off; return its JSON."""
    env = {**os.environ, "TF_ENABLE_ONEDNN_OPTS": "1" if onednn else "0",
           "TF_CPP_MIN_LOG_LEVEL": "2"}
    out = subprocess.run([sys.executable, __file__, "--worker", json.dumps(task)],
                         env=env, capture_output=True, text=True, check=False)
    if out.returncode:
        sys.exit(f"worker {task} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_worker(task: dict) -> dict:
    if task["task"] == "peak":
        return matmul_peak()
    if task["task"] == "breakdown":
        return layer_breakdown(task["size"])
    import numpy as np

    size, images = task["size"], task["images"]
    data = np.random.default_rng(0).integers(0, 256, (images, size, size, 3),
                                             dtype=np.uint8)
    # zspace first: the reference sets Keras' global mixed-precision policy.
    fits = {"zspace": zspace_run(data, task["precision"])[1]}
    model, fits["reference"] = reference_run(data, task["precision"])
    rates = {side: [] for side in SIDES}
    cpu = {side: [] for side in SIDES}
    for round_ in range(task["rounds"] + 1):
        for side in SIDES:
            timer = EpochTimer()
            fits[side](1, [timer])
            if round_:  # round 0 traces and warms up
                rates[side].append(images / timer.seconds[0])
                cpu[side].append(1000 * timer.cpu_seconds[0] / images)
    return {**rates, "cpu": cpu, "flops_per_image": training_flops(model)}


def zspace_run(data, precision):
    """The zspace trainer's model and pipeline (as ``train_or_load`` builds them)."""
    from zspace.config import ModelConfig, TrainConfig
    from zspace.data.dataset import Dataset, DatasetCard
    from zspace.models.inputs import steps_per_epoch, training_batches
    from zspace.models.training import compiled_model

    card = DatasetCard("synthetic", "benchmark", len(data), 0, data.shape[1], "bench")
    dataset = Dataset(data, data[:0], None, None, card)
    train = TrainConfig(batch_size=BATCH, precision=precision)
    model = compiled_model("vae", ModelConfig(kind="vae"), train, dataset)

    def fit(epochs, callbacks):
        batches = training_batches(data, BATCH, train.seed, 0, epochs)
        model.fit(batches, epochs=epochs, steps_per_epoch=steps_per_epoch(
            len(data), BATCH), callbacks=callbacks, verbose=0, shuffle=False)

    return model, fit


def reference_vae(size: int):
    """The same VAE as a keras.io-style script writes it, with Keras' own layers."""
    import keras
    from keras import layers, ops

    class Sampling(layers.Layer):
        def __init__(self):
            super().__init__()
            self.seed_generator = keras.random.SeedGenerator(1)

        def call(self, inputs):
            z_mean, z_log_var = inputs
            noise = keras.random.normal(ops.shape(z_mean), dtype=z_mean.dtype,
                                        seed=self.seed_generator)
            return z_mean + ops.exp(0.5 * z_log_var) * noise

    inputs = keras.Input((size, size, 3))
    x = inputs
    for filters in (32, 64, 128, 256):
        x = layers.Conv2D(filters, 3, strides=2, padding="same")(x)
        x = layers.LeakyReLU()(layers.BatchNormalization()(x))
    x = layers.Flatten()(x)
    z_mean = layers.Dense(256, dtype="float32")(x)
    z_log_var = layers.Dense(256, dtype="float32")(x)
    encoder = keras.Model(inputs, [z_mean, z_log_var, Sampling()([z_mean, z_log_var])])
    z = keras.Input((256,))
    x = layers.Reshape((size // 16, size // 16, 256))(
        layers.Dense(size // 16 * size // 16 * 256)(z))
    for filters in (128, 64, 32):
        x = layers.Conv2DTranspose(filters, 3, strides=2, padding="same")(x)
        x = layers.LeakyReLU()(layers.BatchNormalization()(x))
    x = layers.Conv2DTranspose(3, 3, strides=2, padding="same", dtype="float32")(x)
    decoder = keras.Model(z, layers.Activation("sigmoid", dtype="float32")(x))

    class ReferenceVAE(keras.Model):
        def __init__(self, encoder, decoder):
            super().__init__()
            self.encoder, self.decoder = encoder, decoder
            self.trackers = [keras.metrics.Mean(name=n)
                             for n in ("total_loss", "reconstruction_loss", "kl_loss")]

        @property
        def metrics(self):
            return self.trackers

        def train_step(self, data):
            import tensorflow as tf

            with tf.GradientTape() as tape:
                z_mean, z_log_var, z = self.encoder(data, training=True)
                reconstruction = self.decoder(z, training=True)
                reconstruction_loss = ops.mean(ops.sum(
                    keras.losses.binary_crossentropy(data, reconstruction),
                    axis=(1, 2)))
                kl = -0.5 * (1 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var))
                kl_loss = ops.mean(ops.sum(kl, axis=1))
                total_loss = reconstruction_loss + 5.0 * kl_loss
            grads = tape.gradient(total_loss, self.trainable_weights)
            self.optimizer.apply_gradients(zip(grads, self.trainable_weights,
                                               strict=True))
            for tracker, value in zip(self.trackers,
                                      (total_loss, reconstruction_loss, kl_loss),
                                      strict=True):
                tracker.update_state(value)
            return {t.name: t.result() for t in self.trackers}

    return ReferenceVAE(encoder, decoder)


def reference_run(data, precision):
    """The reference model and a ``fit`` on the whole set converted to float32."""
    import keras

    if precision != "float32":
        keras.mixed_precision.set_global_policy(precision)
    model = reference_vae(data.shape[1])
    model.compile(optimizer=keras.optimizers.Adam(5e-4))
    images = data.astype("float32") / 255.0  # the whole set as float32

    def fit(epochs, callbacks):
        model.fit(images, epochs=epochs, batch_size=BATCH, callbacks=callbacks,
                  verbose=0)

    return model, fit


class EpochTimer:
    """Wall time of every epoch, as a Keras callback (built when Keras is loaded)."""

    def __new__(cls):
        import keras

        class Timer(keras.callbacks.Callback):
            def __init__(self):
                super().__init__()
                self.seconds, self.cpu_seconds = [], []
                self.started = self.cpu_started = 0.0

            def on_epoch_begin(self, epoch, logs=None):
                self.started = time.perf_counter()
                self.cpu_started = time.process_time()

            def on_epoch_end(self, epoch, logs=None):
                self.seconds.append(time.perf_counter() - self.started)
                self.cpu_seconds.append(time.process_time() - self.cpu_started)

        return Timer()


def training_flops(model) -> float:
    """3x the forward FLOPs of the convolutions and dense layers, per image."""
    import keras

    total = 0
    for part in (model.encoder, model.decoder):
        for layer in part.layers:
            if isinstance(layer, keras.layers.Conv2DTranspose):
                _, h, w, c = layer.input.shape
                k = layer.kernel_size[0] * layer.kernel_size[1]
                total += 2 * h * w * c * k * layer.filters
            elif isinstance(layer, keras.layers.Conv2D):
                _, h, w, c = layer.output.shape
                k = layer.kernel_size[0] * layer.kernel_size[1]
                total += 2 * h * w * c * k * layer.input.shape[-1]
            elif isinstance(layer, keras.layers.Dense):
                total += 2 * layer.input.shape[-1] * layer.units
    return 3.0 * total  # forward, gradient of the inputs, gradient of the weights


def best_time(step, repeats: int = 7) -> float:
    """Best wall time of ``step()`` after a warm-up call (seconds)."""
    step()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        step()
        times.append(time.perf_counter() - started)
    return min(times)


def matmul_peak(n: int = 4096) -> dict:
    """GFLOP per second (wall) and per CPU-second of a large matmul, by dtype."""
    import tensorflow as tf

    peaks = {}
    for name, dtype in (("float32", tf.float32), ("bfloat16", tf.bfloat16)):
        a = tf.cast(tf.random.normal((n, n)), dtype)
        step = tf.function(lambda a=a: tf.reduce_sum(tf.matmul(a, a)))
        step().numpy()
        walls, cpus = [], []
        for _ in range(3):
            started, cpu_started = time.perf_counter(), time.process_time()
            step().numpy()
            walls.append(time.perf_counter() - started)
            cpus.append(time.process_time() - cpu_started)
        peaks[name] = 2 * n**3 / min(walls) / 1e9
        peaks[f"{name}_cpu"] = 2 * n**3 / min(cpus) / 1e9
    return peaks


def layer_breakdown(size: int) -> dict:
    """Forward+backward time of every layer of the zspace VAE alone, by kind."""
    import numpy as np
    import tensorflow as tf

    steps = 4
    data = np.random.default_rng(0).integers(0, 256, (steps * BATCH, size, size, 3),
                                             dtype=np.uint8)
    model, fit = zspace_run(data, "float32")
    fit(1, [])
    timer = EpochTimer()
    fit(3, [timer])
    kinds: dict[str, float] = {}
    for part in (model.encoder, model.decoder):
        for layer in part.layers[1:]:
            x = tf.random.normal((BATCH, *layer.input.shape[1:]))
            weights = layer.trainable_weights

            @tf.function
            def forward_backward(x=x, layer=layer, weights=weights):
                with tf.GradientTape() as tape:
                    tape.watch(x)
                    y = layer(x, training=True)
                    loss = tf.reduce_sum(tf.cast(y, tf.float32) ** 2)
                return tape.gradient(loss, [x, *weights])

            kind = type(layer).__name__
            seconds = best_time(
                lambda f=forward_backward: [g.numpy() for g in f() if g is not None])
            kinds[kind] = kinds.get(kind, 0.0) + seconds
    return {"step": min(timer.seconds) / steps, "layers": kinds}


def print_breakdown(result: dict) -> None:
    step = result["step"]
    print(f"\nwhere a zspace step goes (64 px, float32, batch {BATCH}: "
          f"{1000 * step:.0f} ms per step, each layer timed alone)")
    for kind, seconds in sorted(result["layers"].items(), key=lambda kv: -kv[1]):
        print(f"  {kind:<28}{1000 * seconds:>8.1f} ms{100 * seconds / step:>7.1f} %")
    rest = step - sum(result["layers"].values())
    print(f"  {'rest (losses, optimizer...)':<28}{1000 * rest:>8.1f} ms"
          f"{100 * rest / step:>7.1f} %")


if __name__ == "__main__":
    main()
