"""Shared test helpers: small data trees written by the tests themselves."""

from __future__ import annotations

import os

# As pipeline.py does, before NumPy loads (zspace.pipeline.kernels.HUGEPAGE_VARIABLE).
os.environ.setdefault("NUMPY_MADVISE_HUGEPAGE", "0")

import zipfile  # noqa: E402
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from zspace.config import load_config
from zspace.pipeline import engine
from zspace.pipeline import notebooks as nb

CELEBA_NAMES = [f"{i:06d}.jpg" for i in range(1, 13)]
ATTRIBUTES = ("Smiling", "Eyeglasses", "Male")


def _face_like(rng: np.random.Generator, width: int, height: int) -> Image.Image:
    """A smooth random image (gradients compress like photos, unlike white noise)."""
    base = rng.integers(0, 256, size=(4, 4, 3), dtype=np.uint8)
    return Image.fromarray(base).resize((width, height), Image.Resampling.BICUBIC)


def write_celeba_tree(root: Path, as_zip: bool = False) -> dict:
    """Write a CelebA-shaped copy: 12 good 178x218 JPEGs and three bad files.

    The bad files: a truncated JPEG, an empty file and a text file named ``.jpg``.
    Partition: images 1-8 train, 9-10 validation, 11-12 test; the bad files are in
    the training partition.

    Returns:
        A description: the good and bad names and the expected split sizes.
    """
    rng = np.random.default_rng(0)
    files: dict[str, bytes] = {}
    for name in CELEBA_NAMES:
        path = root / "scratch.jpg"
        root.mkdir(parents=True, exist_ok=True)
        _face_like(rng, 178, 218).save(path, quality=90)
        files[name] = path.read_bytes()
        path.unlink()
    files["000013.jpg"] = files["000001.jpg"][: len(files["000001.jpg"]) // 2]
    files["000014.jpg"] = b""
    files["000015.jpg"] = b"this is a text file, not an image\n"
    if as_zip:
        with zipfile.ZipFile(root / "img_align_celeba.zip", "w") as archive:
            for name, data in files.items():
                archive.writestr(f"img_align_celeba/{name}", data)
    else:
        (root / "img_align_celeba").mkdir(parents=True)
        for name, data in files.items():
            (root / "img_align_celeba" / name).write_bytes(data)
    partition = {name: 0 for name in files}
    partition.update({"000009.jpg": 1, "000010.jpg": 1, "000011.jpg": 2,
                      "000012.jpg": 2})
    (root / "list_eval_partition.txt").write_text(
        "".join(f"{name} {part}\n" for name, part in sorted(partition.items())))
    rows = [f"{name} " + " ".join("1" if (i + j) % 2 else "-1"
                                  for j in range(len(ATTRIBUTES)))
            for i, name in enumerate(sorted(files))]
    (root / "list_attr_celeba.txt").write_text(
        f"{len(rows)}\n{' '.join(ATTRIBUTES)}\n" + "\n".join(rows) + "\n")
    return {"good": CELEBA_NAMES, "bad": ["000013.jpg", "000014.jpg", "000015.jpg"],
            "num_train": 10, "num_test": 2}


@pytest.fixture
def celeba_folder(tmp_path: Path) -> Path:
    write_celeba_tree(tmp_path / "celeba")
    return tmp_path / "celeba"


@pytest.fixture
def celeba_zip(tmp_path: Path) -> Path:
    write_celeba_tree(tmp_path / "celeba", as_zip=True)
    return tmp_path / "celeba"


@pytest.fixture
def executed(monkeypatch):
    """Names of the notebooks that papermill actually ran."""
    names = []
    real = nb.execute

    def counting(spec, *args, **kwargs):
        names.append(spec.name)
        return real(spec, *args, **kwargs)

    monkeypatch.setattr(nb, "execute", counting)
    return names


@pytest.fixture(scope="session")
def smoke_build(tmp_path_factory):
    """One cold build of the smoke profile per test session: (build root, site)."""
    build_root = tmp_path_factory.mktemp("e2e") / "build"
    site = engine.build(load_config("smoke"), build_root, progress=True)
    return build_root, site
