"""Data sources: synthetic faces, a local CelebA copy, or any image folder.

Each returns a :class:`Dataset`; :func:`load_dataset` adds a cache in front of them.
"""

from __future__ import annotations

import dataclasses
import logging
import sys
import time
from pathlib import Path

from zspace import paths
from zspace.config import DataConfig, digest_of
from zspace.data.cache import DamagedEntry, open_entry, save_entry
from zspace.data.dataset import Dataset, DatasetCard, content_hash
from zspace.versioning import code_digest

__all__ = ["Dataset", "DatasetCard", "cache_entry", "cache_key", "content_hash",
           "load_dataset"]

log = logging.getLogger(__name__)


def cache_key(config: DataConfig) -> str:
    """Key of the cache entry for ``config``: its settings, its source files and the
    data code.

    Raises:
        DataError: The source's path is wrong (checked before anything is decoded).
    """
    settings = dataclasses.asdict(config)
    settings.pop("workers")  # the number of processes does not change the result
    return digest_of({
        "settings": settings,
        "source_files": _source_fingerprint(config),
        "code": code_digest("zspace/data"),
    })


def cache_entry(config: DataConfig, build_root: Path | None = None) -> Path:
    """The cache folder of the data set of ``config`` (it may not exist yet).

    Raises:
        DataError: The source's path is wrong.
    """
    return paths.data_cache_entry(build_root, config.source, cache_key(config))


def _source_fingerprint(config: DataConfig) -> str:
    if config.source == "celeba":
        from zspace.data import celeba

        return celeba.fingerprint(celeba.locate(config.path))
    if config.source == "folder":
        from zspace.data import folder

        return folder.fingerprint(config.path)
    return "generated"


def load_dataset(
    config: DataConfig, build_root: Path | None = None, progress: bool = True
) -> Dataset:
    """Prepare the data set of ``config``, or open it from the cache.

    The first call decodes or generates the images and writes them as uint8 ``.npy``
    files under ``build/cache/data/<source>-<key>/``; later calls with the same key
    memory-map those files and return in about a second.

    Args:
        config: The data section of the configuration.
        build_root: The build folder (default: the repository's ``build/``).
        progress: Show progress bars on stderr.

    Returns:
        The data set, its arrays memory-mapped read-only from the cache.

    Raises:
        DataError: The source path is missing or not laid out as expected.
    """
    folder = cache_entry(config, build_root)
    try:
        cached = open_entry(folder)
    except DamagedEntry as error:
        log.warning("the data cache entry %s is damaged (%s); preparing it again",
                    folder, error)
        cached = None
    if cached is not None:
        return cached
    started = time.perf_counter()
    dataset = _load_source(config, progress)
    saved = save_entry(folder, dataset)
    if progress:
        print(f"prepared {saved.card.num_train} training, {saved.card.num_test} test "
              f"and {saved.card.num_val} validation images in "
              f"{time.perf_counter() - started:.1f} s -> {folder}",
              file=sys.stderr)
    return saved


def _load_source(config: DataConfig, progress: bool) -> Dataset:
    if config.source == "celeba":
        from zspace.data.celeba import load_celeba

        return load_celeba(config, progress)
    if config.source == "folder":
        from zspace.data.folder import load_folder

        return load_folder(config, progress)
    from zspace.data.synthetic import load_synthetic

    return load_synthetic(config, progress)
