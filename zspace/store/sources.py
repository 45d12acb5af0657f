"""Where a model comes from: the build cache, the committed weights, a pretrained file,
or training. Decided in one place, without TensorFlow, so the plan can say what a
build will do and training does exactly that.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from zspace import paths
from zspace.store import committed
from zspace.store.artifacts import is_intact
from zspace.store.keys import ModelVariant

CACHED, COMMITTED, PRETRAINED, TRAIN = "cached", "committed", "pretrained", "train"


@dataclass(frozen=True)
class Source:
    """What making one model means.

    Attributes:
        kind: ``cached`` (an intact artifact exists), ``committed`` (weights in
            ``models/<profile>/`` made under the same key), ``pretrained`` (a
            configured ``.keras`` file) or ``train``.
        why: A short phrase for messages: what happens, and why where not obvious.
        found: The committed model, where ``kind`` is ``committed``.
        unusable: Why committed weights for this name exist but cannot be used
            (another key, a damaged file); empty where there are none or they fit.
    """

    kind: str
    why: str
    found: committed.CommittedModel | None = None
    unusable: str = ""


def source_of(variant: ModelVariant, spec: dict, key: str, build_root: Path | None,
              committed_dir: Path | None, retrain: bool = False) -> Source:
    """Decide where ``variant`` under ``key`` comes from, in the order the trainer
    follows: cache, committed weights, pretrained file, training.

    Args:
        variant: The model variant (its name and its ``pretrained`` setting count).
        spec: The spec ``key`` digests (to say what changed in committed weights).
        key: The artifact key.
        build_root: The build folder.
        committed_dir: ``models/<profile>/``, or None to ignore committed weights.
        retrain: Ignore the cache and the committed weights.

    Returns:
        The :class:`Source`.
    """
    name, pretrained = variant.name, variant.model_config.pretrained
    folder = paths.model_artifact(build_root, name, key)
    if not retrain and is_intact(folder):
        return Source(CACHED, f"cached in {folder}")
    damaged = (" (its cached artifact is damaged and is rebuilt)"
               if folder.exists() and not retrain else "")
    unusable = ""
    if committed_dir is not None and not retrain:
        try:
            found = committed.find(committed_dir, name, spec, key)
        except committed.Unusable as error:
            unusable = str(error)
        else:
            if found is not None:
                return Source(COMMITTED, "loading the published weights from "
                              f"{committed_dir}{damaged}", found)
    if pretrained:
        return Source(PRETRAINED, f"adopting {pretrained}{damaged}",
                      unusable=unusable)
    note = f" ({unusable})" if unusable else ""
    return Source(TRAIN, f"training{note}{damaged}", unusable=unusable)
