"""The repository's folders, named once. Nothing else builds paths from ``__file__``."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = ROOT / "configs"
ANALYSIS = ROOT / "analysis"
REPORT_TEMPLATES = ROOT / "report"
FIGURES = ROOT / "figures"
ARTICLES = ROOT / "articles"  # the default profile's Markdown articles, committed
BENCHMARKS = ROOT / "benchmarks"
DOCS = ROOT / "docs"
# Trained weights published with the repository, one folder per profile.
PUBLISHED_MODELS = ROOT / "models"

# Everything generated and not published lives under one ignored folder.
BUILD = ROOT / "build"


def build_dir(base: Path | None = None) -> Path:
    """Return the build folder, ``base`` if given, else the repository's ``build/``."""
    return Path(base) if base is not None else BUILD


def data_cache_dir(base: Path | None = None) -> Path:
    """Folder of cached, decoded data sets (uint8 ``.npy``)."""
    return build_dir(base) / "cache" / "data"


def model_cache_dir(base: Path | None = None) -> Path:
    """Folder of trained model artifacts, one sub-folder per artifact key."""
    return build_dir(base) / "cache" / "models"
