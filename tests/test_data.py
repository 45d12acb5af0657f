"""load_dataset: the cache in front of every source, and its atomic writes."""

from __future__ import annotations

import os

import numpy as np
import pytest

from tests.conftest import write_celeba_tree
from zspace import paths
from zspace.config import DataConfig
from zspace.data import cache, load_dataset
from zspace.errors import DataError


def _celeba_config(root) -> DataConfig:
    return DataConfig(source="celeba", path=str(root), image_size=16, num_train=0,
                      num_test=0, workers=1)


def test_second_load_comes_from_the_cache(tmp_path, monkeypatch):
    write_celeba_tree(tmp_path / "celeba")
    config = _celeba_config(tmp_path / "celeba")
    first = load_dataset(config, tmp_path / "build", progress=False)
    calls = []
    monkeypatch.setattr("zspace.data.celeba.decode_many",
                        lambda *a, **k: calls.append(1))
    second = load_dataset(config, tmp_path / "build", progress=False)
    assert calls == []  # nothing decoded
    assert isinstance(second.train, np.memmap)
    np.testing.assert_array_equal(first.train, second.train)
    assert second.card == first.card
    assert len(second.card.skipped) == 3


def test_changed_source_file_misses_the_cache(tmp_path):
    write_celeba_tree(tmp_path / "celeba")
    config = _celeba_config(tmp_path / "celeba")
    first = load_dataset(config, tmp_path / "build", progress=False)
    image = tmp_path / "celeba" / "img_align_celeba" / "000002.jpg"
    image.write_bytes((tmp_path / "celeba" / "img_align_celeba" / "000003.jpg")
                      .read_bytes())
    os.utime(image, ns=(1, 1))
    second = load_dataset(config, tmp_path / "build", progress=False)
    assert second.card.content_hash != first.card.content_hash
    entries = list(paths.data_cache_dir(tmp_path / "build").iterdir())
    assert len(entries) == 2


def test_settings_that_do_not_change_pixels_share_an_entry(tmp_path):
    write_celeba_tree(tmp_path / "celeba")
    config = _celeba_config(tmp_path / "celeba")
    load_dataset(config, tmp_path / "build", progress=False)
    from dataclasses import replace

    load_dataset(replace(config, workers=2), tmp_path / "build", progress=False)
    assert len(list(paths.data_cache_dir(tmp_path / "build").iterdir())) == 1


def test_interrupted_write_leaves_no_entry(tmp_path, monkeypatch):
    write_celeba_tree(tmp_path / "celeba")
    config = _celeba_config(tmp_path / "celeba")
    real_save = np.save

    def failing_save(file, array):
        real_save(file, array)
        if "test" in str(file):
            raise KeyboardInterrupt  # as if the user pressed Ctrl-C mid-write

    monkeypatch.setattr(cache.np, "save", failing_save)
    with pytest.raises(KeyboardInterrupt):
        load_dataset(config, tmp_path / "build", progress=False)
    assert list(paths.data_cache_dir(tmp_path / "build").iterdir()) == []
    monkeypatch.setattr(cache.np, "save", real_save)
    dataset = load_dataset(config, tmp_path / "build", progress=False)
    assert dataset.card.num_train == 10


def test_entry_without_its_card_is_not_trusted(tmp_path):
    write_celeba_tree(tmp_path / "celeba")
    config = _celeba_config(tmp_path / "celeba")
    load_dataset(config, tmp_path / "build", progress=False)
    (entry,) = paths.data_cache_dir(tmp_path / "build").iterdir()
    (entry / "card.json").unlink()
    assert cache.load_entry(entry) is None
    assert load_dataset(config, tmp_path / "build", progress=False).card.num_test == 2


def test_bad_path_fails_before_anything_is_written(tmp_path):
    config = DataConfig(source="folder", path=str(tmp_path / "missing"))
    with pytest.raises(DataError, match="missing"):
        load_dataset(config, tmp_path / "build", progress=False)
    assert not (tmp_path / "build").exists()
