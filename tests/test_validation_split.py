"""The validation split: images of their own that decide when training stops and
that no quality measure reads."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from zspace import paths
from zspace.config import DataConfig, ModelConfig, SpeedConfig, TrainConfig
from zspace.data.celeba import load_celeba
from zspace.data.folder import load_folder
from zspace.data.synthetic import VAL_INDEX_OFFSET, load_synthetic, render_face
from zspace.training import fitting


def image_bytes(*arrays) -> list[set[bytes]]:
    return [{image.tobytes() for image in array} for array in arrays]


def test_synthetic_validation_faces_are_their_own():
    config = DataConfig(image_size=16, num_train=30, num_test=6, num_val=8, workers=1)
    data = load_synthetic(config, progress=False)
    assert data.val.shape == (8, 16, 16, 3) and data.card.num_val == 8
    assert data.val_attributes.shape[0] == 8
    np.testing.assert_array_equal(data.val[0], render_face(config.seed,
                                                           VAL_INDEX_OFFSET, 16)[0])
    train, test, val = image_bytes(data.train, data.test, data.val)
    assert len(val) == 8 and not val & train and not val & test
    # The other splits do not move, and no split means the hash of before.
    without = load_synthetic(DataConfig(image_size=16, num_train=30, num_test=6,
                                        workers=1), progress=False)
    np.testing.assert_array_equal(without.train, data.train)
    np.testing.assert_array_equal(without.test, data.test)
    assert without.val is None and without.card.num_val == 0
    assert without.card.content_hash != data.card.content_hash


def test_celeba_validation_comes_from_partition_one(celeba_folder):
    # Partition 1 holds 000009 and 000010: the first validates, the other trains.
    config = DataConfig(source="celeba", path=str(celeba_folder), image_size=24,
                        num_train=0, num_test=0, num_val=1, workers=1)
    data = load_celeba(config)
    assert (data.card.num_train, data.card.num_test, data.card.num_val) == (9, 2, 1)
    assert data.val_attributes.shape == (1, 3)
    train, test, val = image_bytes(data.train, data.test, data.val)
    assert not val & train and not val & test
    merged = load_celeba(DataConfig(source="celeba", path=str(celeba_folder),
                                    image_size=24, num_train=0, num_test=0, workers=1))
    assert merged.val is None and merged.card.num_train == 10


def test_celeba_without_partitions_holds_out_a_seeded_share(celeba_folder):
    (celeba_folder / "list_eval_partition.txt").unlink()
    config = DataConfig(source="celeba", path=str(celeba_folder), image_size=24,
                        num_train=0, num_test=0, num_val=2, test_fraction=0.25,
                        workers=1)
    data = load_celeba(config)
    assert data.card.num_val <= 2
    train, test, val = image_bytes(data.train, data.test, data.val)
    assert val and not val & train and not val & test


def test_a_folder_validates_on_a_seeded_share(tmp_path, monkeypatch):
    from zspace.data import folder

    monkeypatch.setattr(folder, "MIN_TRAIN_IMAGES", 1, raising=False)
    monkeypatch.setattr(folder, "MIN_TEST_IMAGES", 1, raising=False)
    from PIL import Image

    rng = np.random.default_rng(2)
    for i in range(20):
        Image.fromarray(rng.integers(0, 256, (20, 20, 3), np.uint8)).save(
            tmp_path / f"{i}.png")
    config = DataConfig(source="folder", path=str(tmp_path), image_size=8,
                        num_train=0, num_test=0, num_val=3, test_fraction=0.2,
                        workers=1)
    data = load_folder(config)
    assert (data.card.num_train, data.card.num_test, data.card.num_val) == (13, 4, 3)
    train, test, val = image_bytes(data.train, data.test, data.val)
    assert not val & train and not val & test
    again = load_folder(config)
    np.testing.assert_array_equal(again.val, data.val)


@pytest.mark.slow
def test_the_stopping_rule_reads_the_validation_images(tmp_path):
    from zspace.training.trainer import train_or_load

    config = DataConfig(image_size=16, num_train=64, num_test=16, num_val=16,
                        workers=1)
    data = load_synthetic(config, progress=False)
    assert fitting.held_out(data)[0] == "val"
    model_config = ModelConfig(kind="ae", z_dim=4, filters=(8, 16), kernels=(3, 3),
                               strides=(2, 2))
    train_config = TrainConfig(num_epochs=2, batch_size=16, min_epochs=1,
                               stop_improvement=0.01)
    trained = train_or_load("ae", model_config, train_config, data, tmp_path,
                            progress=False, speed=SpeedConfig(
                                fuse_batch_norm=False))
    model = trained.model

    def mse(images):
        images = np.asarray(images, np.float32) / 255.0
        out = np.asarray(model.decoder(model.encoder(images, training=False),
                                       training=False))
        return float(np.mean((out - images) ** 2))

    recorded = trained.history["val_mse"][-1]
    assert recorded == pytest.approx(mse(data.val), rel=1e-4)
    assert recorded != pytest.approx(mse(data.test), rel=1e-4)
    assert trained.history["stop_gain"][-1] is not None


def test_no_quality_measure_reads_the_validation_images():
    # Only the trainer (fitting.held_out), the data sources and their cache touch
    # the validation arrays; notebooks and measures read the test split.
    allowed = {"zspace/training/fitting.py", "zspace/training/golden.py",
               "zspace/data/dataset.py", "zspace/data/cache.py",
               "zspace/data/synthetic.py", "zspace/data/celeba.py",
               "zspace/data/folder.py"}
    pattern = re.compile(r"\.val(_attributes)?\b")
    readers = []
    for file in sorted((paths.ROOT / "zspace").rglob("*.py")):
        name = file.relative_to(paths.ROOT).as_posix()
        if name not in allowed and pattern.search(file.read_text()):
            readers.append(name)
    for notebook in sorted(paths.ANALYSIS.glob("*.ipynb")):
        cells = json.loads(notebook.read_text())["cells"]
        if any(pattern.search("".join(cell["source"])) for cell in cells):
            readers.append(notebook.name)
    assert readers == []
