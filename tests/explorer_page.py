"""Explorer pages around decoders built on the spot, opened in headless Chromium.

The browser test and ``benchmarks/explorer.py`` use these: no build and no training,
just a decoder of the configured architecture with random weights and batch
statistics (rounded to float16, as the published models are), a PCA frame fitted to
random codes, and the page rendered around their bundles.
"""

from __future__ import annotations

import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from tests.browser import FLAGS, ensure_chromium
from zspace.config import ModelConfig
from zspace.explorer.bundle import Geometry, Start, bundle_object, write_bundle
from zspace.explorer.program import export_decoder
from zspace.latent.pca_ellipse import PcaEllipseSampler
from zspace.site.explorer import FOLDER, standalone_page

LEVEL, FACT = 2.35, 0.7


def random_decoder(config: ModelConfig, image_size: int, seed: int):
    """A decoder with random weights and batch statistics, rounded to float16."""
    from zspace.networks.architecture import build_decoder

    rng = np.random.default_rng(seed)
    decoder = build_decoder(config, (image_size, image_size, 3))
    for weight in decoder.weights:
        shape, path = tuple(weight.shape), weight.path
        if "moving_variance" in path:
            value = rng.uniform(0.3, 3.0, shape)
        elif "moving_mean" in path or "beta" in path:
            value = rng.normal(0.0, 0.5, shape)
        elif "gamma" in path:
            value = rng.uniform(0.5, 1.5, shape)
        else:  # kernels and biases: wide enough that the sigmoid's ends are reached
            fan_in = int(np.prod(shape[:-1])) if len(shape) > 1 else 1
            value = rng.normal(0.0, 1.5 / np.sqrt(fan_in), shape)
        weight.assign(value.astype(np.float16).astype(np.float32))
    return decoder


def model_bundle(folder: Path, name: str, label: str, decoder, seed: int,
                 n_components: int = 20) -> tuple[dict, Geometry]:
    """Write the bundle of ``decoder`` with a frame fitted to random codes.

    Returns:
        The model's entry for the page, and its geometry.
    """
    rng = np.random.default_rng(seed)
    z_dim = int(decoder.input_shape[-1])
    n_components = min(n_components, z_dim)
    spreads = 2.0 * np.exp(-np.arange(z_dim) / (z_dim / 4)) + 0.3
    codes = rng.standard_normal((max(600, 3 * n_components), z_dim)) * spreads
    sampler = PcaEllipseSampler.fit(codes, n_components, LEVEL, FACT)
    geometry = Geometry.of_sampler(sampler)
    starts = [Start("normal", "N(0, I)", "samplers", rng.standard_normal(z_dim)),
              Start("pca_ellipse", "PCA ellipse", "samplers",
                    sampler.sample(1, rng)[0]),
              Start("code", "a code", "real images", codes[0],
                    rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)),
              Start("origin", "the origin", "reference", np.zeros(z_dim))]
    radius = geometry.mahalanobis_radius(codes)
    bundle = bundle_object(name, label, export_decoder(decoder), geometry, starts,
                           extra={"key": f"random-{seed}", "typical_radius": {
                               "median": float(np.median(radius)),
                               "p95": float(np.quantile(radius, 0.95))}})
    written = write_bundle(folder / FOLDER / f"{name}.js", bundle)
    entry = {"name": name, "label": label, **written, "z_dim": z_dim,
             "weights_dtype": "float16", "key": f"random-{seed}"}
    return entry, geometry


def write_page(folder: Path, entries: list[dict], image_size: int,
               n_components: int = 20) -> Path:
    """The explorer page for bundles already in ``folder/explorer``."""
    return standalone_page(folder, entries, image_size=image_size, n_points=600,
                           n_sliders=8, slider_range=5.0, marks=[2.2, 2.35],
                           max_scale=4.0, pca_components=n_components, level=LEVEL,
                           fact=FACT, fit_within=0.0)


@contextmanager
def opened(page_file: Path):
    """Yield ``(page, events)`` for the page opened from the file system.

    ``events`` collects every request's URL (``requests``), failed requests and
    console errors or uncaught exceptions (``errors``).
    """
    from playwright.sync_api import sync_playwright

    profile = tempfile.mkdtemp(prefix="zspace-chromium-")
    events: dict[str, list[str]] = {"requests": [], "errors": []}
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch_persistent_context(
                profile, executable_path=ensure_chromium(), args=FLAGS, headless=True,
                viewport={"width": 1200, "height": 1000})
            page = browser.new_page()
            page.on("request", lambda r: events["requests"].append(r.url))
            page.on("requestfailed",
                    lambda r: events["errors"].append(f"failed: {r.url} {r.failure}"))
            page.on("console", lambda m: m.type == "error" and events["errors"].append(
                f"console: {m.text}"))
            page.on("pageerror", lambda e: events["errors"].append(f"page: {e}"))
            page.goto(page_file.resolve().as_uri())
            page.evaluate("zspaceExplorer.ready")
            yield page, events
            browser.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def decode_in_page(page, name: str, z: np.ndarray, shape) -> np.ndarray:
    """The page's float images (n, h, w, c) of z-vectors (n, z_dim)."""
    flat = page.evaluate("([name, points]) => zspaceExplorer.decode(name, points)",
                         [name, np.asarray(z, np.float64).tolist()])
    return np.asarray(flat, np.float32).reshape(len(z), *shape)


def canvas_pixels(page) -> np.ndarray:
    """The decoded image on the page's canvas, uint8 (h, w, 3)."""
    rgba = page.evaluate("""() => {
        const c = document.getElementById('zx-face');
        const data = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        return Array.from(data);
    }""")
    size = int(np.sqrt(len(rgba) // 4))
    return np.asarray(rgba, np.uint8).reshape(size, size, 4)[..., :3]


def next_frame(page) -> None:
    """Wait until the page has drawn what the last input scheduled."""
    page.evaluate("new Promise(r => requestAnimationFrame(() => "
                  "requestAnimationFrame(r)))")
