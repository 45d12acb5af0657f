"""Headless Chromium (Debian's package) driven by Playwright, for the browser tests.

Playwright never downloads a browser here: it launches /usr/bin/chromium, which the
tests install with apt-get when the machine lacks it.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import unquote, urlparse

CHROMIUM = "/usr/bin/chromium"
# Playwright adds --headless itself (headless=True) and the profile folder.
FLAGS = ["--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--disable-quic"]


def ensure_chromium() -> str:
    """Path of Debian's chromium, installing the package first if it is missing."""
    if not Path(CHROMIUM).exists():
        subprocess.run(["apt-get", "update", "-q"], check=True, capture_output=True)
        subprocess.run(["apt-get", "install", "-y", "-q", "chromium"], check=True,
                       capture_output=True)
    return CHROMIUM


def check_pages(pages: list[Path], screenshots: Path) -> dict[str, dict]:
    """Open each page from the file system and inspect it like a reader would.

    Returns:
        Per page name: ``images`` (src -> natural width), ``broken_links`` (internal
        links whose target file or anchor does not exist), ``screenshot`` (path).
    """
    from playwright.sync_api import sync_playwright

    screenshots.mkdir(parents=True, exist_ok=True)
    profile = tempfile.mkdtemp(prefix="zspace-chromium-")
    report = {}
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch_persistent_context(
                profile, executable_path=ensure_chromium(), args=FLAGS, headless=True,
                viewport={"width": 1200, "height": 900})
            page = browser.new_page()
            for path in pages:
                page.goto(path.resolve().as_uri())
                page.wait_for_load_state("load")
                images = page.eval_on_selector_all(
                    "img",
                    "els => els.map(e => [e.getAttribute('src'), e.naturalWidth])")
                links = page.eval_on_selector_all(
                    "a[href]", "els => els.map(e => e.href)")
                shot = screenshots / f"{path.stem}.png"
                page.screenshot(path=str(shot), full_page=True)
                report[path.name] = {
                    "images": dict(images),
                    "broken_links": [link for link in links
                                     if not _resolves(link, page)],
                    "screenshot": shot,
                }
            browser.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    return report


def _resolves(link: str, page) -> bool:
    parsed = urlparse(link)
    if parsed.scheme != "file":
        return True  # not internal
    target = Path(unquote(parsed.path))
    if not target.exists():
        return False
    if parsed.fragment and target.suffix == ".html":
        html = target.read_text()
        return f'id="{parsed.fragment}"' in html
    return True
