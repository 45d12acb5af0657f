"""The committed articles read in one sitting: short sentences, no over-precise numbers.

Running prose is counted as a reader meets it: headings, tables, code, images and lines
of HTML are left out; folded ``<details>`` text, list items and figure captions count.
A sentence ends at '.', '?' or '!' before a space and a capital letter, or at the end
of a paragraph. A number in prose is over-precise when it has more than three
significant digits (0.01358, 2,268.4); years, figure ids and counts of whole things
(20,000 images) are integers and are not counted.
"""

from __future__ import annotations

import re
import statistics

import pytest

from zspace import paths

MAX_WORDS = 40  # in any sentence
MAX_MEAN = 18  # words per sentence, per page
PAGES = sorted(paths.ARTICLES.glob("*.md"))

_SKIP = ("#", "|", "![", "<", "    ")
_NUMBER = re.compile(r"(?<![\w.])(\d[\d,]*\.\d+(?:e[-+]?\d+)?|\d+(?:\.\d+)?e[-+]?\d+)")


def paragraphs(text: str) -> list[str]:
    """The running prose of a Markdown page, one string per paragraph."""
    text = re.sub(r"```.*?```", " ", text, flags=re.S)
    found, current = [], []
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith(_SKIP) or stripped == "---":
            if current:
                found.append(" ".join(current))
                current = []
            continue
        current.append(re.sub(r"^[-*] |^\d+\. ", "", stripped))
    if current:
        found.append(" ".join(current))
    return found


def sentences(paragraph: str) -> list[str]:
    # A link reads as its text.
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", paragraph)
    text = re.sub(r"`[^`]*`", "X", text)
    parts = re.split(r"(?<=[.?!])\s+(?=[A-Z(\"'])", text)
    return [part for part in parts if re.search(r"[A-Za-z]", part)]


def over_precise(sentence: str) -> list[str]:
    found = []
    for match in _NUMBER.finditer(sentence):
        digits = re.sub(r"\D", "", match.group(1).split("e")[0]).lstrip("0")
        if len(digits) > 3:
            found.append(match.group(1))
    return found


def page_sentences(page) -> list[str]:
    return [s for p in paragraphs(page.read_text()) for s in sentences(p)]


def test_the_counting_sees_what_a_reader_reads():
    text = ("# Title\n\nOne short sentence here. Another one follows it.\n\n"
            "| a | table |\n| --- | --- |\n| 0.123456 | skipped |\n\n"
            "- A list item counts.\n\n<details>\n\nFolded text counts: 0.01358.\n\n"
            "</details>\n\n![Figure](x.png)\n")
    found = [s for p in paragraphs(text) for s in sentences(p)]
    assert found == ["One short sentence here.", "Another one follows it.",
                     "A list item counts.", "Folded text counts: 0.01358."]
    assert over_precise(found[-1]) == ["0.01358"]
    assert over_precise("20,000 images in 2017, 88.1 % of them, 0.75") == []


def test_the_committed_report_has_its_pages():
    names = {page.stem for page in PAGES}
    assert {"index", "methods"} <= names and any(n.startswith("A-") for n in names)


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_sentences_are_short(page):
    found = page_sentences(page)
    lengths = [len(s.split()) for s in found]
    longest = max(found, key=lambda s: len(s.split()))
    assert max(lengths) <= MAX_WORDS, (
        f"{page.name}: a sentence of {max(lengths)} words (at most {MAX_WORDS}): "
        f"{longest}")
    assert statistics.mean(lengths) <= MAX_MEAN, (
        f"{page.name}: {statistics.mean(lengths):.1f} words per sentence on average "
        f"(at most {MAX_MEAN})")


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_numbers_in_prose_have_at_most_three_significant_digits(page):
    found = [(n, s) for s in page_sentences(page) for n in over_precise(s)]
    assert not found, (f"{page.name}: over-precise numbers in prose: "
                       + "; ".join(f"{n} in '{s[:80]}'" for n, s in found[:5]))
