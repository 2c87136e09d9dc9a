"""Granularity chosen from the data, and analyst labels that guide the layout (ml/patterns/granularity.py)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from ml.errors import InputError
from ml.patterns.clustering import PatternClusterer
from ml.patterns.granularity import GranularitySearch, join_groups, pattern_count_range


def blobs(
    sizes: list[int], dim: int = 24, spread: float = 0.35, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors around random centres, one group per size (imbalanced when the sizes are)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(len(sizes), dim))
    X = np.vstack([c + spread * rng.normal(size=(n, dim)) for c, n in zip(centres, sizes, strict=True)])
    y = np.repeat(np.arange(len(sizes)), sizes)
    return X / np.linalg.norm(X, axis=1, keepdims=True), y


@pytest.mark.parametrize(("sizes", "seed"), [([60, 45, 40, 30, 25, 20, 15, 12, 10, 8], 0), ([80] * 6, 1)])
def test_auto_granularity_recovers_the_number_of_groups(sizes: list[int], seed: int) -> None:
    X, y = blobs(sizes, seed=seed)
    clu = PatternClusterer(min_cluster_size="auto", outlier_threshold="auto", random_state=0).fit(X)
    k = clu.n_clusters_
    assert abs(k - len(sizes)) <= 0.3 * len(sizes), (k, len(sizes))
    assert adjusted_rand_score(y, clu.labels_) >= 0.8
    search = clu.search_
    assert search is not None and sum(c.chosen for c in search.candidates_) == 1
    assert (
        search.best.min_cluster_size == clu.min_cluster_size_
        and search.best.method == clu.cluster_selection_method_
    )


def test_fixed_size_is_not_searched() -> None:
    X, _ = blobs([40, 40, 40])
    clu = PatternClusterer(min_cluster_size=10).fit(X)
    assert clu.search_ is None and clu.min_cluster_size_ == 10


def test_a_giant_group_is_split_finer_or_flagged() -> None:
    # one dense group of 90%: finer (leaf) settings split it, at the cost of noise; when the noise allowed
    # is small, nothing meets the limits, and the least-bad candidate comes with a warning
    X, _ = blobs([270, 10, 10, 10], spread=0.2, seed=3)
    Z = PatternClusterer().fit(X).reduced_
    finer = GranularitySearch(k_range=(2, 6)).fit(Z)
    assert finer.best.largest_share <= 0.4 and not any("largest pattern" in w for w in finer.warnings_)
    # splitting one dense group is not a structure the data supports: said as an unstable choice
    assert any("unstable" in w for w in finer.warnings_)
    strict = GranularitySearch(k_range=(2, 6), max_noise=0.02).fit(Z)
    assert strict.best.violation > 0 and strict.warnings_


def test_count_range_grows_with_the_corpus() -> None:
    lo, hi = pattern_count_range(300)
    assert 3 <= lo <= 8 and 18 <= hi <= 26
    assert pattern_count_range(10_000)[0] > lo


def test_search_rejects_bad_input() -> None:
    with pytest.raises(InputError):
        GranularitySearch().fit(np.zeros((5, 2)))
    with pytest.raises(InputError) as exc:
        GranularitySearch(max_share=0).fit(np.random.default_rng(0).normal(size=(50, 3)))
    assert exc.value.field == "max_share" and exc.value.value == 0 and "got 0" in exc.value.message
    with pytest.raises(InputError) as exc:
        PatternClusterer(min_cluster_size="auto", cluster_selection_method="best").fit(blobs([20, 20])[0])
    assert exc.value.field == "cluster_selection_method"


def test_analyst_labels_raise_the_held_out_score() -> None:
    """Each class is two sub-groups far apart: unsupervised, they are separate patterns; with a share of
    the incidents labelled, the layout joins them, and incidents whose labels were never shown follow."""
    rng = np.random.default_rng(5)
    X, sub = blobs([40] * 12, spread=0.3, seed=5)
    y_true = sub // 2  # 6 classes of 2 sub-groups each
    held = rng.random(len(y_true)) < 0.3

    def held_out_ari(share: float) -> float:
        shown = (rng.random(len(y_true)) < share / 0.7) & ~held
        y = np.where(shown, y_true, -1) if share else None
        clu = PatternClusterer(min_cluster_size="auto", outlier_threshold="auto", target_weight=0.8).fit(
            X, y=y
        )
        return adjusted_rand_score(y_true[held], clu.labels_[held])

    unsupervised, guided = held_out_ari(0.0), held_out_ari(0.3)
    assert guided >= unsupervised + 0.15, (unsupervised, guided)


def test_groups_whose_centres_agree_are_joined_first() -> None:
    """Three groups told around one cause (centres close in the text space) join before unrelated ones; the
    cut height gives the same labels back, and noise stays noise."""
    rng = np.random.default_rng(0)
    cause = rng.normal(size=16)
    centres = [cause + 0.3 * rng.normal(size=16) for _ in range(3)] + [rng.normal(size=16) for _ in range(3)]
    X = np.vstack([c + 0.1 * rng.normal(size=(10, 16)) for c in centres])
    labels = np.repeat(np.arange(6), 10)
    labels[[5, 25]] = -1
    out = join_groups(labels, X, [4, 6, 1])
    assert set(out) == {4}  # a count not below the number of groups, or below 2, is no cut
    joined, height = out[4]
    assert len(set(joined[labels.clip(0) < 3][joined[labels.clip(0) < 3] >= 0])) == 1
    assert len(set(joined[labels >= 3])) == 3 and joined[5] == -1 and joined[25] == -1
    again = join_groups(labels, X, height=height)
    assert list(again) == [4] and np.array_equal(again[4][0], joined)


def test_merged_candidates_are_searched_and_logged() -> None:
    X, y = blobs([50, 50, 50, 50, 50, 50], spread=0.3, seed=2)
    Z = PatternClusterer().fit(X).reduced_
    search = GranularitySearch(k_range=(2, 8)).fit(Z, X=X)
    merged = [c for c in search.candidates_ if c.merged]
    assert merged and all(c.n_patterns < c.n_dense_groups and c.join_height is not None for c in merged)
    assert all(0.0 <= c.stability <= 1.0 for c in merged)
    assert {"merged", "n_dense_groups", "join_height"} <= set(merged[0].to_dict())
    assert not any(c.merged for c in GranularitySearch(k_range=(2, 8)).fit(Z).candidates_)
    with pytest.raises(InputError) as exc:
        GranularitySearch().fit(Z, X=X[:10])
    assert exc.value.field == "X"
    # the clusterer searches joins only when asked (join_groups=True), and applies the cut it chose
    assert not PatternClusterer().join_groups
    clu = PatternClusterer(min_cluster_size="auto", join_groups=True).fit(X)
    assert clu.search_ is not None and any(c.merged for c in clu.search_.candidates_)
    assert clu.n_dense_groups_ >= clu.n_clusters_
    assert clu.n_clusters_ == clu.search_.best.n_patterns or not clu.search_.best.merged
