"""How many failure patterns a corpus holds: HDBSCAN's granularity chosen from the data.

No fixed ``min_cluster_size`` suits every corpus: on real postmortems a corpus-size rule gave 2 giant patterns
where a smaller value gave 16. `GranularitySearch` runs HDBSCAN over a bounded grid on the reduced (UMAP)
layout, which does not depend on the granularity and is computed once, and scores every candidate by an
internal criterion, with no labels:

- **stability**: the mean adjusted Rand index between the labels of the whole corpus and the labels of
  bootstrap subsamples (80%, on the incidents they share). A granularity the data supports comes back when a
  fifth of the corpus is left out; an arbitrary split of a dense region does not.
- **DBCV** (HDBSCAN's relative validity), **noise** and the **largest pattern's share** are recorded too.

**Merged candidates.** A local layout (UMAP keeps neighbourhoods) splits one broad cause told in many ways
(a config change: a timeout, a flag, a rate-limit rule) into several dense groups, while the text of those
groups still agrees. With the clustering-space vectors ``X`` (sentence vectors joined with LSA), each
setting's groups are also joined by average linkage of their centres (cosine in ``X``) and cut at a few
pattern counts of the readable range; a cut is a candidate of its own, scored by the same bootstrap
stability: the subsample's own groups are joined and cut at the same height (not the same count, which
would make every join look stable). A join the text supports comes back on every subsample; an arbitrary
one does not.

Candidates are first kept to a readable range of pattern counts (``k_range``; for a few hundred postmortems
about 4 to 22) and to no pattern above ``max_share`` of the incidents (a pattern holding 40% of everything
is under-segmentation). Among those, the coarsest candidate whose stability is close to the most stable one's
wins (the parsimony of the "one standard error" rule: finer splits must earn their place; ties: less noise).
"Close" scales with how unstable the best is: within ``0.005 + tolerance * (1 - best)``, so a corpus with crisp
groups (best near 1) keeps its small groups, and a noisy one, whose stability estimates are noisy too, is not
split on a difference that a resample would erase. When no candidate satisfies the limits, the one that breaks
them least is taken and ``warnings_`` says so. Every candidate's figures stay in ``candidates_`` so that a
training run can log the search.

With analyst labels (``y``, -1 for unlabelled), the score is the adjusted Rand index against those labels
instead (a supervised choice on the guidance labels; held-out labels are never passed here).

**Tree cuts** (``algorithm="agglomerative"``, :mod:`ml.patterns.hierarchy`): the candidates are cuts of one
average-linkage tree of the clustering-space vectors ``X`` at every cluster count from the low end of the
range to three times its high end (clusters under the smallest pattern size are unclustered), each scored by
the same bootstrap stability (the subsample's own tree cut at the same count). Stability rises with the
count while the cut follows real structure and falls once it splits noise, so the most stable cut wins (ties
within 0.005: fewer patterns, then less noise); there is no coarse-end bias to correct here.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ml.errors import InputError, NotFittedError
from ml.patterns.hierarchy import average_tree, cut_tree, tree_cut_counts
from ml.patterns.ids import NOISE

__all__ = [
    "GranularityCandidate",
    "GranularitySearch",
    "cut_counts",
    "fit_hdbscan",
    "join_groups",
    "pattern_count_range",
]

logger = logging.getLogger(__name__)


#: Below this bootstrap stability the chosen patterns come with a warning: random vectors give 0.13-0.44 (40-400
#: points), the hard sample 0.6-0.7, the GitHub status corpus 0.8, the easy sample 0.97.
MIN_STABILITY = 0.5


def pattern_count_range(n: int) -> tuple[int, int]:
    """A readable range of pattern counts for `n` incidents: about 0.25 to 1.25 x sqrt(n) (4-22 for 300)."""
    lo = max(3, round(0.25 * math.sqrt(max(n, 1))))
    return lo, max(lo + 3, round(1.25 * math.sqrt(max(n, 1))))


@dataclass
class GranularityCandidate:
    """One HDBSCAN setting (and, when ``merged``, a cut of its joined groups) and what it gave on the corpus.

    ``n_dense_groups``: the groups HDBSCAN found; ``n_patterns``: the patterns after joining (the same when
    not ``merged``)."""

    min_cluster_size: int
    min_samples: int
    method: str
    n_patterns: int
    noise: float
    largest_share: float
    stability: float
    dbcv: float
    label_ari: float | None = None
    violation: float = 0.0
    chosen: bool = False
    n_dense_groups: int = 0
    merged: bool = False
    join_height: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def fit_hdbscan(
    Z: np.ndarray, mcs: int, ms: int, method: str, validity: bool = False
) -> tuple[np.ndarray, np.ndarray, float]:
    """HDBSCAN (Euclidean, one thread for core distances) on the layout `Z`: labels (-1: noise), membership
    strengths, and with `validity` the relative DBCV (NaN without it, or when everything is noise)."""
    import hdbscan

    model = hdbscan.HDBSCAN(
        min_cluster_size=mcs,
        min_samples=ms,
        metric="euclidean",
        cluster_selection_method=method,
        core_dist_n_jobs=1,
        gen_min_span_tree=validity,
    )
    labels = model.fit_predict(Z.astype(np.float64))
    dbcv = float(model.relative_validity_) if validity and labels.max() >= 0 else float("nan")
    return labels.astype(np.int64), np.asarray(model.probabilities_, dtype=np.float32), dbcv


def _hdbscan(
    Z: np.ndarray, mcs: int, ms: int, method: str, validity: bool = False
) -> tuple[np.ndarray, float]:
    labels, _, dbcv = fit_hdbscan(Z, mcs, ms, method, validity)
    return labels, dbcv


def join_groups(
    labels: np.ndarray, X: np.ndarray, ks: list[int] | None = None, height: float | None = None
) -> dict[int, tuple[np.ndarray, float]]:
    """`labels` with their groups joined by average linkage of the group centres (cosine distance in `X`).

    Per pattern count in `ks` below the number of groups: the joined labels (noise stays -1; labels
    0..k-1) and the cut height (halfway between the joins that bound that count). With `height`: the one
    labelling that cuts the tree there instead (keyed by its pattern count)."""
    from scipy.cluster.hierarchy import fcluster, linkage

    k_all = int(labels.max()) + 1 if labels.size and labels.max() >= 0 else 0
    if k_all < 2:
        return {k_all: (labels.copy(), 0.0)} if height is not None else {}
    centres = np.stack([X[labels == c].mean(axis=0) for c in range(k_all)]).astype(np.float64)
    centres /= np.maximum(np.linalg.norm(centres, axis=1, keepdims=True), 1e-12)
    tree = linkage(centres, method="average", metric="cosine")
    heights = tree[:, 2]  # after joins 0..j, k_all - 1 - j groups are left
    out: dict[int, tuple[np.ndarray, float]] = {}
    cuts: list[tuple[int, float]] = []
    if height is not None:
        cuts = [(-1, float(height))]
    else:
        for k in ks or []:
            if 2 <= k < k_all:
                j = k_all - k  # joins made to reach k groups: heights[:j]; the next one is heights[j]
                cuts.append((k, 0.5 * (float(heights[j - 1]) + float(heights[j]))))
    for k, h in cuts:
        group = fcluster(tree, h, criterion="distance").astype(np.int64) - 1
        got = int(group.max()) + 1
        if k != -1 and got != k:  # equal heights in the tree: this count cannot be cut on its own
            continue
        out[got] = (np.where(labels >= 0, group[np.maximum(labels, 0)], NOISE), h)
    return out


def cut_counts(lo: int, hi: int, n: int = 10) -> list[int]:
    """About `n` pattern counts spread geometrically over [lo, hi]."""
    return sorted({int(round(v)) for v in np.geomspace(max(lo, 1), max(hi, lo, 1), num=n)})


def _number(v: object) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and bool(np.isfinite(v))


def _integer(v: object) -> bool:
    return isinstance(v, int | np.integer) and not isinstance(v, bool)


def _ari(a: np.ndarray, b: np.ndarray) -> float:
    from sklearn.metrics import adjusted_rand_score

    return float(adjusted_rand_score(a, b))


class GranularitySearch:
    """Bounded search of HDBSCAN's ``min_cluster_size``, ``min_samples`` and selection method.

    Parameters
    ----------
    k_range:
        Readable range of pattern counts; ``None``: :func:`pattern_count_range` of the corpus size.
    max_share:
        Largest share of all incidents one pattern may hold before the candidate counts as
        under-segmented.
    max_noise:
        Largest share of unclustered incidents (before outlier reduction) a candidate may leave.
    n_bootstrap, subsample:
        Bootstrap subsamples per candidate and their size (share of the corpus).
    max_points:
        The search runs on at most this many incidents (a seeded subsample; sizes scaled back), so its cost
        stays bounded on large corpora.
    random_state:
        Seed of the subsamples.
    tolerance:
        Share of the most stable candidate's instability (1 - stability) that a coarser candidate may give up
        and still be preferred.
    algorithm:
        ``"hdbscan"``: HDBSCAN settings on the layout `Z`; ``"agglomerative"``: cuts of an average-linkage
        tree of `X` (which `fit` then needs). A :class:`PatternClusterer` sets it from its own ``algorithm``.
    min_size:
        Smallest pattern of a tree cut (``"agglomerative"``); ``None``: about sqrt(n)/2, between 5 and 100.
    """

    def __init__(
        self,
        k_range: tuple[int, int] | None = None,
        max_share: float = 0.4,
        max_noise: float = 0.3,
        n_bootstrap: int = 8,
        subsample: float = 0.8,
        max_points: int = 3000,
        random_state: int = 0,
        tolerance: float = 0.25,
        algorithm: str = "hdbscan",
        min_size: int | None = None,
    ) -> None:
        self.k_range = k_range
        self.max_share = max_share
        self.max_noise = max_noise
        self.n_bootstrap = n_bootstrap
        self.subsample = subsample
        self.max_points = max_points
        self.random_state = random_state
        self.tolerance = tolerance
        self.algorithm = algorithm
        self.min_size = min_size

    def get_params(self) -> dict[str, Any]:
        return {
            "k_range": list(self.k_range) if self.k_range is not None else None,
            "max_share": self.max_share,
            "max_noise": self.max_noise,
            "n_bootstrap": self.n_bootstrap,
            "subsample": self.subsample,
            "max_points": self.max_points,
            "random_state": self.random_state,
            "tolerance": self.tolerance,
            "algorithm": self.algorithm,
            "min_size": self.min_size,
        }

    def _validate(self) -> None:
        """Each bad parameter is one error naming it and its value."""
        rules: dict[str, tuple[Callable[[Any], bool], str]] = {
            "max_share": (lambda v: _number(v) and 0 < v <= 1, "a number in (0, 1]"),
            "max_noise": (lambda v: _number(v) and 0 <= v <= 1, "a number in [0, 1]"),
            "subsample": (lambda v: _number(v) and 0 < v < 1, "a number in (0, 1)"),
            "tolerance": (lambda v: _number(v) and v >= 0, "a number >= 0"),
            "n_bootstrap": (lambda v: _integer(v) and v >= 1, "an integer >= 1"),
            "max_points": (lambda v: _integer(v) and v >= 10, "an integer >= 10"),
        }
        for name, (ok, what) in rules.items():
            value = getattr(self, name)
            if not ok(value):
                raise InputError(f"{name} must be {what}, got {value!r}", field=name, value=value)
        if self.algorithm not in ("hdbscan", "agglomerative"):
            raise InputError(
                f"algorithm must be 'hdbscan' or 'agglomerative', got {self.algorithm!r}",
                field="algorithm",
                value=self.algorithm,
            )
        ms = self.min_size
        if ms is not None and not (_integer(ms) and ms >= 2):
            raise InputError(
                f"min_size must be None or an integer >= 2, got {ms!r}", field="min_size", value=ms
            )
        k = self.k_range
        pair = isinstance(k, tuple | list) and len(k) == 2 and all(_integer(v) for v in k)
        if k is not None and not (pair and 1 <= k[0] <= k[1]):
            raise InputError(
                f"k_range must be None or (low, high) integers with 1 <= low <= high, got {k!r}",
                field="k_range",
                value=k,
            )

    @staticmethod
    def grid(n: int) -> list[tuple[int, int, str]]:
        """(min_cluster_size, min_samples, method) candidates for `n` points."""
        top = max(4, min(n // 6, 200))
        sizes = sorted({int(round(v)) for v in np.geomspace(3, top, num=10)} | {3, 5})
        out: list[tuple[int, int, str]] = []
        for mcs in sizes:
            if 2 * mcs > n:
                continue
            for ms in sorted({1, max(1, mcs // 2), mcs}):
                for method in ("eom", "leaf"):
                    out.append((mcs, ms, method))
        return out

    def fit(
        self, Z: np.ndarray, y: np.ndarray | None = None, X: np.ndarray | None = None
    ) -> GranularitySearch:
        """Search on the reduced layout `Z` (n, d); `y` optional guidance labels (-1: unlabelled); `X`
        optional clustering-space vectors (n, D) whose agreement may join groups (merged candidates)."""
        Z = np.asarray(Z, dtype=np.float64)
        if Z.ndim != 2 or Z.shape[0] < 10 or not np.all(np.isfinite(Z)):
            raise InputError(
                f"Z must be a finite (n >= 10, d) array, got shape {Z.shape}", field="Z", value=Z.shape
            )
        self._validate()
        t0 = time.perf_counter()
        rng = np.random.default_rng(self.random_state)
        n_all = Z.shape[0]
        sel = np.sort(rng.choice(n_all, self.max_points, replace=False)) if n_all > self.max_points else None
        Zs = Z[sel] if sel is not None else Z
        Xs = None
        if X is not None:
            X = np.asarray(X, dtype=np.float64)
            if X.ndim != 2 or X.shape[0] != n_all or not np.all(np.isfinite(X)):
                raise InputError(
                    f"X must be a finite array of shape ({n_all}, D), got {X.shape}", field="X", value=X.shape
                )
            Xs = X[sel] if sel is not None else X
        ys = None
        if y is not None:
            y = np.asarray(y, dtype=np.int64)
            if y.shape != (n_all,):
                raise InputError(f"y must have shape ({n_all},), got {y.shape}", field="y", value=y.shape)
            ys = y[sel] if sel is not None else y
            if int((ys >= 0).sum()) < 10 or np.unique(ys[ys >= 0]).size < 2:
                ys = None
        n = Zs.shape[0]
        scale = n_all / n
        lo, hi = self.k_range if self.k_range is not None else pattern_count_range(n_all)
        boots = [
            np.sort(rng.choice(n, int(self.subsample * n), replace=False)) for _ in range(self.n_bootstrap)
        ]
        self.sample_ = sel
        if self.algorithm == "agglomerative":
            if Xs is None:
                raise InputError("algorithm='agglomerative' needs the clustering-space vectors X", field="X")
            cands = self._tree_candidates(Xs, ys, n, scale, lo, hi, boots)
            return self._finish(cands, lo, hi, t0)
        cuts = cut_counts(lo, hi) if Xs is not None else []
        cands = []
        for mcs, ms, method in self.grid(n):
            labels, dbcv = _hdbscan(Zs, mcs, ms, method, validity=True)
            k = int(labels.max()) + 1
            setting = {
                "min_cluster_size": max(2, int(round(mcs * scale))),
                "min_samples": max(1, int(round(ms * scale))) if ms > 1 else 1,
                "method": method,
                "dbcv": dbcv,
                "n_dense_groups": k,
            }
            cand = self._candidate(setting, labels, n, lo, hi)
            joined = join_groups(labels, Xs, cuts) if Xs is not None and cand.noise <= self.max_noise else {}
            kept = [
                (self._candidate(setting, lab, n, lo, hi, merged=True, height=h), lab)
                for lab, h in joined.values()
            ]
            kept = [(c, lab) for c, lab in kept if c.violation == 0.0]
            scored = k >= 2 and cand.violation < 1.0
            boot_labels = [_hdbscan(Zs[b], mcs, ms, method)[0] for b in boots] if scored or kept else []
            if scored:
                cand.stability = float(
                    np.mean([_ari(labels[b], bl) for b, bl in zip(boots, boot_labels, strict=True)])
                )
            for c, lab in kept:
                scores = []
                for b, bl in zip(boots, boot_labels, strict=True):
                    # the same join height on the subsample: how many patterns it gives is free
                    sub = join_groups(bl, Xs[b], height=c.join_height) if Xs is not None else {}
                    scores.append(_ari(lab[b], next(iter(sub.values()))[0]) if sub else 0.0)
                c.stability = float(np.mean(scores))
            for c, lab in [(cand, labels), *kept]:
                if ys is not None and c.n_patterns >= 1:
                    known = ys >= 0
                    c.label_ari = _ari(ys[known], lab[known])
                cands.append(c)
        return self._finish(cands, lo, hi, t0)

    def _tree_candidates(
        self,
        Xs: np.ndarray,
        ys: np.ndarray | None,
        n: int,
        scale: float,
        lo: int,
        hi: int,
        boots: list[np.ndarray],
    ) -> list[GranularityCandidate]:
        """Cuts of the average-linkage tree of `Xs`, each scored by bootstrap stability (and, with `ys`, by
        the adjusted Rand index against the guidance labels). Keeps each candidate's labels for the clusterer."""
        min_size = self.min_size or int(min(100, max(5, round(0.5 * math.sqrt(n)))))
        boot_size = max(2, int(round(min_size * self.subsample)))
        tree = average_tree(Xs)
        boot_trees = [average_tree(Xs[b]) for b in boots]
        cands: list[GranularityCandidate] = []
        self.tree_labels_: dict[int, np.ndarray] = {}
        seen: set[bytes] = set()
        for k in tree_cut_counts(lo, hi, n):
            labels = cut_tree(tree, k, min_size)
            key = labels.tobytes()
            if key in seen:  # a higher count that only cut more small clusters off gave the same labels
                continue
            seen.add(key)
            setting = {
                "min_cluster_size": max(2, int(round(min_size * scale))),
                "min_samples": 0,
                "method": "average",
                "dbcv": float("nan"),
                "n_dense_groups": k,
            }
            cand = self._candidate(setting, labels, n, lo, hi)
            if cand.n_patterns >= 2 and cand.violation < 1.0:
                cand.stability = float(
                    np.mean(
                        [
                            _ari(labels[b], cut_tree(bt, k, boot_size))
                            for b, bt in zip(boots, boot_trees, strict=True)
                        ]
                    )
                )
            if ys is not None and cand.n_patterns >= 1:
                known = ys >= 0
                cand.label_ari = _ari(ys[known], labels[known])
            self.tree_labels_[k] = labels
            cands.append(cand)
        return cands

    def _finish(self, cands: list[GranularityCandidate], lo: int, hi: int, t0: float) -> GranularitySearch:
        self.candidates_ = cands
        self.k_range_ = (int(lo), int(hi))
        self.best_ = self._choose(cands)
        self.best_.chosen = True
        self.warnings_ = self._warnings(self.best_, lo, hi)
        self.seconds_ = time.perf_counter() - t0
        logger.info(
            "Granularity - %d candidates in %.1fs; chose min_cluster_size=%d, min_samples=%d, %s: %d patterns "
            "(of %d dense groups), %.0f%% noise, largest %.0f%%, stability %.2f%s",
            len(cands),
            self.seconds_,
            self.best_.min_cluster_size,
            self.best_.min_samples,
            self.best_.method,
            self.best_.n_patterns,
            self.best_.n_dense_groups,
            100 * self.best_.noise,
            100 * self.best_.largest_share,
            self.best_.stability,
            "".join(f"; {w}" for w in self.warnings_),
        )
        return self

    def _candidate(
        self,
        setting: dict[str, Any],
        labels: np.ndarray,
        n: int,
        lo: int,
        hi: int,
        merged: bool = False,
        height: float | None = None,
    ) -> GranularityCandidate:
        k = int(labels.max()) + 1 if labels.size and labels.max() >= 0 else 0
        sizes = np.bincount(labels[labels >= 0], minlength=max(k, 1))
        cand = GranularityCandidate(
            **setting,
            n_patterns=k,
            noise=float(np.mean(labels == NOISE)),
            largest_share=float(sizes.max() / n) if k else 0.0,
            stability=float("nan"),
            merged=merged,
            join_height=height,
        )
        cand.violation = self._violation(cand, lo, hi)
        return cand

    def _violation(self, c: GranularityCandidate, lo: int, hi: int) -> float:
        """0 when the candidate is within every limit; else how far outside (relative)."""
        v = 0.0
        if c.n_patterns < lo:
            v += (lo - c.n_patterns) / lo
        if c.n_patterns > hi:
            v += (c.n_patterns - hi) / hi
        if c.largest_share > self.max_share:
            v += (c.largest_share - self.max_share) / self.max_share
        if c.noise > self.max_noise:
            v += (c.noise - self.max_noise) / self.max_noise
        return v

    def _choose(self, cands: list[GranularityCandidate]) -> GranularityCandidate:
        if not cands:
            raise InputError("no HDBSCAN setting fits this corpus (too few incidents)", field="incidents")
        ok = [c for c in cands if c.violation == 0.0]
        if ok:
            if any(c.label_ari is not None for c in ok):
                return max(ok, key=lambda c: (c.label_ari or 0.0, -c.noise))
            top = max(np.nan_to_num(c.stability, nan=-1.0) for c in ok)
            if self.algorithm == "agglomerative":  # the most stable cut (see the module's docstring)
                best = [c for c in ok if np.nan_to_num(c.stability, nan=-1.0) >= top - 0.005]
                return min(best, key=lambda c: (c.n_patterns, c.noise, -c.stability))
            slack = 0.005 + self.tolerance * (1.0 - top)
            near = [c for c in ok if np.nan_to_num(c.stability, nan=-1.0) >= top - slack]
            return min(near, key=lambda c: (c.n_patterns, c.noise, -c.stability))
        return min(cands, key=lambda c: (c.violation, c.noise))

    def _warnings(self, c: GranularityCandidate, lo: int, hi: int) -> list[str]:
        out = []
        if c.largest_share > self.max_share:
            out.append(
                f"the largest pattern holds {c.largest_share:.0%} of the incidents at every granularity tried "
                "(under-segmented: the texts may not tell their causes apart)"
            )
        if not lo <= c.n_patterns <= hi:
            out.append(f"{c.n_patterns} patterns, outside the readable range {lo}-{hi}")
        if c.noise > self.max_noise:
            out.append(f"{c.noise:.0%} of the incidents are unclustered before outlier reduction")
        if np.isfinite(c.stability) and c.stability < MIN_STABILITY:
            out.append(
                f"the patterns are unstable (stability {c.stability:.2f} < {MIN_STABILITY}: they change when a "
                "fifth of the corpus is left out; the texts may hold few recurring causes)"
            )
        return out

    @property
    def best(self) -> GranularityCandidate:
        if not hasattr(self, "best_"):
            raise NotFittedError("GranularitySearch is not fitted; call fit(Z) first")
        return self.best_
