"""In-process speed of the similar-incident index on 10,000 synthetic incidents.

The corpus recombines real sentences (from ``data/sample/incidents.jsonl`` and the GitHub status incidents when
present, else a small built-in vocabulary) into 10,000 documents of 3-12 sentences, with random unit vectors as
embeddings (query cost does not depend on their values) and random services, teams, dates and patterns.

Prints: build time, size on disk, load time, and query latency p50/p95/p99 (ms) for short text queries, whole
postmortems as queries, filtered queries, single-signal modes and query-by-id; then the same with the query
text embedded by the real MiniLM embedder (one text per call, as the API does).

    python bench/bench_query.py [--quick] [--n 10000]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import re
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ml.io.schemas import Incident  # noqa: E402
from ml.patterns.similarity import SimilarityIndex  # noqa: E402
from ml.text.documents import DocumentBuilder, redact, strip_html  # noqa: E402

SAMPLE = ROOT / "data" / "sample" / "incidents.jsonl"
GITHUB = ROOT.parent / "shared" / "data" / "github-status" / "incidents.jsonl"
DIM = 384
_SENTENCE = re.compile(r"(?<=[.!?])\s+")
_FALLBACK_WORDS = (
    "database connection pool exhausted timeout retry storm deploy rollback certificate expired renewal dns "
    "resolver record cache stampede disk full volume autoscaling lag queue backlog latency errors customers "
    "region failover config push canary credentials rotated clock skew timezone upstream provider outage"
).split()


def sentences(rng: np.random.Generator) -> tuple[list[str], str]:
    pool: list[str] = []
    sources = []
    if SAMPLE.is_file():
        incidents = [Incident.model_validate_json(x) for x in SAMPLE.read_text().splitlines() if x.strip()]
        for doc in DocumentBuilder(
            fields=("title", "summary", "root_cause", "contributing_factors")
        ).build_many(incidents):
            pool.extend(s for s in _SENTENCE.split(doc) if len(s.split()) >= 3)
        sources.append("sample")
    if GITHUB.is_file():
        for line in GITHUB.read_text().splitlines():
            text = redact(strip_html(json.loads(line)["text"]))
            pool.extend(s for s in _SENTENCE.split(text) if len(s.split()) >= 3)
        sources.append("github-status")
    if not pool:
        for _ in range(5000):
            pool.append(" ".join(rng.choice(_FALLBACK_WORDS, size=int(rng.integers(6, 16)))) + ".")
        sources.append("built-in words")
    return pool, "+".join(sources)


def corpus(n: int, rng: np.random.Generator) -> tuple[list[Incident], list[str], np.ndarray, list[int], str]:
    pool, source = sentences(rng)
    services = [f"svc-{i:02d}" for i in range(12)]
    teams = [f"team-{i}" for i in range(6)]
    start = dt.datetime(2024, 11, 1, tzinfo=dt.UTC)
    incidents, texts = [], []
    for i in range(n):
        parts = [pool[j] for j in rng.integers(0, len(pool), size=int(rng.integers(3, 13)))]
        texts.append(" ".join(parts))
        incidents.append(
            Incident(
                id=f"SYN-{i:05d}",
                title=parts[0][:80],
                summary=parts[0],
                started_at=start + dt.timedelta(minutes=int(rng.integers(0, 730 * 24 * 60))),
                service=str(rng.choice(services)),
                team=str(rng.choice(teams)),
            )
        )
    vecs = rng.normal(size=(n, DIM)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    patterns = [int(p) for p in rng.integers(-1, 12, size=n)]
    return incidents, texts, vecs, patterns, source


def latency(fn: Callable[[int], object], n: int) -> tuple[float, float, float, float]:
    for i in range(min(20, n)):
        fn(i)
    times = np.empty(n)
    for i in range(n):
        t0 = time.perf_counter_ns()
        fn(i)
        times[i] = (time.perf_counter_ns() - t0) / 1e6
    p50, p95, p99 = np.percentile(times, [50, 95, 99])
    return float(times.min()), float(p50), float(p95), float(p99)


def folder_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.iterdir() if f.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="2,000 incidents and fewer queries")
    parser.add_argument("--n", type=int, default=10_000, help="incidents in the index (default 10000)")
    parser.add_argument("--no-embedder", action="store_true", help="skip the timings with the real embedder")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    n = 2000 if args.quick else args.n
    n_queries = 300 if args.quick else 2000
    rng = np.random.default_rng(7)
    incidents, texts, vecs, patterns, source = corpus(n, rng)
    names = {p: f"pattern {p}" for p in range(12)}

    t0 = time.perf_counter()
    index = SimilarityIndex.build(incidents, texts, vecs, patterns, names, model_id="random-unit-vectors")
    build_s = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        folder = index.save(Path(tmp) / "index")
        save_s = time.perf_counter() - t0
        size = folder_size(folder)
        t0 = time.perf_counter()
        index = SimilarityIndex.load(folder)
        load_s = time.perf_counter() - t0
    postings = index.term_counts_.nnz
    print(
        f"corpus: {n} incidents from {source} sentences, {len(index.vocabulary_)} terms, {postings} postings"
    )
    print(f"{'build (fit)':34s} {build_s * 1000:10.1f} ms")
    print(f"{'save':34s} {save_s * 1000:10.1f} ms   size on disk {size / 1e6:.1f} MB")
    print(f"{'load':34s} {load_s * 1000:10.1f} ms")

    short = [" ".join(t.split()[:12]) for t in rng.choice(texts, size=n_queries)]
    long = list(rng.choice(texts, size=n_queries))
    qvecs = rng.normal(size=(n_queries, DIM)).astype(np.float32)
    ids = list(rng.choice(index.ids, size=n_queries))
    since = dt.date(2026, 1, 1)
    cases: list[tuple[str, Callable[[int], object]]] = [
        ("fused, 12-word text, k=10", lambda i: index.query(qvecs[i], short[i], k=10)),
        ("fused, whole postmortem, k=10", lambda i: index.query(qvecs[i], long[i], k=10)),
        (
            "fused + service,team,since filters",
            lambda i: index.query(qvecs[i], short[i], 10, "svc-03", "team-2", since),
        ),
        ("dense only, k=10", lambda i: index.query(qvecs[i], short[i], k=10, mode="dense")),
        ("lexical only, k=10", lambda i: index.query(qvecs[i], short[i], k=10, mode="lexical")),
        ("query_incident (by id), k=10", lambda i: index.query_incident(ids[i], k=10)),
        ("fused, k=50", lambda i: index.query(qvecs[i], short[i], k=50)),
    ]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"\nquery latency, {n} incidents, {n_queries} queries each, in-process (ms; load average {load:.1f}):"
    )
    print(f"{'case':40s} {'min':>7s} {'p50':>7s} {'p95':>7s} {'p99':>7s}")
    for label, fn in cases:
        low, p50, p95, p99 = latency(fn, n_queries)
        print(f"{label:40s} {low:7.2f} {p50:7.2f} {p95:7.2f} {p99:7.2f}")

    if args.no_embedder:
        return
    from ml.text.embedding import Embedder

    embedder = Embedder()
    t0 = time.perf_counter()
    embedder.encode(["warm up"])
    print(f"\nembedder load + first encode: {time.perf_counter() - t0:.1f}s")
    m = 50 if args.quick else 200
    print(f"{'case (including embedding the text)':40s} {'min':>7s} {'p50':>7s} {'p95':>7s} {'p99':>7s}")
    for label, queries in (("embed + fused, 12-word text", short), ("embed + fused, whole postmortem", long)):

        def run(i: int, queries: list[str] = queries) -> object:
            return index.query(embedder.encode([queries[i]])[0], queries[i], k=10)

        low, p50, p95, p99 = latency(run, m)
        print(f"{label:40s} {low:7.2f} {p50:7.2f} {p95:7.2f} {p99:7.2f}")


if __name__ == "__main__":
    main()
