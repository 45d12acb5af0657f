"""The committed Markdown as a code host shows it: rendered by cmark-gfm with GitHub's
table and autolink extensions, no text turns into an e-mail link, every image and
link points into the repository (or is the documented explorer link into build/),
and every table is a table.

cmark-gfm is Debian's package, installed with apt-get where the machine lacks it (as
the browser tests install Chromium).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

from zspace import paths
from zspace.site import pages
from zspace.site.publish import committed_explorer_link

# The committed Markdown's one link out of the repository: the explorer, an HTML page
# of the default profile's build (README, "explorer.html").
EXPLORER = committed_explorer_link(paths.BUILD / "default" / "site")
# A GFM table's delimiter row: cells of dashes with optional colons, split by pipes.
DELIMITER = re.compile(r"^\s*\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?\s*$")


def ensure_cmark() -> str:
    """Path of Debian's cmark-gfm, installing the package first if it is missing."""
    if shutil.which("cmark-gfm") is None:
        subprocess.run(["apt-get", "update", "-q"], check=True, capture_output=True)
        subprocess.run(["apt-get", "install", "-y", "-q", "cmark-gfm"], check=True,
                       capture_output=True)
    return shutil.which("cmark-gfm")


def host_html(page: Path) -> str:
    """``page`` rendered as GitHub renders Markdown (tables, autolinks)."""
    return subprocess.run([ensure_cmark(), "-e", "table", "-e", "autolink", str(page)],
                          check=True, capture_output=True, text=True).stdout


class _Targets(HTMLParser):
    def __init__(self):
        super().__init__()
        self.targets: list[tuple[str, str]] = []  # (tag, href or src)
        self.tables = 0

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "a" and attributes.get("href") is not None:
            self.targets.append((tag, attributes["href"]))
        elif tag == "img" and attributes.get("src") is not None:
            self.targets.append((tag, attributes["src"]))
        elif tag == "table":
            self.tables += 1


def source_tables(text: str) -> int:
    """How many tables the Markdown source writes: delimiter rows under a header row,
    outside fenced code."""
    count, fenced, previous = 0, False, ""
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif not fenced and "|" in line and "|" in previous and DELIMITER.match(line):
            count += 1
        previous = line
    return count


def problems(page: Path, root: Path, allowed: set[str] = frozenset()) -> list[str]:
    """What a reader of ``page`` on a code host would find broken: mailto links, image
    or link targets outside ``root`` or missing (``allowed`` targets aside), and
    tables that do not render as tables."""
    parser = _Targets()
    parser.feed(host_html(page))
    found = []
    for tag, target in parser.targets:
        link = urlparse(target)
        if link.scheme == "mailto":
            found.append(f"{page.name}: {unquote(link.path)!r} became an e-mail link")
        elif target in allowed or (not link.path and link.fragment):
            continue
        elif link.scheme or link.netloc:
            found.append(f"{page.name}: {tag} {target} points out of the repository")
        else:
            resolved = (page.parent / unquote(link.path)).resolve()
            if not resolved.is_relative_to(root.resolve()) or not resolved.exists():
                found.append(f"{page.name}: {tag} {target} is not in the repository")
    written = source_tables(page.read_text())
    if parser.tables != written:
        found.append(f"{page.name}: {written} tables written, {parser.tables} "
                     "rendered as tables")
    return found


@pytest.mark.parametrize("page", sorted(paths.ARTICLES.glob("*.md")),
                         ids=lambda p: p.name)
def test_a_committed_page_renders_on_a_code_host_as_written(page):
    assert problems(page, paths.ROOT, {EXPLORER}) == []


def test_the_checks_catch_what_a_code_host_breaks(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("*Figure D2@kl.kl_factor=0.5.* A caption.\n\n"
                    "[notebook](missing.ipynb) and [out](https://example.org/x)\n\n"
                    "| a | b |\n| --- |\n| 1 | 2 |\n")
    found = problems(page, tmp_path)
    assert any("'D2@kl.kl_factor' became an e-mail link" in f for f in found)
    assert any("missing.ipynb is not in the repository" in f for f in found)
    assert any("https://example.org/x points out of the repository" in f
               for f in found)
    assert any("1 tables written, 0 rendered as tables" in f for f in found)


LEDGER = """
[[claim]]
id = "vae-faces"
article = "A"
claim = "A VAE's decoder makes faces from random vectors."
figure = "A4"
measure = "face rate"
number = "faces.rate"
format = "pct"
conditions = [{ rate = "faces", above = 0.5 }]
"""


def _entry(file: str) -> dict:
    return {"file": file, "notebook": "90_open_questions", "sha256": "0" * 64,
            "parameters": {}, "models": {}, "dataset": "0" * 16, "code": "c"}


def test_a_sweep_point_figure_and_the_ledger_render_as_written(tmp_path):
    """The real figure markup and the real ledger template, on a page whose figure
    of a sweep point has the id that cmark-gfm used to link as an e-mail address."""
    templates = tmp_path / "templates"
    (templates / "articles").mkdir(parents=True)
    shutil.copy(paths.REPORT_TEMPLATES / "claims.md.j2", templates)
    (templates / "claims.toml").write_text(LEDGER)
    (templates / "index.md.j2").write_text(
        '{% from "claims.md.j2" import ledger %}# Index\n\n'
        "{{ ledger(claims, with_article=true) }}\n")
    article = ('{% from "claims.md.j2" import article_claims %}# A\n\n'
               '{{ article_claims("A") }}\n'
               '{{ figure("A4", "Faces.") }}\n'
               '{{ figure("D2@kl.kl_factor=0.5", "kl_factor 0.5.") }}\n')
    (templates / "articles" / "A.md.j2").write_text(article)
    for key in ("B", "C"):
        (templates / "articles" / f"{key}.md.j2").write_text(f"# {key}\n")
    files = {"A4": "A4-faces.png", "D2@kl.kl_factor=0.5": "D2-kl@kl.kl_factor=0.5.png"}
    for folder in ("figures", "analysis", "articles"):
        (tmp_path / folder).mkdir()
    for file in files.values():
        (tmp_path / "figures" / file).write_bytes(b"png")
    (tmp_path / "analysis" / "90_open_questions.ipynb").write_text(json.dumps({}))
    context = {"results": {"faces": {"rate": 0.9, "low": 0.88, "high": 0.92}},
               "manifest": {i: _entry(f) for i, f in files.items()}}
    pages.render_site(tmp_path / "articles", context,
                      pages.Links(figures="../figures", notebooks="../analysis"),
                      templates, html_pages=False)
    page = tmp_path / "articles" / f"{pages.page_name('A')}.md"
    assert "*Figure D2 (kl_factor = 0.5).*" in page.read_text()
    index = tmp_path / "articles" / "index.md"
    assert "| holds | face rate 90 % |" in index.read_text()
    for rendered in (page, index):
        assert problems(rendered, tmp_path) == []
        assert "<table>" in host_html(rendered)
