"""One model's explorer bundle: its decoder program, its latent geometry and its
starting points, written as a JavaScript file that the explorer page loads.

A page opened from the file system (``file://``) may not ``fetch()`` files beside it,
but it may load scripts. So each bundle is a ``.js`` file that hands one JSON object
to ``zspaceExplorer.register``; the arrays inside it are base64 strings of
little-endian float16 (the decoder's kernels, by default) or float32 (everything
else) values.

The latent geometry is that of the report's PCA-ellipse sampler
(:class:`zspace.latent.pca_ellipse.PcaEllipseSampler`) fitted to the model's training
codes: the PCA mean and its first k components, and the spread sigma_i of each
component. For a point z with PCA coordinates v_i = (z - mean) . component_i:

- its **Mahalanobis radius** is ``sqrt(sum_i (v_i / sigma_i)^2)`` over the k
  components (a training code has about ``sqrt(k)``);
- its **pair radius** is the largest 2-d Mahalanobis radius
  ``sqrt((v_i / sigma_i)^2 + (v_j / sigma_j)^2)`` over all pairs i != j;
- it lies **inside the PCA ellipse** of level L exactly when its pair radius is at
  most L: then it is inside the axis-aligned L-sigma ellipse of every component pair
  (:func:`zspace.latent.pca_ellipse.satisfies_pairwise` with bounds L * sigma), and
  inside the sampler's region when the pair radius is at most ``fact * level``.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from zspace.errors import BuildError
from zspace.explorer.program import Program
from zspace.latent.pca_ellipse import PcaEllipseSampler, max_pair_sum

WEIGHT_DTYPES = ("float16", "float32")
_PREFIX = "zspaceExplorer.register("
_SUFFIX = ");\n"


@dataclass(frozen=True)
class Geometry:
    """The PCA frame of a model's training codes, as the explorer uses it.

    Attributes:
        mean: PCA mean (z_dim,).
        components: The first k principal axes (k, z_dim), unit rows.
        sigmas: Spread of the codes along each axis (k,).
        level: Level of the ellipses in sigmas (2.35: the sampler's).
        fact: The sampler's shrink factor.
        explained: Share of the codes' variance along each axis (k,).
    """

    mean: np.ndarray
    components: np.ndarray
    sigmas: np.ndarray
    level: float
    fact: float
    explained: np.ndarray

    @classmethod
    def of_sampler(cls, sampler: PcaEllipseSampler) -> Geometry:
        """The frame of a fitted PCA-ellipse sampler: its PCA, spreads, level, fact."""
        return cls(sampler.pca.mean_, sampler.pca.components_, sampler.sigmas,
                   sampler.level, sampler.fact, sampler.pca.explained_variance_ratio_)

    def coordinates(self, z: np.ndarray) -> np.ndarray:
        """PCA coordinates in sigmas, v_i / sigma_i, of points (n, z_dim): (n, k)."""
        v = (np.asarray(z, np.float64) - self.mean) @ self.components.T
        return v / self.sigmas

    def mahalanobis_radius(self, z: np.ndarray) -> np.ndarray:
        """sqrt(sum_i (v_i / sigma_i)^2) of each point (n,)."""
        return np.sqrt(np.square(self.coordinates(z)).sum(axis=1))

    def pair_radius(self, z: np.ndarray) -> np.ndarray:
        """The largest 2-d Mahalanobis radius over all component pairs (n,)."""
        u = self.coordinates(z)
        return np.sqrt(max_pair_sum(u, np.ones(u.shape[1])))


@dataclass(frozen=True)
class Start:
    """A starting point offered by the page.

    Attributes:
        key: Identifier (``test-12``, ``normal``, ``origin``...).
        label: What the picker shows.
        group: ``real images``, ``samplers`` or ``reference``.
        z: The point (z_dim,).
        image: For a real image's code, the image (h, w, 3) uint8; else None.
    """

    key: str
    label: str
    group: str
    z: np.ndarray
    image: np.ndarray | None = None


class _Blobs:
    """Arrays packed into two byte strings, float16 and float32, with references."""

    def __init__(self):
        self.parts: dict[str, list[bytes]] = {"f16": [], "f32": []}
        self.sizes = {"f16": 0, "f32": 0}

    def add(self, array: np.ndarray, dtype: str = "float32") -> dict[str, Any]:
        blob = "f16" if dtype == "float16" else "f32"
        values = np.ascontiguousarray(array, dtype="<f2" if blob == "f16" else "<f4")
        if blob == "f16" and not np.isfinite(values).all():
            raise BuildError("a decoder weight does not fit in float16; export the "
                             "explorer's weights as float32")
        ref = {"blob": blob, "offset": self.sizes[blob], "shape": list(values.shape)}
        self.parts[blob].append(values.tobytes())
        self.sizes[blob] += values.size
        return ref

    def encoded(self) -> dict[str, str]:
        return {name: base64.b64encode(b"".join(parts)).decode("ascii")
                for name, parts in self.parts.items()}


def rounded(program: Program, weights_dtype: str) -> Program:
    """The program as the page receives it: kernels rounded to ``weights_dtype``."""
    tensors = {name: (value.astype(weights_dtype).astype(np.float32)
                      if name.endswith("/kernel") else value)
               for name, value in program.tensors.items()}
    return Program(program.ops, tensors, program.z_dim, program.image_shape)


def _png_data_uri(image: np.ndarray) -> str:
    stream = io.BytesIO()
    Image.fromarray(np.asarray(image, np.uint8)).save(stream, format="PNG")
    return "data:image/png;base64," + base64.b64encode(stream.getvalue()).decode()


def bundle_object(name: str, label: str, program: Program, geometry: Geometry,
                  starts: list[Start], weights_dtype: str = "float16",
                  extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The JSON object a bundle hands to the page.

    Args:
        name: The model's name (``ae``, ``vae``, ``wide_ae``).
        label: Its name in the picker (``AE``).
        program: The decoder (:func:`zspace.explorer.program.export_decoder`).
        geometry: The PCA frame of its training codes.
        starts: The starting points.
        weights_dtype: ``float16`` or ``float32`` for the dense and convolution
            kernels (biases, batch norm and geometry are always float32).
        extra: More JSON-ready fields for the page (model key, typical radii...).

    Raises:
        BuildError: An unknown ``weights_dtype``, a start of the wrong length, or a
            weight too large for float16.
    """
    if weights_dtype not in WEIGHT_DTYPES:
        raise BuildError(f"weights_dtype must be one of {WEIGHT_DTYPES}, got "
                         f"{weights_dtype!r}")
    blobs = _Blobs()
    # Kernels first, float16 or float32; the small vectors after them, float32.
    refs = {key: blobs.add(value, weights_dtype if key.endswith("/kernel")
                           else "float32")
            for key, value in sorted(program.tensors.items())}
    ops = [{k: (refs[v] if k in ("kernel", "bias", "gamma", "beta", "mean",
                                 "variance") and v is not None else v)
            for k, v in op.items()} for op in program.ops]
    points = []
    for start in starts:
        z = np.asarray(start.z, np.float32).ravel()
        if z.shape != (program.z_dim,):
            raise BuildError(f"start {start.key}: expected {program.z_dim} values, "
                             f"got {z.shape}")
        points.append({"key": start.key, "label": start.label, "group": start.group,
                       "z": blobs.add(z),
                       "image": None if start.image is None
                       else _png_data_uri(start.image)})
    return {
        "name": name, "label": label, "z_dim": program.z_dim,
        "image_shape": list(program.image_shape), "weights_dtype": weights_dtype,
        "ops": ops,
        "geometry": {"mean": blobs.add(geometry.mean),
                     "components": blobs.add(geometry.components),
                     "sigmas": blobs.add(geometry.sigmas),
                     "explained": blobs.add(geometry.explained),
                     "level": float(geometry.level), "fact": float(geometry.fact)},
        "starts": points,
        **(extra or {}),
        "blobs": blobs.encoded(),
    }


def write_bundle(path: Path, bundle: dict[str, Any]) -> dict[str, Any]:
    """Write ``bundle`` as a script; return its file name, size and sha256."""
    text = (f"// zspace explorer bundle: the {bundle['label']} decoder, its latent "
            "geometry and starting points (written by a build; do not edit).\n"
            + _PREFIX + json.dumps(bundle, separators=(",", ":")) + _SUFFIX)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    data = text.encode()
    return {"file": path.name, "bytes": len(data),
            "sha256": hashlib.sha256(data).hexdigest()}


def read_bundle(path: Path) -> dict[str, Any]:
    """Parse a bundle script back into its object (arrays still base64)."""
    text = Path(path).read_text()
    start, end = text.find(_PREFIX), text.rfind(_SUFFIX)
    if start < 0 or end < 0:
        raise BuildError(f"{path} is not an explorer bundle")
    return json.loads(text[start + len(_PREFIX): end])


def array(bundle: dict[str, Any], ref: dict[str, Any]) -> np.ndarray:
    """The float32 array a reference in ``bundle`` points to."""
    dtype, width = ("<f2", 2) if ref["blob"] == "f16" else ("<f4", 4)
    data = base64.b64decode(bundle["blobs"][ref["blob"]])
    count = int(np.prod(ref["shape"])) if ref["shape"] else 1
    values = np.frombuffer(data, dtype, count, ref["offset"] * width)
    return values.astype(np.float32).reshape(ref["shape"])
