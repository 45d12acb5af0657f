"""Do the speed options change what a model learns? An equal-seed comparison.

Run: ``.venv/bin/python benchmarks/speed_equivalence.py PLAIN FAST [OTHER_SEED...]``
where each argument is a committed manifest (``models/default/vae.json``) or a build's
artifact folder (``build/cache/models/vae-<key>``); an older
one can be taken from git, ``git show REV:models/default/vae.json >
/tmp/plain/vae.json``, and the same for its ``.weights.bin``. PLAIN is a model
trained without the speed options, FAST one trained with them at the same seed,
OTHER_SEED the same model trained with other seeds: the yardstick.

Prints the held-out squared error per epoch of each, then decodes the same N(0, I)
vectors with every model and prints the mean absolute pixel difference of each pair
to the FAST model, and each model's face rate. The options change nothing that
matters where PLAIN sits much closer to FAST than the other seeds do. Numbers only:
nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def load(path: Path):
    """A committed model (its manifest) or a build's artifact folder: the manifest-
    like record (``spec``, ``history``, ``epochs``) and the model."""
    if path.is_dir():
        from zspace.store.artifacts import read_artifact

        model, documents = read_artifact(path)
        spec = documents["config"]
        return ({"spec": spec, "history": documents["history"],
                 "epochs": len(documents["history"].get("val_mse", []))}, model)
    return load_committed(path)


def load_committed(manifest_path: Path):
    """The committed model of a manifest, in a plain float32 model."""
    from zspace.config import ModelConfig, TrainConfig
    from zspace.data.dataset import Dataset, DatasetCard
    from zspace.store import committed
    from zspace.training.factory import build_model

    manifest = json.loads(manifest_path.read_text())
    spec = manifest["spec"]
    model_config = ModelConfig(**{k: tuple(v) if isinstance(v, list) else v
                                  for k, v in spec["model"].items()})
    size = spec["image_size"]
    empty = np.zeros((0, size, size, 3), np.uint8)
    card = DatasetCard.from_dict(manifest["dataset"])
    model = build_model(manifest["name"], model_config, TrainConfig(), Dataset(
        empty, empty, None, None, card))
    found = committed.CommittedModel(manifest["name"], manifest,
                                manifest_path.with_name(manifest["file"]))
    committed.load_into(model, found)
    return manifest, model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("plain", type=Path)
    parser.add_argument("fast", type=Path)
    parser.add_argument("others", type=Path, nargs="*")
    parser.add_argument("--images", type=int, default=1000)
    args = parser.parse_args()

    from zspace.faces import FaceJudge
    from zspace.latent.zpoints import decode

    models = {"plain": load(args.plain), "fast": load(args.fast)}
    for path in args.others:
        manifest, model = load(path)
        models[f"seed {manifest['spec']['train']['seed']}"] = (manifest, model)
    print("held-out squared error per pixel (x 1e-4), epoch by epoch:")
    for name, (manifest, _) in models.items():
        history = manifest["history"]["val_mse"]
        print(f"  {name:<8} ({manifest['epochs']:>2} epochs, seed "
              f"{manifest['spec']['train']['seed']}, speed "
              f"{'on' if 'speed' in manifest['spec'] else 'off'}): "
              + " ".join(f"{1e4 * v:.2f}" for v in history))
    z_dim = models["fast"][1].decoder.input_shape[-1]
    z = np.random.default_rng(0).standard_normal((args.images, z_dim)).astype(
        np.float32)
    images = {name: decode(model.decoder, z) for name, (_, model) in models.items()}
    judge = FaceJudge()
    print(f"\n{args.images} N(0, I) vectors through each decoder:")
    for name, batch in images.items():
        gap = np.abs(batch.astype(np.float64) - images["fast"]).mean()
        rate = judge.rate(batch)
        print(f"  {name:<8} mean |pixel - fast's| {gap:6.2f} of 255; face rate "
              f"{rate.rate:.1%} [{rate.low:.1%}, {rate.high:.1%}]")


if __name__ == "__main__":
    main()
