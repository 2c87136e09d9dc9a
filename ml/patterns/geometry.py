"""Vector geometry shared by the pattern stages: unit rows, centred spaces, exact neighbours, nearest centroids,
and the clustering metrics the model and the benchmarks report."""

from __future__ import annotations

import logging
import warnings
from typing import Any

import numpy as np

from ml.errors import InputError
from ml.patterns.ids import NOISE

logger = logging.getLogger(__name__)

__all__ = [
    "centroids_of",
    "check_matrix",
    "clustering_metrics",
    "exact_knn",
    "isotropic_transform",
    "l2_normalize",
    "predict_nearest",
]


def l2_normalize(X: np.ndarray) -> np.ndarray:
    """Rows of `X` scaled to unit length (zero rows stay zero), as float32."""
    X = np.asarray(X, dtype=np.float32)
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    return X / np.where(norms > 0, norms, 1.0)


def centroids_of(X: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Unit-length mean of the rows of `X` for each label 0..k-1 (noise, -1, is left out)."""
    labels = np.asarray(labels)
    k = int(labels.max()) + 1 if labels.size and labels.max() >= 0 else 0
    cents = np.zeros((k, X.shape[1]), dtype=np.float32)
    for c in range(k):
        cents[c] = X[labels == c].mean(axis=0)
    return l2_normalize(cents)


def check_matrix(X: Any, name: str = "X") -> np.ndarray:
    arr = np.asarray(X, dtype=np.float32)
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise InputError(f"{name} must be a non-empty 2-D array (n, dim), got shape {arr.shape}", field=name)
    if not np.all(np.isfinite(arr)):
        raise InputError(f"{name} contains NaN or infinite values", field=name)
    return arr


def isotropic_transform(X: np.ndarray, mean: np.ndarray, components: np.ndarray) -> np.ndarray:
    """Unit rows of `X` minus `mean`, with the `components` directions projected out, re-normalised."""
    Z = np.asarray(X, dtype=np.float32) - mean
    if components.shape[0]:
        Z = Z - (Z @ components.T) @ components
    return l2_normalize(Z)


def exact_knn(X: np.ndarray, k: int, block: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """Exact cosine k-nearest neighbours of unit-length rows, self first: ``(indices, distances)``.

    Blocked matrix products: for tens of thousands of incidents this is faster on a few cores than UMAP's
    approximate search, and exact.
    """
    n = X.shape[0]
    idx = np.empty((n, k), dtype=np.int32)
    dist = np.empty((n, k), dtype=np.float32)
    for start in range(0, n, block):
        stop = min(n, start + block)
        sims = X[start:stop] @ X.T
        rows = np.arange(stop - start)
        sims[rows, rows + start] = np.inf  # self first, even among duplicates
        part = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        top = np.take_along_axis(sims, part, axis=1)
        order = np.argsort(-top, axis=1, kind="stable")
        idx[start:stop] = np.take_along_axis(part, order, axis=1)
        d = 1.0 - np.take_along_axis(top, order, axis=1)
        d[:, 0] = 0.0
        dist[start:stop] = np.clip(d, 0.0, 2.0)
    return idx, dist


def predict_nearest(
    X: np.ndarray, centroids: np.ndarray, thresholds: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Nearest centroid by cosine for unit-length rows of `X`; -1 below that centroid's threshold."""
    n = X.shape[0]
    if centroids.shape[0] == 0:
        return np.full(n, NOISE, dtype=np.int64), np.zeros(n, dtype=np.float32)
    sims = X @ centroids.T
    best = sims.argmax(axis=1)
    conf = sims[np.arange(n), best]
    labels = np.where(conf >= thresholds[best], best, NOISE).astype(np.int64)
    return labels, np.clip(conf, 0.0, 1.0).astype(np.float32)


def clustering_metrics(
    labels: np.ndarray,
    reduced: np.ndarray | None = None,
    true_labels: np.ndarray | list[Any] | None = None,
    mask: np.ndarray | None = None,
    random_state: int = 0,
    max_points: int = 5000,
) -> dict[str, float]:
    """Quality figures of a clustering.

    - ``n_patterns``, ``noise_fraction``;
    - ``silhouette`` on `reduced` (non-noise points; sampled to `max_points`) and ``dbcv``
      (``hdbscan.validity.validity_index``, when at most `max_points` points) when `reduced` is given;
    - ``ari``, ``nmi`` against `true_labels` when given (noise counts as one more label), also restricted
      to `mask` (e.g. incidents whose truth is a real pattern) as ``ari_masked``/``nmi_masked``.
    """
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score, silhouette_score

    labels = np.asarray(labels)
    n = labels.shape[0]
    clustered = labels != NOISE
    out: dict[str, float] = {
        "n_patterns": float(len(set(labels[clustered].tolist()))),
        "noise_fraction": float(1.0 - clustered.mean()) if n else 0.0,
    }
    if reduced is not None:
        reduced = np.asarray(reduced, dtype=np.float64)
        if reduced.shape[0] != n:
            raise InputError(f"reduced has {reduced.shape[0]} rows, labels {n}", field="reduced")
        sub = labels[clustered]
        if len(set(sub.tolist())) >= 2 and sub.size > len(set(sub.tolist())):
            out["silhouette"] = float(
                silhouette_score(
                    reduced[clustered],
                    sub,
                    sample_size=min(max_points, int(sub.size)),
                    random_state=random_state,
                )
            )
            if n <= max_points:
                from hdbscan.validity import validity_index

                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        out["dbcv"] = float(validity_index(reduced, labels.astype(np.intp)))
                except (ValueError, ZeroDivisionError, FloatingPointError) as exc:
                    logger.warning("Clustering - DBCV not computed: %s", exc)
    if true_labels is not None:
        truth = np.asarray([str(t) for t in true_labels])
        if truth.shape[0] != n:
            raise InputError(f"true_labels has {truth.shape[0]} items, labels {n}", field="true_labels")
        out["ari"] = float(adjusted_rand_score(truth, labels))
        out["nmi"] = float(normalized_mutual_info_score(truth, labels))
        if mask is not None:
            m = np.asarray(mask, dtype=bool)
            if m.shape[0] != n:
                raise InputError(f"mask has {m.shape[0]} items, labels {n}", field="mask")
            out["ari_masked"] = float(adjusted_rand_score(truth[m], labels[m]))
            out["nmi_masked"] = float(normalized_mutual_info_score(truth[m], labels[m]))
            out["noise_fraction_masked"] = float(np.mean(labels[m] == NOISE)) if m.any() else 0.0
    return out
