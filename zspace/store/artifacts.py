"""Model artifacts on disk: keys, atomic writes, verified reads, pretrained files.

An artifact is a folder ``paths.model_artifact(build_root, name, key)`` holding

- ``model.keras``: the model, with its optimizer state (Keras' own format);
- ``config.json``: the resolved configuration it was trained with and its key;
- ``history.json``: per-epoch lists of every tracked metric;
- ``dataset.json``: the dataset card (with its content hash);
- ``meta.json``: training time, epochs, resumed epochs, devices (and the speed
  options applied on them), versions;
- ``manifest.json``, written last: the sha256 of each file above.

The key (``keys.py``) covers the model's and the training configuration, the data
set's content hash, the Keras version and the training-semantics version, so
changing any of them trains afresh.
The folder is assembled under ``paths.partial(folder)`` and renamed into place when
complete; a folder whose manifest is missing or does not match is never loaded.
Keras is imported only where a model is read or written: ``is_intact`` (and so the
plan) runs without TensorFlow.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zspace.errors import ModelError
from zspace.store.keys import file_digest

if TYPE_CHECKING:
    import keras

log = logging.getLogger(__name__)

MODEL_FILE = "model.keras"
MANIFEST = "manifest.json"
DOCUMENTS = ("config", "history", "dataset", "meta")


class CorruptArtifact(Exception):
    """An artifact folder that is incomplete or altered (rebuilt, never loaded)."""


def is_intact(folder: Path) -> bool:
    """Whether ``folder`` holds a complete artifact whose files match its manifest."""
    try:
        _verify(folder)
    except CorruptArtifact:
        return False
    return True


def write_artifact(folder: Path, model: keras.Model,
                   documents: dict[str, Any]) -> None:
    """Write the model, its documents and, last, the manifest into ``folder``.

    Args:
        folder: The (partial) artifact folder; created if missing.
        model: The trained model.
        documents: One JSON-ready value per name in ``DOCUMENTS``.
    """
    folder.mkdir(parents=True, exist_ok=True)
    model.save(folder / MODEL_FILE)
    for name in DOCUMENTS:
        text = json.dumps(documents[name], indent=1, sort_keys=True, default=str)
        (folder / f"{name}.json").write_text(text)
    files = [MODEL_FILE, *(f"{name}.json" for name in DOCUMENTS)]
    manifest = {name: file_digest(folder / name) for name in files}
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True))


def _verify(folder: Path) -> None:
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError) as error:
        raise CorruptArtifact(f"{folder}: no readable manifest ({error})") from None
    expected = {MODEL_FILE, *(f"{name}.json" for name in DOCUMENTS)}
    if set(manifest) != expected:
        raise CorruptArtifact(f"{folder}: manifest lists {sorted(manifest)}")
    for name, digest in manifest.items():
        path = folder / name
        if not path.is_file() or file_digest(path) != digest:
            raise CorruptArtifact(f"{folder}: {name} is missing or altered")


def finalise(partial: Path, final: Path) -> Path:
    """Finalise an artifact: rename its complete ``partial`` folder to ``final`` (one
    atomic step).

    If ``final`` appeared meanwhile (another process finished the same key first),
    the copy just made is dropped and ``final`` kept.
    """
    try:
        os.rename(partial, final)
    except OSError:
        if not (final / MANIFEST).is_file():
            raise
        shutil.rmtree(partial, ignore_errors=True)
    return final


def read_artifact(folder: Path) -> tuple[keras.Model, dict[str, Any]]:
    """Verify and load an artifact.

    Args:
        folder: The artifact folder.

    Returns:
        ``(model, documents)``.

    Raises:
        CorruptArtifact: A file is missing, does not match the manifest, or the
            model cannot be loaded in safe mode.
    """
    import keras

    from zspace.networks import register_classes

    _verify(folder)
    register_classes()
    try:
        documents = {name: json.loads((folder / f"{name}.json").read_text())
                     for name in DOCUMENTS}
        model = keras.saving.load_model(folder / MODEL_FILE, safe_mode=True)
    except Exception as error:  # a file that matches its digest but will not load
        raise CorruptArtifact(f"{folder}: {error}") from None
    return model, documents


def load_pretrained(path: Path, name: str) -> keras.Model:
    """Load a ``.keras`` model trained elsewhere, in safe mode.

    Raises:
        ModelError: The file is missing, not ``.keras``, or not loadable.
    """
    import keras

    from zspace.networks import register_classes

    if not path.is_file():
        raise ModelError(f"{name}: pretrained model {path} not found (expected a "
                         f".keras file saved by zspace, e.g. a model.keras artifact)")
    if path.suffix != ".keras":
        raise ModelError(f"{name}: pretrained model {path} is not a .keras file")
    register_classes()
    try:
        return keras.saving.load_model(path, safe_mode=True)
    except Exception as error:
        raise ModelError(f"{name}: pretrained model {path} could not be loaded as a "
                         f"Keras model ({type(error).__name__}: {error})") from None


def check_architecture(found: keras.Model, expected: keras.Model, path: Path,
                       name: str) -> None:
    """Raise unless ``found`` has ``expected``'s class, layers and weight shapes.

    Raises:
        ModelError: Naming the file, what the configuration expects and what differs.
    """
    problems = []
    if type(found).__name__ != type(expected).__name__:
        problems.append(f"a {type(found).__name__} instead of a "
                        f"{type(expected).__name__}")
    found_weights, expected_weights = _weight_shapes(found), _weight_shapes(expected)
    if len(found_weights) != len(expected_weights):
        problems.append(f"{len(found_weights)} weight tensors instead of "
                        f"{len(expected_weights)}")
    for (path_f, shape_f), (path_e, shape_e) in zip(found_weights, expected_weights,
                                                    strict=False):
        if shape_f != shape_e:
            problems.append(f"weight {path_f} has shape {shape_f}, the configured "
                            f"{path_e} needs {shape_e}")
            break
    if problems:
        raise ModelError(
            f"{name}: pretrained model {path} does not match the configured "
            f"architecture ({'; '.join(problems)}); expected {_describe(expected)}"
        )


def _weight_shapes(model: keras.Model) -> list[tuple[str, tuple]]:
    return [(weight.path, tuple(weight.shape)) for weight in model.weights]


def _describe(model: keras.Model) -> str:
    parts = [type(model).__name__]
    for part in ("encoder", "decoder"):
        sub = getattr(model, part, None)
        if sub is not None:
            parts.append(f"{part} {_shapes(sub.inputs)} -> {_shapes(sub.outputs)}")
    if len(parts) == 1:
        parts.append(f"{_shapes(model.inputs)} -> {_shapes(model.outputs)}")
    parts.append(f"{model.count_params():,} parameters")
    return ", ".join(parts)


def _shapes(tensors) -> str:
    return " ".join(str(tuple(t.shape)[1:]) for t in tensors)
