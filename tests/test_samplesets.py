"""Sample sets: the catalogue and its overrides, keys by settings, shares per seed,
and a stored set read back (no TensorFlow: a set written by hand)."""

from __future__ import annotations

import inspect
import json

import numpy as np
import pytest

from zspace.config import load_config
from zspace.errors import BuildError, ConfigError
from zspace.faces import FaceRate, over_seeds
from zspace.files import sha256_of
from zspace.latent import samplers
from zspace.pipeline.setmaker import FILES, MANIFEST, shares, stream
from zspace.samplesets import spec
from zspace.samplesets.stored import StoredSet, damage


def test_sampler_parameters_match_the_samplers():
    for name, params in spec.SAMPLER_PARAMS.items():
        builder = samplers._BUILDERS[name]
        accepted = set(inspect.signature(builder).parameters) - {"z_points", "z_dim",
                                                                  "seed"}
        assert set(params) == accepted, name


def test_a_list_makes_a_series_and_equal_settings_are_one_set():
    points = spec.points_of({})
    wide = [p for p in points.values() if p.family == "ae_uniform_wide"]
    assert [p.values for p in wide][:2] == [(("r_limit", 0.5),), (("r_limit", 2.5),)]
    assert "ae_uniform_wide@r_limit=8" in points
    # B1's cube at 8 and C7's are one set; so are C8's (80, 0.7) and C9's ellipse.
    assert (points["ae_uniform_wide@r_limit=8"].settings
            == points["ae_uniform_naive@r_limit=8"].settings)
    assert (points["ae_pca_settings@n_components=80,fact=0.7"].settings
            == points["ae_pca_ellipse"].settings)
    # 1 and 1.0 are one setting
    one = spec.points_of({"vae_uniform": {"r_limit": [1]}})["vae_uniform@r_limit=1"]
    assert one.settings == points["vae_uniform@r_limit=1"].settings


def test_overrides_change_one_set_or_all():
    points = spec.points_of({"n": 128, "vae_normal": {"n": 300}})
    assert points["vae_normal"].n == 300 and points["ae_normal"].n == 128
    config = load_config("default", ["sets.ae_gmm.n_components=3"])
    assert config.sets == {"ae_gmm": {"n_components": 3}}


@pytest.mark.parametrize(("override", "message"), [
    (["sets.vae_normal.r_limit=2"], "sets.vae_normal: unknown key r_limit"),
    (["sets.vae_normal.n=1"], "sets.vae_normal.n: expected 2 or more"),
    (["sets.new.sampler='ring'"], "sets.new.sampler: expected one of"),
    (["sets.new.sampler='normal'"], "sets.new.model: expected one of"),
    (["sets.real_test.model='ae'"], "sets.real_test.model: real images"),
    (["sets.vae_uniform.r_limit=[1, 1]"], "expected distinct values"),
    (["sets.ae_gmm.n_components=2.5"], "expected a whole number"),
])
def test_bad_sets_are_refused_as_the_configuration_loads(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config("default", override)


def test_shares_and_streams():
    assert shares(1000, 3) == [334, 333, 333] and sum(shares(7, 2)) == 7
    a = stream({"n": 10, "sampler": "normal"}, 1).standard_normal(3)
    b = stream({"sampler": "normal", "n": 10}, 1).standard_normal(3)
    c = stream({"sampler": "normal", "n": 10}, 2).standard_normal(3)
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def _write_set(folder, key="k1"):
    """A two-seed set as the maker writes it, made by hand."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (6, 8, 8, 3), dtype=np.uint8)
    np.save(folder / "images.npy", images)
    scores = [[1.0], [], [0.5, 2.0], [0.2], [], [3.0]]
    np.savez(folder / "scores.npz", scores=np.array([s for x in scores for s in x]),
             offsets=np.cumsum([0, *(len(s) for s in scores)]))
    np.save(folder / "features.npy", rng.standard_normal((6, 4)).astype(np.float32))
    rates = [FaceRate.from_counts(np.array(c)).as_dict() for c in ([1, 0, 2],
                                                                     [1, 0, 1])]
    (folder / "summary.json").write_text(json.dumps({
        "blocks": [3, 3], "resolved": [{"train_seed": 1}, {"train_seed": 2}],
        "face_judge": {"threshold": 0.0}, "faces": over_seeds(rates),
        "seed_faces": rates, "quality": {"frechet": 1.0}, "variety": {}}))
    (folder / MANIFEST).write_text(json.dumps({
        "key": key, "point": {"name": "s", "values": {}, "settings": {}},
        "files": {f: {"bytes": (folder / f).stat().st_size,
                      "sha256": sha256_of(folder / f)} for f in FILES}}))
    return images


def test_a_stored_set_reads_back_per_seed_and_at_stricter_thresholds(tmp_path):
    images = _write_set(tmp_path / "set")
    stored = StoredSet("s", tmp_path / "set", "k1")
    assert np.array_equal(stored.images, images)
    assert [len(b) for b in stored.batches] == [3, 3] and stored.train_seeds == [1, 2]
    assert list(stored.counts()) == [1, 0, 2, 1, 0, 1]
    assert list(stored.counts(threshold=1.0)) == [1, 0, 1, 0, 0, 1]
    # one face exactly: images 0, 3 and 5 at the judge's threshold; 0, 2, 5 at 1.0
    assert [r["faces"] for r in stored.seed_rates()] == [1, 2]
    assert [r["faces"] for r in stored.seed_rates(1.0)] == [2, 1]
    assert stored.face_rate() == over_seeds(stored.seed_rates())


def test_a_damaged_or_foreign_set_is_an_error(tmp_path):
    _write_set(tmp_path / "set")
    with pytest.raises(BuildError, match="made under key k1, the plan expected k2"):
        StoredSet("s", tmp_path / "set", "k2")
    features = tmp_path / "set" / "features.npy"
    data = bytearray(features.read_bytes())
    data[-1] ^= 0xFF  # same size: only the hash tells
    features.write_bytes(bytes(data))
    assert damage(tmp_path / "set") == ""
    with pytest.raises(BuildError, match="features.npy .* does not match"):
        StoredSet("s", tmp_path / "set", "k1")
    features.write_bytes(bytes(data[:10]))
    assert damage(tmp_path / "set").startswith("features.npy has 10 bytes")
    assert damage(tmp_path / "missing") == "missing"


@pytest.fixture(scope="module")
def dataset():
    from zspace.config import DataConfig
    from zspace.data.synthetic import load_synthetic

    config = DataConfig(image_size=64, num_train=64, num_test=16, workers=1)
    return load_synthetic(config, progress=False)


def test_the_controls_are_made_from_real_images(dataset):
    from zspace.pipeline.setmaker import EYE_BAND, MOUTH_BAND, real_images

    points = spec.points_of({"n": 10})
    mean = real_images("mean_face", dict(points["mean_face"].settings), dataset)
    assert mean.shape == (10, 64, 64, 3) and (mean == mean[0]).all()
    assert np.abs(mean[0].astype(float) - dataset.train.mean(axis=0)).max() <= 0.5
    blurred = real_images("blurred", dict(points["blurred"].settings), dataset)
    sharp = dataset.test[:10]
    # blur removes detail: the Laplacian's variance falls
    from zspace.latent.sharpen import laplacian_variance

    assert (laplacian_variance(blurred) < laplacian_variance(sharp)).all()
    displaced = real_images("displaced", dict(points["displaced"].settings), dataset)
    eyes = slice(round(EYE_BAND[0] * 64), round(EYE_BAND[1] * 64))
    mouth = slice(round(MOUTH_BAND[0] * 64),
                  round(MOUTH_BAND[0] * 64) + eyes.stop - eyes.start)
    assert np.array_equal(displaced[:, eyes], sharp[:, mouth])
    assert np.array_equal(displaced[:, mouth], sharp[:, eyes])
    top = slice(0, eyes.start)
    assert np.array_equal(displaced[:, top], sharp[:, top])  # the rest stays


def test_the_repeated_mean_face_has_no_variety_and_an_all_or_nothing_rate(dataset):
    from zspace.faces import FaceJudge, FaceRate, counts_at
    from zspace.latent.variety import variety
    from zspace.pipeline.setmaker import real_images

    points = spec.points_of({"n": 8})
    mean = real_images("mean_face", dict(points["mean_face"].settings), dataset)
    assert variety(mean, n_pairs=4)["variety"] == pytest.approx(0.0, abs=1e-6)
    judge = FaceJudge()
    rate = FaceRate.from_counts(counts_at(judge.detection_scores(mean),
                                          judge.threshold)).as_dict()
    assert rate["rate"] in (0.0, 1.0)  # one image: found in every copy or in none
