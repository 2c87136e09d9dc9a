"""Labelling (ml/labelling.py) and the pattern-mining pipeline (ml/patterns.py), on real embeddings."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from ml.errors import InputError, NotFittedError
from ml.io.schemas import Incident
from ml.patterns.clustering import PatternClusterer
from ml.patterns.labelling import PatternLabeller, c_tf_idf, match_patterns
from ml.patterns.model import PatternModel, pattern_trend
from ml.text.embedding import Embedder

# --- a small corpus with known mechanisms (texts vary; services are shared across mechanisms) ----------
MECHANISMS: dict[str, dict[str, list[str]]] = {
    "cert": {
        "title": [
            "TLS certificate expired",
            "HTTPS handshake failures",
            "mTLS errors after certificate expiry",
        ],
        "cause": [
            "The TLS certificate on the load balancer expired because auto-renewal had silently failed.",
            "An intermediate certificate expired and clients rejected the chain.",
            "The client certificate used for mTLS expired; nobody owned the renewal reminder.",
            "cert-manager could not renew the certificate since the ACME challenge was blocked.",
        ],
    },
    "disk": {
        "title": [
            "Disk full on database host",
            "Writes failing: no space left on device",
            "Volume filled up",
        ],
        "cause": [
            "Debug logging filled the data volume until writes failed with no space left on device.",
            "WAL files accumulated on disk after archiving broke, and the volume reached 100% usage.",
            "Temporary files from a large export filled the disk on the primary.",
            "Snapshots were never pruned and the volume ran out of free space.",
        ],
    },
    "pool": {
        "title": ["Connection pool exhausted", "Timeouts acquiring database connections", "Pool saturation"],
        "cause": [
            "A connection leak in the new ORM version held connections open until the pool was exhausted.",
            "Slow queries kept every connection in the pool busy and requests timed out waiting for one.",
            "Scaling to more pods multiplied connections past the database max_connections limit.",
            "Long transactions held pool connections and new requests could not get a connection.",
        ],
    },
    "dns": {
        "title": [
            "DNS change broke resolution",
            "Traffic sent to wrong cluster after DNS update",
            "NXDOMAIN errors",
        ],
        "cause": [
            "A DNS record was changed to point at a cluster that was not ready, and the high TTL slowed rollback.",
            "The resolver was reconfigured and returned NXDOMAIN for the internal zone.",
            "A Terraform run deleted a hand-made DNS record and lookups started failing.",
            "The CNAME update sent traffic to a decommissioned load balancer until the TTL expired.",
        ],
    },
}
SERVICES = ["checkout-api", "search-indexer", "auth-service", "orders-db"]
FILLER = [
    "The on-call engineer was paged and joined the bridge.",
    "Customers saw errors for a while.",
    "The status page was updated.",
    "",
]
T0 = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)


def make_incidents(n_per: int = 20, seed: int = 0, prefix: str = "INC") -> list[Incident]:
    rng = np.random.default_rng(seed)
    out: list[Incident] = []
    for m, pools in MECHANISMS.items():
        for j in range(n_per):
            svc = SERVICES[int(rng.integers(len(SERVICES)))]
            out.append(
                Incident(
                    id=f"{prefix}-{m}-{j:03d}",
                    title=f"{svc}: {pools['title'][int(rng.integers(len(pools['title'])))]}",
                    summary=f"Errors on {svc}. {FILLER[int(rng.integers(len(FILLER)))]}",
                    root_cause=" ".join(rng.choice(pools["cause"], size=2, replace=False)),
                    service=svc,
                    started_at=T0 + dt.timedelta(days=int(rng.integers(0, 360)), hours=int(rng.integers(24))),
                    pattern=m,
                )
            )
    return out


@pytest.fixture(scope="module")
def corpus() -> tuple[list[Incident], np.ndarray, Embedder]:
    """100 incidents (4 x 20 base + 20 extra for retrains) and their embeddings, embedded once."""
    incidents = make_incidents(20, seed=0) + make_incidents(5, seed=1, prefix="NEW")
    embedder = Embedder()
    X = embedder.encode(PatternModel().documents(incidents))
    return incidents, X, embedder


@pytest.fixture(scope="module")
def fitted(corpus: tuple[list[Incident], np.ndarray, Embedder]) -> PatternModel:
    incidents, X, embedder = corpus
    return PatternModel(embedder=embedder, clusterer=_clusterer()).fit(incidents[:80], embeddings=X[:80])


def _clusterer() -> PatternClusterer:
    # 20-25 incidents per mechanism: patterns of at least 15 (the corpus default, 5, would also find
    # sub-groups of incidents that share the exact same template sentences)
    return PatternClusterer(min_cluster_size=15, outlier_threshold="auto")


# --- labelling ---------------------------------------------------------------------------------------------
TOY_DOCS = [
    "certificate expiry broke tls handshakes",
    "tls certificate expiry on the proxy",
    "certificate expiry again, tls renewal failed",
    "disk full, no space left on the volume",
    "volume full of logs: disk full",
    "disk full after snapshots filled the volume",
    "unrelated meeting notes",
]
TOY_LABELS = np.array([0, 0, 0, 1, 1, 1, -1])


def test_labeller_keywords_and_names_on_toy_corpus() -> None:
    lab = PatternLabeller(min_df=1).fit(TOY_DOCS, TOY_LABELS)
    kw0, kw1 = lab.keywords(0), lab.keywords(1)
    assert set(kw0[:4]) >= {"certificate expiry", "tls"} or set(kw0[:4]) >= {"certificate", "expiry", "tls"}
    assert "disk full" in kw1[:3]
    assert not set(kw0) & {"disk", "volume", "full"}
    assert lab.names_[0] == "Certificate expiry"  # one root-cause phrase, not two keywords
    assert lab.names_[1] == "Disk full"
    assert lab.names_[0] != lab.names_[1]
    assert all(lab.representatives_[0][i] in (0, 1, 2) for i in range(3))
    assert -1 not in lab.keywords_


def test_labeller_representatives_are_closest_to_centroid() -> None:
    emb = np.array([[1, 0], [0.6, 0.8], [0.9, 0.1], [0, 1], [0.1, 1], [0.3, 0.95], [1, 1]], dtype=float)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    cents = np.array([[1.0, 0.0], [0.0, 1.0]])
    lab = PatternLabeller(min_df=1, n_representatives=2).fit(
        TOY_DOCS, TOY_LABELS, embeddings=emb, centroids=cents
    )
    assert lab.representatives_ == {0: [0, 2], 1: [3, 4]}


def test_c_tf_idf_prefers_class_specific_terms() -> None:
    from scipy import sparse

    counts = sparse.csr_matrix(np.array([[5, 5, 0], [0, 5, 5]]))  # term 1 is in both classes
    scores = c_tf_idf(counts).toarray()
    assert scores[0, 0] > scores[0, 1] and scores[1, 2] > scores[1, 1]


def test_labeller_not_fitted() -> None:
    with pytest.raises(NotFittedError):
        PatternLabeller().keywords(0)


def test_match_patterns_keeps_ids_and_gives_fresh_ones() -> None:
    rng = np.random.default_rng(0)
    old = rng.normal(size=(4, 16))
    old_ids = [3, 7, 8, 11]
    new = np.stack([old[2] + 0.05 * rng.normal(size=16), old[0], rng.normal(size=16), old[1] * 2.0])
    m = match_patterns(new, old, old_ids, min_similarity=0.7)
    assert m.ids[0] == 8 and m.ids[1] == 3 and m.ids[3] == 7
    assert m.ids[2] == 12 and m.fresh == [12]
    assert m.vanished == [11]
    assert m.similarity[1] == pytest.approx(1.0) and np.isnan(m.similarity[2])
    assert match_patterns(new, old, old_ids, next_id=20).fresh == [20]  # retired ids are never reused
    with pytest.raises(InputError):
        match_patterns(new, old, [1, 1, 2, 3])


# --- trend -------------------------------------------------------------------------------------------------
AS_OF = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def _dates(counts: list[int]) -> list[dt.datetime]:
    out = []
    for i, c in enumerate(counts):  # period i ends (6 - i - 1) * 30 days before AS_OF
        end = AS_OF - dt.timedelta(days=30 * (len(counts) - 1 - i))
        out += [end - dt.timedelta(days=1 + k % 28) for k in range(c)]
    return out


@pytest.mark.parametrize(
    ("counts", "direction"),
    [
        ([1, 2, 4, 7, 11, 16], "rising"),
        ([15, 12, 8, 5, 3, 1], "falling"),
        ([5, 4, 6, 5, 5, 4], "flat"),
        ([0, 0, 0, 0, 0, 2], "flat"),  # too few incidents to tell
        ([0, 20, 0, 20, 0, 20], "flat"),  # noisy, not a trend
    ],
)
def test_pattern_trend(counts: list[int], direction: str) -> None:
    tr = pattern_trend(_dates(counts) + [AS_OF - dt.timedelta(days=400)], AS_OF)
    assert tr.counts == counts
    assert tr.direction == direction
    if direction != "flat":
        assert tr.p_value < 0.05 and (tr.slope > 0) == (direction == "rising")


# --- pipeline ----------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_fit_finds_the_mechanisms(fitted: PatternModel) -> None:
    truth = [iid.split("-")[1] for iid in fitted.incident_ids_]
    labels = [fitted.assignments_[iid] for iid in fitted.incident_ids_]
    assert len(fitted.patterns_) == 4
    assert adjusted_rand_score(truth, labels) >= 0.9
    assert fitted.metrics_["ari"] >= 0.9 and fitted.metrics_["noise_fraction"] <= 0.1
    by_name = " | ".join(p.name for p in fitted.patterns_).lower()
    # one root-cause phrase per pattern: the mechanism's words, or what its causes say ("data volume")
    for words in (("certificate",), ("disk", "volume"), ("pool", "connection"), ("dns", "ttl", "resolver")):
        assert any(w in by_name for w in words), (words, by_name)
    for p in fitted.patterns_:
        assert len(p.representative_ids) == 3 and all(r in fitted.assignments_ for r in p.representative_ids)
        assert p.trend["direction"] in ("rising", "falling", "flat") and len(p.trend["counts"]) == 6
        assert p.size == sum(v == p.id for v in fitted.assignments_.values())
        assert not any(s in " ".join(p.keywords) for s in ("checkout", "indexer"))  # services are masked


@pytest.mark.slow
def test_assign_texts_incidents_and_vectors(fitted: PatternModel, corpus: tuple) -> None:
    incidents, X, _ = corpus
    text = (
        "billing-api: HTTPS errors after the TLS certificate expired. The certificate on the load balancer expired; "
        "the renewal job had failed silently and clients rejected the expired certificate chain."
    )
    ids, conf = fitted.assign([text])
    cert = next(p.id for p in fitted.patterns_ if "certificate" in p.name.lower())
    assert ids[0] == cert and 0 < conf[0] <= 1
    new = incidents[80:]
    by_vectors, _ = fitted.assign(X[80:], docs=fitted.documents(new))
    by_incidents, _ = fitted.assign(new)
    np.testing.assert_array_equal(by_vectors, by_incidents)
    truth = [inc.pattern for inc in new]
    assert adjusted_rand_score(truth, by_vectors) >= 0.8
    with pytest.raises(InputError):
        fitted.assign("a single string")  # type: ignore[arg-type]
    with pytest.raises(NotFittedError):
        PatternModel().assign(X[:1])


@pytest.mark.slow
def test_round_trip_to_dir(fitted: PatternModel, corpus: tuple, tmp_path: Path) -> None:
    incidents, X, embedder = corpus
    out = fitted.to_dir(tmp_path / "model")
    names = sorted(p.name for p in out.rglob("*") if p.is_file())
    assert names and all(n.endswith((".npy", ".json")) for n in names)
    for f in out.rglob("*.npy"):
        np.load(f, allow_pickle=False)  # plain arrays, no objects
    meta = json.loads((out / "model.json").read_text())
    assert meta["format"] == "recur.patterns/2" and "checkout-api" in meta["entities"]

    loaded = PatternModel.from_dir(out, embedder=embedder)
    assert loaded.assignments_ == fitted.assignments_
    assert [p.to_dict() for p in loaded.patterns_] == [p.to_dict() for p in fitted.patterns_]
    a1, c1 = fitted.assign(X)
    a2, c2 = loaded.assign(X)
    np.testing.assert_array_equal(a1, a2)
    np.testing.assert_allclose(c1, c2)
    np.testing.assert_array_equal(loaded.assign(incidents[80:])[0], fitted.assign(incidents[80:])[0])
    with pytest.raises(InputError):
        PatternModel.from_dir(tmp_path / "nothing-here")


@pytest.mark.slow
def test_ids_stable_across_two_retrains(fitted: PatternModel, corpus: tuple) -> None:
    incidents, X, embedder = corpus
    rng = np.random.default_rng(3)
    # retrain 1: drop 10 old incidents, add 10 new ones, shuffle the order
    keep = sorted(rng.choice(80, size=70, replace=False).tolist()) + list(range(80, 90))
    rng.shuffle(keep)
    m1 = PatternModel(embedder=embedder, clusterer=_clusterer()).fit(
        [incidents[i] for i in keep], embeddings=X[keep], previous=fitted
    )
    # retrain 2: everything
    m2 = PatternModel(embedder=embedder, clusterer=_clusterer()).fit(incidents, embeddings=X, previous=m1)
    assert m1.metrics_["warm_start"] == 1.0 and m2.metrics_["warm_start"] == 1.0
    for model in (m1, m2):
        assert sorted(p.id for p in model.patterns_) == sorted(p.id for p in fitted.patterns_)
        agree = [
            model.assignments_[i] == fitted.assignments_[i]
            for i in fitted.assignments_
            if i in model.assignments_
        ]
        assert np.mean(agree) >= 0.95
        for p in model.patterns_:
            assert p.name.split(" / ")[0] in fitted.pattern(p.id).name or set(p.keywords[:5]) & set(
                fitted.pattern(p.id).keywords[:5]
            )
    assert m2.next_id_ == fitted.next_id_


@pytest.mark.slow
def test_fit_rejects_bad_input(corpus: tuple) -> None:
    incidents, X, embedder = corpus
    with pytest.raises(InputError) as exc:
        PatternModel(embedder=embedder).fit([incidents[0], incidents[0]] + incidents[1:40], embeddings=X[:42])
    assert exc.value.field == "id"
    with pytest.raises(InputError) as exc:
        PatternModel(embedder=embedder).fit(incidents[:40], embeddings=X[:39])
    assert exc.value.field == "embeddings"
    with pytest.raises(InputError):
        PatternModel().fit([])


@pytest.mark.slow
def test_no_pattern_found_is_not_an_error(fitted: PatternModel, corpus: tuple) -> None:
    incidents, X, embedder = corpus
    coarse = PatternClusterer(min_cluster_size=45)  # no group of 45 similar incidents in 90
    model = PatternModel(embedder=embedder, clusterer=coarse).fit(
        incidents[:90], embeddings=X[:90], previous=fitted
    )
    assert model.patterns_ == [] and set(model.assignments_.values()) == {-1}
    assert sorted(model.id_changes_["vanished"]) == sorted(p.id for p in fitted.patterns_)
    assert model.next_id_ == fitted.next_id_  # retired ids are not reused later
    ids, conf = model.assign(X[:3])
    assert list(ids) == [-1, -1, -1] and np.all(conf == 0)
