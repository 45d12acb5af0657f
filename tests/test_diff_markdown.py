"""The figure diff's Markdown summary for a pull-request comment."""

from __future__ import annotations

import re
from urllib.parse import unquote

from PIL import Image

from tests.test_diff import (  # noqa: F401 (repository is a fixture)
    diff_folders,
    picture,
    pipeline,
    repository,
    write_figures,
)
from zspace.diff import figure_diff
from zspace.diff.markdown import DEFAULT_NAME, THUMBNAIL_WIDTH

LINK = re.compile(r"\]\(([^)\s]+)\)")


def test_two_revisions_summary_links_only_files_that_exist(repository, tmp_path):  # noqa: F811
    target = tmp_path / "pr" / "summary.md"
    result, _ = figure_diff("HEAD~1", "HEAD", repo=repository,
                            build_root=tmp_path / "build", markdown=target)
    assert result.exit_code == 1
    text = target.read_text()
    links = LINK.findall(text)
    assert len(links) == 3  # X2's before, after and difference
    for link in links:
        assert "://" not in link and not link.startswith("/")
        file = target.parent / unquote(link)
        assert file.is_file(), link
        with Image.open(file) as image:
            assert image.width <= THUMBNAIL_WIDTH
    rows = [line for line in text.splitlines() if line.startswith("| **")]
    assert len(rows) == 1 and rows[0].startswith("| **X2** | changed | content")
    assert "parameters: points 5 -> 7" in rows[0]
    assert "X1" not in text  # unchanged: no row, no image
    assert sorted(p.name for p in (target.parent / "summary-images").iterdir()) == [
        "X2-after.png", "X2-before.png", "X2-difference.png"]


def test_folder_target_added_removed_and_a_clean_rerun(tmp_path):
    old = write_figures(tmp_path / "a", {"X1": picture(1), "X2": picture(2)})
    new = write_figures(tmp_path / "b", {"X1": picture(1), "X3": picture(3)})
    folder = tmp_path / "summary"
    done = pipeline(str(old), str(new), "--build-dir", str(tmp_path / "build"),
                    "--markdown", str(folder))
    assert done.returncode == 1, done.stderr
    text = (folder / DEFAULT_NAME).read_text()
    assert "| **X2** | removed |" in text and "| **X3** | added |" in text
    for link in LINK.findall(text):
        assert (folder / unquote(link)).is_file(), link
    images = folder / "figure-diff-images"
    assert sorted(p.name for p in images.iterdir()) == ["X2-before.png",
                                                        "X3-after.png"]
    # Nothing changed: the table and the old thumbnails go, other files stay.
    (images / "notes.txt").write_text("mine")
    diff_folders(tmp_path, old, old, markdown=folder)
    assert "No figure changed beyond the tolerance." in (folder / DEFAULT_NAME
                                                         ).read_text()
    assert [p.name for p in images.iterdir()] == ["notes.txt"]


def test_pipes_in_a_reason_do_not_break_the_table(tmp_path):
    old = write_figures(tmp_path / "a", {"X1": picture(1)})
    new = write_figures(tmp_path / "b", {"X1": picture(2)},
                        X1={"parameters": {"points": "a|b"}})
    target = tmp_path / "s.md"
    diff_folders(tmp_path, old, new, markdown=target)
    row = next(line for line in target.read_text().splitlines()
               if line.startswith("| **X1**"))
    assert '"a\\|b"' in row
    assert row.count(" | ") == 8  # nine cells
