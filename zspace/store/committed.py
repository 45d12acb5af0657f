"""Committed weights: trained models committed to the repository, so that a fresh
clone loads its models instead of training them.

A profile's committed models live in ``models/<profile>/``, two files per model:

- ``<name>.weights.bin``: every variable of the model in ``model.weights`` order,
  little-endian, concatenated; floating-point variables stored as float16 (weights
  only: no optimizer state);
- ``<name>.json``: the manifest: the model's key and the spec it digests (config,
  data set hash, training semantics, Keras version), the data cache key, epochs,
  final training and held-out losses, the per-epoch history, training time and
  machine, the layout of the weights file and its sha256.

A build whose key matches a manifest builds the model and loads those weights (into
float32 variables) instead of training. Where it does not match, the reason is named
(which part of the spec changed); where the weights file fails its sha256, it is
reported and never loaded. ``publish-models`` (:mod:`zspace.release`) writes a
profile's folder anew, atomically (:func:`write`, :func:`swap_folder`).
"""

from __future__ import annotations

import json
import logging
import os
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from zspace import ownership, paths
from zspace.config import Config
from zspace.files import swap_in
from zspace.store.keys import file_digest

if TYPE_CHECKING:
    import keras

log = logging.getLogger(__name__)

# float16 keeps about 3 significant digits; anything beyond its range stays float32.
STORAGE_DTYPE = "float16"
FLOAT16_LIMIT = 60_000.0


@dataclass(frozen=True)
class CommittedModel:
    """One committed model found for a key.

    Attributes:
        name: The model's name.
        manifest: The parsed ``<name>.json``.
        weights: The ``<name>.weights.bin`` path.
    """

    name: str
    manifest: dict[str, Any]
    weights: Path


class Unusable(Exception):
    """Committed weights that exist but cannot be used; the message says why."""


def folder_for(config: Config) -> Path:
    """``models/<profile>/``: in the repository, or under ``build.models_dir``."""
    root = (Path(config.build.models_dir).expanduser() if config.build.models_dir
            else paths.COMMITTED_MODELS)
    return paths.inside(root, config.name)


def find(folder: Path, name: str, spec: dict, key: str) -> CommittedModel | None:
    """The committed model ``name`` in ``folder`` if it was made under ``key``.

    Args:
        folder: ``models/<profile>/``.
        name: The model's name.
        spec: The spec the current key digests (to name what changed).
        key: The current key.

    Returns:
        The :class:`CommittedModel`, or None where there is none in ``folder``.

    Raises:
        Unusable: There is one, but for another key (the message names the parts
            of the spec that differ) or its weights file is missing or damaged.
    """
    manifest_path = folder / f"{name}.json"
    if not manifest_path.is_file():
        return None
    try:
        manifest = json.loads(manifest_path.read_text())
        committed_key, committed_spec = manifest["key"], manifest["spec"]
    except (OSError, ValueError, KeyError) as error:
        raise Unusable(f"{manifest_path} is unreadable ({error})") from None
    if committed_key != key:
        changed = changed_parts(committed_spec, spec)
        raise Unusable(f"{manifest_path} was made with another "
                       f"{', '.join(changed) or 'key'}")
    weights = folder / manifest["file"]
    if not weights.is_file():
        raise Unusable(f"{weights} is missing")
    if file_digest(weights) != manifest["sha256"]:
        raise Unusable(f"{weights} is damaged (its sha256 does not match "
                       f"{manifest_path.name})")
    return CommittedModel(name, manifest, weights)


def changed_parts(old: dict, new: dict, prefix: str = "") -> list[str]:
    """What differs between two specs, in words: dotted names of the changed values,
    with both values where they are short (``training semantics 1 -> 2``,
    ``model.kl_factor 5.0 -> 2.0``).

    Names ``semantics`` "training semantics", ``dataset`` "data" and ``keras`` "Keras
    version"; a spec of the keys that hashed code bytes has ``code`` ("model code").
    """
    labels = {"code": "model code", "dataset": "data", "keras": "Keras version",
              "semantics": "training semantics"}
    # A spec made here holds tuples where one read from JSON holds lists.
    old, new = (json.loads(json.dumps(spec, default=str)) for spec in (old, new))
    changed = []
    for part in sorted(set(old) | set(new)):
        a, b = old.get(part), new.get(part)
        if a == b:
            continue
        if isinstance(a, dict) and isinstance(b, dict):
            changed += changed_parts(a, b, f"{prefix}{part}.")
            continue
        name = f"{prefix}{part}" if prefix else labels.get(part, part)
        if part not in ("dataset", "code") and _short(a) and _short(b):
            name += f" {_shown(a)} -> {_shown(b)}"
        changed.append(name)
    return changed


def _short(value: Any) -> bool:
    return value is None or (not isinstance(value, dict | list)
                             and len(str(value)) <= 24)


def _shown(value: Any) -> str:
    return "none" if value is None else str(value)


def load_into(model: keras.Model, found: CommittedModel) -> None:
    """Set ``model``'s variables from the committed weights file.

    Raises:
        Unusable: The file's layout does not fit the model's variables.
    """
    tensors = found.manifest["tensors"]
    variables = model.weights
    if len(tensors) != len(variables):
        raise Unusable(f"{found.weights} holds {len(tensors)} tensors, the model has "
                       f"{len(variables)}")
    data = found.weights.read_bytes()
    for variable, tensor in zip(variables, tensors, strict=True):
        shape = tuple(tensor["shape"])
        if tuple(variable.shape) != shape:
            raise Unusable(f"{found.weights}: {tensor['path']} has shape {shape}, "
                           f"the model's {variable.path} has {tuple(variable.shape)}")
        stored = np.frombuffer(data, dtype=np.dtype(tensor["dtype"]).newbyteorder("<"),
                               count=int(np.prod(shape, dtype=np.int64)),
                               offset=tensor["offset"]).reshape(shape)
        variable.assign(stored.astype(variable.dtype))


def round_weights(model: keras.Model) -> None:
    """Round every floating-point variable to what the committed file will hold."""
    for variable in model.weights:
        value = np.asarray(variable.numpy())
        if _stored_dtype(value) == STORAGE_DTYPE:
            variable.assign(value.astype(STORAGE_DTYPE).astype(value.dtype))


def write(folder: Path, name: str, model: keras.Model, manifest: dict) -> Path:
    """Write ``<name>.weights.bin`` and ``<name>.json`` into ``folder``.

    Args:
        folder: A (staging) folder; created if missing.
        name: The model's name.
        model: The trained model.
        manifest: Everything of the manifest but the file layout and digest.

    Returns:
        The manifest path.
    """
    folder.mkdir(parents=True, exist_ok=True)
    weights = folder / f"{name}.weights.bin"
    tensors, offset = [], 0
    with open(weights, "wb") as stream:
        for variable in model.weights:
            value = np.asarray(variable.numpy())
            stored = value.astype(np.dtype(_stored_dtype(value)).newbyteorder("<"))
            stream.write(stored.tobytes())
            tensors.append({"path": variable.path, "shape": list(value.shape),
                            "dtype": stored.dtype.name, "offset": offset})
            offset += stored.nbytes
    document = {**manifest, "file": weights.name, "bytes": offset,
                "sha256": file_digest(weights), "tensors": tensors}
    path = folder / f"{name}.json"
    path.write_text(json.dumps(document, indent=1, sort_keys=True) + "\n")
    return path


def swap_folder(staging: Path, target: Path) -> None:
    """Replace ``target`` by the complete ``staging`` folder (the old one goes last).

    Raises:
        ForeignFolder: ``target`` holds anything but committed models' files.
    """
    ownership.check_committed_models(target)
    swap_in(staging, target)


def machine() -> dict[str, Any]:
    """Where training ran: platform, processor and core count."""
    return {"platform": platform.platform(terse=True), "machine": platform.machine(),
            "processor": _processor_name(), "cpus": os.cpu_count()}


def _processor_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _stored_dtype(value: np.ndarray) -> str:
    if not np.issubdtype(value.dtype, np.floating):
        return value.dtype.name
    if value.size and float(np.max(np.abs(value))) > FLOAT16_LIMIT:
        return "float32"
    return STORAGE_DTYPE
