from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pytest

from ml.errors import InputError, NotFittedError, NotFoundError
from ml.io.schemas import Incident
from ml.patterns.similarity import Match, SimilarityIndex

DIM = 16
GROUPS = {
    "dns": ["resolver", "nameserver", "zone", "record", "ttl", "cname"],
    "cert": ["certificate", "tls", "expiry", "renewal", "handshake", "x509"],
    "disk": ["volume", "inode", "filesystem", "quota", "logrotate", "partition"],
}
COMMON = ["outage", "customers", "errors", "latency", "alert", "rollback", "deploy", "timeout"]


def _incident(
    i: int, *, service: str = "api", team: str = "core", day: int = 0, title: str | None = None
) -> Incident:
    return Incident(
        id=f"INC-{i:03d}",
        title=title or f"incident {i}",
        summary="summary",
        started_at=dt.datetime(2025, 1, 1, tzinfo=dt.UTC) + dt.timedelta(days=day),
        service=service,
        team=team,
    )


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def make_toy(seed: int = 3, per_group: int = 10) -> dict:
    """Three failure groups. Each signal is informative but noisy, independently: an embedding is the group's
    centre plus noise as large as the centre, and each of a text's five topical words comes from another
    group's vocabulary one time in four (plus three generic words). So each signal alone ranks incidents of
    another group first for some queries, and the other signal often knows better there."""
    rng = np.random.default_rng(seed)
    names = list(GROUPS)
    centers = {g: _unit(rng.normal(size=DIM)) for g in names}
    incidents, texts, vecs, labels = [], [], [], []
    for group in names:
        others = [g for g in names if g != group]
        for j in range(per_group):
            i = len(incidents)
            vec = centers[group] + 2.0 * rng.normal(size=DIM) / np.sqrt(DIM)
            words = []
            for _ in range(5):
                source = group if rng.random() < 0.75 else others[int(rng.integers(len(others)))]
                words.append(str(rng.choice(GROUPS[source])))
            words += list(rng.choice(COMMON, size=3, replace=False))
            service = ["api", "db"][j % 2]
            team = ["core", "edge"][(i // 2) % 2]
            incidents.append(_incident(i, service=service, team=team, day=i))
            texts.append(" ".join(words))
            vecs.append(_unit(vec))
            labels.append(group)
    return {
        "incidents": incidents,
        "texts": texts,
        "vecs": np.asarray(vecs, dtype=np.float32),
        "labels": labels,
    }


@pytest.fixture(scope="module")
def toy() -> dict:
    return make_toy()


@pytest.fixture(scope="module")
def index(toy: dict) -> SimilarityIndex:
    names = {0: "dns change", 1: "certificate expiry", 2: "disk full"}
    pids = [list(GROUPS).index(g) for g in toy["labels"]]
    return SimilarityIndex.build(toy["incidents"], toy["texts"], toy["vecs"], pids, names, model_id="toy")


def _precision_at(index: SimilarityIndex, toy: dict, mode: str, k: int = 5) -> float:
    labels = dict(zip([inc.id for inc in toy["incidents"]], toy["labels"], strict=True))
    scores = []
    for q, inc in enumerate(toy["incidents"]):
        ids, _ = index.rank(toy["vecs"][q], toy["texts"][q], k=k, exclude_id=inc.id, mode=mode)
        scores.append(np.mean([labels[x] == toy["labels"][q] for x in ids]))
    return float(np.mean(scores))


@pytest.mark.parametrize("fusion", ["rrf", "zscore"])
@pytest.mark.parametrize("seed", [3, 4])
def test_fusion_beats_each_signal_when_each_fails_on_some_queries(fusion: str, seed: int) -> None:
    toy = make_toy(seed)
    # The pattern ids are the truth here: leave them out so the tie-break cannot help the fused ranking.
    index = SimilarityIndex.build(toy["incidents"], toy["texts"], toy["vecs"], fusion=fusion)
    dense = _precision_at(index, toy, "dense")
    lexical = _precision_at(index, toy, "lexical")
    fused = _precision_at(index, toy, "fused")
    assert dense < 0.9 and lexical < 0.9  # each signal alone really fails on some queries
    assert fused > max(dense, lexical)


def test_query_returns_matches_with_metadata_and_reasons(index: SimilarityIndex, toy: dict) -> None:
    q = 4  # a dns incident
    matches = index.query(toy["vecs"][q], toy["texts"][q], k=5, exclude_id=toy["incidents"][q].id)
    assert len(matches) == 5 and all(isinstance(m, Match) for m in matches)
    assert toy["incidents"][q].id not in {m.id for m in matches}
    assert [m.score for m in matches] == sorted((m.score for m in matches), reverse=True)
    top = matches[0]
    assert sum(m.pattern_name == "dns change" for m in matches) >= 3
    assert {(m.pattern_id, m.pattern_name) for m in matches} <= {
        (0, "dns change"),
        (1, "certificate expiry"),
        (2, "disk full"),
    }
    assert top.date == dt.date(2025, 1, 1) + dt.timedelta(days=int(top.id[-3:]))
    query_words = set(toy["texts"][q].split())
    for m in matches:
        assert set(m.reasons.shared_keywords) <= query_words
        assert m.dense_score is not None and abs(m.dense_score) <= 1.0 + 1e-5
        assert 0.0 <= m.lexical_score <= 1.0
    shared = [m for m in matches if m.reasons.shared_keywords]
    assert shared, "dns texts share dns terms"
    assert any(set(m.reasons.shared_keywords) & set(GROUPS["dns"]) for m in shared)
    d = top.to_dict()
    assert d["date"] == top.date.isoformat() and isinstance(d["reasons"]["shared_keywords"], list)


def test_shared_keywords_are_ranked_by_informativeness() -> None:
    incidents = [_incident(i) for i in range(6)]
    texts = [
        "disk full outage on the volume",
        "disk full outage after logrotate",
        "outage caused by dns",
        "outage caused by certificate",
        "outage caused by timeout",
        "outage disk",
    ]
    vecs = np.eye(6, DIM, dtype=np.float32) + 0.01
    index = SimilarityIndex.build(incidents, texts, vecs)
    m = index.query(None, "disk full outage on the volume logrotate", k=1, exclude_id="INC-000")[0]
    assert m.id == "INC-001"
    # "outage" is in every text (uninformative); "logrotate" is rare and comes first.
    assert m.reasons.shared_keywords[0] == "logrotate"
    assert "outage" not in m.reasons.shared_keywords
    assert "the" not in m.reasons.shared_keywords


def test_matching_fields_name_same_service_team_and_pattern(index: SimilarityIndex, toy: dict) -> None:
    q = toy["incidents"][4]
    for m in index.query(toy["vecs"][4], toy["texts"][4], k=10, exclude_id=q.id):
        assert ("service" in m.reasons.matching_fields) == (m.service == q.service)
        assert ("team" in m.reasons.matching_fields) == (m.team == q.team)
        assert ("pattern" in m.reasons.matching_fields) == (m.pattern_id == 0)
    explicit = index.query(toy["vecs"][4], None, k=3, query_service="db", query_team="edge")
    for m in explicit:
        assert ("service" in m.reasons.matching_fields) == (m.service == "db")
        assert "pattern" not in m.reasons.matching_fields


def test_filters_service_team_since_and_exclude(index: SimilarityIndex, toy: dict) -> None:
    vec, text = toy["vecs"][0], toy["texts"][0]
    by_service = index.query(vec, text, k=50, service="db")
    assert by_service and {m.service for m in by_service} == {"db"}
    assert len(by_service) == sum(inc.service == "db" for inc in toy["incidents"])
    by_team = index.query(vec, text, k=50, team="edge", service="api")
    assert by_team and all(m.team == "edge" and m.service == "api" for m in by_team)
    several = index.query(vec, text, k=50, service=["db", "api"])
    assert len(several) == len(toy["incidents"])
    since = dt.date(2025, 1, 11)
    recent = index.query(vec, text, k=50, since=since)
    assert recent and all(m.date >= since for m in recent)
    assert len(recent) == len(toy["incidents"]) - 10
    aware = index.query(vec, text, k=50, since=dt.datetime(2025, 1, 11, tzinfo=dt.UTC))
    assert [m.id for m in aware] == [m.id for m in recent]
    excluded = index.query(vec, text, k=50, exclude_id="INC-000")
    assert "INC-000" not in {m.id for m in excluded} and len(excluded) == len(toy["incidents"]) - 1
    assert index.query(vec, text, k=5, service="no-such-service") == []
    # An unknown exclude_id (e.g. a new incident not indexed yet) excludes nothing.
    assert len(index.query(vec, text, k=50, exclude_id="NEW-1")) == len(toy["incidents"])


def test_filters_compose_with_fusion_ranking(index: SimilarityIndex, toy: dict) -> None:
    vec, text = toy["vecs"][5], toy["texts"][5]
    full = index.query(vec, text, k=len(toy["incidents"]))
    filtered = index.query(vec, text, k=len(toy["incidents"]), service="api", mode="dense")
    dense_full = [m.id for m in index.query(vec, text, k=len(toy["incidents"]), mode="dense")]
    assert [m.id for m in filtered] == [x for x in dense_full if index.get(x).service == "api"]
    assert len(full) == len(toy["incidents"])


def test_modes_and_single_signal_queries(index: SimilarityIndex, toy: dict) -> None:
    vec, text = toy["vecs"][8], toy["texts"][8]
    dense = index.query(vec, text, k=len(toy["incidents"]), mode="dense")
    assert [m.score for m in dense] == pytest.approx(
        sorted((float(v) for v in toy["vecs"] @ vec), reverse=True), abs=1e-5
    )
    only_vec = index.query(vec, None, k=len(toy["incidents"]))
    assert [m.id for m in only_vec] == [m.id for m in dense]
    assert all(m.reasons.shared_keywords == () for m in only_vec)
    lexical = index.query(vec, text, k=5, mode="lexical")
    only_text = index.query(None, text, k=5)
    assert [m.score for m in only_text] == [m.score for m in lexical]  # ties may break differently
    assert only_text[0].dense_score is None and only_text[0].lexical_score == pytest.approx(1.0)
    # A text-only query returns only incidents that share a term with it.
    assert index.query(None, "zebra quantum", k=5) == []
    assert all(m.lexical_score > 0 for m in index.query(None, "resolver", k=30))
    # An empty text with a vector is a dense query.
    assert [m.id for m in index.query(vec, "  ", k=5)] == [m.id for m in dense[:5]]


def test_query_incident_equals_query_with_its_own_vector_and_text(index: SimilarityIndex, toy: dict) -> None:
    q = 9
    by_id = index.query_incident(toy["incidents"][q].id, k=7)
    by_query = index.query(toy["vecs"][q], toy["texts"][q], k=7, exclude_id=toy["incidents"][q].id)
    assert [(m.id, m.score) for m in by_id] == [(m.id, m.score) for m in by_query]
    with pytest.raises(NotFoundError):
        index.query_incident("INC-999")


def test_pattern_breaks_ties() -> None:
    incidents = [_incident(i) for i in range(3)]
    vec = _unit(np.arange(1, DIM + 1, dtype=float))
    vecs = np.asarray([vec, vec, vec], dtype=np.float32)
    texts = ["dns resolver outage"] * 3
    index = SimilarityIndex.build(incidents, texts, vecs, pattern_ids=[5, 7, 5])
    a = index.query(vec, "dns resolver", k=2, exclude_id="INC-000")
    assert [m.id for m in a] == ["INC-002", "INC-001"]  # same pattern as the query incident first
    b = index.query(vec, "dns resolver", k=2, query_pattern_id=7)
    assert b[0].id == "INC-001"


def test_pattern_vote_helps_with_noisy_patterns_and_cannot_outvote_both_signals() -> None:
    toy = make_toy(5)
    rng = np.random.default_rng(0)
    truth = np.asarray([list(GROUPS).index(g) for g in toy["labels"]])
    noisy = np.where(rng.random(truth.size) < 0.2, rng.integers(0, 3, truth.size), truth)  # 20% reassigned
    args = (toy["incidents"], toy["texts"], toy["vecs"], noisy.tolist())
    without = _precision_at(SimilarityIndex.build(*args, pattern_weight=0.0), toy, "fused")
    with_vote = _precision_at(SimilarityIndex.build(*args), toy, "fused")
    assert with_vote > without

    # The vote reorders close calls only. Both signals rank incident i i-th; incident 1 is of another pattern
    # than the query. With the defaults the pattern's incidents ranked 2nd..13th by both overtake it
    # (2 / (60 + i) + 0.4 / (59 + i) > 2 / 61), the ones ranked 14th or lower do not.
    n = 20
    incidents = [_incident(i) for i in range(n)]
    base = _unit(np.arange(1, DIM + 1, dtype=float))
    noise = np.ones(DIM) - np.arange(DIM) % 2 * 2
    noise = _unit(noise - (noise @ base) * base)  # orthogonal to base: the cosine falls with i
    vecs = np.asarray([_unit(base + 0.05 * i * noise) for i in range(n)], dtype=np.float32)
    words = [f"term{j}" for j in range(n)]
    texts = [" ".join(words[: n - i]) for i in range(n)]  # incident i shares n - i terms with incident 0
    pids = [1] * n
    pids[1] = 2  # the best match is of another pattern than the query
    index = SimilarityIndex.build(incidents, texts, vecs, pattern_ids=pids)
    top = index.query(vecs[0], texts[0], k=n - 1, exclude_id="INC-000")
    order = [m.id for m in top]
    assert order.index("INC-001") == 12
    assert order[13:] == [f"INC-{i:03d}" for i in range(14, n)]


def test_save_load_round_trip_gives_identical_results(index: SimilarityIndex, toy: dict, tmp_path) -> None:
    folder = index.save(tmp_path / "idx")
    files = sorted(p.name for p in folder.iterdir())
    assert all(name.endswith((".npy", ".json")) for name in files)
    for name in files:
        if name.endswith(".npy"):
            np.load(folder / name, allow_pickle=False)  # plain arrays, no pickled objects
    meta = json.loads((folder / "index.json").read_text())
    assert meta["model_id"] == "toy" and meta["n_incidents"] == len(toy["incidents"])
    loaded = SimilarityIndex.load(folder)
    assert len(loaded) == len(index) and loaded.get_params() == index.get_params()
    assert loaded.get("INC-003") == index.get("INC-003")
    for q in range(0, len(toy["incidents"]), 5):
        kwargs = {"k": 6, "exclude_id": toy["incidents"][q].id}
        for mode in ("fused", "dense", "lexical"):
            before = index.query(toy["vecs"][q], toy["texts"][q], mode=mode, **kwargs)
            after = loaded.query(toy["vecs"][q], toy["texts"][q], mode=mode, **kwargs)
            assert before == after


def test_load_rejects_missing_or_foreign_folder(index: SimilarityIndex, tmp_path) -> None:
    with pytest.raises(InputError, match="index.json"):
        SimilarityIndex.load(tmp_path)
    folder = index.save(tmp_path / "idx")
    (folder / "embeddings.npy").unlink()
    with pytest.raises(InputError, match="embeddings.npy"):
        SimilarityIndex.load(folder)


def test_empty_corpus_and_k_larger_than_corpus(index: SimilarityIndex, toy: dict, tmp_path) -> None:
    empty = SimilarityIndex.build([], [], np.zeros((0, DIM), dtype=np.float32))
    assert len(empty) == 0
    assert empty.query(toy["vecs"][0], "dns outage", k=5) == []
    assert empty.query(None, "dns outage", k=5) == []
    reloaded = SimilarityIndex.load(empty.save(tmp_path / "empty"))
    assert len(reloaded) == 0 and reloaded.query(toy["vecs"][0], "dns", k=3) == []
    n = len(toy["incidents"])
    assert len(index.query(toy["vecs"][0], toy["texts"][0], k=1000)) == n
    assert len(index.query(toy["vecs"][0], toy["texts"][0], k=1000, exclude_id="INC-000")) == n - 1


def test_unfitted_and_bad_input_raise_clear_errors(index: SimilarityIndex, toy: dict) -> None:
    with pytest.raises(NotFittedError):
        SimilarityIndex().query(toy["vecs"][0], "x")
    with pytest.raises(NotFittedError):
        len(SimilarityIndex())
    with pytest.raises(InputError) as err:
        index.query(toy["vecs"][0], "dns", k=0)
    assert err.value.field == "k"
    with pytest.raises(InputError) as err:
        index.query(np.ones(DIM + 1), "dns")
    assert err.value.field == "query_vec"
    with pytest.raises(InputError):
        index.query(np.zeros(DIM), "dns")
    with pytest.raises(InputError):
        index.query(None, None)
    with pytest.raises(InputError) as err:
        index.query(toy["vecs"][0], "dns", mode="hybrid")  # type: ignore[arg-type]
    assert err.value.field == "mode"
    with pytest.raises(InputError) as err:
        index.query(toy["vecs"][0], "dns", since="2025-01-01")  # type: ignore[arg-type]
    assert err.value.field == "since"
    with pytest.raises(NotFoundError):
        index.get("INC-999")
    incidents = toy["incidents"][:2]
    with pytest.raises(InputError) as err:
        SimilarityIndex.build(incidents, ["a", "b"], toy["vecs"][:3])
    assert err.value.field == "embeddings"
    with pytest.raises(InputError) as err:
        SimilarityIndex.build([incidents[0], incidents[0]], ["a", "b"], toy["vecs"][:2])
    assert "INC-000" in err.value.message
    with pytest.raises(InputError) as err:
        SimilarityIndex.build(incidents, ["a"], toy["vecs"][:2])
    assert err.value.field == "texts"
    with pytest.raises(InputError) as err:
        SimilarityIndex.build(incidents, ["a", "b"], toy["vecs"][:2], pattern_ids=[0, -2])
    assert err.value.field == "pattern_ids"
    with pytest.raises(InputError) as err:
        SimilarityIndex(fusion="max").fit(incidents, ["a", "b"], toy["vecs"][:2])  # type: ignore[arg-type]
    assert err.value.field == "fusion"


def test_texts_default_to_redacted_documents_and_titles_are_redacted() -> None:
    inc = Incident(
        id="INC-1",
        title="Paged @alice about dns",
        summary="Resolver outage reported by bob@example.com",
        started_at=dt.datetime(2025, 3, 1, tzinfo=dt.UTC),
    )
    index = SimilarityIndex.build([inc], None, np.ones((1, DIM), dtype=np.float32), {"INC-1": 2}, {2: "dns"})
    assert "@alice" not in index.get("INC-1").title
    # stems in the vocabulary (Snowball: "resolver" -> "resolv"), words as written in the reasons
    assert "example" not in index.display_ and "resolver" in index.display_
    assert not any("exampl" in t for t in index.vocabulary_) and "resolv" in index.vocabulary_
    m = index.query(None, "resolver outage", k=1)[0]
    assert m.pattern_name == "dns" and set(m.reasons.shared_keywords) == {"resolver", "outage"}


@pytest.mark.slow
def test_real_embeddings_end_to_end() -> None:
    """A small corpus through the real MiniLM embedder: the fused search finds the same kind of failure."""
    from ml.text.documents import DocumentBuilder
    from ml.text.embedding import Embedder

    docs = [
        (
            "TLS certificate expired on the edge proxy",
            "The wildcard certificate was not renewed and expired.",
        ),
        (
            "Cert renewal job failed silently",
            "Let's Encrypt renewal cron failed; handshake errors at expiry.",
        ),
        ("Disk full on the primary database", "Write-ahead logs filled the data volume to 100%."),
        ("Log partition ran out of space", "Logrotate stopped and the disk filled up on the log hosts."),
        ("DNS change broke service discovery", "A bad record in the internal zone made the resolver fail."),
        (
            "Wrong CNAME after DNS migration",
            "The nameserver served a stale CNAME record after the zone move.",
        ),
    ]
    incidents = [
        Incident(id=f"E-{i}", title=t, summary=s, started_at=dt.datetime(2025, 1, 1 + i, tzinfo=dt.UTC))
        for i, (t, s) in enumerate(docs)
    ]
    texts = DocumentBuilder().build_many(incidents)
    embedder = Embedder()
    index = SimilarityIndex.build(incidents, texts, embedder.encode(texts), model_id=embedder.model_id)
    query = "Our TLS cert expired overnight and clients saw handshake failures"
    top = index.query(embedder.encode([query])[0], query, k=2)
    assert {m.id for m in top} == {"E-0", "E-1"}
    for i in range(0, 6, 2):
        assert index.query_incident(f"E-{i}", k=1)[0].id == f"E-{i + 1}"


def _texts_index(texts: list[str]) -> SimilarityIndex:
    incidents = [_incident(i, title=f"incident {i}") for i in range(len(texts))]
    vecs = np.eye(len(texts), DIM, dtype=np.float32) + 0.01
    return SimilarityIndex.build(incidents, texts, vecs)


def test_stemming_is_the_library_snowball_stemmer() -> None:
    """One stemmer for the library: "connecting" meets "connections" and "retried" meets "retries"."""
    from ml.text.stemming import stem

    index = _texts_index(["retries exhausted on payment connections", "disk quota reached", "cache warmed"])
    matches = index.query(None, "retried connecting", k=3)
    assert [m.id for m in matches] == ["INC-000"]
    assert sorted(matches[0].reasons.shared_keywords) == ["connections", "retries"]
    assert {stem("connections"), stem("retries")} <= set(index.vocabulary_)


def test_index_saved_with_the_previous_stemmer_is_restemmed_on_load(tmp_path) -> None:
    """An index written before the Snowball stemmer ("delays" stored as "delai") still finds "delay"."""
    index = _texts_index(["payment delays", "payment delayed twice", "disk quota reached"])
    folder = index.save(tmp_path / "idx")
    meta = json.loads((folder / "index.json").read_text())
    assert meta["stemmer"] == "snowball-english"
    del meta["stemmer"]
    meta["vocabulary"] = ["delai" if t == "delay" else t for t in meta["vocabulary"]]
    (folder / "index.json").write_text(json.dumps(meta))
    loaded = SimilarityIndex.load(folder)
    assert "delay" in loaded.vocabulary_ and "delai" not in loaded.vocabulary_
    assert [m.id for m in loaded.query(None, "delay", k=3)] == ["INC-000", "INC-001"]


def test_restem_merges_terms_that_now_share_a_stem() -> None:
    from scipy import sparse

    from ml.patterns.lexical import restem

    tf = sparse.csr_matrix(np.array([[2, 0, 1], [0, 1, 0]], dtype=np.int32))
    new_tf, vocab, display = restem(
        tf, ["connection", "connect", "disk"], ["connections", "connecting", "disk"]
    )
    assert vocab == ["connect", "disk"]
    assert display == ["connections", "disk"]  # the spelling of the more frequent part
    assert new_tf.toarray().tolist() == [[2, 1], [1, 0]]


# ------------------------------------------------------------------ two intents, two views (issue #14, item 1)


def make_views(seed: int = 5, per_group: int = 8) -> dict:
    """Whole texts and vectors that say nothing (shared symptom words, random vectors); a symptoms view that
    tells the group apart by what was seen and a cause view that tells it apart by the cause. One incident in
    four has no root cause (no cause view: its cause texts are empty)."""
    rng = np.random.default_rng(seed)
    names = list(GROUPS)
    sym_centres = {g: _unit(rng.normal(size=DIM)) for g in names}
    cause_centres = {g: _unit(rng.normal(size=DIM)) for g in names}
    incidents, labels, whole, whole_vecs = [], [], [], []
    sym_t, sym_v, cause_t, cause_v, present = [], [], [], [], []
    for group in names:
        for _ in range(per_group):
            i = len(incidents)
            incidents.append(_incident(i, day=i))
            labels.append(group)
            whole.append(" ".join(rng.choice(COMMON, size=4, replace=False)))
            whole_vecs.append(_unit(rng.normal(size=DIM)))
            sym_t.append(f"{group}symptom " + " ".join(rng.choice(COMMON, size=2, replace=False)))
            sym_v.append(_unit(sym_centres[group] + 0.3 * rng.normal(size=DIM) / np.sqrt(DIM)))
            has = i % 4 != 3
            cause_t.append(" ".join(rng.choice(GROUPS[group], size=3, replace=False)) if has else "")
            cause_v.append(_unit(cause_centres[group] + 0.3 * rng.normal(size=DIM) / np.sqrt(DIM)))
            present.append(has)
    f32 = np.float32
    return {
        "incidents": incidents,
        "labels": labels,
        "texts": whole,
        "vecs": np.asarray(whole_vecs, dtype=f32),
        "views": {
            "symptoms": (sym_t, np.asarray(sym_v, dtype=f32), [True] * len(incidents)),
            "cause": (cause_t, np.asarray(cause_v, dtype=f32), present),
        },
    }


def _precision(matches: list[Match], labels: dict[str, str], group: str) -> float:
    return sum(labels[m.id] == group for m in matches) / len(matches)


def test_query_by_id_compares_root_cause_views_when_both_have_one() -> None:
    toy = make_views()
    labels = {inc.id: lab for inc, lab in zip(toy["incidents"], toy["labels"], strict=True)}
    args = (toy["incidents"], toy["texts"], toy["vecs"])
    with_cause = SimilarityIndex(cause_weight=2.0).fit(*args, views=toy["views"])
    without = SimilarityIndex().fit(*args)
    present = toy["views"]["cause"][2]
    cause_ids = {inc.id for inc, p in zip(toy["incidents"], present, strict=True) if p}
    p_with, p_without = [], []
    for inc, group, has in zip(toy["incidents"], toy["labels"], present, strict=True):
        got = with_cause.query_incident(inc.id, k=4)
        if has:
            p_with.append(_precision(got, labels, group))
            p_without.append(_precision(without.query_incident(inc.id, k=4), labels, group))
            # the cause view ranks incidents that have one; its best matches have a root cause
            assert got[0].id in cause_ids
        else:  # no root cause: the whole text alone decides, as without the view
            assert [m.id for m in got] == [m.id for m in without.query_incident(inc.id, k=4)]
    assert np.mean(p_with) >= 0.9 and np.mean(p_without) <= 0.6, (np.mean(p_with), np.mean(p_without))
    # a pasted text does not use the cause view: same answer as without it
    q = toy["vecs"][0], "volume inode filesystem"
    assert [m.id for m in with_cause.query(*q, k=5)] == [m.id for m in without.query(*q, k=5)]


def test_pasted_text_matches_by_symptoms() -> None:
    toy = make_views()
    labels = {inc.id: lab for inc, lab in zip(toy["incidents"], toy["labels"], strict=True)}
    args = (toy["incidents"], toy["texts"], toy["vecs"])
    with_sym = SimilarityIndex(symptom_weight=2.0, cause_weight=0.0).fit(*args, views=toy["views"])
    without = SimilarityIndex().fit(*args)
    sym_vecs = toy["views"]["symptoms"][1]
    p_with, p_without = [], []
    for i, group in enumerate(toy["labels"]):
        text = f"{group}symptom outage customers"
        vec = sym_vecs[i]  # what the responder's text embeds to: near its group's symptoms
        exclude = toy["incidents"][i].id
        p_with.append(_precision(with_sym.query(vec, text, k=4, exclude_id=exclude), labels, group))
        p_without.append(_precision(without.query(vec, text, k=4, exclude_id=exclude), labels, group))
    assert np.mean(p_with) >= 0.8 and np.mean(p_without) <= 0.5, (np.mean(p_with), np.mean(p_without))
    # a query by id does not use the symptoms view
    first = toy["incidents"][0].id
    assert [m.id for m in with_sym.query_incident(first, k=5)] == [
        m.id for m in without.query_incident(first, k=5)
    ]


def test_views_save_load_round_trip_and_bad_weights(tmp_path) -> None:
    toy = make_views()
    index = SimilarityIndex(symptom_weight=1.0, cause_weight=1.0).fit(
        toy["incidents"], toy["texts"], toy["vecs"], views=toy["views"]
    )
    loaded = SimilarityIndex.load(index.save(tmp_path / "idx"))
    assert set(loaded.views_) == {"symptoms", "cause"}
    for inc in toy["incidents"][:6]:
        assert [m.to_dict() for m in loaded.query_incident(inc.id, k=5)] == [
            m.to_dict() for m in index.query_incident(inc.id, k=5)
        ]
    q = toy["views"]["symptoms"][1][2], "dnssymptom outage"
    assert [m.to_dict() for m in loaded.query(*q, k=5)] == [m.to_dict() for m in index.query(*q, k=5)]
    for name in ("cause_weight", "symptom_weight", "text_weight"):
        with pytest.raises(InputError) as err:
            SimilarityIndex(**{name: -1.0}).fit(toy["incidents"], toy["texts"], toy["vecs"])
        assert err.value.field == name
    with pytest.raises(InputError) as err:
        SimilarityIndex().fit(
            toy["incidents"], toy["texts"], toy["vecs"], views={"timeline": toy["views"]["cause"]}
        )
    assert err.value.field == "views"
