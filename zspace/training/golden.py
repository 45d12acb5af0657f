"""Golden trainings: the guard of ``keys.TRAINING_SEMANTICS``.

A model's key no longer hashes the code that trains it, so something else must notice
when that code starts computing other numbers. These are tiny, deterministic
trainings through the real trainer (``train_or_load``: the architectures, losses,
input pipeline, callbacks and stopping rule): the AE, the VAE and the judge at 16 px
for two short epochs, the AE and the VAE once with each speed option alone, and the
stopping rule over a few epochs. Their losses and weight sums are stored in
``golden.json`` beside this module, with the version they were made under.

``python -m zspace.training.golden`` checks the stored numbers (exit 1 on a mismatch,
naming the version to bump); ``--write`` stores new ones after a bump.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np

from zspace.config import JudgeConfig, ModelConfig, SpeedConfig, TrainConfig
from zspace.data.dataset import Dataset, DatasetCard, content_hash
from zspace.store import keys
from zspace.training.stopping import GAIN

GOLDEN_FILE = Path(__file__).with_name("golden.json")
SIZE = 16
PLAIN = SpeedConfig(fused_loss=False, fused_adam=False, fuse_batch_norm=False,
                    subpixel_output=False, jit_compile=False)
OPTIONS = ("fused_loss", "fused_adam", "fuse_batch_norm", "subpixel_output",
           "jit_compile")
# The options that only reorder the arithmetic. XLA also draws the VAE's noise with
# another generator, so its numbers differ by more (about 1 % after two epochs);
# like every case it is checked against its own stored numbers.
REORDERING = OPTIONS[:-1]
_NETWORK = {"z_dim": 4, "filters": (8, 16), "kernels": (3, 3), "strides": (2, 2)}
_MODELS = {"ae": ModelConfig(kind="ae", loss="bce", **_NETWORK),
           "vae": ModelConfig(kind="vae", **_NETWORK),
           "judge": JudgeConfig(num_epochs=2, feature_dim=8)}
_TRAIN = TrainConfig(num_epochs=2, batch_size=8, learning_rate=1e-3, seed=3,
                     stop_improvement=0.0)
# The stopping rule's case: six epochs at most, stopping once a window of a third
# of them removes less than 2 % of the held-out squared error (after epoch 3).
_STOPPING = replace(_TRAIN, num_epochs=6, stop_improvement=0.02, stop_window=0.34,
                    min_epochs=3, stop_smoothing=2, learning_rate=3e-3)


class GoldenMismatch(Exception):
    """The golden trainings computed other numbers than those stored."""


def cases() -> dict[str, tuple[str, TrainConfig, SpeedConfig]]:
    """Every golden training by name: the model, how it trains, its speed options."""
    found = {name: (name, _TRAIN, PLAIN) for name in _MODELS}
    for model in ("ae", "vae"):
        for option in OPTIONS:
            found[f"{model}+{option}"] = (model, _TRAIN,
                                          replace(PLAIN, **{option: True}))
    found["stopping"] = ("ae", _STOPPING, PLAIN)
    return found


def dataset() -> Dataset:
    """48 synthetic faces at 16 px: 32 to train on, 8 to test, 8 to validate."""
    from zspace.data.synthetic import ATTRIBUTE_NAMES, generate

    images, attributes = generate(48, SIZE, seed=7, workers=1, progress=False)
    train, test, val = np.split(images, [32, 40])
    card = DatasetCard(source="synthetic", location="golden", num_train=32,
                       num_test=8, num_val=8, image_size=SIZE,
                       content_hash=content_hash(train, test, val),
                       attribute_names=ATTRIBUTE_NAMES)
    return Dataset(train, test, attributes[:32], attributes[32:40], card, val,
                   attributes[40:])


def run(names: list[str] | None = None,
        build_root: Path | None = None) -> dict[str, dict]:
    """Train the golden cases ``names`` (default: all) and return their numbers.

    Returns:
        Per case: ``epochs``, the per-epoch ``losses`` the trainer recorded (its
        training and held-out losses and squared errors, and the stopping rule's
        gains) and ``weights``: the sum and the sum of absolute values of every
        weight.
    """
    with contextlib.ExitStack() as stack:
        if build_root is None:
            build_root = stack.enter_context(
                tempfile.TemporaryDirectory(prefix="zspace-golden-"))
        return _run(names or list(cases()), Path(build_root))


def _run(names: list[str], root: Path) -> dict[str, dict]:
    import tensorflow as tf

    from zspace.networks import devices

    data, chosen, found = dataset(), cases(), {}
    # The numbers are the CPU's: on a GPU machine the trainer would take the GPU
    # branch (other layers, other kernels) and fail the comparison for no fault.
    real_device = devices.training_device
    devices.training_device = lambda: devices.CPU
    try:
        with tf.device("/CPU:0"):
            for name in names:
                found[name] = _train_case(name, chosen[name], data, root)
    finally:
        devices.training_device = real_device
    return found


def _train_case(name: str, case: tuple[str, TrainConfig, SpeedConfig], data: Dataset,
                root: Path) -> dict:
    from zspace.training.trainer import train_or_load

    model, train_config, speed = case
    trained = train_or_load(name.replace("+", "-"), _MODELS[model], train_config, data,
                            root, progress=False, speed=speed, retrain=True)
    history = trained.history
    weights = np.concatenate([np.ravel(w).astype(np.float64)
                              for w in trained.model.get_weights()])
    return {
        "epochs": len(history["epoch_seconds"]),
        "losses": {metric: [float(v) for v in values if v is not None]
                   for metric, values in sorted(history.items())
                   if metric.endswith(("loss", "mse", GAIN))},
        "weights": [float(weights.sum()), float(np.abs(weights).sum())],
    }


def differences(found: dict[str, dict], stored: dict[str, dict],
                tolerance: float) -> list[str]:
    """Where ``found`` departs from ``stored`` by more than ``tolerance``, in words;
    empty where they agree. Losses, squared errors and weight sums are compared
    relative to their size, the stopping rule's gains (shares, near 0) absolutely."""
    problems = []
    for name, numbers in found.items():
        golden = stored.get(name)
        if golden is None:
            problems.append(f"{name}: no stored numbers")
            continue
        if numbers["epochs"] != golden["epochs"]:
            problems.append(f"{name}: {numbers['epochs']} epochs, stored "
                            f"{golden['epochs']}")
            continue
        pairs = [("weights", numbers["weights"], golden["weights"])]
        pairs += [(metric, values, golden["losses"].get(metric, []))
                  for metric, values in numbers["losses"].items()]
        for what, now, before in pairs:
            rtol, atol = (0.0, tolerance) if what == GAIN else (tolerance, 0.0)
            if len(now) != len(before) or not np.allclose(now, before, rtol=rtol,
                                                          atol=atol):
                problems.append(f"{name}: {what} {_short(now)}, stored "
                                f"{_short(before)}")
    return problems


def spread(found: dict[str, dict], options: tuple[str, ...] = REORDERING) -> float:
    """The largest relative difference between a plain case and the same model with
    one of ``options``: how far equal arithmetic in another order moves the numbers.

    The stopping rule's gains are left out: a gain is a difference of two nearly
    equal errors, so its relative change says nothing about the arithmetic.
    """
    worst = 0.0
    for name, numbers in found.items():
        model, _, option = name.partition("+")
        if option not in options or model not in found:
            continue
        plain = found[model]
        pairs = [(numbers["weights"], plain["weights"])]
        pairs += [(values, plain["losses"][metric])
                  for metric, values in numbers["losses"].items() if metric != GAIN]
        for now, base in pairs:
            now, base = np.asarray(now), np.asarray(base)
            worst = max(worst, float(np.max(np.abs(now - base) / np.abs(base))))
    return worst


def check(names: list[str] | None = None, build_root: Path | None = None) -> None:
    """Run the golden cases and compare them with ``golden.json``.

    Raises:
        GoldenMismatch: The stored numbers were made under another version, or the
            numbers moved; the message names ``keys.TRAINING_SEMANTICS``.
    """
    stored = json.loads(GOLDEN_FILE.read_text())
    version = keys.TRAINING_SEMANTICS
    if stored["semantics"] != version:
        raise GoldenMismatch(
            f"{GOLDEN_FILE.name} holds the numbers of training semantics "
            f"{stored['semantics']}, and keys.TRAINING_SEMANTICS is {version}: store "
            f"this version's with `python -m zspace.training.golden --write`")
    problems = differences(run(names, build_root), stored["cases"],
                           stored["tolerance"])
    if problems:
        raise GoldenMismatch(
            "training computes other numbers than training semantics "
            f"{version} did:\n  " + "\n  ".join(problems) + "\nIf the change is "
            f"meant, bump keys.TRAINING_SEMANTICS to {version + 1} (every model is "
            "then retrained) and store the new numbers with `python -m "
            "zspace.training.golden --write`; if not, the change moved the numbers "
            "by mistake.")


def _short(values: list[float]) -> str:
    return "[" + ", ".join(f"{v:.7g}" for v in values) + "]"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true",
                        help="store the numbers of this version in golden.json")
    parser.add_argument("--margin", type=float, default=20.0,
                        help="with --write: the tolerance as a multiple of the "
                             "spread measured between the plain path and the speed "
                             "options (default 20, room for other CPUs)")
    args = parser.parse_args(argv)
    if not args.write:
        try:
            check()
        except GoldenMismatch as error:
            print(error, file=sys.stderr)
            return 1
        print(f"golden trainings match training semantics {keys.TRAINING_SEMANTICS}")
        return 0
    stored = store(run(), args.margin)
    print(f"stored {len(stored['cases'])} golden trainings for training semantics "
          f"{stored['semantics']}: spread {stored['spread']:.2g}, tolerance "
          f"{stored['tolerance']:.2g}")
    return 0


def store(found: dict[str, dict], margin: float) -> dict:
    """Write ``found`` into ``golden.json`` with this version and a tolerance of
    ``margin`` times their spread; return what was written."""
    measured = spread(found)
    from zspace.store.committed import machine

    stored = {"semantics": keys.TRAINING_SEMANTICS, "machine": machine(),
              "spread": measured,
              "xla_spread": spread(found, ("jit_compile",)),
              "tolerance": margin * measured, "cases": found}
    GOLDEN_FILE.write_text(json.dumps(stored, indent=1) + "\n")
    return stored


if __name__ == "__main__":
    sys.exit(main())
