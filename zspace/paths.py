"""The repository's folders, named once. Nothing else builds paths from ``__file__``."""

from pathlib import Path

from zspace.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = ROOT / "configs"
ANALYSIS = ROOT / "analysis"
REPORT_TEMPLATES = ROOT / "report"
FIGURES = ROOT / "figures"
ARTICLES = ROOT / "articles"  # the default profile's Markdown articles, committed
BENCHMARKS = ROOT / "benchmarks"
DOCS = ROOT / "docs"
# Trained weights committed to the repository, one folder per profile.
COMMITTED_MODELS = ROOT / "models"

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


def set_cache_dir(base: Path | None = None) -> Path:
    """Folder of sample sets (``zspace.samplesets``), one sub-folder per set key."""
    return build_dir(base) / "cache" / "sets"


def sample_set(base: Path | None, sampler: str, key: str) -> Path:
    """The folder of one sample set: ``cache/sets/<sampler>-<key>/``."""
    return inside(set_cache_dir(base), f"{sampler}-{key}")


def inside(root: Path, *parts: str) -> Path:
    """``root / parts``, checked to resolve to a path strictly inside ``root``.

    Names that come from the user (a profile, a model variant) must never reach
    outside their folder, whatever they hold (``..``, ``/tmp/x``, an empty name).

    Raises:
        ConfigError: The path resolves to ``root`` itself or outside it.
    """
    path = Path(root).joinpath(*parts)
    resolved, top = path.resolve(), Path(root).resolve()
    if resolved == top or not resolved.is_relative_to(top):
        raise ConfigError(f"{path} is not inside {root}: a name may not be a path "
                          f"({'/'.join(parts)!r})")
    return path


def profile_dir(base: Path | None, profile: str) -> Path:
    """A profile's build folder, ``build/<profile>/``: notebooks, site, log, lock."""
    return inside(build_dir(base), profile)


def data_cache_entry(base: Path | None, source: str, key: str) -> Path:
    """The cache entry of one prepared data set: ``cache/data/<source>-<key>/``."""
    return data_cache_dir(base) / f"{source}-{key}"


def model_artifact(base: Path | None, name: str, key: str) -> Path:
    """The artifact folder of model ``name`` trained under ``key``:
    ``cache/models/<name>-<key>/``."""
    return inside(model_cache_dir(base), f"{name}-{key}")


def partial(folder: Path) -> Path:
    """Where ``folder`` is assembled (and a training run keeps its checkpoints) before
    it is renamed into place: ``<folder>.partial`` beside it."""
    return folder.with_name(folder.name + ".partial")


def kernel_dir(base: Path | None) -> Path:
    """Compiled TensorFlow kernels of the speed options, built on first use."""
    return build_dir(base) / "kernels"
