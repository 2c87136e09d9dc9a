"""Failure patterns as cuts of one average-linkage tree of the clustering-space vectors.

Why a tree, not density: postmortems of one broad cause (a config change told as a timeout, a flag, a
rate-limit rule) do not form one dense region in a local layout; HDBSCAN on UMAP splits them into look-alike
dense groups and leaves the rest as noise. Average linkage (UPGMA) on cosine distance of the hybrid vectors
(sentence vectors joined with reduced TF-IDF, centred) joins documents by how much they agree with a group
*on average*, the classic choice for text, and keeps a broad cause together while a small distinct one stays
apart. Measured side by side on the same documents and vectors (``python bench/bench_patterns.py``):
higher NMI and ARI than UMAP + HDBSCAN on the hard sample (ARI 0.308 against 0.223) and the real GitHub status
corpus (0.291 against 0.220), lower on the easy sample (0.871 against 0.931: two patterns joined).

A cut at ``k`` tree clusters keeps the clusters of at least ``min_size`` incidents as patterns; the
smaller ones are unclustered (outlier reduction may attach them later). Which cut is chosen from the data
(:mod:`ml.patterns.granularity`): bootstrap stability of the cut at the same ``k`` on subsamples.
"""

from __future__ import annotations

import numpy as np

from ml.patterns.ids import NOISE

__all__ = ["average_tree", "cut_tree", "tree_cut_counts"]


def average_tree(X: np.ndarray) -> np.ndarray:
    """Average-linkage tree (SciPy's linkage matrix) of the rows of `X` by cosine distance (a zero row at
    distance 1 from every other)."""
    from scipy.cluster.hierarchy import linkage
    from scipy.spatial.distance import pdist

    # a zero row (a text equal to the corpus mean once centred) has no cosine: it is taken as orthogonal to
    # every other row (distance 1), not left undefined (SciPy's NaN, which linkage refuses)
    distances = np.nan_to_num(pdist(np.asarray(X, dtype=np.float64), metric="cosine"), nan=1.0)
    return np.asarray(linkage(distances, method="average"))


def cut_tree(tree: np.ndarray, k: int, min_size: int) -> np.ndarray:
    """Labels of the tree cut into at most `k` clusters: the clusters of at least `min_size` members are
    labelled 0.. in order of first appearance; the rest are NOISE (-1)."""
    from scipy.cluster.hierarchy import fcluster

    raw = np.asarray(fcluster(tree, k, criterion="maxclust"), dtype=np.int64) - 1
    sizes = np.bincount(raw)
    keep = sizes >= max(1, min_size)
    remap = np.full(sizes.size, NOISE, dtype=np.int64)
    remap[keep] = np.arange(int(keep.sum()))
    return remap[raw]


def tree_cut_counts(lo: int, hi: int, n: int) -> list[int]:
    """The tree-cluster counts to try for a readable range [lo, hi] of patterns over `n` incidents: from
    `lo` up to 3 x `hi` (small clusters cut off as unclustered make a cut give fewer patterns than its
    count), at most n // 2."""
    top = max(lo, min(3 * hi, n // 2))
    return list(range(max(2, lo), top + 1))
