"""The figure diff page in a real browser: committed figures against a rebuild.

The tiny two-notebook project publishes its figures into a temporary git repository,
they are committed, the project is rebuilt with one parameter changed, and
``figure_diff()`` compares the working figures with HEAD, as ``pipeline.py diff`` does.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from types import SimpleNamespace

import pytest

from tests.browser import FLAGS, check_pages, ensure_chromium
from tests.test_diff import build_tiny, tiny_project  # noqa: F401 (a fixture)
from zspace import paths
from zspace.diff import figure_diff
from zspace.site import publish as site_publish

ARTIFACTS = paths.ROOT / "test-artifacts" / "diff"


def git(repo, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


@pytest.fixture
def rebuilt(tiny_project, monkeypatch):  # noqa: F811
    """The diff page of the committed figures against a rebuild with bars=6."""
    repo = tiny_project
    # Publish into the temporary repository; the code digests still read the real one.
    public = {name: value for name, value in vars(paths).items()
              if not name.startswith("_")}
    monkeypatch.setattr(site_publish, "paths", SimpleNamespace(
        **public | {"ROOT": repo, "FIGURES": repo / "figures",
                    "ARTICLES": repo / "articles"}))
    build_tiny(repo, "build.publish=true")
    git(repo, "init", "-q")
    git(repo, "config", "user.email", "test@example.org")
    git(repo, "config", "user.name", "test")
    git(repo, "add", "figures", "articles")
    git(repo, "commit", "-q", "-m", "the published report")
    build_tiny(repo, "build.publish=true", "notebooks.second.bars=6")
    result, page = figure_diff(repo=repo, build_root=repo / "build")
    return result, page


@pytest.mark.browser
def test_diff_page_images_load_and_links_resolve(rebuilt):
    result, page = rebuilt
    assert {f.figure_id: f.status for f in result.figures} == {
        "X1": "unchanged", "X2": "changed"}
    checked = check_pages([page], ARTIFACTS)["index.html"]
    images = checked["images"]
    assert set(images) == {"a/X2-bars.png", "b/X2-bars.png", "heat/X2-bars.png"}
    assert all(width > 0 for width in images.values()), images
    assert checked["broken_links"] == []
    assert checked["screenshot"].stat().st_size > 10_000


@pytest.mark.browser
def test_diff_page_toggle_and_folded_unchanged(rebuilt):
    from playwright.sync_api import sync_playwright

    _, page_file = rebuilt
    profile = tempfile.mkdtemp(prefix="zspace-chromium-")
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch_persistent_context(
                profile, executable_path=ensure_chromium(), args=FLAGS, headless=True)
            page = browser.new_page()
            page.goto(page_file.resolve().as_uri())
            top = page.locator("#fig-X2 .stack img.b")
            opacity = "e => getComputedStyle(e).opacity"
            assert top.evaluate(opacity) == "0"
            page.locator("#fig-X2 .toggle button").click()
            assert top.evaluate(opacity) == "1"
            assert page.locator("#fig-X2 output").text_content() == "B"
            page.locator("#fig-X2 .toggle input").fill("30")
            assert page.locator("#fig-X2 output").text_content() == "70% A, 30% B"
            assert page.locator("details").evaluate("e => e.open") is False
            assert "X1" not in page.locator("details").inner_text()  # folded away
            browser.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)
