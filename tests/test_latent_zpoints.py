import keras
import numpy as np
import pytest

from zspace.errors import DataError
from zspace.latent.zpoints import NOISE_VARIABLE, decode, encode

SIZE = 8


def _ae_encoder():
    """z = the mean of each colour channel: (n, 8, 8, 3) -> (n, 3)."""
    images = keras.Input((SIZE, SIZE, 3))
    return keras.Model(images, keras.layers.GlobalAveragePooling2D()(images))


def _vae_encoder():
    """[z_mean, z_log_var] with z_mean the channel means and z_log_var twice them."""
    images = keras.Input((SIZE, SIZE, 3))
    z_mean = keras.layers.GlobalAveragePooling2D()(images)
    z_log_var = keras.layers.Rescaling(2.0)(z_mean)
    return keras.Model(images, [z_mean, z_log_var])


def _decoder():
    """Every pixel and channel of the image equals z[:, 0]: (n, 2) -> (n, 8, 8, 3)."""
    z = keras.Input((2,))
    dense = keras.layers.Dense(SIZE * SIZE * 3, use_bias=False)
    pixels = dense(z)
    kernel = np.zeros((2, SIZE * SIZE * 3), np.float32)
    kernel[0] = 1.0
    dense.set_weights([kernel])
    return keras.Model(z, keras.layers.Reshape((SIZE, SIZE, 3))(pixels))


class _Recorder:
    """Wraps a model and records the batches it is called with."""

    def __init__(self, model):
        self.model, self.batches = model, []

    def __call__(self, x, training=False):
        self.batches.append((x.shape, x.dtype))
        return self.model(x, training=training)


def _images(n=10, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, SIZE, SIZE, 3), np.uint8)


def test_ae_encode_scales_to_unit_range_in_batches():
    images = _images()
    recorder = _Recorder(_ae_encoder())
    z = encode(recorder, images, batch_size=4)
    assert z.shape == (10, 3) and z.dtype == np.float32
    np.testing.assert_allclose(z, images.mean(axis=(1, 2)) / 255.0, atol=1e-6)
    # Three batches of at most 4 float32 images: never the whole set as floats.
    assert [shape[0] for shape, _ in recorder.batches] == [4, 4, 2]
    assert all(dtype == np.float32 for _, dtype in recorder.batches)


def test_vae_encode_returns_z_mean():
    images = _images()
    z = encode(_vae_encoder(), images, batch_size=3)
    np.testing.assert_allclose(z, images.mean(axis=(1, 2)) / 255.0, atol=1e-6)


def test_encode_reads_a_read_only_memmap(tmp_path):
    np.save(tmp_path / "images.npy", _images(7))
    images = np.load(tmp_path / "images.npy", mmap_mode="r")
    z = encode(_ae_encoder(), images, batch_size=256)
    np.testing.assert_allclose(
        z, np.asarray(images).mean(axis=(1, 2)) / 255.0, atol=1e-6
    )


def test_decode_rounds_and_clips_to_uint8():
    z = np.array([[0.5, 9.0], [1.2, 0.0], [-0.1, 0.0], [0.2, 0.0]], np.float32)
    images = decode(_decoder(), z, batch_size=3)
    assert images.shape == (4, SIZE, SIZE, 3) and images.dtype == np.uint8
    np.testing.assert_array_equal(images[:, 0, 0, 0], [128, 255, 0, 51])
    assert (images == images[:, :1, :1, :1]).all()


def test_empty_inputs_keep_their_widths():
    assert encode(_ae_encoder(), _images(0)).shape == (0, 3)
    assert decode(_decoder(), np.zeros((0, 2), np.float32)).shape == (0, SIZE, SIZE, 3)


def test_wrong_inputs_raise_data_errors():
    with pytest.raises(DataError, match="uint8"):
        encode(_ae_encoder(), _images().astype(np.float32))
    with pytest.raises(DataError, match="batch_size"):
        encode(_ae_encoder(), _images(), batch_size=0)
    with pytest.raises(DataError, match="z_dim"):
        decode(_decoder(), np.zeros(2))


def test_output_noise_hook_moves_outputs_in_their_last_bits(monkeypatch):
    images = _images()
    encoder = _ae_encoder()
    exact = encode(encoder, images, batch_size=4)
    monkeypatch.setenv(NOISE_VARIABLE, "1e-6")
    noisy = encode(encoder, images, batch_size=4)
    relative = np.abs(noisy / exact - 1)
    assert noisy.dtype == np.float32 and 0 < relative.max() < 1e-5
    np.testing.assert_array_equal(noisy, encode(encoder, images, batch_size=4))
    # Decoded images are rounded to uint8: a millionth moves almost none of them.
    z = np.random.default_rng(1).uniform(0, 1, (50, 2)).astype(np.float32)
    monkeypatch.setenv(NOISE_VARIABLE, "")
    plain = decode(_decoder(), z)
    monkeypatch.setenv(NOISE_VARIABLE, "1e-6")
    assert np.mean(decode(_decoder(), z) != plain) < 0.01
    monkeypatch.setenv(NOISE_VARIABLE, "a little")
    with pytest.raises(DataError, match="ZSPACE_OUTPUT_NOISE='a little'"):
        encode(encoder, images)
