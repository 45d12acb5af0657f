"""The CelebA loader on small CelebA-shaped trees written by the tests."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
from PIL import Image

from zspace.config import DataConfig
from zspace.data import decode
from zspace.data.celeba import load_celeba, locate
from zspace.data.decode import Crop, decode_image
from zspace.errors import DataError


def _config(path, **changes) -> DataConfig:
    settings = dict(source="celeba", path=str(path), image_size=24, num_train=0,
                    num_test=0, workers=1)
    settings.update(changes)
    return DataConfig(**settings)


@pytest.mark.parametrize("layout", ["celeba_folder", "celeba_zip"])
def test_loads_good_images_and_lists_bad_ones(layout, request):
    root = request.getfixturevalue(layout)
    dataset = load_celeba(_config(root))
    assert dataset.train.shape == (10, 24, 24, 3)
    assert dataset.test.shape == (2, 24, 24, 3)
    assert dataset.train.dtype == np.uint8
    skipped = sorted(line.split(":")[0].rsplit("/", 1)[-1]
                     for line in dataset.card.skipped)
    assert skipped == ["000013.jpg", "000014.jpg", "000015.jpg"]
    assert dataset.card.attribute_names == ("Smiling", "Eyeglasses", "Male")
    assert dataset.train_attributes.shape == (10, 3)
    assert set(np.unique(dataset.train_attributes)) == {0.0, 1.0}
    assert "official split" in dataset.card.preparation


def test_folder_and_zip_give_the_same_pixels(celeba_folder, tmp_path):
    from tests.conftest import write_celeba_tree

    write_celeba_tree(tmp_path / "zipped", as_zip=True)
    from_folder = load_celeba(_config(celeba_folder))
    from_zip = load_celeba(_config(tmp_path / "zipped"))
    np.testing.assert_array_equal(from_folder.train, from_zip.train)
    assert from_folder.card.content_hash == from_zip.card.content_hash


def test_worker_processes_match_a_single_process(celeba_folder, monkeypatch):
    monkeypatch.setattr(decode, "_CHUNK", 4)  # several chunks, so the pool is used
    single = load_celeba(_config(celeba_folder, workers=1))
    pooled = load_celeba(_config(celeba_folder, workers=2))
    np.testing.assert_array_equal(single.train, pooled.train)


def test_path_may_name_the_zip_or_the_image_folder(celeba_folder, celeba_zip):
    assert locate(celeba_zip / "img_align_celeba.zip").store.kind == "zip"
    copy = locate(celeba_folder / "img_align_celeba")
    assert copy.store.kind == "dir" and copy.root == celeba_folder


def test_crop_box_is_the_documented_face_square():
    # A 178x218 image whose documented box (cols 15-163, rows 40-188) is white and
    # everything else black: the crop must come out all white.
    pixels = np.zeros((218, 178, 3), np.uint8)
    pixels[40:188, 15:163] = 255
    image = Image.fromarray(pixels)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    inside = decode_image(buffer.getvalue(), 37, Crop("celeba", 148, 114))
    shifted = decode_image(buffer.getvalue(), 37, Crop("celeba", 148, 134))
    assert inside[1:-1, 1:-1].min() >= 250  # the resampling filter blurs only the rim
    assert (shifted[-4:] < 20).all()  # 20 px lower, the bottom rows are background


def test_draft_mode_decoding_stays_close_to_a_full_decode(celeba_folder):
    data = (celeba_folder / "img_align_celeba" / "000001.jpg").read_bytes()
    small = decode_image(data, 32, Crop("celeba"))  # draft mode: 1/4 scale
    full = Image.open(celeba_folder / "img_align_celeba" / "000001.jpg").convert("RGB")
    reference = np.asarray(full.resize((32, 32), Image.Resampling.LANCZOS,
                                       box=(15, 40, 163, 188)), dtype=float)
    assert np.abs(small - reference).mean() < 6


def test_without_partition_file_a_seeded_split_is_made(celeba_folder):
    (celeba_folder / "list_eval_partition.txt").unlink()
    first = load_celeba(_config(celeba_folder, test_fraction=0.25))
    second = load_celeba(_config(celeba_folder, test_fraction=0.25))
    # 15 files, 4 of them (25 %) held out; the 3 bad ones are skipped wherever they fell
    assert first.card.num_train + first.card.num_test == 12
    assert len(first.card.skipped) == 3
    assert "seeded 25% test split" in first.card.preparation
    np.testing.assert_array_equal(first.test, second.test)


def test_caps_limit_the_counts(celeba_folder):
    dataset = load_celeba(_config(celeba_folder, num_train=3, num_test=1))
    assert (dataset.card.num_train, dataset.card.num_test) == (3, 1)


def test_missing_path_names_it_and_the_layout(tmp_path):
    expected = r"(?s)nowhere; expected a CelebA copy.*img_align_celeba"
    with pytest.raises(DataError, match=expected):
        load_celeba(_config(tmp_path / "nowhere"))


def test_empty_folder_is_an_error(tmp_path):
    (tmp_path / "img_align_celeba").mkdir()
    with pytest.raises(DataError, match="no .jpg images"):
        load_celeba(_config(tmp_path))


def test_folder_without_celeba_layout_is_an_error(tmp_path):
    with pytest.raises(DataError, match="no img_align_celeba/ folder"):
        load_celeba(_config(tmp_path))


def test_zip_that_is_not_celeba_is_an_error(tmp_path):
    with zipfile.ZipFile(tmp_path / "img_align_celeba.zip", "w") as archive:
        archive.writestr("readme.txt", "hello")
    with pytest.raises(DataError, match="does not look like CelebA"):
        load_celeba(_config(tmp_path))


def test_file_that_is_not_a_zip_is_an_error(tmp_path):
    (tmp_path / "img_align_celeba.zip").write_text("not a zip")
    with pytest.raises(DataError, match="not a readable zip"):
        load_celeba(_config(tmp_path / "img_align_celeba.zip"))


def test_only_bad_files_is_an_error(celeba_folder):
    for name in (celeba_folder / "img_align_celeba").iterdir():
        name.write_bytes(b"")
    with pytest.raises(DataError, match="no readable CelebA images"):
        load_celeba(_config(celeba_folder))
