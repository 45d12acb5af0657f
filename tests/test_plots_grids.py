import numpy as np
import pytest
from PIL import Image

from zspace.errors import DataError
from zspace.plots.canvas import DPI, save_png
from zspace.plots.grids import image_grid


def _rows(seed=0, lengths=(5, 5, 3)):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (k, 16, 16, 3), np.uint8) for k in lengths]


def _grid(rows):
    return image_grid(
        rows,
        row_labels=["r = 0.5", "r = 1.0", "r = 8.0"],
        col_labels=[f"#{i}" for i in range(5)],
        title="r_limit",
        scale=0.5,
    )


def test_identical_inputs_give_byte_identical_pngs(tmp_path):
    first = save_png(_grid(_rows()), tmp_path / "a.png").read_bytes()
    second = save_png(_grid(_rows()), tmp_path / "sub" / "b.png").read_bytes()
    assert first == second
    other = save_png(_grid(_rows(seed=1)), tmp_path / "c.png").read_bytes()
    assert other != first


def test_png_has_no_software_entry_and_a_fixed_size(tmp_path):
    path = save_png(_grid(_rows()), tmp_path / "grid.png")
    with Image.open(path) as image:
        assert "Software" not in image.info
        width, height = image.size
    # Five cells of 0.5 inch at DPI dots plus fixed margins for labels.
    assert 5 * 0.5 * DPI < width < (5 * 0.5 + 2) * DPI
    assert 3 * 0.5 * DPI < height < (3 * 0.5 + 2) * DPI


def test_images_appear_in_their_cells(tmp_path):
    rows = [np.zeros((2, 8, 8, 3), np.uint8), np.full((1, 8, 8, 3), 255, np.uint8)]
    rows[0][1, ..., 0] = 255  # second image of the first row is red
    fig = image_grid(rows, scale=1.0)
    axes = fig.axes
    assert len(axes) == 4
    np.testing.assert_array_equal(axes[1].images[0].get_array()[0, 0], [255, 0, 0])
    assert not axes[3].images and not axes[3].axison  # blank cell of the short row


def test_greyscale_rows_are_accepted(tmp_path):
    fig = image_grid([np.zeros((3, 8, 8), np.uint8), np.ones((3, 8, 8, 1), np.float32)])
    assert len(fig.axes) == 6 and fig.axes[0].images[0].get_cmap().name == "gray"


def test_labels_must_match_the_grid():
    with pytest.raises(DataError, match="row labels"):
        image_grid(_rows(), row_labels=["only one"])
    with pytest.raises(DataError, match="column labels"):
        image_grid(_rows(), col_labels=["a", "b"])
    with pytest.raises(DataError):
        image_grid([])
