"""The generic image-folder source."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from zspace.config import DataConfig
from zspace.data import folder
from zspace.data.folder import load_folder
from zspace.errors import DataError


@pytest.fixture(autouse=True)
def few_images_suffice(monkeypatch):
    """The trees here hold a handful of images; the build's own minimums are
    tested in tests/test_failures.py."""
    monkeypatch.setattr(folder, "MIN_TRAIN_IMAGES", 1)
    monkeypatch.setattr(folder, "MIN_TEST_IMAGES", 1)


def _write_tree(root, count=10):
    rng = np.random.default_rng(1)
    for i in range(count):
        folder = root / ("a" if i % 2 else "b/nested")
        folder.mkdir(parents=True, exist_ok=True)
        pixels = rng.integers(0, 256, (30 + i, 50, 3), dtype=np.uint8)
        suffix = ".png" if i % 3 else ".JPG"
        Image.fromarray(pixels).save(folder / f"img{i}{suffix}")
    (root / "notes.txt").write_text("not an image")
    (root / "a" / "broken.png").write_bytes(b"\x89PNG broken")


def _config(path, **changes):
    settings = dict(source="folder", path=str(path), image_size=16, num_train=0,
                    num_test=0, test_fraction=0.2, workers=1)
    settings.update(changes)
    return DataConfig(**settings)


def test_loads_every_image_of_the_tree(tmp_path):
    _write_tree(tmp_path)
    dataset = load_folder(_config(tmp_path))
    assert dataset.card.num_train + dataset.card.num_test == 10
    assert dataset.train.shape[1:] == (16, 16, 3)
    assert [s.split(":")[0] for s in dataset.card.skipped] == ["a/broken.png"]
    assert dataset.train_attributes is None


def test_centre_crop_keeps_the_middle_square(tmp_path):
    pixels = np.zeros((20, 60, 3), np.uint8)
    pixels[:, 20:40] = 255  # the centred 20 x 20 square is white, the sides black
    for name in ("one.png", "two.png"):
        Image.fromarray(pixels).save(tmp_path / name)
    dataset = load_folder(_config(tmp_path, image_size=10))
    assert dataset.train[0][1:-1, 1:-1].min() >= 250


def test_split_is_seeded(tmp_path):
    _write_tree(tmp_path)
    first = load_folder(_config(tmp_path, seed=3))
    again = load_folder(_config(tmp_path, seed=3))
    other = load_folder(_config(tmp_path, seed=4))
    np.testing.assert_array_equal(first.test, again.test)
    assert first.card.content_hash != other.card.content_hash


@pytest.mark.parametrize("setup, message", [
    (lambda root: None, "does not exist"),
    (lambda root: root.mkdir(), "no images in"),
    (lambda root: root.write_text("x"), "not a folder"),
])
def test_bad_paths_name_the_problem(tmp_path, setup, message):
    root = tmp_path / "images"
    setup(root)
    with pytest.raises(DataError, match=f"{message}.*expected a folder holding"):
        load_folder(_config(root))


def test_unset_path_is_an_error():
    with pytest.raises(DataError, match="data.path is not set"):
        load_folder(_config(""))
