"""The background share on images whose answer is known."""

import numpy as np
import pytest

from zspace.config import DataConfig
from zspace.data import synthetic
from zspace.errors import DataError
from zspace.latent.background import (
    FACE_CENTRE,
    FACE_HALF_AXES,
    background_share,
    background_shares,
    face_mask,
    outside_area,
)

SIDE = 64


@pytest.fixture(scope="module")
def faces():
    config = DataConfig(image_size=SIDE, num_train=96, num_test=16, workers=1)
    return synthetic.load_synthetic(config, progress=False)


def _noise(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (SIDE, SIDE, 3), dtype=np.uint8)


def test_blank_background_only_face_only_and_even_structure():
    inside = face_mask(SIDE, SIDE)
    blank = np.full((SIDE, SIDE, 3), 128, np.uint8)
    background_only = np.where(inside[..., None], blank, _noise(1))
    face_only = np.where(inside[..., None], _noise(2), blank)
    shares = background_shares(np.stack([blank, np.zeros_like(blank),
                                         background_only, face_only, _noise(3)]))
    assert shares[0] == 0.0 and shares[1] == 0.0  # no structure, none in the background
    assert shares[2] > 0.95  # the ellipse's rim is the only contrast left inside
    assert shares[3] < 0.1
    # Noise everywhere: the share is the area outside the face.
    assert shares[4] == pytest.approx(outside_area(SIDE, SIDE), abs=0.03)


def test_real_faces_sit_between_blank_and_textured_scenes(faces):
    shares = background_shares(faces.train)
    # Hair, shoulders and the scene lie outside the ellipse: a sizeable share, but
    # below evenly spread structure, since the features gather on the face.
    assert 0.3 < shares.mean() < outside_area(SIDE, SIDE) - 0.05
    inside = face_mask(SIDE, SIDE)[..., None]
    # The same faces on a flat scene (their mean colour) have a smaller share ...
    flat = faces.train[:16].mean(axis=(1, 2), keepdims=True).astype(np.uint8)
    plain = np.where(inside, faces.train[:16], flat)
    assert (background_shares(plain) < shares[:16]).all()
    assert background_shares(plain).mean() < 0.25
    # ... and on a textured scene a larger one.
    textured = np.where(inside, faces.train[:16], _noise(4))
    assert (background_shares(textured) > shares[:16]).all()


def test_the_ellipse_is_the_generators_mean_head(faces):
    names = synthetic.ATTRIBUTE_NAMES
    attributes = np.concatenate([faces.train_attributes, faces.test_attributes])
    half_width = attributes[:, names.index("face_width")]
    half_height = half_width * attributes[:, names.index("face_length")]
    assert FACE_HALF_AXES[0] == pytest.approx(half_width.mean(), abs=0.01)
    assert FACE_HALF_AXES[1] == pytest.approx(half_height.mean(), abs=0.015)
    assert FACE_CENTRE[1] == pytest.approx(
        synthetic._EYE_LINE + synthetic._HEAD_BELOW_EYES, abs=0.005)
    # The mean real face is brighter-edged inside the ellipse than far outside it.
    mean = faces.train.mean(axis=0, keepdims=True)
    assert background_shares(mean)[0] < outside_area(SIDE, SIDE)


def test_summary_and_errors():
    images = np.stack([_noise(5), np.full((SIDE, SIDE, 3), 7, np.uint8)])
    summary = background_share(images)
    assert summary["n"] == 2
    assert summary["low"] <= summary["share"] <= summary["high"]
    assert summary["share"] == pytest.approx(background_shares(images).mean())
    assert summary["outside_area"] == pytest.approx(outside_area(SIDE, SIDE))
    assert background_share(images[:1])["low"] == background_share(images[:1])["share"]
    grey = np.random.default_rng(6).random((3, SIDE, SIDE))
    assert background_shares(grey).shape == (3,)
    with pytest.raises(DataError):
        background_share(np.zeros((0, SIDE, SIDE, 3), np.uint8))
    with pytest.raises(DataError):
        background_shares(np.zeros((2, SIDE, SIDE, 4), np.uint8))
    with pytest.raises(DataError):
        face_mask(0, SIDE)
