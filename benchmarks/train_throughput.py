"""Training speed of the zspace VAE trainer against a plain Keras reference.

Run: ``.venv/bin/python benchmarks/train_throughput.py [--quick | --all] [--rounds 3]``,
or ``--gpu-mode [--quick]`` (below).

All sides train the blog's VAE (filters 32-64-128-256, z_dim 256, BCE, fact 5, Adam
5e-4, batch 128) on the same random images at 64 px, in float32 and in mixed bfloat16
(``--all`` adds 96 px and processes with oneDNN off). The reference is the model
written the straightforward keras.io way: Keras' own layers (``BatchNormalization``
included), a ``Sampling`` layer, a custom ``train_step``, fed from a float32 array
with ``fit``. ``zspace`` is this package's trainer in the default configuration, as
the published models were trained: its builder, model, uint8 ``tf.data`` pipeline,
compile settings and the speed-ups ``config.speed`` turns on by default
(``compiled_model``, ``SpeedConfig()``; see ``zspace.networks.speed``). ``zspace
plain`` is the same with every speed-up off.

Each case runs in a fresh process (TensorFlow reads its oneDNN switch once, at
import) that trains every side, alternating one epoch of each after a warm-up
epoch, so that load from other processes on a shared machine hits all sides alike.
Rates are the best epoch of ``--rounds``; the CPU time per image (all threads of the
process) is the steadier measure where other processes compete. The share of peak
divides the training FLOPs per CPU-second (3x the forward FLOPs of the convolutions
and dense layers) by those of a 4096 x 4096 matmul of the row's precision in the
same run. zspace and zspace plain start from the same weights and see the same
batches, so their epoch losses show what the speed-ups change.

Then, at 64 px: every option alone against float32 zspace (a second plain zspace
model gives the noise floor of both time and loss), and mixed bfloat16 with and
without them, whose losses show how far bfloat16 moves training off the float32
path; one epoch of the input pipeline alone against a training step; and where a
step's time goes, by kind of op, before and after the speed-ups (TensorFlow's
profiler, ops run one at a time so that their times add up). Prints numbers only:
no timing is asserted anywhere.

``--gpu-mode``: the ``celeba`` profile's step (96 px, batch 128) on one GPU, as a GPU
trains it (``zspace.networks.devices``): the plain layers (cuDNN's batch norm, no custom
op), then the GPU's options (``fused_loss``, ``fused_adam``), XLA and mixed float16,
each as a ratio of images per second against the same plain Keras loop (float32, and
that loop under mixed float16 too). One process, one epoch of each side in turn; it
stops timing after ``--budget`` seconds (420: the whole run within 8 minutes on one
GPU). ``--gpu-mode --quick`` runs the same sides at 16 px, batch 16, for a few steps
on whatever device there is (the GPU branch, forced, on a CPU): a check that the
mode works, whose numbers mean nothing.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import time

BATCH = 128
CASES = ((64, "float32"), (64, "mixed_bfloat16"))
MORE_CASES = ((96, "float32"), (96, "mixed_bfloat16"))
SIDES = ("reference", "zspace plain", "zspace")
# The options of config.speed that pay on a CPU (XLA does not: see --all).
SPEED = {"fused_loss": True, "fused_adam": True, "fuse_batch_norm": True,
         "subpixel_output": True}
OPTIONS = ("fused_loss", "fused_adam", "fuse_batch_norm", "subpixel_output")
# Options not named in a side's set are off (the configuration turns most on).
OFF = dict.fromkeys((*OPTIONS, "jit_compile"), False)
# The GPU mode: the celeba profile's step, and a --quick run of it (any device).
GPU_MODE = {"size": 96, "batch": 128, "steps": 60, "rounds": 4}
GPU_QUICK = {"size": 16, "batch": 16, "steps": 2, "rounds": 1}
# Its sides: (model, precision, options of config.speed: None for none, "default"
# for the configuration's own as the GPU applies them), the plain Keras loop first.
GPU_SIDES = {
    "keras loop": ("reference", "float32", None),
    "keras loop, mixed_float16": ("reference", "mixed_float16", None),
    "zspace, plain layers": ("zspace", "float32", None),
    "+ the GPU's options": ("zspace", "float32", "default"),
    "+ XLA": ("zspace", "float32", "xla"),
    "+ mixed_float16": ("zspace", "mixed_float16", "default"),
    "+ XLA, mixed_float16": ("zspace", "mixed_float16", "xla"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3,
                        help="timed epochs of each model per process")
    parser.add_argument("--images", type=int, default=1536,
                        help="images per epoch at 64 px (fewer at 96 px)")
    parser.add_argument("--quick", action="store_true",
                        help="64 px float32 only: the comparison, nothing else")
    parser.add_argument("--all", action="store_true",
                        help="also 96 px, oneDNN off, and XLA in the options table")
    parser.add_argument("--gpu-mode", action="store_true",
                        help="the celeba-scale step as a GPU trains it (with --quick: "
                             "tiny sizes, any device)")
    parser.add_argument("--budget", type=float, default=420,
                        help="--gpu-mode: seconds after which no epoch starts")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(run_worker(json.loads(args.worker))))
        return
    if args.gpu_mode:
        gpu_mode(args.quick, args.budget)
        return
    settings = (True, False) if args.all else (True,)
    peaks = [spawn({"task": "peak"}, onednn) for onednn in settings]
    # Per CPU-second, a peak measured while other processes run is still a peak.
    peak = {dtype: max(p[f"{dtype}_cpu"] for p in peaks)
            for dtype in ("float32", "bfloat16")}
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at "
          f"the start; 4096 x 4096 matmul: {peak['float32']:.0f} GFLOP per "
          f"CPU-second in float32, {peak['bfloat16']:.0f} in bfloat16")
    print(f"zspace: the default configuration, with {', '.join(SPEED)}; zspace plain: "
          "without them")
    print(f"\n{'case':<21}{'oneDNN':<8}{'side':<14}{'img/s':>7}{'epochs':>11}"
          f"{'ratio':>7}{'cpu ms/img':>12}{'ratio':>7}{'% peak':>8}")
    cases = CASES[:1] if args.quick else CASES + (MORE_CASES if args.all else ())
    for size, precision in cases:
        images = args.images * 64**2 // size**2
        if precision != "float32" and not peaks[0]["native_bfloat16"]:
            images //= 4  # bfloat16 is emulated on CPUs without bf16 units
        task = {"task": "compare", "size": size, "precision": precision,
                "images": images, "rounds": args.rounds}
        for onednn in settings:
            run = spawn(task, onednn)
            print_case(run, size, precision, onednn,
                       peak["float32" if precision == "float32" else "bfloat16"])
    if args.quick:
        return
    task = {"task": "options", "size": 64, "images": args.images,
            "rounds": args.rounds, "xla": args.all}
    print_options(spawn(task, onednn=True))
    print_profiles(spawn({"task": "profile", "size": 64}, onednn=True,
                         extra_env={"TF_NUM_INTEROP_THREADS": "1"}))


def print_case(run: dict, size: int, precision: str, onednn: bool, peak: float):
    for side in SIDES:
        rates, cpu = run[side], min(run["cpu"][side])
        share = 100 * run["flops_per_image"] / (cpu / 1000) / 1e9 / peak
        print(f"{size} px {precision:<15}{'on' if onednn else 'off':<8}{side:<14}"
              f"{max(rates):>7.1f}{_span(rates):>11}"
              f"{max(rates) / max(run['reference']):>7.2f}{cpu:>12.2f}"
              f"{min(run['cpu']['reference']) / cpu:>7.2f}{share:>8.1f}")
    loss = run["loss"]
    drift = max(abs(a - b) / abs(b)
                for a, b in zip(loss["zspace"], loss["zspace plain"], strict=True))
    print(f"{'':<21}zspace's epoch losses differ from zspace plain's by at most "
          f"{drift:.1e} (relative, {len(loss['zspace'])} epochs)")
    if "pipeline" in run:
        step = 1000 * BATCH / max(run["zspace"])
        step_cpu = BATCH * min(run["cpu"]["zspace"])
        pipe = run["pipeline"]
        print(f"{'':<21}input pipeline alone: {pipe['wall']:.1f} ms per batch "
              f"({100 * pipe['wall'] / step:.0f} % of a zspace step), "
              f"{pipe['cpu']:.1f} CPU-ms ({100 * pipe['cpu'] / step_cpu:.0f} %)")


def _span(rates: list[float]) -> str:
    return "-".join(f"{v:.0f}" for v in (min(rates), max(rates)))


def gpu_mode(quick: bool, budget: float) -> None:
    """The celeba-scale step as a GPU trains it, against the plain Keras loop."""
    started = time.perf_counter()
    task = {"task": "gpu", **(GPU_QUICK if quick else GPU_MODE), "budget": budget,
            "quick": quick}
    run = spawn(task, onednn=True)
    if not (run["gpus"] or quick):
        sys.exit("--gpu-mode: TensorFlow sees no GPU here; --gpu-mode --quick runs "
                 "its tiny check on any device")
    where = (", ".join(run["gpus"]) if run["gpus"]
             else "the CPU (no GPU here: the GPU branch, forced)")
    print(f"GPU mode{' --quick' if quick else ''}: {task['size']} px, batch "
          f"{task['batch']}, the default VAE, {task['steps']} steps per epoch, on "
          f"{where}; best of {run['rounds']} timed epochs after a warm-up")
    print(run["options"])
    print(f"\n{'side':<28}{'img/s':>9}{'ratio':>8}{'last loss':>12}")
    base = max(run["rates"]["keras loop"])
    for side in GPU_SIDES:
        rate = max(run["rates"][side])
        print(f"{side:<28}{rate:>9.1f}{rate / base:>8.2f}"
              f"{run['loss'][side][-1]:>12.1f}")
    print(f"\nratio: images per second against the keras loop (float32); finished "
          f"in {time.perf_counter() - started:.0f} s")


def gpu_worker(task: dict) -> dict:
    """The GPU mode's sides in one process, one epoch of each in turn."""
    started = time.perf_counter()  # the budget counts start-up and tracing too
    import numpy as np
    import tensorflow as tf

    from zspace.config import SpeedConfig
    from zspace.networks import devices

    gpus = [tf.config.experimental.get_device_details(gpu).get("device_name", gpu.name)
            for gpu in tf.config.list_physical_devices("GPU")]
    if not (gpus or task["quick"]):
        return {"gpus": []}  # the full mode needs a GPU (the parent says so)
    size, batch = task["size"], task["batch"]
    images = batch * task["steps"]
    data = np.random.default_rng(0).integers(0, 256, (images, size, size, 3),
                                             dtype=np.uint8)
    options = {"default": SpeedConfig(),
               "xla": dataclasses.replace(SpeedConfig(), jit_compile=True)}
    fits = {}
    for side, (model, precision, speed) in GPU_SIDES.items():
        if model == "reference":
            fits[side] = reference_run(data, precision, batch)[1]
        else:
            fits[side] = zspace_run(data, precision, options.get(speed, speed),
                                    batch, devices.GPU)[1]
    applied, skipped = devices.applied_options(SpeedConfig(), devices.GPU)
    result = alternate(fits, images, task["rounds"],
                       deadline=started + task["budget"])
    return {"gpus": gpus, "rates": {side: result[side] for side in fits},
            "loss": result["loss"], "rounds": len(result["keras loop"]),
            "options": devices.describe("the VAE", devices.GPU, applied, skipped)}


def spawn(task: dict, onednn: bool, extra_env: dict | None = None) -> dict:
    """Run one task in a fresh Python with oneDNN on or off; return its JSON."""
    env = {**os.environ, "TF_ENABLE_ONEDNN_OPTS": "1" if onednn else "0",
           "TF_CPP_MIN_LOG_LEVEL": "2", **(extra_env or {})}
    out = subprocess.run([sys.executable, __file__, "--worker", json.dumps(task)],
                         env=env, capture_output=True, text=True, check=False)
    if out.returncode:
        sys.exit(f"worker {task} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_worker(task: dict) -> dict:
    if task["task"] == "peak":
        from zspace.training.runtime import cpu_has_bfloat16

        return {**matmul_peak(), "native_bfloat16": cpu_has_bfloat16()}
    if task["task"] == "profile":
        return step_profiles(task["size"], {"zspace": {}, "zspace+speed": SPEED})
    if task["task"] == "gpu":
        return gpu_worker(task)
    import numpy as np

    size, images = task["size"], task["images"]
    data = np.random.default_rng(0).integers(0, 256, (images, size, size, 3),
                                             dtype=np.uint8)
    if task["task"] == "options":
        variants = {"zspace": {}, "zspace again": {},
                    **{name: {name: True} for name in OPTIONS},
                    **({"jit_compile": {"jit_compile": True}} if task["xla"] else {}),
                    "all four": dict.fromkeys(OPTIONS, True)}
        fits = {name: zspace_run(data, "float32", speed)[1]
                for name, speed in variants.items()}
        # bfloat16 on the same weights and batches: how far its losses move.
        fits["mixed_bfloat16"] = zspace_run(data, "mixed_bfloat16")[1]
        fits["bfloat16 + all"] = zspace_run(data, "mixed_bfloat16", SPEED)[1]
        return alternate(fits, images, task["rounds"])
    precision = task["precision"]
    # zspace first: the reference sets Keras' global mixed-precision policy.
    fits = {"zspace plain": zspace_run(data, precision)[1],
            "zspace": zspace_run(data, precision, "default")[1]}
    model, fits["reference"] = reference_run(data, precision)
    result = alternate({side: fits[side] for side in SIDES}, images, task["rounds"])
    if precision == "float32":
        result["pipeline"] = pipeline_cost(data)
    return {**result, "flops_per_image": training_flops(model)}


def alternate(fits: dict, images: int, rounds: int,
              deadline: float | None = None) -> dict:
    """One epoch of each model in turn; a warm-up round, then ``rounds`` timed
    (fewer where ``deadline``, a ``time.perf_counter()``, passes: at least one)."""
    rates = {name: [] for name in fits}
    cpu = {name: [] for name in fits}
    loss = {name: [] for name in fits}
    for round_ in range(rounds + 1):
        if round_ > 1 and deadline is not None and time.perf_counter() > deadline:
            break
        for name, fit in fits.items():
            timer = EpochTimer()
            fit(1, [timer])
            loss[name].append(timer.losses[0])
            if round_:  # round 0 traces and warms up
                rates[name].append(images / timer.seconds[0])
                cpu[name].append(1000 * timer.cpu_seconds[0] / images)
    return {**rates, "cpu": cpu, "loss": loss}


def zspace_run(data, precision, speed=None, batch=BATCH, device=None):
    """The zspace trainer's model and pipeline (as ``train_or_load`` builds them);
    ``speed``: options to turn on (a dict, or a ``SpeedConfig``), ``"default"`` for
    the configuration's own; ``device``: the device whose options apply (default:
    this machine's)."""
    from zspace import paths
    from zspace.config import ModelConfig, SpeedConfig, TrainConfig
    from zspace.data.dataset import Dataset, DatasetCard
    from zspace.training.factory import compiled_model
    from zspace.training.inputs import steps_per_epoch, training_batches

    card = DatasetCard("synthetic", "benchmark", len(data), 0, data.shape[1], "bench")
    dataset = Dataset(data, data[:0], None, None, card)
    train = TrainConfig(batch_size=batch, precision=precision)
    if speed == "default":
        speed = SpeedConfig()
    elif isinstance(speed, dict):
        speed = SpeedConfig(**{**OFF, **speed}) if speed else None
    # The kernel goes where pipeline.py without --build-dir puts it.
    model = compiled_model("vae", ModelConfig(kind="vae"), train, dataset,
                           speed=speed, kernel_dir=paths.build_dir() / "kernels",
                           device=device)
    epochs_done = [0]

    def fit(epochs, callbacks):
        # Epoch numbers go on, so every model sees the same order of batches.
        first = epochs_done[0]
        batches = training_batches(data, batch, train.seed, first, first + epochs)
        model.fit(batches, epochs=first + epochs, initial_epoch=first,
                  steps_per_epoch=steps_per_epoch(len(data), batch),
                  callbacks=callbacks, verbose=0, shuffle=False)
        epochs_done[0] += epochs

    return model, fit


def pipeline_cost(data) -> dict:
    """Wall and CPU milliseconds per batch of the training input pipeline alone."""
    from zspace.training.inputs import steps_per_epoch, training_batches

    steps = steps_per_epoch(len(data), BATCH)
    for _ in training_batches(data, BATCH, 1, 0, 1):  # warm up
        pass
    wall = cpu = float("inf")
    for epoch in range(3):
        started, cpu_started = time.perf_counter(), time.process_time()
        for _ in training_batches(data, BATCH, 1, epoch, epoch + 1):
            pass
        wall = min(wall, time.perf_counter() - started)
        cpu = min(cpu, time.process_time() - cpu_started)
    return {"wall": 1000 * wall / steps, "cpu": 1000 * cpu / steps}


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
                # Under mixed_float16, compile wraps Adam in loss scaling: scale
                # here, as keras.io's custom steps do (unchanged otherwise).
                scaled_loss = self.optimizer.scale_loss(total_loss)
            grads = tape.gradient(scaled_loss, self.trainable_weights)
            self.optimizer.apply_gradients(zip(grads, self.trainable_weights,
                                               strict=True))
            for tracker, value in zip(self.trackers,
                                      (total_loss, reconstruction_loss, kl_loss),
                                      strict=True):
                tracker.update_state(value)
            return {t.name: t.result() for t in self.trackers}

    return ReferenceVAE(encoder, decoder)


def reference_run(data, precision, batch=BATCH):
    """The reference model and a ``fit`` on the whole set converted to float32."""
    import keras

    if precision != "float32":
        keras.mixed_precision.set_global_policy(precision)
    try:
        model = reference_vae(data.shape[1])
        model.compile(optimizer=keras.optimizers.Adam(5e-4))
    finally:  # the policy is the model's: models built later keep their own
        keras.mixed_precision.set_global_policy("float32")
    images = data.astype("float32") / 255.0  # the whole set as float32

    def fit(epochs, callbacks):
        model.fit(images, epochs=epochs, batch_size=batch, callbacks=callbacks,
                  verbose=0)

    return model, fit


class EpochTimer:
    """Wall and CPU time and total loss of every epoch, as a Keras callback."""

    def __new__(cls):
        import keras

        class Timer(keras.callbacks.Callback):
            def __init__(self):
                super().__init__()
                self.seconds, self.cpu_seconds, self.losses = [], [], []
                self.started = self.cpu_started = 0.0

            def on_epoch_begin(self, epoch, logs=None):
                self.started = time.perf_counter()
                self.cpu_started = time.process_time()

            def on_epoch_end(self, epoch, logs=None):
                self.seconds.append(time.perf_counter() - self.started)
                self.cpu_seconds.append(time.process_time() - self.cpu_started)
                self.losses.append(float(logs["total_loss"]))

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


KINDS = (("convolutions", ("Conv2D",)),
         ("batch norm, leaky ReLU", ("FusedBatchNorm", "LeakyRelu",
                                     "BatchNormLeakyRelu")),
         ("dense layers", ("MatMul",)),
         ("optimizer", ("ResourceApply",)))


def step_profiles(size: int, variants: dict, steps: int = 4, rounds: int = 2) -> dict:
    """Milliseconds per step of each kind of op, from TensorFlow's profiler.

    The variants' models are profiled in turn, ``rounds`` epochs each; the epoch
    with the least time in ops counts (the one least disturbed by other processes).
    """
    import glob
    import tempfile

    import numpy as np
    import tensorflow as tf

    try:
        from tensorflow.tsl.profiler.protobuf import xplane_pb2
    except ImportError:  # the profiler's format moved: no table
        return {}
    data = np.random.default_rng(0).integers(0, 256, (steps * BATCH, size, size, 3),
                                             dtype=np.uint8)
    fits = {name: zspace_run(data, "float32", speed)[1]
            for name, speed in variants.items()}
    for fit in fits.values():
        fit(1, [])
    best = {}
    for _ in range(rounds):
        for name, fit in fits.items():
            timer = EpochTimer()
            with tempfile.TemporaryDirectory() as logdir:
                tf.profiler.experimental.start(logdir)
                fit(1, [timer])
                tf.profiler.experimental.stop()
                (path,) = glob.glob(f"{logdir}/**/*.xplane.pb", recursive=True)
                with open(path, "rb") as stream:
                    space = xplane_pb2.XSpace.FromString(stream.read())
            kinds = _op_kinds(space, steps)
            busy = sum(kinds.values())
            if busy < best.get(name, {}).get("busy", float("inf")):
                best[name] = {"step": 1000 * timer.seconds[0] / steps, "kinds": kinds,
                              "busy": busy}
    return best


def _op_kinds(space, steps: int) -> dict:
    kinds = dict.fromkeys([kind for kind, _ in KINDS] + ["loss, metrics, rest"], 0.0)
    for plane in space.planes:
        for line in plane.lines:
            if not line.name.startswith("tf_Compute"):
                continue
            for event in line.events:
                label = plane.event_metadata[event.metadata_id].name
                name, _, op = label.rpartition(":")  # "scope/name:OpType"
                if not name or op == "Process":  # the executor's own wrapper
                    continue
                kind = next((k for k, ops in KINDS if any(o in op for o in ops)),
                            "optimizer" if "/adam/" in name else "loss, metrics, rest")
                kinds[kind] += event.duration_ps / 1e9 / steps
    return kinds


def print_options(run: dict) -> None:
    print("\neach option alone against zspace (64 px, float32 unless named, oneDNN "
          "on):")
    print(f"  {'':<16}{'img/s':>7}{'ratio':>7}{'cpu ms/img':>12}{'ratio':>7}"
          f"{'epoch loss vs zspace':>22}")
    base_rate, base_cpu = max(run["zspace"]), min(run["cpu"]["zspace"])
    for name in run["loss"]:
        rate, cpu = max(run[name]), min(run["cpu"][name])
        drift = max(abs(a - b) / abs(b) for a, b in
                    zip(run["loss"][name], run["loss"]["zspace"], strict=True))
        print(f"  {name:<16}{rate:>7.1f}{rate / base_rate:>7.2f}{cpu:>12.2f}"
              f"{base_cpu / cpu:>7.2f}{drift:>22.1e}")


def print_profiles(runs: dict) -> None:
    if not runs:
        print("\n(no profile: this TensorFlow's profiler format is unknown here)")
        return
    print("\nwhere a step goes (64 px, float32, batch 128; ops one at a time):")
    print(f"  {'':<32}" + "".join(f"{side:>18}" for side in runs))
    rows = {kind: [r["kinds"][kind] for r in runs.values()]
            for kind in runs["zspace"]["kinds"]}
    rows["between ops (Python, input...)"] = [
        r["step"] - r["busy"] for r in runs.values()]
    steps = [r["step"] for r in runs.values()]
    for kind, values in rows.items():
        cells = [f"{v:8.1f} ms {100 * v / step:4.0f} %"
                 for v, step in zip(values, steps, strict=True)]
        print(f"  {kind:<32}" + "".join(f"{c:>18}" for c in cells))
    print(f"  {'step':<32}" + "".join(f"{step:8.1f} ms{'':>7}" for step in steps))


if __name__ == "__main__":
    main()
