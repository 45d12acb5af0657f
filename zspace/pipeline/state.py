"""Stage keys and the record of what the last build produced.

A stage's key hashes its parts (code, parameters, inputs). The build keeps, per stage,
the key and the parts it last ran with, so ``status`` can say not only that a stage is
stale but which part changed.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zspace.config import digest_of
from zspace.files import write_json_atomic

log = logging.getLogger(__name__)
# Damaged records already reported by this process (the plan reads the record anew
# after every layer of a build; one warning is enough).
_REPORTED: set[Path] = set()


@dataclass(frozen=True)
class StageKey:
    """What a stage's result depends on, part by part."""

    parts: dict[str, Any] = field(default_factory=dict)

    @property
    def digest(self) -> str:
        return digest_of(self.parts)

    def changed_parts(self, previous: dict[str, Any]) -> list[str]:
        """Names of the parts that differ from a previous run's parts."""
        names = sorted(set(self.parts) | set(previous))
        return [name for name in names
                if digest_of(self.parts.get(name)) != digest_of(previous.get(name))]


def describe_change(key: StageKey, previous: dict[str, Any]) -> str:
    """A short reason why a stage must run again, for ``status`` and progress lines."""
    if not previous:
        return "never built"
    changed = key.changed_parts(previous.get("parts", {}))
    if not changed:
        return "outputs missing"
    details = []
    for name in changed:
        now, before = key.parts.get(name), previous.get("parts", {}).get(name)
        if isinstance(now, dict) and isinstance(before, dict):
            keys = sorted(k for k in set(now) | set(before)
                          if digest_of(now.get(k)) != digest_of(before.get(k)))
            details.append(f"{name} changed: {', '.join(keys)}")
        else:
            details.append(f"{name} changed")
    return "; ".join(details)


class BuildState:
    """The JSON record of finished stages in one build folder."""

    def __init__(self, path: Path):
        self.path = path
        self.stages: dict[str, dict[str, Any]] = {}
        if not path.exists():
            return
        try:
            stages = json.loads(path.read_text())
            if not (isinstance(stages, dict)
                    and all(isinstance(v, dict) for v in stages.values())):
                raise ValueError("not a table of stages")
            self.stages = stages
        except (OSError, ValueError) as error:
            # Every stage is run again and the record rewritten; said once, by
            # name, so a damaged record never passes for "never built".
            if path not in _REPORTED:
                _REPORTED.add(path)
                log.warning("%s is damaged (%s): its stages are built again and "
                            "the record is rewritten", path, error)

    def previous(self, stage: str) -> dict[str, Any]:
        return self.stages.get(stage, {})

    def is_fresh(self, stage: str, key: StageKey) -> bool:
        return self.previous(stage).get("key") == key.digest

    def record(self, stage: str, key: StageKey, seconds: float, **extra: Any) -> None:
        """Mark ``stage`` as built with ``key`` and save the record at once."""
        self.stages[stage] = {"key": key.digest, "parts": key.parts,
                              "seconds": round(seconds, 2), **extra}
        self.save()

    def forget(self, stage: str) -> None:
        self.stages.pop(stage, None)
        self.save()

    def save(self) -> None:
        write_json_atomic(self.path, self.stages)
