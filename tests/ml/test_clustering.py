"""UMAP + HDBSCAN pattern clustering (ml/clustering.py) on vectors with a known structure."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from ml.errors import InputError, NotFittedError
from ml.patterns.clustering import (
    PatternClusterer,
    clustering_metrics,
    default_min_cluster_size,
    exact_knn,
    l2_normalize,
)

DIM = 64


def blobs(
    n_per: int = 40, k: int = 4, spread: float = 0.35, n_outliers: int = 0, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """`k` groups of unit vectors around random directions, plus scattered outliers (label -1)."""
    rng = np.random.default_rng(seed)
    centres = l2_normalize(rng.normal(size=(k, DIM)))
    X = np.concatenate([centres[c] + spread * rng.normal(size=(n_per, DIM)) / np.sqrt(DIM) for c in range(k)])
    y = np.repeat(np.arange(k), n_per)
    if n_outliers:
        X = np.concatenate([X, rng.normal(size=(n_outliers, DIM))])
        y = np.concatenate([y, np.full(n_outliers, -1)])
    return l2_normalize(X), y


@pytest.fixture(scope="module")
def fitted() -> tuple[PatternClusterer, np.ndarray, np.ndarray]:
    X, y = blobs(n_outliers=6)
    return PatternClusterer(random_state=7).fit(X), X, y


def test_recovers_known_groups(fitted: tuple[PatternClusterer, np.ndarray, np.ndarray]) -> None:
    c, X, y = fitted
    inliers = y >= 0
    assert c.n_clusters_ == 4
    assert adjusted_rand_score(y[inliers], c.labels_[inliers]) == pytest.approx(1.0)
    assert np.all(c.labels_[~inliers] == -1)  # random directions stay unclustered, never forced
    assert c.labels_.shape == (X.shape[0],)
    assert c.reduced_.shape == (X.shape[0], 5)
    assert c.probabilities_.shape == (X.shape[0],)
    np.testing.assert_allclose(np.linalg.norm(c.centroids_, axis=1), 1.0, atol=1e-5)
    sizes = [int(np.sum(c.labels_ == k)) for k in range(c.n_clusters_)]
    assert sizes == sorted(sizes, reverse=True)  # label 0 is the biggest pattern


def test_same_seed_same_labels(fitted: tuple[PatternClusterer, np.ndarray, np.ndarray]) -> None:
    c, X, _ = fitted
    again = PatternClusterer(random_state=7).fit(X)
    np.testing.assert_array_equal(again.labels_, c.labels_)
    np.testing.assert_allclose(again.reduced_, c.reduced_)


def test_predict_nearest_centroid_with_threshold(
    fitted: tuple[PatternClusterer, np.ndarray, np.ndarray],
) -> None:
    c, X, y = fitted
    group_means = l2_normalize(np.stack([X[c.labels_ == k].mean(axis=0) for k in range(c.n_clusters_)]))
    labels, conf = c.predict(group_means)
    np.testing.assert_array_equal(labels, np.arange(c.n_clusters_))
    assert np.all(conf > 0.95)
    # centroids_ live in the centred space that transform() maps to: the members' centre there
    Z = c.transform(X)
    np.testing.assert_allclose(
        l2_normalize(Z[c.labels_ == 0].mean(axis=0)[None]), c.centroids_[:1], atol=1e-5
    )
    assert abs(float(Z.mean(axis=0) @ Z.mean(axis=0))) < 0.05  # the shared component is gone
    inliers = np.flatnonzero(y >= 0)
    pred, _ = c.predict(X[inliers])
    assert np.mean(pred == c.labels_[inliers]) >= 0.9  # members mostly clear their pattern's threshold
    far = l2_normalize(np.random.default_rng(99).normal(size=(5, DIM)))
    far_labels, far_conf = c.predict(far)
    assert np.all(far_labels == -1)
    assert np.all((far_conf >= 0) & (far_conf <= 1))


def test_outlier_reduction_attaches_only_close_points() -> None:
    X, y = blobs(n_per=40, k=3, seed=3)
    rng = np.random.default_rng(5)
    # near-members: the first centre's members nudged a little; far points: random directions
    near = l2_normalize(X[:3] + 0.05 * rng.normal(size=(3, DIM)) / np.sqrt(DIM))
    far = l2_normalize(rng.normal(size=(6, DIM)))
    Xa = np.concatenate([X, near, far])
    plain = PatternClusterer(random_state=1).fit(Xa)
    auto = PatternClusterer(random_state=1, outlier_threshold="auto").fit(Xa)
    np.testing.assert_array_equal(auto.hdbscan_labels_, plain.labels_)
    assert np.all(auto.labels_[-6:] == -1)  # random directions are never forced into a pattern
    attached = (plain.labels_ == -1) & (auto.labels_ >= 0)
    assert np.all(~attached[-6:])
    strict = PatternClusterer(random_state=1, outlier_threshold=0.999).fit(Xa)
    np.testing.assert_array_equal(strict.labels_, plain.labels_)
    loose = PatternClusterer(random_state=1, outlier_threshold=-1.0).fit(Xa)
    assert np.all(loose.labels_ >= 0)


def test_warm_start_from_previous_layout(fitted: tuple[PatternClusterer, np.ndarray, np.ndarray]) -> None:
    c, X, y = fitted
    warm = PatternClusterer(random_state=7).fit(X, init=c.reduced_)
    inliers = y >= 0
    assert adjusted_rand_score(c.labels_[inliers], warm.labels_[inliers]) == pytest.approx(1.0)
    with pytest.raises(InputError) as exc:
        PatternClusterer().fit(X, init=c.reduced_[:, :2])
    assert exc.value.field == "init"


def test_exact_knn_matches_brute_force() -> None:
    X, _ = blobs(n_per=30, k=3, seed=2)
    idx, dist = exact_knn(X, 6, block=17)
    sims = X @ X.T
    for i in range(X.shape[0]):
        expected = np.argsort(-sims[i], kind="stable")[:6]
        assert idx[i, 0] == i and dist[i, 0] == 0.0
        assert set(idx[i, 1:]) == set(expected[expected != i][:5])
        np.testing.assert_allclose(dist[i, 1:], 1 - sims[i, idx[i, 1:]], atol=1e-5)
    assert np.all(np.diff(dist, axis=1) >= -1e-6)


def test_metrics() -> None:
    labels = np.array([0, 0, 1, 1, -1, -1])
    truth = ["a", "a", "b", "b", "one-off", "one-off"]
    m = clustering_metrics(labels, true_labels=truth, mask=np.array([t != "one-off" for t in truth]))
    assert m["n_patterns"] == 2
    assert m["noise_fraction"] == pytest.approx(1 / 3)
    assert m["ari"] == pytest.approx(1.0) and m["nmi"] == pytest.approx(1.0)
    assert m["ari_masked"] == pytest.approx(1.0) and m["noise_fraction_masked"] == 0.0
    X, y = blobs(n_per=20, k=3, seed=4)
    c = PatternClusterer(random_state=0).fit(X)
    full = clustering_metrics(c.labels_, c.reduced_, true_labels=y)
    assert full["silhouette"] > 0.5
    assert -1.0 <= full["dbcv"] <= 1.0
    wrong = clustering_metrics(np.zeros(60, dtype=int), true_labels=y)
    assert wrong["ari"] == pytest.approx(0.0)


def test_min_cluster_size_scales_with_corpus() -> None:
    assert default_min_cluster_size(100) == 5
    assert default_min_cluster_size(1_000) == 16
    assert default_min_cluster_size(10_000) == 50
    assert default_min_cluster_size(1_000_000) == 100


def test_not_fitted_and_bad_input() -> None:
    with pytest.raises(NotFittedError):
        PatternClusterer().predict(np.ones((1, DIM)))
    X, _ = blobs(n_per=20, k=2)
    with pytest.raises(InputError) as exc:
        PatternClusterer(min_cluster_size=50).fit(X)
    assert exc.value.field == "X"
    with pytest.raises(InputError) as exc:
        PatternClusterer(outlier_threshold=1.5).fit(X)
    assert exc.value.field == "outlier_threshold"
    with pytest.raises(InputError) as exc:
        PatternClusterer(n_neighbors=0).fit(X)
    assert exc.value.field == "n_neighbors"
    bad = X.copy()
    bad[0, 0] = np.nan
    with pytest.raises(InputError):
        PatternClusterer().fit(bad)
