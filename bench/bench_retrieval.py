"""Retrieval quality of the similar-incident index: dense-only vs lexical-only (BM25) vs fused.

The index is built the way ``recur train patterns`` builds it: a ``PatternModel`` is fitted on the corpus
and ``PatternModel.similarity_index`` indexes it (dense vectors of the service-masked documents, BM25 over the
full redacted text, the model's pattern ids). Leave-one-out: every incident queries the index of all the
others (``exclude_id``) with its own vector and text, as ``GET /v1/incidents/{id}/similar`` does. Metrics:
precision@5, recall@10 and MRR (over the full ranking), plus a random baseline (expected P@5) and a TF-IDF
cosine baseline for reference. "fused, no pattern" is the fusion of the two signals without the pattern vote.

Corpora:
  (a) the sample, ``data/sample/incidents.jsonl``: relevant = same ground-truth ``pattern``; "one-off" incidents
      stay in the index but do not query;
  (b) real GitHub status-page incidents, ``../shared/data/github-status/incidents.jsonl`` (HTML stripped, then
      redacted): relevant = shares an affected component (names normalised: "GitHub Pages" = "Pages", the
      "Issues, PRs, ..." group = "Issues", the "Visit www.githubstatus.com" placeholder dropped); incidents
      without a component are left out.

Fusion settings (dense weight, pattern weight) are checked with held-out evaluation: 2-fold cross-validation
over the queries of each corpus (choose on one half, score on the other), and across corpora (choose on one,
score on the other).

Two intents, two views (issue #14; also alone with ``--views-only``): on the sample, the hard sample
(``data/sample-hard``) and GitHub, "now" (each incident's symptoms pasted as text) and "like" (by id), the whole
text, each view alone, the best fused weight and the default: P@5 and MRR with 95% bootstrap intervals, the
weight chosen on one half of the queries and reported on the other.

Queries from another runtime (``--query-runtime onnx-int8``): the API embeds only the pasted text, so a runtime
can serve queries against an index embedded at training; pasted symptoms and whole texts, leave-one-out, P@5 and
MRR with each runtime's query vectors and the paired difference.

    python bench/bench_retrieval.py [--quick] [--no-tuning] [--views-only] [--query-runtime RUNTIME]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from data import github_status  # noqa: E402
from ml.io.schemas import Incident  # noqa: E402
from ml.patterns.model import PatternModel  # noqa: E402
from ml.patterns.similarity import SimilarityIndex  # noqa: E402
from ml.text.documents import DocumentBuilder, redact, strip_html, tokenize  # noqa: E402
from ml.text.embedding import Embedder  # noqa: E402

SAMPLE = ROOT / "data" / "sample" / "incidents.jsonl"
HARD = ROOT / "data" / "sample-hard" / "incidents.jsonl"
GITHUB = ROOT.parent / "shared" / "data" / "github-status" / "incidents.jsonl"
CACHE = ROOT / ".cache" / "embeddings"
# One component's names across the years, and the status page's footer that is not a component.
COMPONENT_ALIASES, DROP_COMPONENTS = github_status.ALIASES, github_status.DROP


@dataclass
class Corpus:
    name: str
    incidents: list[Incident]
    texts: list[str]
    labels: list[frozenset[str]]  # relevant <=> the label sets intersect
    queries: np.ndarray  # positions that query
    embeddings: np.ndarray | None = None
    model: PatternModel | None = None

    def index(self, **params: object) -> SimilarityIndex:
        assert self.model is not None
        return self.model.similarity_index(self.incidents, embeddings=self.embeddings, **params)


def load_sample(limit: int | None, path: Path = SAMPLE) -> Corpus | None:
    if not path.is_file():
        return None
    incidents = [Incident.model_validate_json(line) for line in path.read_text().splitlines() if line.strip()]
    if limit:
        incidents = incidents[:limit]
    labels = [frozenset([inc.pattern or "one-off"]) for inc in incidents]
    queries = np.asarray([i for i, inc in enumerate(incidents) if (inc.pattern or "one-off") != "one-off"])
    # One-offs have no relevant neighbours: as documents they are distractors only.
    labels = [lab if "one-off" not in lab else frozenset([f"one-off-{i}"]) for i, lab in enumerate(labels)]
    texts = DocumentBuilder().build_many(incidents)
    return Corpus("sample", incidents, texts, labels, queries)


def load_hard(limit: int | None) -> Corpus | None:
    """The hard sample (``data/sample-hard``): relevant = same ground-truth ``pattern``, as for the sample."""
    corpus = load_sample(limit, HARD)
    if corpus is not None:
        corpus.name = "sample-hard"
    return corpus


def load_github(limit: int | None) -> Corpus | None:
    if not GITHUB.is_file():
        return None
    incidents, labels = [], []
    for line in GITHUB.read_text().splitlines():
        row = json.loads(line)
        comps = {COMPONENT_ALIASES.get(c, c) for c in row.get("components") or []} - DROP_COMPONENTS
        if not comps:
            continue
        started = dt.datetime.fromisoformat(row["started_at"].replace("Z", "+00:00"))
        text = redact(strip_html(row["text"]))
        incidents.append(
            Incident(id=row["id"], title=row["name"], summary=text or row["name"], started_at=started)
        )
        labels.append(frozenset(comps))
    if limit:
        incidents, labels = incidents[:limit], labels[:limit]
    texts = DocumentBuilder().build_many(incidents)  # title + text, as the index holds them
    return Corpus("github-status", incidents, texts, labels, np.arange(len(incidents)))


def relevance_matrix(labels: list[frozenset[str]]) -> np.ndarray:
    names = sorted(set().union(*labels))
    pos = {n: j for j, n in enumerate(names)}
    onehot = np.zeros((len(labels), len(names)), dtype=np.float32)
    for i, lab in enumerate(labels):
        onehot[i, [pos[x] for x in lab]] = 1.0
    rel = (onehot @ onehot.T) > 0
    np.fill_diagonal(rel, False)
    return rel


def per_query_p5(rankings: dict[int, np.ndarray], rel: np.ndarray, queries: np.ndarray) -> np.ndarray:
    return np.asarray([rel[q, rankings[int(q)][:5]].mean() for q in queries if rel[q].any()])


def paired_ci(a: np.ndarray, b: np.ndarray, n_boot: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """Mean of a - b over queries with a 95% paired-bootstrap interval."""
    diff = a - b
    rng = np.random.default_rng(seed)
    boots = diff[rng.integers(0, diff.size, size=(n_boot, diff.size))].mean(axis=1)
    lo, hi = np.percentile(boots, [2.5, 97.5])
    return float(diff.mean()), float(lo), float(hi)


def metrics_from_rankings(
    rankings: dict[int, np.ndarray], rel: np.ndarray, queries: np.ndarray
) -> dict[str, float]:
    p5, r10, rr = [], [], []
    for q in queries:
        order = rankings[int(q)]
        hits = rel[q, order]
        n_rel = int(rel[q].sum())
        if n_rel == 0:
            continue
        p5.append(hits[:5].mean())
        r10.append(hits[:10].sum() / n_rel)
        first = np.flatnonzero(hits)
        rr.append(1.0 / (first[0] + 1) if first.size else 0.0)
    return {
        "P@5": float(np.mean(p5)),
        "R@10": float(np.mean(r10)),
        "MRR": float(np.mean(rr)),
        "queries": len(p5),
    }


def rank_all(index: SimilarityIndex, corpus: Corpus, mode: str) -> dict[int, np.ndarray]:
    pos = {x: i for i, x in enumerate(index.ids_)}
    n = len(index)
    out = {}
    assert corpus.embeddings is not None
    for q in corpus.queries:
        ids, _ = index.rank(
            corpus.embeddings[q], corpus.texts[q], k=n - 1, exclude_id=corpus.incidents[q].id, mode=mode
        )
        out[int(q)] = np.asarray([pos[x] for x in ids])
    return out


def tfidf_rankings(corpus: Corpus) -> dict[int, np.ndarray]:
    from sklearn.feature_extraction.text import TfidfVectorizer

    x = TfidfVectorizer(analyzer=tokenize, sublinear_tf=True).fit_transform(corpus.texts)
    sims = (x @ x.T).toarray()
    np.fill_diagonal(sims, -np.inf)
    return {int(q): np.argsort(-sims[q], kind="stable")[:-1] for q in corpus.queries}


def random_p5(rel: np.ndarray, queries: np.ndarray) -> float:
    n = rel.shape[0]
    return float(np.mean([rel[q].sum() / (n - 1) for q in queries if rel[q].any()]))


WEIGHTS = (0.2, 0.3, 0.35, 0.4, 0.5, 0.6, 0.7)
PATTERN_WEIGHTS = (0.0, 0.1, 0.2, 0.3)
GRID = [("rrf", w, p) for w in WEIGHTS for p in PATTERN_WEIGHTS] + [("zscore", w, 0.0) for w in WEIGHTS]
_DEFAULTS = SimilarityIndex().get_params()
DEFAULT = (_DEFAULTS["fusion"], _DEFAULTS["dense_weight"], _DEFAULTS["pattern_weight"])


def tuning(corpora: list[Corpus], rels: dict[str, np.ndarray], seed: int = 0) -> None:
    """Held-out choice of the fusion settings: 2-fold CV within each corpus and across corpora."""
    results: dict[str, dict[tuple[str, float, int], dict[int, np.ndarray]]] = {}
    for corpus in corpora:
        results[corpus.name] = {}
        for fusion, w, wp in GRID:
            index = corpus.index(fusion=fusion, dense_weight=w, pattern_weight=wp)
            results[corpus.name][(fusion, w, wp)] = rank_all(index, corpus, "fused")
    print("\nFusion settings, P@5 per corpus (all queries; for reading, not for choosing):")
    header = f"{'fusion':8s} {'w_dense':>7s} {'w_pat':>5s} " + " ".join(f"{c.name:>14s}" for c in corpora)
    print(header)
    for setting in GRID:
        row = [
            metrics_from_rankings(results[c.name][setting], rels[c.name], c.queries)["P@5"] for c in corpora
        ]
        print(f"{setting[0]:8s} {setting[1]:7.2f} {setting[2]:5.2f} " + " ".join(f"{v:14.3f}" for v in row))
    print("\nHeld-out evaluation (choose the setting on one part, report P@5 on the other):")
    rng = np.random.default_rng(seed)
    for corpus in corpora:
        perm = rng.permutation(corpus.queries)
        folds = [perm[: len(perm) // 2], perm[len(perm) // 2 :]]
        for a, b in ((0, 1), (1, 0)):
            best = max(
                GRID,
                key=lambda s: metrics_from_rankings(results[corpus.name][s], rels[corpus.name], folds[a])[
                    "P@5"
                ],
            )
            score = metrics_from_rankings(results[corpus.name][best], rels[corpus.name], folds[b])["P@5"]
            default = metrics_from_rankings(results[corpus.name][DEFAULT], rels[corpus.name], folds[b])["P@5"]
            print(
                f"  {corpus.name}: fold {a}->{b}: chose {best[0]} w={best[1]:.2f} w_pat={best[2]:.1f}; "
                f"held-out P@5 {score:.3f} (default: {default:.3f})"
            )
    if len(corpora) == 2:
        for src, dst in ((corpora[0], corpora[1]), (corpora[1], corpora[0])):
            best = max(
                GRID,
                key=lambda s: metrics_from_rankings(results[src.name][s], rels[src.name], src.queries)["P@5"],
            )
            score = metrics_from_rankings(results[dst.name][best], rels[dst.name], dst.queries)["P@5"]
            print(
                f"  chosen on {src.name} ({best[0]} w={best[1]:.2f} w_pat={best[2]:.1f}) -> {dst.name} "
                f"P@5 {score:.3f}"
            )


VIEW_WEIGHTS = (0.25, 0.5, 1.0, 2.0, 4.0)


def per_query(rankings: dict[int, np.ndarray], rel: np.ndarray, queries: np.ndarray) -> dict[str, np.ndarray]:
    """Precision@5 and reciprocal rank of each query that has a relevant incident."""
    p5, rr = [], []
    for q in queries:
        if not rel[q].any():
            continue
        hits = rel[q, rankings[int(q)]]
        first = np.flatnonzero(hits)
        p5.append(hits[:5].mean())
        rr.append(1.0 / (first[0] + 1) if first.size else 0.0)
    return {"P@5": np.asarray(p5), "MRR": np.asarray(rr)}


def boot_ci(values: np.ndarray, n_boot: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """Mean with a 95% bootstrap interval over queries."""
    rng = np.random.default_rng(seed)
    boots = values[rng.integers(0, values.size, size=(n_boot, values.size))].mean(axis=1)
    lo, hi = np.percentile(boots, [2.5, 97.5])
    return float(values.mean()), float(lo), float(hi)


def rank_views(
    index: SimilarityIndex, corpus: Corpus, intent: str, sym_vecs: np.ndarray, sym_texts: list[str]
) -> dict[int, np.ndarray]:
    """Leave-one-out rankings of one intent: "now" (the incident's symptoms pasted as text, as POST
    /v1/incidents/similar gets them) or "like" (by id, as GET /v1/incidents/{id}/similar)."""
    pos = {x: i for i, x in enumerate(index.ids_)}
    n = len(index)
    out = {}
    for q in corpus.queries:
        inc_id = corpus.incidents[q].id
        if intent == "now":
            ids, _ = index.rank(sym_vecs[q], sym_texts[q], k=n - 1, exclude_id=inc_id)
        else:
            ids, _ = index.rank_incident(inc_id, k=n - 1)
        out[int(q)] = np.asarray([pos[x] for x in ids])
    return out


def views_part(corpus: Corpus, rel: np.ndarray, embedder: Embedder, seed: int = 0) -> dict[str, float]:
    """Each view alone, the whole text alone and their fusion, per intent; the view weight chosen on one half
    of the queries, P@5 and MRR (95% bootstrap intervals) reported on the other half. Returns the choices."""
    from ml.patterns.index_views import WEIGHT_PARAMS
    from ml.patterns.views import SYMPTOM_FIELDS

    assert corpus.model is not None
    sym_texts = DocumentBuilder(fields=SYMPTOM_FIELDS).build_many(corpus.incidents)
    # The query vector of a pasted symptom text: its masked, redacted form (as the symptoms view embeds it).
    sym_dense = DocumentBuilder(fields=SYMPTOM_FIELDS, mask_entities=True).fit(corpus.incidents)
    sym_vecs = embedder.encode(sym_dense.build_many(corpus.incidents))
    rng = np.random.default_rng(seed)
    perm = rng.permutation(corpus.queries)
    choose, report = np.sort(perm[: len(perm) // 2]), np.sort(perm[len(perm) // 2 :])
    chosen: dict[str, float] = {}
    for intent, view in (("now", "symptoms"), ("like", "cause")):
        wname = WEIGHT_PARAMS[view]
        configs: dict[str, dict[str, float]] = {
            "whole text": {wname: 0.0},
            f"{view} view": {"text_weight": 0.0, "pattern_weight": 0.0, wname: 1.0},
            **{f"fused w={w:g}": {wname: w} for w in VIEW_WEIGHTS},
            f"default (w={_DEFAULTS[wname]:g})": {},
        }
        rankings = {}
        for label, params in configs.items():
            index = corpus.model.similarity_index(
                corpus.incidents, embeddings=corpus.embeddings, views=(view,), **params
            )
            rankings[label] = rank_views(index, corpus, intent, sym_vecs, sym_texts)
        fused = [label for label in configs if label.startswith("fused")]
        on_choose = {lab: float(per_query(r, rel, choose)["P@5"].mean()) for lab, r in rankings.items()}
        best_fused = max(fused, key=on_choose.__getitem__)
        best = best_fused if on_choose[best_fused] > on_choose["whole text"] else "whole text"
        chosen[f"{corpus.name}/{intent}"] = configs[best][wname]
        n_view = int(np.sum(index.views_[view].present)) if view in index.views_ else 0
        print(
            f"\n{corpus.name}, intent '{intent}' ({view} view on {n_view} of {len(corpus.incidents)} incidents):"
            f" {wname} chosen on {choose.size} queries: {configs[best][wname]:g};"
            f" P@5 and MRR [95% bootstrap] on the other {report.size} queries:"
        )
        base = per_query(rankings["whole text"], rel, report)
        for label in ("whole text", f"{view} view", best_fused, f"default (w={_DEFAULTS[wname]:g})"):
            m = per_query(rankings[label], rel, report)
            p5, p_lo, p_hi = boot_ci(m["P@5"])
            mrr, m_lo, m_hi = boot_ci(m["MRR"])
            tag = " (chosen)" if label == best else ""
            print(
                f"  {label + tag:24s} P@5 {p5:.3f} [{p_lo:.3f}, {p_hi:.3f}]   MRR {mrr:.3f} [{m_lo:.3f}, {m_hi:.3f}]"
            )
        for label in (best_fused, f"default (w={_DEFAULTS[wname]:g})"):
            mean, lo, hi = paired_ci(per_query(rankings[label], rel, report)["P@5"], base["P@5"])
            print(f"  {label} - whole text: P@5 {mean:+.3f} (95% paired bootstrap {lo:+.3f} .. {hi:+.3f})")
    return chosen


def query_runtime_main(runtime: str, limit: int | None) -> None:
    """Query vectors from another runtime (``--query-runtime``) against the index as training builds it (the
    default runtime): each incident's symptoms, then its whole text, pasted as a query, leave-one-out; P@5 and
    MRR with each runtime's query vectors and their paired difference (the API embeds only queries)."""
    from ml.patterns.views import SYMPTOM_FIELDS

    base = Embedder(cache_dir=CACHE)
    other = Embedder(cache_dir=CACHE, runtime=runtime)
    print(f"\nQuery vectors from {other.backend} against an index embedded by {base.backend} (pasted text):")
    for corpus in (load_sample(limit), load_hard(limit), load_github(limit)):
        if corpus is None:
            continue
        corpus.model = PatternModel(embedder=base).fit(corpus.incidents)
        docs = corpus.model.index_builder(corpus.incidents).build_many(corpus.incidents)
        corpus.embeddings = base.encode(docs)
        rel = relevance_matrix(corpus.labels)
        index = corpus.index()
        symptoms = DocumentBuilder(fields=SYMPTOM_FIELDS).build_many(corpus.incidents)
        masked = DocumentBuilder(fields=SYMPTOM_FIELDS, mask_entities=True).fit(corpus.incidents)
        for what, texts, vec_docs in (
            ("symptoms", symptoms, masked.build_many(corpus.incidents)),
            ("whole text", corpus.texts, docs),
        ):
            vecs = [base.encode(vec_docs), other.encode(vec_docs)]
            cos = np.sum(vecs[0] * vecs[1], axis=1)
            scores = [
                per_query(rank_views(index, corpus, "now", v, texts), rel, corpus.queries) for v in vecs
            ]
            line = f"  {corpus.name:12s} {what:10s} cosine min {cos.min():.4f}"
            for metric in ("P@5", "MRR"):
                mean, lo, hi = paired_ci(scores[1][metric], scores[0][metric])
                line += (
                    f"  {metric} {scores[0][metric].mean():.3f} -> {scores[1][metric].mean():.3f}"
                    f" ({mean:+.4f}, 95% {lo:+.4f} .. {hi:+.4f})"
                )
            print(line, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="at most 400 incidents per corpus, no tuning grid"
    )
    parser.add_argument("--no-tuning", action="store_true", help="skip the fusion-setting grid")
    parser.add_argument(
        "--views-only",
        action="store_true",
        help="only the two intents and their views (sample, hard sample, GitHub)",
    )
    parser.add_argument(
        "--query-runtime",
        choices=("onnx", "onnx-int8", "torch"),
        help="only: queries embedded by this runtime against the default index",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    limit = 400 if args.quick else None
    if args.query_runtime:
        query_runtime_main(args.query_runtime, limit)
        return
    if args.views_only:
        views_main(limit)
        return
    corpora = [c for c in (load_sample(limit), load_github(limit)) if c is not None]
    if not SAMPLE.is_file():
        print(f"(sample corpus {SAMPLE} not found: skipped)")
    if not GITHUB.is_file():
        print(f"(github-status corpus {GITHUB} not found: skipped)")
    if not corpora:
        return
    embedder = Embedder(cache_dir=CACHE)
    print(
        f"defaults: fusion={DEFAULT[0]} dense_weight={DEFAULT[1]} pattern_weight={DEFAULT[2]} "
        f"rrf_k={_DEFAULTS['rrf_k']}"
    )
    rels = {}
    print(f"{'corpus':14s} {'method':15s} {'P@5':>6s} {'R@10':>6s} {'MRR':>6s} {'queries':>8s} {'docs':>6s}")
    for corpus in corpora:
        t0 = time.perf_counter()
        corpus.model = PatternModel(embedder=embedder).fit(corpus.incidents)
        corpus.embeddings = embedder.encode(
            corpus.model.index_builder(corpus.incidents).build_many(corpus.incidents)
        )
        t_fit = time.perf_counter() - t0
        rel = relevance_matrix(corpus.labels)
        rels[corpus.name] = rel
        n = len(corpus.incidents)
        print(
            f"{corpus.name:14s} {'random':15s} {random_p5(rel, corpus.queries):6.3f} {'':>6s} {'':>6s} "
            f"{len(corpus.queries):8d} {n:6d}"
        )
        m = metrics_from_rankings(tfidf_rankings(corpus), rel, corpus.queries)
        print(
            f"{corpus.name:14s} {'tfidf-cosine':15s} {m['P@5']:6.3f} {m['R@10']:6.3f} {m['MRR']:6.3f} "
            f"{m['queries']:8d} {n:6d}"
        )
        index = corpus.index()
        p5s = {}
        for idx, mode, label in (
            (index, "dense", "dense-only"),
            (index, "lexical", "bm25-only"),
            (index, "fused", "fused (default)"),
            (corpus.index(pattern_weight=0.0), "fused", "fused, no pattern"),
            (corpus.index(fusion="zscore"), "fused", "fused (zscore)"),
        ):
            t1 = time.perf_counter()
            rankings = rank_all(idx, corpus, mode)
            per_q = (time.perf_counter() - t1) / max(1, len(corpus.queries)) * 1000
            m = metrics_from_rankings(rankings, rel, corpus.queries)
            p5s[label] = per_query_p5(rankings, rel, corpus.queries)
            print(
                f"{corpus.name:14s} {label:15s} {m['P@5']:6.3f} {m['R@10']:6.3f} {m['MRR']:6.3f} {m['queries']:8d} "
                f"{n:6d}   ({per_q:.2f} ms/query, full ranking)"
            )
        for single in ("dense-only", "bm25-only"):
            mean, lo, hi = paired_ci(p5s["fused (default)"], p5s[single])
            print(
                f"{'':14s} fused - {single}: P@5 {mean:+.3f} (95% paired bootstrap CI {lo:+.3f} .. {hi:+.3f})"
            )
        n_pat = len(corpus.model.patterns_)
        print(
            f"{'':14s} (pattern model: {n_pat} patterns, fitted in {t_fit:.1f}s; embeddings cached in .cache)"
        )
    if not args.quick and not args.no_tuning:
        tuning(corpora, rels)
    views_main(limit)


def views_main(limit: int | None) -> None:
    """Two intents, two views (issue #14): the sample, the hard sample and GitHub."""
    print(
        "\nTwo intents, two views: 'now' = the incident's symptoms (title, summary, impact) pasted as text;"
    )
    print("'like' = by id (root-cause views compared when both incidents have one). Leave-one-out.")
    embedder = Embedder(cache_dir=CACHE)
    chosen: dict[str, float] = {}
    for corpus in (load_sample(limit), load_hard(limit), load_github(limit)):
        if corpus is None:
            continue
        corpus.model = PatternModel(embedder=embedder).fit(corpus.incidents)
        corpus.embeddings = embedder.encode(
            corpus.model.index_builder(corpus.incidents).build_many(corpus.incidents)
        )
        chosen.update(views_part(corpus, relevance_matrix(corpus.labels), embedder))
    print("\nview weights chosen per corpus and intent (0 = the view does not help):", chosen)


if __name__ == "__main__":
    main()
