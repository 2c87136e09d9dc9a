"""Rank fusion for the similar-incident index: reciprocal-rank fusion or standardised scores, then the tie-break.

The inputs are arrays over every indexed incident (cosine, BM25, pattern ids) and the positions allowed by the
filters; the output is the top ``k`` positions with their fused scores.

Ranking fuses the two signals. The default is reciprocal-rank fusion (``w / (rrf_k + rank)`` summed over the
dense and the lexical ranking, each over its ``depth`` best candidates, ``rrf_k = 60``): it needs no score
calibration, so it behaves the same whatever the query length (BM25 scores grow with it), the embedding
model's cosine range, or a heavy-tailed BM25 score from one rare shared term. When the query's failure
pattern is known (an indexed incident's own, or the pattern model's assignment of a new text), a third,
lighter ranking votes too: the incidents of that pattern, by cosine (``pattern_weight``). The pattern comes
from density clustering of the whole corpus, so it carries what neither a query's words nor its nearest
vectors see alone. It reorders close calls only: with the defaults, an incident of the query's pattern
overtakes one of another pattern when both signals rank it at most about 12 places lower.
The weights (dense 0.35, lexical 0.65, pattern 0.2) were chosen on the sample and the GitHub status corpus,
with held-out checks (``bench/bench_retrieval.py``). ``fusion="zscore"`` is the alternative: a weighted sum
of the two scores standardised over the candidates; it leans to the signal with the heavier tail (BM25).
Ties are broken by the pattern (same pattern as the query first), then by cosine, then by position.
``mode="dense"`` and ``mode="lexical"`` rank by one signal only (for benchmarks; a query with only a vector or
only a text uses the one signal it has).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Ranking:
    """The top positions of one query, best first, with their fused scores, cosines and relative BM25 scores."""

    top: np.ndarray  # positions, best first
    scores: np.ndarray
    cosine: np.ndarray  # nan without a query vector
    lexical: np.ndarray  # BM25 relative to the best candidate's

    @classmethod
    def empty(cls, candidates: np.ndarray) -> Ranking:
        none = np.zeros(0)
        return cls(candidates[:0], none, none, none)


def top_k(values: np.ndarray, candidates: np.ndarray, m: int) -> np.ndarray:
    """The ``m`` candidates with the highest values, best first."""
    if m <= 0 or candidates.size == 0:
        return candidates[:0]
    if m < candidates.size:
        part = np.argpartition(-values[candidates], m - 1)[:m]
        candidates = candidates[part]
    return candidates[np.argsort(-values[candidates], kind="stable")]


def competition_ranks(sorted_values: np.ndarray) -> np.ndarray:
    """1-based competition ranks of values sorted best first: equal values share the best rank."""
    neg = -sorted_values.astype(np.float64)
    return np.searchsorted(neg, neg, side="left").astype(np.float64) + 1.0


def rrf_scores(
    dense: np.ndarray,
    lex: np.ndarray,
    candidates: np.ndarray,
    same_pattern: np.ndarray | None,
    *,
    dense_weight: float,
    pattern_weight: float,
    rrf_k: float,
    depth: int,
    text_weight: float = 1.0,
) -> np.ndarray:
    """Weighted reciprocal-rank fusion of the dense, lexical and (when known) same-pattern rankings.

    Each ranking contributes ``2 w / (rrf_k + rank)`` over its ``depth`` best candidates; candidates beyond
    every depth keep 0 and are ordered by the tie-break (cosine), below the others. ``text_weight`` scales the
    dense and lexical rankings (not the pattern's): a view's fusion is added to this one with its own weight.
    """
    score = np.zeros(lex.shape[0], dtype=np.float64)
    w_dense, w_lex = 2.0 * dense_weight * text_weight, 2.0 * (1.0 - dense_weight) * text_weight
    lists = [(w_dense, dense, candidates), (w_lex, lex, candidates[lex[candidates] > 0])]
    if same_pattern is not None and pattern_weight > 0:
        lists.append((2.0 * pattern_weight, dense, same_pattern))
    for weight, values, pool in lists:
        if weight <= 0:
            continue
        top = top_k(values, pool, depth)
        score[top] += weight / (rrf_k + competition_ranks(values[top]))
    return score


def zscore_scores(
    dense: np.ndarray, lex: np.ndarray, candidates: np.ndarray, dense_weight: float
) -> np.ndarray:
    """Weighted sum of the two scores, each standardised over the candidates."""
    score = np.zeros(lex.shape[0], dtype=np.float64)
    for weight, values in ((dense_weight, dense), (1.0 - dense_weight, lex)):
        v = values[candidates].astype(np.float64)
        sd = float(v.std())
        if sd > 0:
            score[candidates] += weight * (v - v.mean()) / sd
    return score


def top_with_ties(
    score: np.ndarray,
    candidates: np.ndarray,
    k: int,
    pattern_ids: np.ndarray,
    query_pattern_id: int | None,
    unclustered_id: int,
    cosine_of: Callable[[np.ndarray], np.ndarray],
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` best candidates, ties broken by the pattern (the query's first), then cosine, then position.

    Every candidate tied with the k-th (equal rounded score) is considered before the cut. Without a known
    query pattern, the best candidate's pattern stands in for it. Returns the positions and their cosines.
    """
    top = top_k(score, candidates, min(k, candidates.size))
    cut = np.round(score[top[-1]], 12)
    tied = candidates[np.round(score[candidates], 12) >= cut]
    if tied.size > top.size:
        top = tied
    if query_pattern_id is None:
        lead = top[np.argmax(score[top])]
        pid = int(pattern_ids[lead])
        query_pattern_id = pid if pid != unclustered_id else None
    if query_pattern_id is not None:
        same = (pattern_ids[top] == query_pattern_id).astype(np.int8)
    else:
        same = np.zeros(top.size, dtype=np.int8)
    cosine = cosine_of(top)
    order = np.lexsort((top, -cosine, -same, -np.round(score[top], 12)))[:k]
    return top[order], cosine[order]
