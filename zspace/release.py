"""``publish-models``: release a profile's trained models, that is, write them into
``models/<profile>/`` to be committed (:mod:`zspace.store.committed`).

Every model is trained or loaded as the build does, its weights are rounded to the
stored float16, and its manifest records the key, the stopping rule's outcome, the
losses, the training time and machine, and what the rounding did to the held-out
reconstruction error. The folder is written beside the old one and swapped in whole.
Afterwards the build cache holds the rounded models, so this machine's next build
uses exactly what a fresh clone loads.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from zspace import ownership
from zspace.config import Config
from zspace.data.dataset import Dataset
from zspace.errors import ModelError
from zspace.store import committed, keys
from zspace.training.stopping import StoppingRule

# The repository carries every profile's weights, the seeds' and the sweep points'
# included; past this, releasing refuses.
MAX_BYTES = 150 * 1024 * 1024
# Held-out images the float16 check reconstructs (all of a small test set).
CHECK_IMAGES = 1000


def release_models(config: Config, dataset: Dataset, build_root: Path | None = None,
                   progress: bool = True) -> list[dict[str, Any]]:
    """Make every model of ``config`` as the plan says (load or train each once) and
    write its weights into ``models/<profile>/`` (the ``publish-models`` command).

    Args:
        config: The whole configuration; its ``name`` names the folder.
        dataset: The data set.
        build_root: The build folder (default: the repository's ``build/``).
        progress: Show progress bars while training.

    Returns:
        One manifest (without the tensor layout) per model, in release order.

    Raises:
        ModelError: The weights would exceed ``MAX_BYTES`` together.
        ForeignFolder: ``models/<profile>/`` holds files that are not committed
            models'.
    """
    from zspace.data import cache_key
    from zspace.pipeline.plan import make_plan
    from zspace.training.trainer import cache_rounded, make_model

    folder = committed.folder_for(config)
    # Before training: the swap replaces the folder whole.
    ownership.check_committed_models(folder)
    staging = folder.with_name(f".{folder.name}.staging")
    shutil.rmtree(staging, ignore_errors=True)
    names = [variant.name for variant in keys.all_variants(config)]
    plan = make_plan(config, build_root, models=names, card=dataset.card)
    stages = {stage.variant.name: stage for stage in plan.models}
    made, manifests, total = [], [], 0
    for name in names:
        trained = make_model(stages[name], dataset, build_root, progress,
                             committed_dir=folder)
        check = _float16_check(trained.model, dataset)
        earlier = folder / f"{name}.json"
        if trained.meta.get("published") and earlier.is_file():
            # Already rounded: what rounding did was measured when first released.
            check = json.loads(earlier.read_text()).get("float16_check", check)
        manifest = _manifest(trained, config, cache_key(config.data), dataset, check)
        written = committed.write(staging, name, trained.model, manifest)
        total += (staging / f"{name}.weights.bin").stat().st_size
        manifests.append({**manifest, "manifest": str(folder / written.name)})
        made.append(trained)
    if total > MAX_BYTES:
        shutil.rmtree(staging, ignore_errors=True)
        raise ModelError(f"the published weights of {config.name!r} would take "
                         f"{total / 2**20:.1f} MiB, more than the "
                         f"{MAX_BYTES / 2**20:.0f} MiB the repository allows")
    committed.swap_folder(staging, folder)
    for trained in made:  # the cache held the float32 originals
        cache_rounded(trained, dataset, folder / f"{trained.name}.weights.bin")
    return manifests


def _manifest(trained, config: Config, data_key: str, dataset: Dataset,
              check: dict[str, float]) -> dict[str, Any]:
    history = trained.history
    spec = {k: v for k, v in trained.config.items() if k != "key"}
    meta = {k: v for k, v in trained.meta.items() if k != "published"}
    return {
        "name": trained.name,
        "key": trained.key,
        "spec": spec,
        "data_cache_key": data_key,
        "dataset": dataset.card.to_dict(),
        "epochs": len(history.get("epoch_seconds", [])) or meta.get("epochs"),
        "max_epochs": keys.effective_epochs(keys.variant(trained.name,
                                                         config).model_config,
                                            config.train),
        "stopping_rule": {**{f.name: getattr(config.train, f.name)
                             for f in dataclasses.fields(config.train)
                             if f.name in ("stop_improvement", "stop_window",
                                           "stop_smoothing", "min_epochs")},
                          **last_window(history, config.train)},
        "final": {metric: values[-1] for metric, values in sorted(history.items())
                  if values and values[-1] is not None
                  and metric != "epoch_seconds"},
        "history": history,
        "seconds": trained.seconds,
        "meta": {**meta, "machine": meta.get("machine") or committed.machine()},
        "float16_check": check,
    }


def _float16_check(model, dataset: Dataset) -> dict[str, float]:
    """Held-out reconstruction MSE before and after rounding the weights to float16.

    Rounds ``model``'s weights in place (it is committed rounded). For the judge,
    which reconstructs nothing, the largest change of its feature outputs.
    """
    images = dataset.test[:CHECK_IMAGES]
    before = _outputs(model, images)
    committed.round_weights(model)
    after = _outputs(model, images)
    if hasattr(model, "decoder"):
        truth = images.astype(np.float32) / 255.0
        return {"held_out_mse_float32": float(np.mean((before - truth) ** 2)),
                "held_out_mse_float16": float(np.mean((after - truth) ** 2)),
                "max_pixel_change": float(np.max(np.abs(after - before)))}
    return {"max_output_change": float(np.max(np.abs(after - before)))}


def _outputs(model, images: np.ndarray) -> np.ndarray:
    from zspace.latent.zpoints import predict_in_batches

    if hasattr(model, "decoder"):
        z = predict_in_batches(model.encoder, images)
        return np.concatenate([np.asarray(model.decoder(z[i:i + 256], training=False))
                               for i in range(0, len(z), 256)])
    return predict_in_batches(model, images)


def last_window(history: dict[str, list], train_config) -> dict:
    """What the stopping rule read at the last epoch: the held-out quantity, the
    share of it the last window removed, and whether that ended training."""
    reading = StoppingRule.of(train_config).read(history)
    return {"monitored": reading.monitored, "last_window_gain": reading.gain,
            "window_epochs": reading.window, "converged": reading.stop}
