"""Judged sample sets published with the report (zspace/samplesets/released.py): a
set whose images match the release takes its judgment from there, with the very
bytes it would have judged; anything else is judged anew; a folder that is not a
release is never replaced."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from zspace import paths
from zspace.config import load_config
from zspace.errors import ForeignFolder
from zspace.files import sha256_of
from zspace.pipeline.plan import make_plan
from zspace.pipeline.sampling import jobs_file
from zspace.samplesets import released
from zspace.samplesets.stored import MANIFEST

# A generated set and a set of real images.
CHOSEN = ("vae_normal", "real_test")


def make_sets(tmp_path: Path, build_root: Path, judged: Path, out: str) -> dict:
    """Make the chosen sets of the smoke plan again, into ``tmp_path/out``, with
    ``judged`` as the release; return each set's folder and how it was made."""
    plan = make_plan(load_config("smoke"), build_root)
    stages = [st for st in plan.sets if st.point.name in CHOSEN]
    assert sorted(st.point.name for st in stages) == sorted(CHOSEN)
    spec = jobs_file(plan, stages)
    spec["inputs"]["judged"] = str(judged / released.SETS)
    folders = {}
    for job, stage in zip(spec["jobs"], stages, strict=True):
        folders[stage.point.name] = (stage.folder, tmp_path / out / stage.folder.name)
        job["folder"] = str(folders[stage.point.name][1])
    jobs = tmp_path / f"{out}.json"
    jobs.write_text(json.dumps(spec))
    result = subprocess.run(
        [sys.executable, "-m", "zspace.pipeline.setmaker", str(jobs),
         str(tmp_path / f"{out}-scratch")],
        capture_output=True, text=True, cwd=paths.ROOT, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    how = dict(line.removeprefix("how ").split(": ")
               for line in result.stdout.splitlines() if line.startswith("how "))
    return {name: (*folders[name], how[name]) for name in CHOSEN}


def same_files(a: Path, b: Path) -> bool:
    names = json.loads((a / MANIFEST).read_text())["files"]
    return all(sha256_of(a / n) == sha256_of(b / n) for n in names) and \
        json.loads((a / MANIFEST).read_text()) == json.loads((b / MANIFEST).read_text())


def test_a_released_judgment_is_taken_and_gives_the_judged_bytes(smoke_build,
                                                                 tmp_path):
    build_root, _ = smoke_build
    plan = make_plan(load_config("smoke"), build_root)
    judged = tmp_path / "judged" / "smoke"
    count, _ = released.publish([st.folder for st in plan.sets], [], judged)
    assert count == len({st.folder for st in plan.sets}) > len(CHOSEN)
    entry = judged / released.SETS / plan.sets[0].folder.name
    assert sorted(p.name for p in entry.iterdir()) == \
        sorted([MANIFEST, *released.FILES])  # no images, no features

    made = make_sets(tmp_path, build_root, judged, "from-release")
    for name, (original, copy, how) in made.items():
        assert how == "released", name
        assert same_files(original, copy), name

    # A damaged release entry (its summary edited) is judged anew, to the same bytes.
    entry = judged / released.SETS / made["vae_normal"][0].name
    summary = json.loads((entry / "summary.json").read_text())
    summary["faces"]["rate"] = 0.0
    (entry / "summary.json").write_text(json.dumps(summary))
    again = make_sets(tmp_path, build_root, judged, "judged-anew")
    assert again["vae_normal"][2] == "judged"
    assert again["real_test"][2] == "released"
    for name, (original, copy, _) in again.items():
        assert same_files(original, copy), name


def test_a_release_for_other_images_or_another_key_does_not_apply(tmp_path):
    entry = tmp_path / "judged" / "s-1"
    entry.mkdir(parents=True)
    for name in released.FILES:
        (entry / name).write_text(name)
    files = {name: {"sha256": sha256_of(entry / name)} for name in released.FILES}
    files["images.npy"] = {"sha256": "a" * 64}
    (entry / MANIFEST).write_text(json.dumps({"key": "k1", "files": files}))
    assert released.find(entry.parent, "s-1", "k1", "a" * 64) is not None
    assert released.find(entry.parent, "s-1", "k1", "b" * 64) is None  # other images
    assert released.find(entry.parent, "s-1", "k2", "a" * 64) is None  # another key
    assert released.find(entry.parent, "s-2", "k1", "a" * 64) is None  # not released
    (entry / "scores.npz").write_text("edited")
    assert released.find(entry.parent, "s-1", "k1", "a" * 64) is None  # damaged


def test_publishing_leaves_a_folder_it_did_not_write_alone(tmp_path):
    target = tmp_path / "judged" / "default"
    target.mkdir(parents=True)
    (target / "notes.txt").write_text("mine")
    with pytest.raises(ForeignFolder, match="notes.txt"):
        released.publish([], [], target)
    assert (target / "notes.txt").read_text() == "mine"
    (target / "notes.txt").unlink()
    (target / released.DETECTIONS).mkdir()
    (target / released.DETECTIONS / "a.txt").write_text("mine")
    with pytest.raises(ForeignFolder, match=released.DETECTIONS):
        released.publish([], [], target)
    assert (target / released.DETECTIONS / "a.txt").read_text() == "mine"


def test_a_notebook_takes_published_detections_of_the_very_same_images(tmp_path):
    from zspace.data.synthetic import generate
    from zspace.notebook import Run

    config = load_config("smoke")
    faces, _ = generate(24, 64, seed=5, workers=1, progress=False)
    first = Run(config, {}, tmp_path / "first")  # judges, and keeps what it judged
    judged = []
    real = first.face_judge.detection_scores

    def counting(images):
        judged.append(len(images))
        return real(images)

    first.face_judge.detection_scores = counting
    rate = first.face_rate(faces)
    kept = tmp_path / "first" / released.DETECTIONS / f"{released.digest(faces)}.npz"
    assert judged == [24] and kept.is_file()

    # The release: the first run's detections. Published images are not judged
    # again; other bytes are.
    target = tmp_path / "judged"
    assert released.publish([], [kept], target) == (0, 1)
    second = Run(config, {"detections": str(target / released.DETECTIONS)},
                 tmp_path / "second")
    second.face_judge.detection_scores = counting
    assert second.face_rate(faces) == rate and judged == [24]
    assert (tmp_path / "second" / released.DETECTIONS / kept.name).is_file()
    other = faces.copy()
    other[0, 0, 0, 0] ^= 1
    second.face_rate(other)
    assert judged == [24, 24]

    # Detections kept with other judge settings are not taken.
    stored = dict(np.load(kept))
    stored["judge"] = np.array(json.dumps({"image_size": 1}))
    np.savez(target / released.DETECTIONS / kept.name, **stored)
    third = Run(config, {"detections": str(target / released.DETECTIONS)},
                tmp_path / "third")
    third.face_judge.detection_scores = counting
    assert third.face_rate(faces) == rate and judged == [24, 24, 24]
