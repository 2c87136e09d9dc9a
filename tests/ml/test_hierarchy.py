"""Failure patterns as the most stable cut of an average-linkage tree (ml/patterns/hierarchy.py and the
``"agglomerative"`` path of the granularity search and the clusterer)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from ml.errors import InputError
from ml.patterns.clustering import PatternClusterer
from ml.patterns.granularity import GranularitySearch
from ml.patterns.hierarchy import average_tree, cut_tree, tree_cut_counts
from ml.patterns.ids import NOISE
from tests.ml.test_granularity import blobs


def groups(
    sizes: list[int], dim: int = 32, spread: float = 0.45, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors around random centres, one group per size; `spread` large enough that the groups touch."""
    return blobs(sizes, dim=dim, spread=spread, seed=seed)


def test_a_cut_keeps_big_clusters_and_leaves_small_ones_unclustered() -> None:
    X, y = groups([30, 30, 3], seed=1)
    labels = cut_tree(average_tree(X), 3, min_size=5)
    assert set(labels[y == 2]) == {NOISE}  # a 3-member cluster is under the smallest pattern
    assert adjusted_rand_score(y[y < 2], labels[y < 2]) == 1.0
    assert tree_cut_counts(4, 10, 1000) == list(range(4, 31)) and tree_cut_counts(4, 10, 20) == list(
        range(4, 11)
    )


def test_a_zero_row_is_far_from_every_other_not_undefined() -> None:
    # a text equal to the corpus mean is a zero row once centred; SciPy's cosine is NaN there
    X, y = groups([20, 20], seed=5)
    X = np.vstack([X, np.zeros((2, X.shape[1]))])
    tree = average_tree(X)
    assert np.all(np.isfinite(tree))
    labels = cut_tree(tree, 4, min_size=5)  # the two groups and each zero row alone
    assert set(labels[-2:]) == {NOISE} and adjusted_rand_score(y, labels[:-2]) == 1.0


@pytest.mark.parametrize(
    ("sizes", "seed"),
    [([150, 60, 40, 30, 25, 20, 15, 12, 10, 8], 0), ([90, 70, 50, 40, 30, 30, 20, 20, 15, 12, 10, 8, 6], 2)],
)
def test_the_tree_is_the_default_and_recovers_an_imbalanced_structure(sizes: list[int], seed: int) -> None:
    # imbalanced groups (the largest ~35%), as root-cause categories are
    X, y = groups(sizes, seed=seed)
    clu = PatternClusterer(min_cluster_size="auto", outlier_threshold="auto", random_state=0).fit(X)
    assert clu.algorithm_ == "agglomerative" and clu.cluster_selection_method_ == "average"
    assert abs(clu.n_clusters_ - len(sizes)) <= 0.3 * len(sizes), (clu.n_clusters_, len(sizes))
    assert adjusted_rand_score(y, clu.labels_) >= 0.8
    search = clu.search_
    assert search is not None and all(c.method == "average" for c in search.candidates_)
    ok = [c for c in search.candidates_ if c.violation == 0.0]
    assert search.best.stability >= max(c.stability for c in ok) - 0.005  # the most stable cut wins


def test_a_large_corpus_is_cut_on_a_subsample_and_the_rest_joins_its_nearest_pattern() -> None:
    X, y = groups([200, 150, 100, 50], seed=3)
    search = GranularitySearch(max_points=150, k_range=(2, 8))
    clu = PatternClusterer(min_cluster_size="auto", granularity=search, random_state=0).fit(X)
    assert clu.search_ is not None and clu.search_.sample_ is not None and clu.search_.sample_.size == 150
    assert clu.n_clusters_ == 4 and adjusted_rand_score(y, clu.labels_) >= 0.9
    assert np.mean(clu.labels_ == NOISE) < 0.1


def test_analyst_labels_keep_hdbscan_on_the_guided_layout_unless_asked() -> None:
    X, y = groups([60, 50, 40], seed=4)
    guide = np.where(np.arange(y.size) % 3 == 0, y, -1)
    auto = PatternClusterer(min_cluster_size="auto", random_state=0).fit(X, y=guide)
    assert auto.algorithm_ == "hdbscan"
    tree = PatternClusterer(min_cluster_size="auto", algorithm="agglomerative", random_state=0).fit(
        X, y=guide
    )
    assert tree.algorithm_ == "agglomerative" and tree.search_ is not None
    assert tree.search_.best.label_ari is not None and tree.search_.best.label_ari >= 0.9


def test_bad_algorithm_names_the_parameter() -> None:
    X, _ = groups([20, 20])
    with pytest.raises(InputError) as exc:
        PatternClusterer(algorithm="kmeans").fit(X)
    assert exc.value.field == "algorithm"
    with pytest.raises(InputError) as exc:
        GranularitySearch(algorithm="agglomerative").fit(X[:, :5])  # the tree needs X
    assert exc.value.field == "X"
    with pytest.raises(InputError) as exc:
        GranularitySearch(min_size=1).fit(X[:, :5], X=X)
    assert exc.value.field == "min_size"


def test_an_integer_min_cluster_size_is_the_smallest_pattern_of_the_tree() -> None:
    X, y = groups([60, 40, 30, 6], seed=6)
    clu = PatternClusterer(min_cluster_size=12, algorithm="agglomerative", random_state=0).fit(X)
    search = clu.search_
    assert clu.algorithm_ == "agglomerative" and search is not None and search.min_size == 12
    cut = search.tree_labels_[search.best.n_dense_groups]
    sizes = np.bincount(cut[cut >= 0])
    assert sizes.min() >= 12 and set(cut[y == 3]) == {NOISE}  # the 6-incident group is under the smallest
    assert clu.min_cluster_size_ == 12


def test_patterns_cut_from_noise_come_with_a_warning() -> None:
    # random vectors hold no recurring cause: the tree still cuts them, but the choice says it is unstable
    X = np.random.default_rng(1).normal(size=(200, 64))
    clu = PatternClusterer(min_cluster_size="auto", random_state=0).fit(X)
    assert clu.search_ is not None and any("unstable" in w for w in clu.search_.warnings_)
    structured = PatternClusterer(min_cluster_size="auto", random_state=0).fit(blobs([60, 50, 40], seed=4)[0])
    assert structured.search_ is not None and not structured.search_.warnings_
