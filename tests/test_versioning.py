"""Code digests: bytes for cheap stages, meaning for the notebooks."""

import shutil

from zspace import paths
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
    assert meaning_digest(original) != meaning_digest(renamed)


def test_a_comment_in_the_latent_package_leaves_every_notebook_fresh(tmp_path,
                                                                    monkeypatch):
    # The notebooks' code part of their keys, before and after a comment is added to
    # a module of zspace/latent/ (a copy stands in for the package's files).
    files = plan.notebook_code()
    before = meaning_digest(*files)
    copy = tmp_path / "samplers.py"
    original = paths.ROOT / "zspace" / "latent" / "samplers.py"
    copy.write_text("# A note for readers.\n" + original.read_text())
    edited = [copy if f == original else f for f in files]
    monkeypatch.setattr(plan, "notebook_code", lambda: edited)
    assert meaning_digest(*plan.notebook_code()) == before
    assert code_digest(*edited) != code_digest(*files)
