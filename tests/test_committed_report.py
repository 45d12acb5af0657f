"""The committed report is current: the published models are those main's code and
configuration make, and the committed figures and articles were built from them by
main's notebooks, parameters and templates, and their judgments published beside
them.

Nothing is built here: every key is recomputed from the sources and compared with
what the committed files record. When this fails, rebuild and commit the report
(`python pipeline.py`, after `python pipeline.py publish-models` if the models are
the stale part).
"""

import json
import re

import pytest

from zspace import paths
from zspace.config import load_config
from zspace.data import cache_key
from zspace.data.dataset import DatasetCard
from zspace.files import sha256_of
from zspace.pipeline import notebooks as nb
from zspace.pipeline.plan import (
    discover,
    expand_specs,
    notebook_key,
    notebook_sets,
    notebook_variants,
    set_code,
    set_key,
)
from zspace.pipeline.state import StageKey
from zspace.samplesets import released
from zspace.site.publish import MANIFEST, PROVENANCE, report_key_parts
from zspace.store import committed
from zspace.store.keys import JUDGE, artifact_key, file_digest, variant, variants
from zspace.versioning import meaning_digest

CONFIG = load_config("default")
# The plan's notebooks: with the figures of the configured sweeps' points.
SPECS = expand_specs(CONFIG, discover(CONFIG, paths.ANALYSIS))
# The models the notebooks load, and those their sample sets draw from and are
# judged by.
NEEDED = sorted({m for s in SPECS for m in notebook_variants(s, CONFIG)}
                | {v.name for s in SPECS for p in notebook_sets(s, CONFIG) if p.model
                   for v in variants(p.model, CONFIG)}
                | ({JUDGE} if any(s.sets for s in SPECS) else set()))


def published_manifest(name: str) -> dict:
    path = committed.folder_for(CONFIG) / f"{name}.json"
    assert path.is_file(), f"{path} is missing: run `python pipeline.py publish-models`"
    return json.loads(path.read_text())


@pytest.fixture(scope="module")
def data_card(tmp_path_factory):
    """The default data set's card as main's data code makes it.

    Where the data code and settings are those the models were published with, the
    published card is it; otherwise the data set is generated again to find out
    whether its content changed (a change of the code alone keeps the models valid).
    """
    manifest = published_manifest(NEEDED[0])
    if manifest["data_cache_key"] == cache_key(CONFIG.data):
        return DatasetCard.from_dict(manifest["dataset"])
    from zspace.data import load_dataset

    return load_dataset(CONFIG.data, tmp_path_factory.mktemp("data"),
                        progress=False).card


@pytest.mark.parametrize("name", NEEDED)
def test_published_models_are_what_main_trains(name, data_card):
    manifest = published_manifest(name)
    card = data_card
    spec = variant(name, CONFIG).spec(card)
    changed = committed.changed_parts(manifest["spec"], spec)
    assert artifact_key(spec) == manifest["key"], (
        f"{name}: published under another {', '.join(changed)}")
    weights = committed.folder_for(CONFIG) / manifest["file"]
    assert file_digest(weights) == manifest["sha256"], f"{weights} is damaged"


def committed_inputs() -> tuple[dict[str, str], str]:
    """The published models' keys, and the data set they were trained on."""
    manifests = {name: published_manifest(name) for name in NEEDED}
    datasets = {m["spec"]["dataset"] for m in manifests.values()}
    assert len(datasets) == 1, "the published models were trained on different data"
    return {name: m["key"] for name, m in manifests.items()}, datasets.pop()


def set_keys(spec, model_keys: dict[str, str], dataset_hash: str) -> dict[str, str]:
    """The keys of the sample sets notebook ``spec`` reads, from the committed models
    as the plan keys them from the cached ones."""
    made_by = meaning_digest(*set_code())
    return {point.name: set_key(
                point, [model_keys[v.name] for v in variants(point.model, CONFIG)]
                if point.model else [], model_keys[JUDGE], dataset_hash, made_by,
                CONFIG.build.kernel_threads)
            for point in notebook_sets(spec, CONFIG)}


def test_committed_figures_and_articles_come_from_main():
    model_keys, dataset_hash = committed_inputs()
    recorded = json.loads((paths.ARTICLES / PROVENANCE).read_text())
    keys = {}
    for spec in SPECS:
        parameters = nb.resolve_parameters(spec, CONFIG.notebooks.get(spec.name, {}))
        mine = {name: model_keys[name] for name in notebook_variants(spec, CONFIG)}
        keys[spec.name] = notebook_key(
            spec, parameters, dataset_hash, mine, CONFIG.build.kernel_threads,
            set_keys=set_keys(spec, model_keys, dataset_hash))
        assert recorded["notebooks"].get(spec.name) == keys[spec.name].digest, (
            f"the committed report's notebook {spec.name} ran other code, parameters "
            "or models than main's")
    expected = StageKey(report_key_parts(
        paths.REPORT_TEMPLATES, {name: key.digest for name, key in keys.items()},
        CONFIG.build.publish))
    assert recorded["report_key"] == expected.digest, (
        "the committed articles were rendered by other templates or report code")

    for name, digest in recorded["articles"].items():
        assert sha256_of(paths.ARTICLES / name) == digest, f"articles/{name} was edited"

    figures = json.loads((paths.FIGURES / MANIFEST).read_text())
    wanted = {figure_id for spec in SPECS for figure_id in spec.figures}
    assert set(figures) == wanted
    for figure_id, entry in figures.items():
        assert sha256_of(paths.FIGURES / entry["file"]) == entry["sha256"], (
            f"figures/{entry['file']} ({figure_id}) is not the one the build made")
        assert entry["models"] == {m: model_keys[m] for m in entry["models"]}
        assert entry["dataset"] == dataset_hash


def test_the_published_judgments_are_those_of_every_set_the_report_reads():
    """A fresh clone judges no sample set: ``judged/default/`` holds each set the
    report reads, under the key main's code gives it, and no other."""
    model_keys, dataset_hash = committed_inputs()
    wanted = {key for spec in SPECS
              for key in set_keys(spec, model_keys, dataset_hash).values()}
    folder = released.folder_for(CONFIG.name) / released.SETS
    found = {json.loads((entry / "manifest.json").read_text())["key"]
             for entry in folder.iterdir()}
    assert found == wanted, "judged/default/ is stale: rebuild and commit the report"


def test_links_in_the_committed_articles_stay_inside_the_repository():
    # A link made relative to one build's folder (/tmp/...) would be committed
    # broken for everyone else.
    for page in sorted(paths.ARTICLES.glob("*.md")):
        for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text()):
            if "://" in target or target.startswith("#"):
                continue
            resolved = (page.parent / target.split("#")[0]).resolve()
            assert resolved.is_relative_to(paths.ROOT.resolve()), (
                f"articles/{page.name} links to {target}, outside the repository")


def test_the_explorer_link_does_not_depend_on_the_build_folder(tmp_path):
    from zspace.site.publish import committed_explorer_link

    for root in (tmp_path / "elsewhere", paths.BUILD):
        assert committed_explorer_link(root / "default" / "site") == \
            "../build/default/site/explorer.html"
