"""Drawing and judging sample sets, in a worker process the build starts.

``python -m zspace.pipeline.setmaker JOBS.json SCRATCH`` makes every set the file
lists, one after the other, and loads each model, the data set and the judge once
for all of them. Each set is assembled in ``<folder>.partial-<pid>`` and renamed into
place whole; a set that another process finished first is left as it is.

The worker is part of the build engine, above the notebooks' run that loads the data
and the models for it; what it writes, :mod:`zspace.samplesets.stored` reads back:

- ``images.npy``: the images (uint8), each training seed's share in turn;
- ``scores.npz``: every detection the face judge scored at or above its threshold,
  per image, so rates at stricter thresholds need no second pass;
- ``features.npy``: the judge network's features of every image;
- ``summary.json``: the face rate over the seeds, Frechet distance, precision and
  recall against the test images, the variety of the faces, and what each seed's
  sampler resolved to (a cube's half-width, a PCA's components);
- ``manifest.json``, written last: the key, the settings and each file's size and
  sha256.

Where the report's published judgments (:mod:`zspace.samplesets.released`) hold this
set under its key, with these very images, the scores and the summary are copied
from there instead of judged: the images are drawn and the features computed anyway.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np

from zspace.files import sha256_of, write_json_atomic
from zspace.samplesets.spec import REAL_SOURCES
from zspace.samplesets.stored import (
    MANIFEST,
    block_rates,
    damage,
    pack_scores,
    pooled,
)

FILES = ("images.npy", "scores.npz", "features.npy", "summary.json")
VARIETY_PAIRS = 1000  # random pairs of faces behind each set's variety


def partial_folder(folder: Path, pid: int) -> Path:
    """Where worker ``pid`` assembles the set of ``folder``: two builds that make one
    set at once each write their own, and the first to finish keeps its copy."""
    return folder.with_name(f"{folder.name}.partial-{pid}")


def stream(settings: dict[str, Any], *tags: Any) -> np.random.Generator:
    """The random stream of one set (and one seed's share of it, by ``tags``): a digest
    of its settings, so equal settings draw equal images whatever the set's name."""
    text = json.dumps(settings, sort_keys=True)
    entropy = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")
    return np.random.default_rng([entropy, *(int(t) for t in tags)])


def shares(n: int, k: int) -> list[int]:
    """``n`` images among ``k`` seeds' models: equal shares, the first ones one more
    where ``n`` does not divide."""
    return [n // k + (1 if i < n % k else 0) for i in range(k)]


EYE_BAND = (0.34, 0.50)  # of the image's height: the eyes of a centred face crop
MOUTH_BAND = (0.66, 0.82)  # and its mouth


def real_images(sampler: str, settings: dict[str, Any], dataset) -> np.ndarray:
    """The images of a set of real images or of a control made from them."""
    n = settings["n"]
    if sampler == "train":
        count = min(n, len(dataset.train))
        chosen = np.sort(stream(settings).choice(len(dataset.train), count,
                                                 replace=False))
        return dataset.train[chosen]
    if sampler == "mean_face":
        mean = dataset.train.mean(axis=0, dtype=np.float64)
        return np.repeat(np.round(mean).astype(np.uint8)[None], n, axis=0)
    test = np.asarray(dataset.test[:n])
    if sampler == "blurred":
        from scipy.ndimage import gaussian_filter

        sigma = settings["sigma"]
        blurred = gaussian_filter(test.astype(np.float64), (0, sigma, sigma, 0))
        return np.clip(np.round(blurred), 0, 255).astype(np.uint8)
    if sampler == "displaced":
        return swap_bands(test, EYE_BAND, MOUTH_BAND)
    return test


def swap_bands(images: np.ndarray, first: tuple[float, float],
               second: tuple[float, float]) -> np.ndarray:
    """``images`` with two horizontal bands (shares of the height) swapped: the
    parts of a face all there, in the wrong places."""
    height = images.shape[1]
    a0, a1 = (round(f * height) for f in first)
    b0 = round(second[0] * height)
    b1 = b0 + (a1 - a0)  # equal heights
    out = images.copy()
    out[:, a0:a1], out[:, b0:b1] = images[:, b0:b1], images[:, a0:a1]
    return out


class Maker:
    """Makes sets for one build: keeps the loaded models and codes between sets.

    Args:
        run: A :class:`zspace.notebook.Run` over the jobs' inputs (the data set, the
            models and the judge).
    """

    def __init__(self, run):
        self.run = run
        self._codes: dict[tuple[str, int], np.ndarray] = {}

    def codes(self, model_name: str, count: int) -> np.ndarray:
        """The codes (z_mean for a VAE) of the first ``count`` training images."""
        from zspace.latent.zpoints import encode

        key = (model_name, count)
        if key not in self._codes:
            model = self.run.model(model_name)
            self._codes[key] = encode(model.encoder, self.run.dataset.train[:count])
        return self._codes[key]

    def draw(self, settings: dict[str, Any], models: list[str]
             ) -> tuple[np.ndarray, list[int], list[dict[str, Any]]]:
        """The images of one set, the size of each seed's block, and what each seed's
        sampler resolved to."""
        dataset = self.run.dataset
        n, sampler = settings["n"], settings["sampler"]
        if sampler in REAL_SOURCES:
            images = real_images(sampler, settings, dataset)
            return images, [len(images)], [{}]
        from zspace.latent.zpoints import decode

        blocks, resolved = [], []
        for i, (name, share) in enumerate(zip(models, shares(n, len(models)),
                                              strict=True)):
            rng = stream(settings, i)
            sampler_of, used = self._sampler(settings, name, rng)
            decoder = self.run.model(name).decoder
            blocks.append(decode(decoder, sampler_of.sample(share, rng)))
            seed = self.run.trained(name).config["train"]["seed"]
            resolved.append({"model": name, "train_seed": seed, "n": share, **used})
        return (np.concatenate(blocks), [len(b) for b in blocks], resolved)

    def _sampler(self, settings: dict[str, Any], name: str,
                 rng: np.random.Generator):
        from zspace.latent.samplers import make_sampler

        kind = settings["sampler"]
        z_dim = self.run.model(name).decoder.input_shape[-1]
        if kind == "normal":
            return make_sampler("normal", z_dim=z_dim,
                                scale=settings.get("scale", 1.0)), {}
        count = min(settings.get("fit_points", 0), len(self.run.dataset.train))
        if kind == "uniform":
            r = settings["r_limit"]
            if not r:  # the cube with the codes' variance
                r = float(np.sqrt(3.0) * self.codes(name, count).std(axis=0).mean())
            return make_sampler("uniform", z_dim=z_dim, r_limit=r), {"r_limit": r}
        codes = self.codes(name, count)
        if kind == "gaussian":
            return make_sampler("gaussian", codes), {"fit_points": count}
        if kind == "gmm":
            fitted = min(settings["gmm_points"], count)
            subset = codes[np.sort(rng.choice(count, fitted, replace=False))]
            components = min(settings["n_components"], fitted)
            params = {k: settings[k] for k in ("max_iter", "reg_covar")
                      if k in settings}
            return make_sampler("gmm", subset, n_components=components,
                                seed=int(rng.integers(2**31)), **params), {
                "fit_points": count, "gmm_points": fitted, "n_components": components}
        components = min(settings["n_components"], z_dim, count - 1)
        params = {k: settings[k] for k in ("level", "fact", "half_width", "bins")
                  if k in settings}
        within = settings.get("fit_within", 0.0)
        return make_sampler("pca_ellipse", codes, n_components=components,
                            fit_within=within or None, **params), {
            "fit_points": count, "n_components": components}

    def make(self, job: dict[str, Any]) -> str:
        """Draw, judge and store one set; return how its judgment was made
        ("judged", or "released" where it came from the published judgments)."""
        folder = Path(job["folder"])
        if folder.exists():
            if not damage(folder):
                return "made meanwhile"  # by another build
            shutil.rmtree(folder)  # a damaged cache entry: made again below
        settings = job["point"]["settings"]
        images, blocks, resolved = self.draw(settings, job["models"])
        partial = partial_folder(folder, os.getpid())
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        np.save(partial / "images.npy", np.ascontiguousarray(images))
        features = self.run.features(images).astype(np.float32)
        np.save(partial / "features.npy", features)
        # Hashed once: the release is matched by them, and the manifest records them.
        digests = {name: sha256_of(partial / name)
                   for name in ("images.npy", "features.npy")}
        how = self._released(job, folder.name, partial, features, digests)
        if how is None:
            how = "judged"
            self._judge(job["point"], images, blocks, resolved, features, partial)
        write_json_atomic(partial / MANIFEST, {
            "key": job["key"], "point": job["point"], "models": job["model_keys"],
            "files": {name: {"bytes": (partial / name).stat().st_size,
                             "sha256": digests.get(name) or sha256_of(partial / name)}
                      for name in FILES}})
        try:
            partial.rename(folder)
        except OSError:  # finished by another process first: keep theirs
            shutil.rmtree(partial, ignore_errors=True)
        return how

    def _judge(self, point: dict[str, Any], images: np.ndarray, blocks: list[int],
               resolved: list[dict[str, Any]], features: np.ndarray,
               partial: Path) -> None:
        """Judge a set's images: write its scores and summary into ``partial``."""
        from zspace.faces import counts_at
        from zspace.latent.metrics import quality
        from zspace.latent.variety import variety_of_faces

        settings = point["settings"]
        judge = self.run.face_judge
        scores = judge.detection_scores(images)
        counts = counts_at(scores, judge.threshold)
        rates = block_rates(counts, blocks)
        summary = {
            "name": point["name"], "blocks": blocks, "resolved": resolved,
            "face_judge": judge.describe(),
            "faces": pooled(rates),
            "seed_faces": rates,
            "quality": quality(self.run.test_features, features, k=3, rng=0),
            "variety": variety_of_faces(images, counts, VARIETY_PAIRS,
                                        stream(settings, 1 << 20)),
        }
        np.savez(partial / "scores.npz", **pack_scores(scores))
        write_json_atomic(partial / "summary.json", summary)

    def _released(self, job: dict[str, Any], folder_name: str, partial: Path,
                  features: np.ndarray, digests: dict[str, str]) -> str | None:
        """Take the set's judgment from the published ones where it applies (same
        key, the same images byte for byte); return "released", else None.

        The summary's quality comes from the judge's features; where this machine's
        features differ from the publisher's in their last bits, it is computed
        again here from this machine's.
        """
        from zspace.samplesets import released

        where = self.run.inputs.get("judged")
        if not where:
            return None
        manifest = released.find(Path(where), folder_name, job["key"],
                                 digests["images.npy"])
        if manifest is None:
            return None
        released.copy_judgment(Path(where), folder_name, partial)
        if digests["features.npy"] != \
                manifest["files"]["features.npy"]["sha256"]:
            from zspace.latent.metrics import quality

            summary = json.loads((partial / "summary.json").read_text())
            summary["quality"] = quality(self.run.test_features, features, k=3, rng=0)
            write_json_atomic(partial / "summary.json", summary)
        return "released"


def main(argv: list[str]) -> int:
    """Make the sets of one jobs file; print two lines per set made:
    ``how NAME: judged`` (or ``released``), then ``made NAME``.

    With ``--serve`` first, the jobs file holds the inputs only, and the jobs come
    one JSON line at a time on standard input until it closes: a Dask worker's set
    maker (:mod:`zspace.pipeline.tasks`), which keeps the data set, the models and
    the judge loaded between the sets it is given.
    """
    from zspace.config import config_from_dict
    from zspace.notebook import Run

    serve = argv[:1] == ["--serve"]
    argv = argv[1:] if serve else argv
    jobs = json.loads(Path(argv[0]).read_text())
    scratch = Path(argv[1])
    run = Run(config_from_dict(jobs["inputs"]["config"]), jobs["inputs"], scratch)
    maker = Maker(run)
    todo = (json.loads(line) for line in sys.stdin if line.strip()) if serve \
        else jobs["jobs"]
    for job in todo:
        print(f"making {job['point']['name']}", flush=True)
        how = maker.make(job)
        print(f"how {job['point']['name']}: {how}", flush=True)
        print(f"made {job['point']['name']}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
