"""Golden trainings guard the training-semantics version that model keys carry
instead of the bytes of the code."""

import io
import json
import os
import re
import shutil
import subprocess
import sys
import tokenize
from pathlib import Path

import pytest

from zspace import paths
from zspace.config import load_config
from zspace.data.dataset import DatasetCard
from zspace.store import keys
from zspace.training import golden

pytestmark = pytest.mark.slow

# What the copy prints: the golden check's verdict, then every default model's key.
CHECK = """
import json, sys
from zspace.config import load_config
from zspace.data.dataset import DatasetCard
from zspace.store import keys
from zspace.training import golden
config = load_config(sys.argv[1])
card = DatasetCard("synthetic", "x", 10, 10, 64, "0" * 64, ("a",))
print(json.dumps({v.name: keys.artifact_key(v.spec(card))
                  for v in keys.all_variants(config)}))
print(golden.__file__)
golden.check(sys.argv[2].split(","), sys.argv[3])
print("golden: match")
"""


def default_keys() -> dict[str, str]:
    config = load_config(str(paths.ROOT / "configs" / "default.toml"))
    card = DatasetCard("synthetic", "x", 10, 10, 64, "0" * 64, ("a",))
    return {v.name: keys.artifact_key(v.spec(card)) for v in keys.all_variants(config)}


def test_the_golden_trainings_match_the_stored_numbers(tmp_path):
    golden.check(build_root=tmp_path)


def test_stored_numbers_are_of_this_version_and_every_case():
    stored = json.loads(golden.GOLDEN_FILE.read_text())
    assert stored["semantics"] == keys.TRAINING_SEMANTICS
    assert set(stored["cases"]) == set(golden.cases())
    assert golden.spread(stored["cases"]) == pytest.approx(stored["spread"])


def cosmetic(source: str) -> str:
    """``source`` with a comment and a docstring sentence added and a line reflowed:
    broken after the first comma inside brackets that has more code after it."""
    lines = source.splitlines(keepends=True)
    depth = 0
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type != tokenize.OP:
            continue
        depth += (token.string in "([{") - (token.string in ")]}")
        row, column = token.end
        rest = lines[row - 1][column:].strip()
        if token.string == "," and depth > 0 and rest and not rest.startswith("#"):
            line = lines[row - 1]
            lines[row - 1] = line[:column] + "\n" + " " * 12 + line[column:].lstrip()
            break
    else:
        raise AssertionError("no line to reflow")
    text = "# A comment that changes nothing.\n" + "".join(lines)
    return text.replace('"""', '"""A sentence that changes nothing. ', 1)


def copy_package(tmp_path: Path, edit) -> Path:
    root = tmp_path / "copy"
    shutil.copytree(paths.ROOT / "zspace", root / "zspace",
                    ignore=shutil.ignore_patterns("__pycache__"))
    for module in keys.WEIGHT_CODE:
        file = root / module
        file.write_text(edit(module, file.read_text()))
    return root


def run_copy(root: Path, cases: list[str], work: Path):
    env = {**os.environ, "PYTHONPATH": str(root), "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.run(
        [sys.executable, "-c", CHECK, str(paths.ROOT / "configs" / "default.toml"),
         ",".join(cases), str(work)],
        capture_output=True, text=True, env=env, cwd=root, timeout=600)


def test_cosmetic_edits_keep_the_numbers_and_every_key(tmp_path):
    root = copy_package(tmp_path, lambda module, source: cosmetic(source))
    assert "A comment that changes nothing" in (root / keys.WEIGHT_CODE[0]).read_text()
    done = run_copy(root, ["ae", "vae", "judge"], tmp_path / "build")
    assert done.returncode == 0, done.stderr[-3000:]
    found_keys, module = done.stdout.splitlines()[:2]
    assert json.loads(found_keys) == default_keys()
    assert Path(module).is_relative_to(root)  # the copy ran, not the package
    assert "golden: match" in done.stdout


def test_a_changed_slope_fails_and_names_the_version_to_bump(tmp_path):
    def steeper(module, source):
        if module.endswith("architecture.py"):
            changed = re.sub(r"^LEAKY_SLOPE = .*$", "LEAKY_SLOPE = 0.2", source,
                             flags=re.M)
            assert changed != source
            return changed
        return source

    root = copy_package(tmp_path, steeper)
    done = run_copy(root, ["ae"], tmp_path / "build")
    assert done.returncode != 0
    assert "GoldenMismatch" in done.stderr
    assert (f"bump keys.TRAINING_SEMANTICS to {keys.TRAINING_SEMANTICS + 1}"
            in done.stderr)
    # The key itself does not see the change: the golden test is what guards it.
    found_keys, module = done.stdout.splitlines()[:2]
    assert json.loads(found_keys) == default_keys()
    assert Path(module).is_relative_to(root)
