"""Do z-points fill one connected cloud, or several separate pockets?

The blog series asks whether an AE's encodings break up into pockets and filaments.
Ellipse shares of component pairs (figure C3) cannot tell: a cloud of well-separated
pockets and one lumpy cloud can give the same shares. This module asks two questions
of the points instead.

1. **Does a mixture describe the points better than one Gaussian?** The points are
   projected on their leading principal components (enough to carry ``share`` of the
   variance, at most ``max_dims``) and whitened there. Gaussian mixtures with full
   covariances and k = 1, 2, 3, 5, 8 components are fitted to a training part, and
   each is scored by its mean log-likelihood per point on a held-out part (and by its
   BIC on the training part). The **gain** is the best mixture's held-out
   log-likelihood minus that of k = 1, in nats per point. A gain near 0 says one
   Gaussian is as good a description as any mixture; a large one says it is not.
   Whitening shifts every k's log-likelihood by the same constant, so it leaves the
   gain alone.
2. **Are the mixture's components apart?** A mixture also beats one Gaussian on a
   single skewed or heavy-tailed cloud, by carving it into overlapping pieces. So for
   the best mixture with k > 1 two numbers tell pockets from pieces: the **ambiguous
   share**, the share of held-out points whose largest posterior (responsibility) is
   below ``ambiguous_below`` (0.9); and the **separation**, for each component the
   Mahalanobis distance from its mean to the nearest other component's mean, under
   the two components' average covariance, with the median over components reported.
   Pockets have few ambiguous points and separations of several units; pieces of one
   cloud lie about 2 to 3 units apart (halving a Gaussian along an axis puts the
   halves' means 2.7 of their own standard deviations apart) and leave many points
   in between.

A third sign: the held-out gain of separate pockets levels off once k reaches their
number, while that of a lumpy cloud keeps rising with k.

``tests/test_latent_fragments.py`` checks both questions on clouds whose answer is
known: one Gaussian (no gain; about 70 % ambiguous, separation about 1.6), three blobs
10 units apart (a gain that peaks at k = 3; none ambiguous, separation about 10) and a
lopsided cloud (a gain, but pieces that overlap). The claims ledger's thresholds are
notebook 50's parameters (``analysis/50_latent_statistics.ipynb``, figure C12).
"""

from __future__ import annotations

import numpy as np
from sklearn.mixture import GaussianMixture

from zspace.errors import ConfigError
from zspace.latent.pca import fit_pca
from zspace.latent.stats import as_points

#: Mixture sizes scanned by default.
KS = (1, 2, 3, 5, 8)


def projection_dims(ratio: np.ndarray, share: float, max_dims: int) -> int:
    """Fewest leading components whose explained-variance ratios reach ``share``,
    at most ``max_dims`` (and at least 1)."""
    cumulative = np.cumsum(np.asarray(ratio, dtype=np.float64))
    reached = int(np.searchsorted(cumulative, share - 1e-12) + 1)
    return max(1, min(reached, int(max_dims), len(cumulative)))


def _separation(means: np.ndarray, covs: np.ndarray) -> np.ndarray:
    """For each component, the Mahalanobis distance of its mean to the nearest other
    component's mean under the pair's average covariance (k,)."""
    k = len(means)
    nearest = np.full(k, np.inf)
    for i in range(k):
        for j in range(i + 1, k):
            diff = means[i] - means[j]
            pooled = 0.5 * (covs[i] + covs[j])
            distance = float(np.sqrt(diff @ np.linalg.solve(pooled, diff)))
            nearest[i] = min(nearest[i], distance)
            nearest[j] = min(nearest[j], distance)
    return nearest


def mixture_scan(
    z: np.ndarray,
    ks: tuple[int, ...] = KS,
    share: float = 0.9,
    max_dims: int = 50,
    heldout_share: float = 0.2,
    ambiguous_below: float = 0.9,
    reg_covar: float = 1e-4,
    seed: int = 0,
    max_iter: int = 200,
) -> dict:
    """Fit Gaussian mixtures of several sizes to z-points and score them on held-out
    points (see the module docstring).

    Args:
        z: z-points (n, z_dim).
        ks: Mixture sizes; must include 1 (the single Gaussian the gain is read
            against) and one size above 1.
        share: Explained-variance share the projection keeps.
        max_dims: Most principal components kept.
        heldout_share: Share of the points (drawn at random) held out for scoring.
        ambiguous_below: A held-out point is ambiguous where its largest posterior
            under the best mixture with k > 1 is below this.
        reg_covar: Added to every covariance's diagonal (the data are whitened, so
            this is relative to the variance of each kept component).
        seed: Seeds the split and the mixtures' k-means initialisation.
        max_iter: EM iterations at most.

    Returns:
        A JSON-ready dict: ``dims`` (components kept), ``variance_kept``, ``n_fit``,
        ``n_heldout``, ``ks``, ``heldout_loglik`` and ``train_loglik`` (mean nats per
        point, per k), ``bic`` (per k), ``best_k`` (highest held-out log-likelihood),
        ``best_k_bic`` (lowest BIC), ``gain_per_point`` (best held-out
        log-likelihood minus that of k = 1), ``mixed_k`` (the best k > 1, which the
        next numbers describe), ``mixed_gain_per_point``, ``ambiguous_share``,
        ``separation`` (median over components of the nearest-component distance),
        ``separation_min``, ``weights`` (of the ``mixed_k`` components, sorted),
        ``gain_se`` (the standard error of ``mixed_gain_per_point`` over the
        held-out points), and per k the ``ambiguous_by_k`` and ``separation_by_k``
        (None for k = 1).

    Raises:
        ConfigError: If ``ks`` lacks 1 or a size above 1, or the split leaves too few
            points for the largest mixture.
    """
    z = as_points(z, min_points=4)
    ks = tuple(sorted({int(k) for k in ks}))
    if 1 not in ks or ks[-1] < 2:
        raise ConfigError(f"ks must include 1 and a size above 1, got {list(ks)}")
    if not 0 < heldout_share < 1:
        raise ConfigError(f"heldout_share must be in (0, 1), got {heldout_share}")
    order = np.random.default_rng(seed).permutation(len(z))
    n_heldout = max(1, int(round(heldout_share * len(z))))
    fit_part, heldout = z[order[n_heldout:]], z[order[:n_heldout]]
    if len(fit_part) < 2 * ks[-1]:
        raise ConfigError(f"{len(fit_part)} points are too few to fit {ks[-1]} "
                          "components")

    full = fit_pca(fit_part)
    dims = projection_dims(full.explained_variance_ratio_, share, max_dims)
    scale = np.sqrt(full.explained_variance_[:dims])
    if not np.all(scale > 0):
        raise ConfigError(f"the leading {dims} components do not all vary")

    def whiten(points: np.ndarray) -> np.ndarray:
        return (points - full.mean_) @ full.components_[:dims].T / scale

    train_x, heldout_x = whiten(fit_part), whiten(heldout)

    mixtures, heldout_ll, train_ll, bic, ambiguous, apart = {}, [], [], [], [], []
    for k in ks:
        mixture = GaussianMixture(k, covariance_type="full", reg_covar=reg_covar,
                                  random_state=seed, max_iter=max_iter)
        mixture.fit(train_x)
        mixtures[k] = mixture
        heldout_ll.append(float(mixture.score(heldout_x)))
        train_ll.append(float(mixture.score(train_x)))
        bic.append(float(mixture.bic(train_x)))
        share_ambiguous = np.mean(mixture.predict_proba(heldout_x).max(axis=1)
                                  < ambiguous_below)
        ambiguous.append(float(share_ambiguous) if k > 1 else None)
        apart.append(float(np.median(_separation(mixture.means_,
                                                 mixture.covariances_)))
                     if k > 1 else None)

    best = int(np.argmax(heldout_ll))
    above = [i for i, k in enumerate(ks) if k > 1]
    mixed = max(above, key=lambda i: heldout_ll[i])
    mixture = mixtures[ks[mixed]]
    nearest = _separation(mixture.means_, mixture.covariances_)
    single = heldout_ll[ks.index(1)]
    per_point = (mixture.score_samples(heldout_x)
                 - mixtures[1].score_samples(heldout_x))
    gain_se = float(per_point.std(ddof=1) / np.sqrt(len(per_point))
                    if len(per_point) > 1 else 0.0)
    return {
        "dims": dims,
        "variance_kept": float(np.sum(full.explained_variance_ratio_[:dims])),
        "n_fit": len(fit_part),
        "n_heldout": len(heldout),
        "ks": list(ks),
        "heldout_loglik": heldout_ll,
        "train_loglik": train_ll,
        "bic": bic,
        "best_k": ks[best],
        "best_k_bic": ks[int(np.argmin(bic))],
        "gain_per_point": heldout_ll[best] - single,
        "mixed_k": ks[mixed],
        "mixed_gain_per_point": heldout_ll[mixed] - single,
        "ambiguous_below": ambiguous_below,
        "ambiguous_share": ambiguous[mixed],
        "separation": apart[mixed],
        "separation_min": float(nearest.min()),
        "weights": sorted((float(w) for w in mixture.weights_), reverse=True),
        "gain_se": gain_se,
        "ambiguous_by_k": ambiguous,
        "separation_by_k": apart,
    }
