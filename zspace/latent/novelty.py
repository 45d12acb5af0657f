"""Are generated faces new? The nearest training image of each sample.

A generator that had memorised its training set would return training faces; its
samples would lie at distance near zero from one. Distances are Euclidean, in the
judge network's feature space (where the quality measures live too). Held-out test
images are the reference: no training image was made from them, so their distances
show how near a new real face comes to the training set. Samples that lie no
nearer than test images are as new as real faces the models never saw.
"""

from __future__ import annotations

import numpy as np

from zspace.errors import DataError

BATCH = 2048  # query rows per distance block: (BATCH, m) floats at a time


def nearest(queries: np.ndarray, references: np.ndarray, *,
            batch: int = BATCH) -> tuple[np.ndarray, np.ndarray]:
    """The nearest reference row of each query row, by Euclidean distance.

    Args:
        queries: Query features, (n, d).
        references: Reference features, (m, d), m >= 1.
        batch: Query rows per block; memory is about ``batch * m`` floats.

    Returns:
        ``(index, distance)``: each (n,), the nearest reference's row and its
        distance (first row among equals).

    Raises:
        DataError: Shapes that are not (n, d) and (m, d) with equal d, or no
            references.
    """
    queries = np.asarray(queries, np.float64)
    references = np.asarray(references, np.float64)
    if queries.ndim != 2 or references.ndim != 2:
        raise DataError(f"features must be (n, d): got {queries.shape} and "
                        f"{references.shape}")
    if queries.shape[1] != references.shape[1]:
        raise DataError(f"{queries.shape[1]} query features against "
                        f"{references.shape[1]} reference features")
    if len(references) == 0:
        raise DataError("no reference features")
    if batch < 1:
        raise DataError(f"batch must be at least 1, not {batch}")
    ref_sq = np.einsum("ij,ij->i", references, references)  # (m,)
    index = np.empty(len(queries), np.int64)
    distance = np.empty(len(queries), np.float64)
    for start in range(0, len(queries), batch):
        block = queries[start:start + batch]  # (b, d)
        # |q - r|^2 = |q|^2 - 2 q.r + |r|^2, clipped at 0 against rounding
        squared = (np.einsum("ij,ij->i", block, block)[:, None]
                   - 2.0 * block @ references.T + ref_sq[None, :])  # (b, m)
        best = np.argmin(squared, axis=1)
        index[start:start + len(block)] = best
        # the exact distance of the chosen pair, free of the expansion's rounding
        distance[start:start + len(block)] = np.linalg.norm(
            block - references[best], axis=1)
    return index, distance


def summary(distances: np.ndarray, near_copy: float) -> dict:
    """How near a set's samples come to the training images.

    Args:
        distances: Each sample's distance to its nearest training image, (n,).
        near_copy: The distance below which a sample counts as a near copy (the
            notebook takes the 1st percentile of the test images' distances).

    Returns:
        ``median``, ``near_copies`` (the share of samples closer than
        ``near_copy``) and ``n``.
    """
    distances = np.asarray(distances, np.float64)
    if distances.size == 0:
        raise DataError("no distances")
    return {"median": float(np.median(distances)),
            "near_copies": float(np.mean(distances < near_copy)),
            "n": int(distances.size)}
