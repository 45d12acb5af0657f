"""Publishing a finished site in one swap: the figure manifest, the pages, the archive
of figures, and the default profile's copy in the repository.

Nothing a reader can see is touched until every step of a build has succeeded: the new
site is assembled in a temporary folder beside the published one and swapped in with
renames, so a failing notebook or template leaves the previous report byte for byte.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zspace import paths
from zspace.config import digest_of
from zspace.environment import figure_environment
from zspace.errors import BuildError
from zspace.files import sha256_of, swap_in, write_json_atomic
from zspace.notebook import RESULTS_FILE
from zspace.site.pages import Links, render_site
from zspace.versioning import code_digest

# An archived build's folder name: when it was built, then its report key.
BUILD_ID = re.compile(r"\d{8}-\d{6}-[0-9a-f]{8}")

MANIFEST = "manifest.json"
# In the profile's build folder: the sha256 of every file the last report published
# (the site, and the repository's figures/ and articles/ where it published there).
PUBLISHED = "published.json"
# Beside the committed articles: the keys the committed report was built under.
PROVENANCE = "provenance.json"
# The code that renders and publishes the site; the report key covers it and the
# templates, and nothing of the engine that runs the build.
SITE_CODE = ("zspace/site", "zspace/files.py", "zspace/environment.py")


@dataclass(frozen=True)
class NotebookOutput:
    """What one executed notebook contributes to the site.

    Attributes:
        name: The notebook's name (``20_vae_generation``).
        folder: Its output folder: the executed notebook, figures, ``results.json``.
        notebook_file: The executed notebook's file name in ``folder``.
        figures: Catalogue id -> figure file name.
        site: Folders of ``folder`` published into the site as they are.
        parameters: The parameters it ran with.
        models: Model name -> artifact key of the models it loaded.
        dataset: The data set's content hash.
        code: The digest of the library code it ran.
        key: Its stage key's digest.
    """

    name: str
    folder: Path
    notebook_file: str
    figures: dict[str, str]
    site: tuple[str, ...]
    parameters: dict[str, Any]
    models: dict[str, str]
    dataset: str
    code: str
    key: str


def report_key_parts(templates: Path, notebook_keys: dict[str, str],
                     publish: bool) -> dict[str, Any]:
    """What the report stage depends on: the site's code, the templates and every
    notebook's key."""
    return {
        "code": code_digest(*SITE_CODE),
        "templates": _folder_digest(templates),
        "notebooks": dict(notebook_keys),
        "publish": publish,
    }


def _folder_digest(folder: Path) -> str:
    return digest_of({p.relative_to(folder).as_posix(): p.read_text()
                      for p in sorted(folder.rglob("*")) if p.is_file()})


def manifest_entry(file: Path, output: NotebookOutput, figure_id: str = "") -> dict:
    """The provenance of one figure file: what made it, and the renderer and machine
    it was drawn on (which the figure diff names when two sides differ). A figure of
    one sweep point (``D2@kl.kl_factor=0.5``) also names its sweep and point."""
    entry = {"file": file.name, "sha256": sha256_of(file), "notebook": output.name,
             "parameters": output.parameters, "models": output.models,
             "dataset": output.dataset, "code": output.code,
             "environment": figure_environment()}
    _, mark, point = figure_id.partition("@")
    if mark:
        sweep, _, label = point.partition(".")
        entry["point"] = {"sweep": sweep, "label": label}
    return entry


def publish_site(root: Path, outputs: list[NotebookOutput], provenance: dict[str, Any],
                 templates: Path, *, archive_root: Path, build_id: str,
                 keep_archives: int, to_repository: bool,
                 deferred=None) -> Path:
    """Assemble the site from the notebooks' outputs and swap it in as ``root/site``.

    Args:
        root: The profile's build folder.
        outputs: Every notebook's output, in order.
        provenance: The index's provenance block (configuration, data card,
            packages, timings, ``report_key``).
        templates: The template folder.
        archive_root: Where the figures of each build are archived for ``diff``.
        build_id: This build's archive name.
        keep_archives: How many archives stay.
        to_repository: Also publish figures and Markdown articles into the
            repository's ``figures/`` and ``articles/``.
        deferred: A context manager factory under which the swaps run (the engine
            passes one that holds Ctrl-C back until the swap is whole).

    Returns:
        The published site folder.

    Raises:
        BuildError: Two notebooks write the same result, or a template fails; the
            published site is untouched.
    """
    deferred = deferred or contextlib.nullcontext
    staging = root / ".site.staging"
    try:
        context = _assemble(staging, outputs, provenance, templates)
        with deferred():
            swap_in(staging, root / "site")
            archive(root / "site" / "figures", archive_root, build_id, keep_archives)
    finally:  # after a failure or Ctrl-C, the half-made site goes
        shutil.rmtree(staging, ignore_errors=True)
    if to_repository:
        _publish_to_repository(root / "site", context, templates, deferred)
    write_json_atomic(root / PUBLISHED, published_files(root, to_repository))
    return root / "site"


def published_files(root: Path, to_repository: bool) -> dict[str, dict[str, str]]:
    """The sha256 of each file of ``root/site`` (by its path in ``root``) and, with
    ``to_repository``, of the repository's ``figures/`` and ``articles/``."""
    def hashes(base: Path, folders: list[Path]) -> dict[str, str]:
        return {file.relative_to(base).as_posix(): _sha256(file)
                for folder in folders for file in sorted(folder.rglob("*"))
                if file.is_file()}

    return {"site": hashes(root, [root / "site"]),
            "repository": hashes(paths.ROOT, [paths.FIGURES, paths.ARTICLES]
                                 if to_repository else [])}


def published_damage(root: Path) -> str:
    """What is wrong with the last published report of the profile folder ``root``:
    the first file that is missing or differs from its recorded hash; "" where
    every file is there and whole."""
    try:
        record = json.loads((root / PUBLISHED).read_text())
        files = [(where, name, digest) for where in ("site", "repository")
                 for name, digest in record[where].items()]
    except (OSError, ValueError, KeyError, AttributeError, TypeError):
        return f"no readable record of the published files ({PUBLISHED})"
    for where, name, digest in files:
        file = (root if where == "site" else paths.ROOT) / name
        shown = name if where == "site" else f"{name} (in the repository)"
        if not file.is_file():
            return f"{shown} is missing"
        if _sha256(file) != digest:
            return f"{shown} differs from what the report published"
    return ""


# sha256 by (file, size, modification time): the plan checks the published files
# after every layer of a build, and reads each unchanged file once per process.
_HASHES: dict[tuple[str, int, int], str] = {}


def _sha256(file: Path) -> str:
    stat = file.stat()
    key = (str(file), stat.st_size, stat.st_mtime_ns)
    if key not in _HASHES:
        _HASHES[key] = sha256_of(file)
    return _HASHES[key]


def _assemble(staging: Path, outputs: list[NotebookOutput], provenance: dict,
              templates: Path) -> dict[str, Any]:
    shutil.rmtree(staging, ignore_errors=True)
    (staging / "figures").mkdir(parents=True)
    (staging / "notebooks").mkdir()
    manifest, results = {}, {}
    for output in outputs:
        shutil.copy2(output.folder / output.notebook_file,
                     staging / "notebooks" / output.notebook_file)
        results.update(_merge_results(results, output.folder / RESULTS_FILE,
                                      output.name))
        for figure_id, file in output.figures.items():
            shutil.copy2(output.folder / file, staging / "figures" / file)
            manifest[figure_id] = manifest_entry(staging / "figures" / file, output,
                                                 figure_id)
        for name in output.site:  # published as they are (the explorer's bundles)
            shutil.copytree(output.folder / name, staging / name)
    manifest = dict(sorted(manifest.items()))
    write_json_atomic(staging / "figures" / MANIFEST, manifest)
    context = {"results": results, "manifest": manifest, "provenance": provenance,
               "notebook_keys": {output.name: output.key for output in outputs}}
    render_site(staging, context, Links(), templates)
    return context


def _merge_results(results: dict, file: Path, notebook: str) -> dict:
    new = json.loads(file.read_text())
    clash = sorted(set(new) & set(results))
    if clash:
        raise BuildError(f"notebook {notebook} writes result {clash[0]}, which another "
                         "notebook writes too")
    return new


def _publish_to_repository(site: Path, context: dict, templates: Path,
                           deferred) -> None:
    """Copy figures and Markdown articles of the default profile into the repository."""
    staging = paths.ROOT / ".figures.staging"
    articles = paths.ROOT / ".articles.staging"
    try:
        _stage_repository(site, context, templates, staging, articles)
        with deferred():
            swap_in(staging, paths.FIGURES)
            swap_in(articles, paths.ARTICLES)
    finally:  # after a failure or Ctrl-C, nothing half-made stays in the checkout
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(articles, ignore_errors=True)


def committed_explorer_link(site: Path) -> str:
    """The committed Markdown's link to the explorer, which is HTML only: into the
    site of ``site``'s profile where a build without ``--build-dir`` puts it, so
    that a build made elsewhere (``/tmp/...``) commits no link out of the
    repository."""
    return os.path.relpath(paths.BUILD / site.parent.name / site.name
                           / "explorer.html", paths.ARTICLES)


def _stage_repository(site: Path, context: dict, templates: Path, staging: Path,
                      articles: Path) -> None:
    shutil.rmtree(staging, ignore_errors=True)
    copy_figures(site / "figures", staging, context["manifest"])
    shutil.rmtree(articles, ignore_errors=True)
    articles.mkdir()
    render_site(articles, context, Links(figures="../figures", notebooks="../analysis",
                                         explorer=committed_explorer_link(site)),
                templates, html_pages=False)
    # What the committed report was made from, for tests/test_committed_report.py.
    write_json_atomic(articles / PROVENANCE, {
        "report_key": context["provenance"]["report_key"],
        "notebooks": context["notebook_keys"],
        "articles": {p.name: sha256_of(p) for p in sorted(articles.glob("*.md"))},
    })


def copy_figures(source: Path, target: Path, manifest: dict[str, dict]) -> None:
    """Copy the figures named in ``manifest`` and the manifest itself to ``target``."""
    target.mkdir(parents=True, exist_ok=True)
    for entry in manifest.values():
        shutil.copy2(source / entry["file"], target / entry["file"])
    write_json_atomic(target / MANIFEST, manifest)


def archive(figures: Path, archive_root: Path, build_id: str, keep: int) -> Path:
    """Keep a copy of a build's figures and manifest under ``archive_root/build_id``.

    Only the ``keep`` newest archives stay; older ones are removed.
    """
    target = archive_root / build_id
    staging = archive_root / f".{build_id}.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(figures, staging)
    swap_in(staging, target)
    # Only folders named like a build id (20261206-231500-1a2b3c4d): never
    # something else that happens to sit there.
    archives = sorted((p for p in archive_root.iterdir()
                       if p.is_dir() and BUILD_ID.fullmatch(p.name)),
                      key=lambda p: p.stat().st_mtime_ns)
    for old in archives[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return target
