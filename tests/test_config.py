"""Configuration: defaults, profiles, overrides and the errors that name the key."""

from __future__ import annotations

import dataclasses

import pytest

from zspace.config import Config, load_config
from zspace.errors import ConfigError


def test_defaults_are_the_default_profile():
    # The default profile adds publishing into the repository, article D's sweeps and
    # the wide AE's cap on epochs; nothing else.
    default = load_config("default")
    assert default.build.publish and not load_config(None).build.publish
    assert sorted(default.sweeps) == ["decoder", "kl", "latent"]
    assert default.models.wide_ae.num_epochs == 10
    assert default.sweeps["kl"]["model"] == "vae"
    assert dataclasses.replace(
        load_config(None, ["build.publish=true", "models.wide_ae.num_epochs=10"]),
        sweeps=default.sweeps) == default
    assert load_config(None).models.vae.kl_factor == 5.0
    assert load_config(None).models.wide_ae.z_dim == 1600


def test_profiles_override_defaults():
    smoke = load_config("smoke")
    assert smoke.name == "smoke"
    assert smoke.data.image_size < Config().data.image_size
    celeba = load_config("celeba")
    assert (celeba.data.source, celeba.data.image_size) == ("celeba", 96)


def test_overrides_beat_the_file_and_keep_section_defaults():
    config = load_config("smoke", ["models.wide_ae.z_dim=64", "train.learning_rate=1"])
    assert config.models.wide_ae.z_dim == 64
    # the wide AE keeps its own filters, not ModelConfig's
    assert config.models.wide_ae.filters == (64, 64, 128, 128)
    assert config.train.learning_rate == 1.0  # an int is accepted for a float
    assert config.data.image_size == 32  # from the profile


def test_lists_become_tuples():
    config = load_config(None, ["models.ae.filters=[8, 16]", "models.ae.kernels=[3, 3]",
                                "models.ae.strides=[2, 2]"])
    assert config.models.ae.filters == (8, 16)


def test_strings_need_no_quotes():
    assert load_config(None, ["data.source=folder"]).data.source == "folder"


@pytest.mark.parametrize("override, message", [
    ("data.colour=1", "unknown configuration key data.colour"),
    ("nosuch.key=1", "unknown configuration key nosuch"),
    ("data.image_size=big", "data.image_size: expected int"),
    ("data.image_size=1.5", "data.image_size: expected int"),
    ("models.vae.batch_norm=1", "models.vae.batch_norm: expected bool"),
    ("models.vae.filters=[1, 'a']", r"models.vae.filters\[1\]: expected int"),
    ("train.strategy=tpu", "train.strategy: 'tpu' is not one of"),
    ("data.image_size=0", "data.image_size: expected a positive number"),
    ("models.ae.kernels=[3]", "models.ae.kernels: expected 4 values"),
    ("data=3", "data: expected a section"),
    ("novalue", "--set expects key=value"),
])
def test_bad_values_name_the_key(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, [override])


def test_missing_or_broken_files(tmp_path):
    with pytest.raises(ConfigError, match="not found.*smoke"):
        load_config(tmp_path / "missing.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("[data\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(broken)
    typo = tmp_path / "typo.toml"
    typo.write_text("[train]\nnum_epoch = 3\n")
    with pytest.raises(ConfigError, match="train.num_epoch "):
        load_config(typo)


def test_digest_follows_content():
    assert load_config("smoke").digest() == load_config("smoke").digest()
    assert load_config("smoke").digest() != load_config(
        "smoke", ["train.seed=5"]).digest()


def test_cluster_settings_need_the_dask_executor():
    assert load_config(None).build.executor == "local"
    with pytest.raises(ConfigError, match="build.executor: 'slurm' is not one of "
                                          "local, dask"):
        load_config(None, ["build.executor=slurm"])
    with pytest.raises(ConfigError, match=r"build.scheduler = 'tcp://h:8786' needs "
                                          r'build.executor = "dask"'):
        load_config(None, ["build.scheduler=tcp://h:8786"])
    with pytest.raises(ConfigError, match="build.gpus_per_training: expected 0 or "
                                          "more, got -1"):
        load_config(None, ["build.executor=dask", "build.gpus_per_training=-1"])
    cluster = load_config(None, ["build.executor=dask", "build.scheduler=tcp://h:8786",
                                 "build.gpus_per_training=1"]).build
    assert (cluster.scheduler, cluster.gpus_per_training) == ("tcp://h:8786", 1)
