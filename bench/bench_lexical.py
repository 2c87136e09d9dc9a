"""Our BM25 (``ml.patterns.lexical.BM25Index``) against ``bm25s``, inside the similar-incident index.

Same corpora, relevance, leave-one-out queries and metrics as ``bench/bench_retrieval.py`` (whose loaders and
metrics this reuses), same tokens and Snowball stems for both: only the lexical scorer differs. ``bm25s`` is
indexed with the stemmed terms as strings (``method="lucene"``, whose idf is ours, k1 = 1.2, b = 0.75) and is
queried two ways: every query term occurrence (its normal use: no query term saturation) and each query term
once. Reported: bm25-only and fused (default settings) P@5 / R@10 / MRR, the paired-bootstrap interval of the
P@5 difference to ours, and ms per query (full ranking, the whole index path).

    python bench/bench_lexical.py [--quick]
"""

from __future__ import annotations

import argparse
import copy
import logging
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import bench_retrieval as br  # noqa: E402

from ml.patterns.lexical import BM25Index, Terms  # noqa: E402
from ml.patterns.model import PatternModel  # noqa: E402
from ml.patterns.similarity import SimilarityIndex  # noqa: E402
from ml.text.embedding import Embedder  # noqa: E402


class BM25sScores:
    """The lexical index of a fitted :class:`SimilarityIndex` with ``bm25s`` doing the scoring."""

    def __init__(self, lexical: BM25Index, repeat_query: bool) -> None:
        import bm25s

        self._lexical = lexical
        self._repeat = repeat_query
        tf = lexical.term_counts_
        vocab = lexical.vocabulary_
        docs = [
            [
                vocab[j]
                for j, c in zip(tf.indices[a:b].tolist(), tf.data[a:b].tolist(), strict=True)
                for _ in range(c)
            ]
            for a, b in zip(tf.indptr[:-1].tolist(), tf.indptr[1:].tolist(), strict=True)
        ]
        self._bm25 = bm25s.BM25(k1=lexical.k1, b=lexical.b, method="lucene")
        self._bm25.index(docs, show_progress=False)

    def scores(self, query: Terms) -> np.ndarray:
        ids, counts = query
        vocab = self._lexical.vocabulary_
        reps = counts.astype(int).tolist() if self._repeat else [1] * ids.size
        tokens = [vocab[j] for j, c in zip(ids.tolist(), reps, strict=True) for _ in range(c)]
        n = self._lexical.term_counts_.shape[0]
        if not tokens:
            return np.zeros(n, dtype=np.float64)
        return np.asarray(self._bm25.get_scores(tokens), dtype=np.float64)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._lexical, name)


def with_bm25s(index: SimilarityIndex, repeat_query: bool) -> SimilarityIndex:
    alt = copy.copy(index)
    alt.lexical_ = BM25sScores(index.lexical_, repeat_query)  # type: ignore[assignment]
    return alt


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="at most 400 incidents per corpus")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("bm25s").setLevel(logging.WARNING)
    try:
        import bm25s  # noqa: F401
    except ImportError:
        print("bm25s is not installed (it is not a dependency of Recur): pip install bm25s")
        return
    limit = 400 if args.quick else None
    corpora = [c for c in (br.load_sample(limit), br.load_github(limit)) if c is not None]
    if not corpora:
        print("no corpus found (data/sample/incidents.jsonl, ../shared/data/github-status/incidents.jsonl)")
        return
    embedder = Embedder(cache_dir=br.CACHE)
    print(
        f"{'corpus':14s} {'scorer':24s} {'mode':8s} {'P@5':>6s} {'R@10':>6s} {'MRR':>6s} "
        f"{'dP@5 vs ours (95% CI)':>28s} {'ms/q':>6s}"
    )
    for corpus in corpora:
        corpus.model = PatternModel(embedder=embedder).fit(corpus.incidents)
        corpus.embeddings = embedder.encode(corpus.model.document_builder.build_many(corpus.incidents))
        rel = br.relevance_matrix(corpus.labels)
        ours = corpus.index()
        scorers = {
            "ours (k3=8)": ours,
            "bm25s lucene": with_bm25s(ours, repeat_query=True),
            "bm25s lucene, terms once": with_bm25s(ours, repeat_query=False),
        }
        base: dict[str, np.ndarray] = {}
        for name, index in scorers.items():
            for mode in ("lexical", "fused"):
                t0 = time.perf_counter()
                rankings = br.rank_all(index, corpus, mode)
                ms = (time.perf_counter() - t0) / max(1, len(corpus.queries)) * 1000
                m = br.metrics_from_rankings(rankings, rel, corpus.queries)
                p5 = br.per_query_p5(rankings, rel, corpus.queries)
                if name.startswith("ours"):
                    base[mode] = p5
                    diff = ""
                else:
                    mean, lo, hi = br.paired_ci(p5, base[mode])
                    diff = f"{mean:+.3f} ({lo:+.3f} .. {hi:+.3f})"
                print(
                    f"{corpus.name:14s} {name:24s} {mode:8s} {m['P@5']:6.3f} {m['R@10']:6.3f} {m['MRR']:6.3f} "
                    f"{diff:>28s} {ms:6.2f}"
                )


if __name__ == "__main__":
    main()
