"""Render the articles: Jinja2 sources in ``report/``, written out as HTML and Markdown.

Each article's prose is written once, as a Markdown template
(``report/articles/*.md.j2``). It is rendered twice: for Markdown as it is, for HTML
with autoescaping and then converted with Python-Markdown into the HTML layout.
``figure(id, caption)`` in a template gives the format's own figure markup, with the
figure's provenance one click away; ``claims`` holds the rows of the claims ledger
(``zspace.site.verdicts``) and ``figure_href(id, article)`` a link to a figure.
Templates render with ``StrictUndefined``: a number missing from the results stops the
build instead of leaving a blank.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import markdown
from markupsafe import Markup

from zspace import paths
from zspace.errors import BuildError
from zspace.site import claims, explorer, verdicts
from zspace.site.templates import markdown_text, template_environment

ARTICLES = {
    "A": "A VAE on faces: training and image creation",
    "B": "A plain AE's latent space and the curse of high dimensionality",
    "C": "Latent space fragmentation: making a plain AE generative",
    "D": "Questions the blog left open",
}
# Page file stems; stable, since readers bookmark them and the figure diff links them.
PAGES = {"A": "A-vae-faces", "B": "B-ae-latent-space", "C": "C-fragmentation",
         "D": "D-open-questions"}
# Article D exists where the configuration has a sweep its notebook reads.
SWEEP_ARTICLE = "D"
# The page that holds every method and caveat once; the articles link its sections.
METHODS = "methods"
METHODS_TITLE = "Methods"


def articles_of(context: dict) -> dict[str, str]:
    """The articles this build has: A to C always, D where a notebook measured a
    sweep (``results.open_questions.sweeps``)."""
    measured = context["results"].get("open_questions", {}).get("sweeps")
    return {a: t for a, t in ARTICLES.items() if a != SWEEP_ARTICLE or measured}


@dataclass(frozen=True)
class Links:
    """Where the rendered pages find figures, executed notebooks and the explorer
    page (relative)."""

    figures: str = "figures"
    notebooks: str = "notebooks"
    notebook_suffix: str = ".ipynb"
    explorer: str = "explorer.html"


def page_name(article: str) -> str:
    """File stem of an article page, e.g. ``A-vae-faces``."""
    return PAGES[article]


def figure_title(figure_id: str) -> str:
    """How captions name a figure: ``A6``, and a sweep point's figure
    (``D2@kl.kl_factor=0.5``) as ``D2 (kl_factor = 0.5)``, since a code host's
    Markdown takes ``D2@kl.kl_factor`` for an e-mail address and links it."""
    base, mark, point = figure_id.partition("@")
    if not mark:
        return figure_id
    settings = point.partition(".")[2].split(",")
    return f"{base} ({', '.join(s.replace('=', ' = ') for s in settings)})"


def _figure_markup(manifest: dict, links: Links, as_html: bool):
    def figure(figure_id: str, caption: str) -> str:
        if figure_id not in manifest:
            raise BuildError(f"the report cites figure {figure_id}, which no notebook "
                             "made")
        entry = manifest[figure_id]
        src = f"{links.figures}/{entry['file']}"
        notebook = f"{links.notebooks}/{entry['notebook']}{links.notebook_suffix}"
        title = figure_title(figure_id)
        if not as_html:
            title = markdown_text(title, for_html=False)
            return (f"![Figure {title}]({src})\n\n*Figure {title}.* {caption} "
                    f"([notebook]({notebook}), sha256 `{entry['sha256'][:12]}`)\n")
        parameters = ", ".join(f"{k}={v!r}" for k, v in entry["parameters"].items())
        models = ", ".join(f"{k} {v}" for k, v in entry["models"].items()) or "none"
        return Markup(
            f'\n<figure id="fig-{figure_id}">\n<a href="{html.escape(src)}">'
            f'<img src="{html.escape(src)}" alt="Figure {html.escape(title)}"></a>\n'
            f"<figcaption><b>Figure {html.escape(title)}.</b> {caption}\n"
            "<details><summary>provenance</summary><dl>"
            f'<dt>notebook</dt><dd><a href="{html.escape(notebook)}">'
            f'{html.escape(entry["notebook"])}</a></dd>'
            f"<dt>parameters</dt><dd>{html.escape(parameters) or 'defaults'}</dd>"
            f"<dt>models</dt><dd>{html.escape(models)}</dd>"
            f"<dt>dataset</dt><dd>{html.escape(entry['dataset'][:16])}</dd>"
            f"<dt>code</dt><dd>{html.escape(entry['code'])}</dd>"
            f"<dt>sha256</dt><dd>{html.escape(entry['sha256'][:16])}</dd>"
            "</dl></details></figcaption>\n</figure>\n")
    return figure


def claims_ledger(context: dict[str, Any], templates: Path) -> list[verdicts.Row]:
    """The rows of the claims ledger (``claims.toml`` in the template folder; none
    where a template folder has no ledger)."""
    ledger = templates / claims.LEDGER
    if not ledger.is_file():
        return []
    return verdicts.ledger(claims.load(ledger, ARTICLES), context["results"],
                           context["manifest"])


def _figure_href(manifest: dict, links: Links, as_html: bool):
    """Where a link to a figure of an article points: its place in the article's HTML
    page, or in Markdown (whose pages have no anchors for figures) the image."""
    def figure_href(figure_id: str, article: str) -> str:
        if as_html:
            return f"{page_name(article)}.html#fig-{figure_id}"
        return f"{links.figures}/{manifest[figure_id]['file']}"
    return figure_href


def render_site(site: Path, context: dict[str, Any], links: Links,
                templates: Path = paths.REPORT_TEMPLATES,
                html_pages: bool = True) -> list[Path]:
    """Write ``index`` and every article as Markdown (and HTML) into ``site``.

    Args:
        site: Output folder (must exist).
        context: Template variables: ``results``, ``manifest``, ``provenance``...
        links: Relative locations of figures and notebooks from the pages.
        templates: The template folder.
        html_pages: Also write the HTML pages and the stylesheet.

    Returns:
        The files written.

    Raises:
        BuildError: A template refers to a missing variable, result or figure, or
            the claims ledger is malformed or names a result that is missing.
    """
    articles = articles_of(context)
    pages = {"index": "index.md.j2",
             **{page_name(a): f"articles/{a}.md.j2" for a in articles}}
    nav = [("index", "Overview")] + [(page_name(a), f"{a}. {t}")
                                     for a, t in articles.items()]
    if (templates / f"{METHODS}.md.j2").is_file():  # a test's templates may lack it
        pages[METHODS] = f"{METHODS}.md.j2"
        nav.append((METHODS, METHODS_TITLE))
    with_explorer = html_pages and explorer.has_explorer(context)
    if with_explorer:
        nav.append((explorer.PAGE, explorer.TITLE))
    ledger = claims_ledger(context, templates)
    written = []
    for as_html in ([False, True] if html_pages else [False]):
        env = template_environment(templates, autoescape=as_html)
        env.globals.update(figure=_figure_markup(context["manifest"], links, as_html),
                           figure_href=_figure_href(context["manifest"], links,
                                                    as_html),
                           claims=ledger, page_name=page_name, articles=articles,
                           suffix=".html" if as_html else ".md",
                           explorer_href=links.explorer)
        for stem, template in pages.items():
            try:
                text = env.get_template(template).render(**context)
                if as_html:
                    # md_in_html: Markdown inside <details markdown="1"> (the
                    # index folds its long tables away); toc: headings get the
                    # ids a code host gives them, so "methods.html#variety" and
                    # "methods.md#variety" reach the same section.
                    body = Markup(markdown.markdown(
                        text, extensions=["tables", "md_in_html", "toc"]))
                    text = env.get_template("layout.html.j2").render(
                        body=body, nav=nav, current=stem, **context)
            except jinja2.UndefinedError as error:
                raise BuildError(f"report template {template}: {error.message}") \
                    from None
            except jinja2.TemplateError as error:
                raise BuildError(f"report template {template}: "
                                 f"{type(error).__name__}: {error}") from None
            path = site / f"{stem}{'.html' if as_html else '.md'}"
            path.write_text(text)
            written.append(path)
        if as_html and with_explorer:
            written.append(_render_explorer(site, env, context, nav, templates))
    if html_pages:
        (site / "style.css").write_text((templates / "style.css").read_text())
    return written


def _render_explorer(site: Path, env: jinja2.Environment, context: dict[str, Any],
                     nav: list[tuple[str, str]], templates: Path) -> Path:
    try:
        return explorer.render_page(site, env, context, nav, templates)
    except jinja2.UndefinedError as error:
        raise BuildError(f"report template explorer.html.j2: {error.message}") from None
    except jinja2.TemplateError as error:
        raise BuildError(f"report template explorer.html.j2: "
                         f"{type(error).__name__}: {error}") from None
