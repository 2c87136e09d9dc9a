"""Clustering of incident embeddings into failure patterns: an average-linkage tree cut, or UMAP + HDBSCAN.

`PatternClusterer` follows the scikit-learn estimator contract. Steps: unit vectors, centred on the corpus
mean (the genre component shared by every postmortem removed); exact cosine k-nearest neighbours; UMAP from
that graph (the layout: warm starts, density figures, label guidance); the patterns, by default the most
stable cut of an average-linkage tree of the vectors (:mod:`ml.patterns.hierarchy`; with analyst labels or a
fixed ``min_cluster_size``, HDBSCAN on the layout); members far out from their pattern's centre sent back to
noise; optional outlier reduction. It is seeded and reproducible (UMAP runs single-threaded when a seed is
set, as umap-learn requires). Points left as noise stay ``-1`` ("unclustered") unless `outlier_threshold`
is set, in which case a noise point joins the nearest pattern centroid when it is close enough; nothing is
forced into a pattern.
"""

from __future__ import annotations

import logging
import math
import time
import warnings
from typing import Any

import numpy as np

from ml.errors import InputError, NotFittedError
from ml.patterns.geometry import (
    centroids_of,
    check_matrix,
    clustering_metrics,
    exact_knn,
    isotropic_transform,
    l2_normalize,
    predict_nearest,
)
from ml.patterns.granularity import GranularitySearch, fit_hdbscan, join_groups
from ml.patterns.ids import NOISE

__all__ = [
    "PatternClusterer",
    "centroids_of",
    "clustering_metrics",
    "default_min_cluster_size",
    "exact_knn",
    "isotropic_transform",
    "l2_normalize",
    "predict_nearest",
]

logger = logging.getLogger(__name__)


def default_min_cluster_size(n: int) -> int:
    """Smallest pattern for a corpus of `n` incidents: about sqrt(n)/2, between 5 and 100.

    A few hundred postmortems give patterns of 5-10 incidents; tens of thousands give patterns of 50-100,
    so a pattern is always a recurring failure, not two look-alike reports.
    """
    return int(min(100, max(5, round(0.5 * math.sqrt(max(n, 1))))))


class PatternClusterer:
    """UMAP (cosine) reduction then HDBSCAN, with optional outlier reduction and nearest-centroid predict.

    Parameters
    ----------
    n_components, n_neighbors:
        UMAP output dimension and neighbourhood size.
    min_cluster_size:
        HDBSCAN smallest cluster; ``None`` scales it to the corpus (:func:`default_min_cluster_size`);
        ``"auto"`` chooses it, with `min_samples` and the selection method, by the `granularity` search
        (:class:`~ml.patterns.granularity.GranularitySearch`) on the UMAP layout.
    min_samples:
        HDBSCAN core-distance neighbours; ``None``: HDBSCAN's own default, `min_cluster_size` (a smooth
        density estimate, so one mechanism is not split into look-alike sub-groups).
    random_state:
        Seed; the same input and seed give the same labels.
    outlier_threshold:
        Outlier reduction and the acceptance threshold of :meth:`predict`, as a cosine similarity to the
        nearest pattern centroid (embedding space):

        - ``None``: no outlier reduction;
        - ``"auto"``: a noise point joins its nearest pattern when it is at least as close to the centroid
          as the pattern's least typical members (5th percentile of theirs); scale-free, it adapts to how
          tight each pattern is;
        - a float: one fixed threshold, for outlier reduction and for `predict`.

        Unless a float is given, `predict` accepts a new vector for its nearest pattern when it is closer
        than halfway between the pattern's least typical members and the closest outsiders
        (``thresholds_``).
    center, n_remove_components:
        Before clustering, subtract the corpus mean from the unit vectors (and project out the top
        `n_remove_components` principal directions), then re-normalise. Sentence embeddings of one genre
        (postmortems) share a large common component that makes every pair look similar; removing it
        ("all-but-the-top", Mu & Viswanath 2018) lets cosine compare what differs. ``predict`` applies the
        same transform (``mean_``, ``components_``); ``centroids_`` live in that space.
    warm_n_epochs:
        UMAP epochs when `fit` gets an `init` layout (a retrain warm-started from the previous one).
    cluster_selection_method:
        HDBSCAN's ``"eom"`` or ``"leaf"`` (with ``"auto"`` sizes the search chooses it).
    granularity:
        The search used when `min_cluster_size` is ``"auto"`` (default: its defaults).
    join_groups:
        With ``"auto"`` sizes and no analyst labels, let the search also try joining HDBSCAN's groups whose
        centres agree in the clustering space (merged candidates, :mod:`ml.patterns.granularity`); the chosen
        cut is applied here. With labels, the labels join groups instead. Off by default: on the sample, a
        retrain warm-started from the previous layout joined two pairs of distinct patterns (ARI 0.93 -> 0.80)
        that were as stable joined as apart; stability alone cannot tell a join the text supports.
    target_weight:
        With analyst labels (``y`` in `fit`), how much they shape the UMAP layout (UMAP's ``target_weight``:
        0 ignores them, 1 separates labelled classes fully).
    algorithm:
        ``"agglomerative"``: the most stable cut of an average-linkage tree of the vectors (granularity
        searched; an integer `min_cluster_size` is the smallest pattern); ``"hdbscan"``: HDBSCAN on the UMAP
        layout; ``"auto"`` (default): the tree when `min_cluster_size` is ``"auto"``, no analyst labels are
        given and `join_groups` is off, else HDBSCAN (labels guide the UMAP layout it runs on). On the hard
        sample and the GitHub status corpus the tree gives higher NMI and ARI than HDBSCAN, on the easy
        sample lower (``bench/bench_patterns.py``; README, "How failure patterns are found").
    """

    def __init__(
        self,
        n_components: int = 5,
        n_neighbors: int = 15,
        min_cluster_size: int | str | None = None,
        min_samples: int | None = None,
        random_state: int | None = 42,
        outlier_threshold: float | str | None = None,
        center: bool = True,
        n_remove_components: int = 0,
        warm_n_epochs: int = 60,
        cluster_selection_method: str = "eom",
        granularity: GranularitySearch | None = None,
        target_weight: float = 0.5,
        join_groups: bool = False,
        algorithm: str = "auto",
    ) -> None:
        self.n_components = n_components
        self.n_neighbors = n_neighbors
        self.min_cluster_size = min_cluster_size
        self.min_samples = min_samples
        self.random_state = random_state
        self.outlier_threshold = outlier_threshold
        self.center = center
        self.n_remove_components = n_remove_components
        self.warm_n_epochs = warm_n_epochs
        self.cluster_selection_method = cluster_selection_method
        self.granularity = granularity
        self.target_weight = target_weight
        self.join_groups = join_groups
        self.algorithm = algorithm

    # -- parameters ------------------------------------------------------------------------------------
    def get_params(self) -> dict[str, Any]:
        return {
            "n_components": self.n_components,
            "n_neighbors": self.n_neighbors,
            "min_cluster_size": self.min_cluster_size,
            "min_samples": self.min_samples,
            "random_state": self.random_state,
            "outlier_threshold": self.outlier_threshold,
            "center": self.center,
            "n_remove_components": self.n_remove_components,
            "warm_n_epochs": self.warm_n_epochs,
            "cluster_selection_method": self.cluster_selection_method,
            "granularity": self.granularity.get_params() if self.granularity is not None else None,
            "target_weight": self.target_weight,
            "join_groups": self.join_groups,
            "algorithm": self.algorithm,
        }

    def _validate(self, n: int) -> tuple[int, int]:
        """(min_cluster_size, min_samples) to use; (0, 0) when they are searched (``"auto"``)."""
        for name in ("n_components", "n_neighbors", "warm_n_epochs"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < (2 if name == "n_neighbors" else 1):
                raise InputError(f"{name} must be a positive integer, got {v!r}", field=name, value=v)
        if self.cluster_selection_method not in ("eom", "leaf"):
            raise InputError(
                f"cluster_selection_method must be 'eom' or 'leaf', got {self.cluster_selection_method!r}",
                field="cluster_selection_method",
                value=self.cluster_selection_method,
            )
        if self.algorithm not in ("auto", "agglomerative", "hdbscan"):
            raise InputError(
                f"algorithm must be 'auto', 'agglomerative' or 'hdbscan', got {self.algorithm!r}",
                field="algorithm",
                value=self.algorithm,
            )
        tw = self.target_weight
        if not isinstance(tw, int | float) or isinstance(tw, bool) or not 0.0 <= tw <= 1.0:
            raise InputError(f"target_weight must be in [0, 1], got {tw!r}", field="target_weight", value=tw)
        if self.min_cluster_size == "auto":
            if n < 10:
                raise InputError(f"X has {n} rows; clustering needs at least 10", field="X", value=n)
            self._validate_threshold()
            return 0, 0
        mcs = self.min_cluster_size if self.min_cluster_size is not None else default_min_cluster_size(n)
        if not isinstance(mcs, int) or isinstance(mcs, bool) or mcs < 2:
            raise InputError(
                f"min_cluster_size must be an integer >= 2, got {mcs!r}", field="min_cluster_size", value=mcs
            )
        ms = self.min_samples if self.min_samples is not None else mcs
        if not isinstance(ms, int) or ms < 1:
            raise InputError(
                f"min_samples must be a positive integer, got {ms!r}", field="min_samples", value=ms
            )
        self._validate_threshold()
        need = max(10, 2 * mcs)
        if n < need:
            raise InputError(
                f"X has {n} rows; clustering needs at least {need} (2 x min_cluster_size={mcs}, and 10)",
                field="X",
                value=n,
            )
        return mcs, ms

    def _validate_threshold(self) -> None:
        t = self.outlier_threshold
        ok = (
            t is None
            or t == "auto"
            or (isinstance(t, (int, float)) and not isinstance(t, bool) and -1 <= t <= 1)
        )
        if not ok:
            raise InputError(
                f"outlier_threshold must be None, 'auto' or a cosine similarity in [-1, 1], got {t!r}",
                field="outlier_threshold",
                value=t,
            )

    # -- fit -------------------------------------------------------------------------------------------
    def fit(
        self, X: np.ndarray, y: np.ndarray | None = None, init: np.ndarray | None = None
    ) -> PatternClusterer:
        """Cluster the rows of `X` (embeddings, any scale; cosine geometry).

        `y` (n,) optional analyst labels as integers, -1 where unlabelled: they guide the UMAP layout
        (semi-supervised, `target_weight`) and, with ``min_cluster_size="auto"``, the granularity choice.
        `init` (n, n_components) starts UMAP from a given layout (e.g. the previous model's for incidents
        it already knew) and runs `warm_n_epochs` epochs instead of UMAP's default.
        """
        X = l2_normalize(check_matrix(X))
        n = X.shape[0]
        mcs, ms = self._validate(n)
        if y is not None:
            y = np.asarray(y, dtype=np.int64)
            if y.shape != (n,):
                raise InputError(f"y must have shape ({n},), got {y.shape}", field="y", value=y.shape)
            if not np.any(y >= 0):
                y = None
        d = self.n_remove_components
        if not isinstance(d, int) or isinstance(d, bool) or not 0 <= d < min(n, X.shape[1]):
            raise InputError(
                f"n_remove_components must be an integer in [0, {min(n, X.shape[1])}), got {d!r}",
                field="n_remove_components",
                value=d,
            )
        self.mean_ = X.mean(axis=0) if self.center else np.zeros(X.shape[1], dtype=np.float32)
        if d:
            _, _, vt = np.linalg.svd(X - self.mean_, full_matrices=False)
            self.components_ = vt[:d].astype(np.float32)
        else:
            self.components_ = np.zeros((0, X.shape[1]), dtype=np.float32)
        X = self._apply(X)
        n_components = min(self.n_components, n - 2)
        if init is not None:
            init = np.asarray(init, dtype=np.float32)
            if init.shape != (n, n_components) or not np.all(np.isfinite(init)):
                raise InputError(
                    f"init must be a finite array of shape {(n, n_components)}, got {init.shape}",
                    field="init",
                )

        t0 = time.perf_counter()
        self.reduced_ = self._reduce(X, n_components, init, y)
        t1 = time.perf_counter()
        logger.info(
            "Dimensionality - UMAP %d x %d -> %d (%s) in %.1fs",
            n,
            X.shape[1],
            n_components,
            "warm start" if init is not None else "cold",
            t1 - t0,
        )

        self.algorithm_ = self._resolve_algorithm(mcs, y)
        if self.algorithm_ == "agglomerative":
            raw, mcs, ms, method = self._fit_tree(X, y)
        else:
            raw, mcs, ms, method = self._fit_hdbscan(X, y, mcs, ms)
        self.merged_by_labels_ = self._merge_by_labels(raw, y) if y is not None else 0
        labels = self._relabel_by_size(raw)
        self.min_cluster_size_ = mcs
        self.min_samples_ = ms
        self.cluster_selection_method_ = method
        n_strays = self._demote_strays(X, labels)
        self.hdbscan_labels_ = labels.copy()
        logger.info(
            "Clustering - %s(min_cluster_size=%d, min_samples=%d): %d patterns, %.1f%% noise "
            "(%d strays demoted) in %.1fs",
            "average-linkage tree cut" if self.algorithm_ == "agglomerative" else "HDBSCAN",
            mcs,
            ms,
            int(labels.max()) + 1 if labels.size and labels.max() >= 0 else 0,
            100.0 * float(np.mean(labels == NOISE)),
            n_strays,
            time.perf_counter() - t1,
        )

        self.centroids_ = self._centroids(X, labels)
        if self.outlier_threshold is not None and self.centroids_.shape[0] and np.any(labels == NOISE):
            floors = self._member_floors(X, labels)
            noise = np.flatnonzero(labels == NOISE)
            sims = X[noise] @ self.centroids_.T
            best = sims.argmax(axis=1)
            ok = sims[np.arange(noise.size), best] >= floors[best]
            labels[noise[ok]] = best[ok]
            self.centroids_ = self._centroids(X, labels)
            logger.info(
                "Clustering - outlier reduction (%s) attached %d of %d noise points",
                "per-pattern threshold"
                if self.outlier_threshold == "auto"
                else f"cosine >= {self.outlier_threshold}",
                int(ok.sum()),
                noise.size,
            )
        self.labels_ = labels
        self.thresholds_ = self._predict_thresholds(X, labels)
        self.n_features_in_ = X.shape[1]
        return self

    def _resolve_algorithm(self, mcs: int, y: np.ndarray | None) -> str:
        """``"auto"``: tree cuts when the granularity is searched (``min_cluster_size="auto"``), no analyst
        labels guide the layout and HDBSCAN's groups are not to be joined (`join_groups`); HDBSCAN on the
        (label-guided) UMAP layout otherwise."""
        if self.algorithm == "auto":
            return "agglomerative" if mcs == 0 and y is None and not self.join_groups else "hdbscan"
        return str(self.algorithm)

    def _search(self, algorithm: str) -> GranularitySearch:
        search = GranularitySearch(**(self.granularity.get_params() if self.granularity else {}))
        if self.granularity is not None and self.granularity.k_range is not None:
            search.k_range = tuple(self.granularity.k_range)  # type: ignore[assignment]
        search.algorithm = algorithm
        return search

    def _fit_hdbscan(
        self, X: np.ndarray, y: np.ndarray | None, mcs: int, ms: int
    ) -> tuple[np.ndarray, int, int, str]:
        """HDBSCAN on the UMAP layout (settings searched when `mcs` is 0): raw labels and the settings."""
        method = self.cluster_selection_method
        self.search_ = None
        if mcs == 0:
            search = self._search("hdbscan")
            # with analyst labels, they decide which groups are one cause (`_merge_by_labels`), not the text
            joins = self.join_groups and y is None
            best = search.fit(self.reduced_, y, X=X if joins else None).best
            mcs, ms, method = best.min_cluster_size, best.min_samples, best.method
            self.search_ = search
        raw, probabilities, _ = fit_hdbscan(self.reduced_, mcs, ms, method)
        self.n_dense_groups_ = int(raw.max()) + 1 if raw.size and raw.max() >= 0 else 0
        best_cut = self.search_.best_ if self.search_ is not None else None
        if best_cut is not None and best_cut.merged and best_cut.join_height is not None:
            # the chosen join height (on a subsampled search, the count may differ a little here)
            raw = next(iter(join_groups(raw, X, height=best_cut.join_height).values()), (raw, 0.0))[0]
        self.probabilities_ = probabilities
        return raw, mcs, ms, method

    def _fit_tree(self, X: np.ndarray, y: np.ndarray | None) -> tuple[np.ndarray, int, int, str]:
        """The chosen cut of the average-linkage tree of `X` (:mod:`ml.patterns.hierarchy`). When the search
        ran on a subsample (large corpora), every other incident joins its nearest pattern if it is at least
        as close to the centre as the pattern's least typical members (5th percentile; a numeric
        `outlier_threshold` instead, when set), else stays noise."""
        search = self._search("agglomerative")
        if isinstance(self.min_cluster_size, int) and not isinstance(self.min_cluster_size, bool):
            search.min_size = self.min_cluster_size
        best = search.fit(self.reduced_, y, X=X).best
        self.search_ = search
        self.n_dense_groups_ = best.n_dense_groups
        cut = search.tree_labels_[best.n_dense_groups]
        if search.sample_ is None:
            raw = cut.copy()
        else:
            raw = np.full(X.shape[0], NOISE, dtype=np.int64)
            raw[search.sample_] = cut
            rest = np.setdiff1d(np.arange(X.shape[0]), search.sample_)
            if rest.size and cut.max() >= 0:
                centres = self._centroids(X, raw)
                floors = self._member_floors(X, raw, centres)
                sims = X[rest] @ centres.T
                near = sims.argmax(axis=1)
                ok = sims[np.arange(rest.size), near] >= floors[near]
                raw[rest[ok]] = near[ok]
        self.probabilities_ = (raw >= 0).astype(np.float32)
        return raw, best.min_cluster_size, 0, "average"

    def _reduce(
        self, X: np.ndarray, n_components: int, init: np.ndarray | None, y: np.ndarray | None = None
    ) -> np.ndarray:
        import umap

        n = X.shape[0]
        k = min(self.n_neighbors, n - 1)
        knn_idx, knn_dist = exact_knn(X, k)
        kwargs: dict[str, Any] = {
            "n_neighbors": k,
            "precomputed_knn": (knn_idx, knn_dist),
            "n_components": n_components,
            "min_dist": 0.0,
            "metric": "cosine",
            "random_state": self.random_state,
            "n_jobs": 1 if self.random_state is not None else -1,
            "low_memory": True,
        }
        if init is not None:
            kwargs["init"] = init
            kwargs["n_epochs"] = self.warm_n_epochs
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*n_jobs value.*overridden.*")
            warnings.filterwarnings("ignore", category=UserWarning, module="umap")
            if y is not None:
                kwargs["target_metric"] = "categorical"
                kwargs["target_weight"] = float(self.target_weight)
            reducer = umap.UMAP(**kwargs)
            out = reducer.fit_transform(X, y=y)
        return np.asarray(out, dtype=np.float32)

    @staticmethod
    def _merge_by_labels(raw: np.ndarray, y: np.ndarray, agree: float = 0.7) -> int:
        """Join the clusters whose analyst-labelled members mostly (`agree`) carry the same label.

        A layout cannot join two far-apart groups that analysts call one cause (UMAP's supervision only
        reweights existing neighbours), so the labels join them here. Needs two labelled members per
        cluster. Changes `raw` in place; returns how many clusters were merged away.
        """
        owner: dict[int, int] = {}
        for c in np.unique(raw[raw >= 0]):
            known = y[(raw == c) & (y >= 0)]
            if known.size >= 2:
                values, counts = np.unique(known, return_counts=True)
                if counts.max() >= agree * known.size:
                    owner[int(c)] = int(values[counts.argmax()])
        merged = 0
        first: dict[int, int] = {}
        for c, label in sorted(owner.items()):
            if label in first:
                raw[raw == c] = first[label]
                merged += 1
            else:
                first[label] = c
        if merged:
            logger.info("Clustering - %d patterns joined to others with the same analyst label", merged)
        return merged

    @staticmethod
    def _demote_strays(X: np.ndarray, labels: np.ndarray) -> int:
        """Send back to noise the members that are far out from their pattern in embedding space.

        UMAP connects every point to its nearest neighbours, so an isolated text can be laid out next to a
        group and join it. A member whose cosine to the centroid is below the group's far-out fence
        (Q1 - 3 IQR, on cosine similarities) is not like the rest. Changes `labels` in place.
        """
        n_demoted = 0
        k = int(labels.max()) + 1 if labels.size and labels.max() >= 0 else 0
        for c in range(k):
            members = np.flatnonzero(labels == c)
            centre = X[members].mean(axis=0)
            centre /= max(float(np.linalg.norm(centre)), 1e-12)
            sims = X[members] @ centre
            q1, q3 = np.quantile(sims, [0.25, 0.75])
            fence = q1 - 3.0 * max(float(q3 - q1), 0.02)
            out = members[sims < fence]
            if out.size and out.size < members.size:
                labels[out] = NOISE
                n_demoted += int(out.size)
        return n_demoted

    @staticmethod
    def _relabel_by_size(raw: np.ndarray) -> np.ndarray:
        """Labels 0..k-1 by decreasing size (ties: first member first); noise stays -1."""
        raw = np.asarray(raw)
        out = np.full(raw.shape, NOISE, dtype=np.int64)
        ids = [c for c in np.unique(raw) if c != NOISE]
        order = sorted(ids, key=lambda c: (-int(np.sum(raw == c)), int(np.argmax(raw == c))))
        for new, old in enumerate(order):
            out[raw == old] = new
        return out

    @staticmethod
    def _centroids(X: np.ndarray, labels: np.ndarray) -> np.ndarray:
        return centroids_of(X, labels)

    def _member_floors(
        self, X: np.ndarray, labels: np.ndarray, centres: np.ndarray | None = None
    ) -> np.ndarray:
        """Per pattern: the 5th percentile of its members' cosine to the centroid (the least typical);
        `centres`: these centroids instead of the fitted ``centroids_``."""
        centres = self.centroids_ if centres is None else centres
        k = centres.shape[0]
        floors = np.ones(k, dtype=np.float32)
        for c in range(k):
            sims = X[labels == c] @ centres[c]
            if sims.size:
                floors[c] = float(np.quantile(sims, 0.05))
        if isinstance(self.outlier_threshold, (int, float)):
            floors[:] = float(self.outlier_threshold)
        return floors

    def _predict_thresholds(self, X: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """Per pattern: halfway between its least typical members (5th percentile of their similarity) and
        the most similar outsiders (95th percentile of the other points' similarity), or the members' 5th
        percentile when the two overlap. A new text is rarely phrased like the training texts, so requiring
        it to be as close as the members would reject most of them."""
        if isinstance(self.outlier_threshold, (int, float)):
            return np.full(self.centroids_.shape[0], float(self.outlier_threshold), dtype=np.float32)
        floors = self._member_floors(X, labels)
        sims = X @ self.centroids_.T
        th = floors.copy()
        for c in range(self.centroids_.shape[0]):
            outside = sims[labels != c, c]
            if outside.size:
                hi_out = float(np.quantile(outside, 0.95))
                if hi_out < floors[c]:
                    th[c] = 0.5 * (hi_out + floors[c])
        return th

    # -- use -------------------------------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not hasattr(self, "centroids_"):
            raise NotFittedError("PatternClusterer is not fitted; call fit(X) first")

    @property
    def n_clusters_(self) -> int:
        self._check_fitted()
        return int(self.centroids_.shape[0])

    def predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Nearest pattern centroid (cosine) for new vectors: ``(labels, confidence)``.

        The label is -1 when the similarity is below the pattern's threshold; `confidence` is the cosine
        similarity to the nearest centroid, clipped to [0, 1].
        """
        return predict_nearest(self.transform(X), self.centroids_, self.thresholds_)

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Vectors in the clustering space: unit length, centred (and top directions removed), unit length."""
        self._check_fitted()
        if (
            isinstance(X, np.ndarray)
            and X.ndim == 2
            and X.shape[0] == 0
            and X.shape[1] == self.n_features_in_
        ):
            return np.zeros((0, self.n_features_in_), dtype=np.float32)
        X = l2_normalize(check_matrix(X))
        if X.shape[1] != self.n_features_in_:
            raise InputError(
                f"X has {X.shape[1]} features, the clusterer was fitted on {self.n_features_in_}",
                field="X",
                value=X.shape[1],
            )
        return self._apply(X)

    def _apply(self, X: np.ndarray) -> np.ndarray:
        return isotropic_transform(X, self.mean_, self.components_)
