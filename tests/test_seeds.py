"""Training seeds as model variants: distinct keys and weights, and a changed seed
list trains only the seeds it adds."""

from __future__ import annotations

import numpy as np
import pytest

from zspace.config import load_config
from zspace.errors import ConfigError, ModelError
from zspace.pipeline import engine
from zspace.pipeline.plan import make_plan
from zspace.store import keys


def test_extra_seeds_become_named_variants():
    config = load_config("smoke", ["seeds.ae=[2, 7]"])
    names = [v.name for v in keys.variants("ae", config)]
    assert names == ["ae", "ae@seed=2", "ae@seed=7"]
    assert [v.train_config.seed for v in keys.variants("ae", config)] == [1, 2, 7]
    assert keys.variant("ae@seed=7", config).train_config.seed == 7
    assert keys.model_config_for("ae@seed=7", config) == config.models.ae
    with pytest.raises(ModelError, match="the variants of ae are ae, ae@seed=2"):
        keys.variant("ae@seed=3", config)


@pytest.mark.parametrize("override, message", [
    ("seeds.ae=[1]", "seeds.ae: 1 is train.seed"),
    ("seeds.vae=[2, 2]", "seeds.vae: expected distinct seeds"),
    ("seeds.vae=[-1]", "seeds.vae: expected distinct seeds of 0 or more"),
    ("seeds.gan=[2]", "unknown configuration key seeds.gan"),
])
def test_bad_seed_lists_are_configuration_errors(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config("smoke", [override])


@pytest.mark.slow
def test_seeds_train_apart_and_a_longer_list_trains_only_the_new_seed(tmp_path):
    build = tmp_path / "build"
    first = load_config("smoke", ["seeds.ae=[2]"])
    made = {m.name: m for m in engine.train(first, build, progress=False)}
    assert {"ae", "ae@seed=2"} <= set(made)
    assert made["ae"].key != made["ae@seed=2"].key
    assert made["ae@seed=2"].path.name == f"ae@seed=2-{made['ae@seed=2'].key}"
    assert not np.array_equal(made["ae"].model.get_weights()[0],
                              made["ae@seed=2"].model.get_weights()[0])

    longer = load_config("smoke", ["seeds.ae=[2, 3]"])
    stale = [name for name, state in engine.status(longer, build)
             if state != "fresh" and name.startswith("model")]
    assert stale == ["model ae@seed=3"]
    again = {m.name: m for m in engine.train(longer, build, progress=False)}
    trained = sorted(name for name, m in again.items() if not m.loaded_from_cache)
    assert trained == ["ae@seed=3"]
    # Notebooks that use the AE get every seed in their inputs manifest.
    plan = make_plan(longer, build)
    stage = next(s for s in plan.notebooks if "ae" in s.spec.models)
    assert {"ae", "ae@seed=2", "ae@seed=3"} <= set(plan.inputs(stage)["models"])
