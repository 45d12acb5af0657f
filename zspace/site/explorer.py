"""The explorer page of the HTML report: the build's decoders, run in the browser.

The notebook ``80_explorer`` writes one bundle script per model into its ``explorer/``
folder and records ``results["explorer"]`` (models, files, sizes, slider settings).
The report stage copies that folder into the site (the notebook declares it under
``site`` in its metadata) and, here, adds the page itself: ``explorer.html``, rendered
from ``report/explorer.html.j2`` inside the common layout, and the interpreter and
stylesheet beside the bundles. The Markdown pages link to it; it has no Markdown
version, since a code host would show it but could not run it.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

PAGE = "explorer"
TITLE = "Latent-space explorer"
FOLDER = "explorer"  # beside the page: the bundles, the interpreter, the stylesheet
STATIC = ("explorer.js", "explorer.css")


def has_explorer(context: dict[str, Any]) -> bool:
    """Whether this build's notebooks made an explorer."""
    return "explorer" in context.get("results", {})


def render_page(site: Path, env: jinja2.Environment, context: dict[str, Any],
                nav: list[tuple[str, str]], templates: Path) -> Path:
    """Write ``explorer.html`` and copy the interpreter and stylesheet beside it.

    Args:
        site: The site folder; ``site/explorer/`` already holds the bundles.
        env: The HTML environment (autoescaping) of the other pages.
        context: The template variables (``results["explorer"]`` among them).
        nav: The navigation entries of the layout.
        templates: The template folder.

    Returns:
        The page written.
    """
    explorer = context["results"]["explorer"]
    page_config = {
        "folder": FOLDER,
        "models": [{"name": m["name"], "label": m["label"], "file": m["file"]}
                   for m in explorer["models"]],
        "n_sliders": explorer["n_sliders"],
        "slider_range": explorer["slider_range"],
        "marks": explorer["marks"],
    }
    body = env.get_template("explorer.html.j2").render(
        page_config=page_config, folder=FOLDER, **context)
    text = env.get_template("layout.html.j2").render(
        body=Markup(body), nav=nav, current=PAGE, **context)
    path = site / f"{PAGE}.html"
    path.write_text(text)
    (site / FOLDER).mkdir(exist_ok=True)
    for name in STATIC:
        shutil.copyfile(templates / name, site / FOLDER / name)
    return path


def standalone_page(site: Path, models: list[dict[str, Any]],
                    templates: Path | None = None, **settings: Any) -> Path:
    """The explorer page alone, for bundles written outside a build.

    Benchmarks and tests write bundles of decoders they build themselves into
    ``site/explorer/`` and render the page around them with this.

    Args:
        site: The folder of the page; ``site/explorer/`` holds the bundles.
        models: One entry per bundle, as the notebook records them (``name``,
            ``label``, ``file``, ``bytes``, ``z_dim``, ``weights_dtype``, ``key``).
        templates: The template folder (default: the repository's).
        **settings: The rest of ``results["explorer"]`` (``image_size``,
            ``n_points``, ``n_sliders``, ``slider_range``, ``marks``, ``max_scale``,
            ``pca_components``, ``level``, ``fact``, ``fit_within``).

    Returns:
        The page written.
    """
    from zspace import paths
    from zspace.site.templates import template_environment

    templates = templates or paths.REPORT_TEMPLATES
    context = {"results": {"explorer": {"models": models, **settings}},
               "provenance": {"config": {"name": "standalone"},
                              "dataset": {"content_hash": "none"}}}
    env = template_environment(templates, autoescape=True)
    shutil.copyfile(templates / "style.css", site / "style.css")
    return render_page(site, env, context, [(PAGE, TITLE)], templates)
