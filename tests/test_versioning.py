"""Code digests: bytes for cheap stages, meaning for the notebooks."""

import re
import shutil

from zspace import paths
from zspace.config import load_config
from zspace.pipeline import plan
from zspace.versioning import code_digest, meaning_digest


def latent_copy(tmp_path, edit=None):
    folder = tmp_path / "latent"
    shutil.copytree(paths.ROOT / "zspace" / "latent", folder,
                    ignore=shutil.ignore_patterns("__pycache__"))
    if edit is not None:
        module = folder / "samplers.py"
        module.write_text(edit(module.read_text()))
    return folder


def test_comments_docstrings_and_line_breaks_keep_the_meaning(tmp_path):
    original = latent_copy(tmp_path / "a")

    def cosmetic(source):
        source = "# Why this module exists, once more.\n" + source
        source = source.replace('"""', '"""Reworded. ', 1)
        return source.replace("def ", "def  ", 1).replace("\n\n\n", "\n\n\n\n", 1)

    edited = latent_copy(tmp_path / "b", cosmetic)
    assert code_digest(original) != code_digest(edited)
    assert meaning_digest(original) == meaning_digest(edited)


def test_a_changed_number_or_name_changes_the_meaning(tmp_path):
    original = latent_copy(tmp_path / "a")
    renamed = latent_copy(tmp_path / "b", lambda s: s.replace("def ", "def x_", 1))
    number = re.compile(r"(: int = )(\d+)")  # a default argument

    def bump(source):
        changed = number.sub(lambda m: f"{m[1]}{int(m[2]) + 1}", source, count=1)
        assert changed != source
        return changed

    renumbered = latent_copy(tmp_path / "c", bump)
    assert meaning_digest(original) != meaning_digest(renamed)
    assert meaning_digest(original) != meaning_digest(renumbered)


def test_a_comment_in_the_latent_package_leaves_every_notebook_key(tmp_path,
                                                                  monkeypatch):
    # Every notebook's stage key, before and after a comment is added to a module of
    # zspace/latent/ (a copy stands in for the package's file).
    config = load_config("default")
    specs = plan.expand_specs(config, plan.discover(config, paths.ANALYSIS))

    def notebook_keys():
        return [plan.notebook_key(spec, {}, "data", {}, 1).digest for spec in specs]

    before = notebook_keys()
    original = paths.ROOT / "zspace" / "latent" / "samplers.py"
    copy = tmp_path / "samplers.py"
    copy.write_text("# A note for readers.\n" + original.read_text())
    files = [copy if f == original else f for f in plan.notebook_code()]
    monkeypatch.setattr(plan, "notebook_code", lambda: files)
    assert notebook_keys() == before
    copy.write_text(original.read_text().replace("def ", "def x_", 1))
    assert notebook_keys() != before
