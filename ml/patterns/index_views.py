"""Views of the similar-incident index: a second dense + BM25 index over one part of each postmortem.

Two intents, two views (:mod:`ml.patterns.views` names the fields):

- ``symptoms`` (title, summary, impact): what a responder pastes during an incident ("what is happening now",
  ``POST /v1/incidents/similar``). A pasted text is compared with the incidents' symptoms.
- ``cause`` (root cause, contributing factors): "incidents like this one" (``GET /v1/incidents/{id}/similar``)
  compares the root-cause views when both incidents have one.

A view's rankings (its cosine and its BM25) are fused by reciprocal rank like the whole-text ones, over the
incidents that have the view, and added to the whole-text fusion with the view's weight
(:class:`~ml.patterns.similarity.SimilarityIndex` ``symptom_weight`` / ``cause_weight``; 0 leaves the view out).

Weights chosen on one half of the queries and reported on the other (``bench/bench_retrieval.py --views-only``,
leave-one-out, P@5 with paired 95% bootstrap intervals): ``cause_weight`` 2 (chosen on the hard sample; there
by id 0.661 -> 0.704, +0.017 .. +0.069; on the sample 0.993 -> 0.984, -0.021 .. +0.000; the GitHub status
corpus has no root causes). ``symptom_weight`` 0: the symptoms view lost P@5 for pasted symptoms on the sample
(-0.009) and the hard sample (-0.026), level on GitHub (+0.004, -0.002 .. +0.010), so it is not built by default.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ml.errors import InputError
from ml.io.schemas import Incident
from ml.patterns.lexical import BM25Index, Terms

log = logging.getLogger(__name__)

SYMPTOMS = "symptoms"
CAUSE = "cause"
VIEW_NAMES: tuple[str, ...] = (SYMPTOMS, CAUSE)
#: The :class:`~ml.patterns.similarity.SimilarityIndex` parameter that weighs each view.
WEIGHT_PARAMS: dict[str, str] = {SYMPTOMS: "symptom_weight", CAUSE: "cause_weight"}


def weighted_views(params: dict[str, Any]) -> tuple[str, ...]:
    """The views that index parameters ``params`` weigh (weight above 0)."""
    return tuple(v for v in VIEW_NAMES if float(params.get(WEIGHT_PARAMS[v], 0.0)) > 0)


@dataclass
class IndexView:
    """One view of the indexed incidents: their (dim, n) unit vectors, BM25 over the view's redacted text, and
    which incidents have the view (a postmortem without a root cause has no cause view)."""

    name: str
    embeddings_t: np.ndarray
    lexical: BM25Index
    present: np.ndarray

    @property
    def embeddings(self) -> np.ndarray:
        return self.embeddings_t.T

    def cosine(self, vec: np.ndarray) -> np.ndarray:
        return np.asarray(vec @ self.embeddings_t)


@dataclass(frozen=True)
class ViewQuery:
    """A query of one view, with its weight in the fusion."""

    view: IndexView
    weight: float
    vec: np.ndarray | None
    terms: Terms | None


def build_view(
    name: str,
    texts: Sequence[str],
    embeddings: np.ndarray,
    present: Sequence[bool] | np.ndarray,
    n: int,
    lexical: BM25Index,
) -> IndexView:
    """Check and assemble a view of ``n`` incidents: ``texts`` (redacted) for BM25, ``embeddings`` (n, dim),
    ``present`` which incidents have the view. ``lexical`` is an unfitted BM25 index with the parameters."""
    from ml.patterns.index_inputs import check_embeddings

    if name not in VIEW_NAMES:
        raise InputError(f"view must be one of {VIEW_NAMES}, got {name!r}", field="views", value=name)
    if len(texts) != n:
        raise InputError(
            f"view {name}: {len(texts)} texts for {n} incidents", field="views", value=len(texts)
        )
    mask = np.asarray(present, dtype=bool).reshape(-1)
    if mask.shape[0] != n:
        raise InputError(
            f"view {name}: present has {mask.shape[0]} entries for {n}", field="views", value=name
        )
    emb = check_embeddings(embeddings, n)
    return IndexView(name, np.ascontiguousarray(emb.T), lexical.fit(list(texts)), mask)


def view_scores(
    queries: Sequence[ViewQuery],
    candidates: np.ndarray,
    n: int,
    *,
    dense_weight: float,
    rrf_k: float,
    depth: int,
) -> np.ndarray:
    """The views' reciprocal-rank fusion, each weighted, over the candidates that have the view (zeros when
    none)."""
    from ml.patterns.fusion import rrf_scores

    score = np.zeros(n, dtype=np.float64)
    for q in queries:
        if q.weight <= 0 or (q.vec is None and q.terms is None):
            continue
        pool = candidates[q.view.present[candidates]]
        if pool.size == 0:
            continue
        dense = q.view.cosine(q.vec) if q.vec is not None else np.zeros(n, dtype=np.float32)
        lex = q.view.lexical.scores(q.terms) if q.terms is not None else np.zeros(n, dtype=np.float64)
        share = dense_weight if q.vec is not None else 0.0
        if q.terms is None:
            share = 1.0
        score += q.weight * rrf_scores(
            dense, lex, pool, None, dense_weight=share, pattern_weight=0.0, rrf_k=rrf_k, depth=depth
        )
    return score


def text_views(
    view: IndexView | None, weight: float, vec: np.ndarray | None, text: str | None
) -> list[ViewQuery]:
    """A pasted text is compared with the incidents' symptoms view too (what a responder sees)."""
    if view is None or weight <= 0:
        return []
    terms = view.lexical.query_terms(text) if text and text.strip() else None
    return [ViewQuery(view, weight, vec, terms)]


def incident_views(view: IndexView | None, weight: float, i: int) -> list[ViewQuery]:
    """An indexed incident with a root cause is compared with the others' root-cause views too."""
    if view is None or weight <= 0 or not view.present[i]:
        return []
    return [ViewQuery(view, weight, view.embeddings_t[:, i].copy(), view.lexical.document_terms(i))]


def view_inputs(
    incidents: Sequence[Incident],
    names: Sequence[str],
    embed: Callable[[list[str]], np.ndarray],
    cause_documents: Callable[[], list[str]],
    has_cause: Callable[[Incident], bool],
) -> dict[str, tuple[list[str], np.ndarray, list[bool]]]:
    """The inputs of the views ``names`` for :meth:`SimilarityIndex.fit`: per view, its redacted text for BM25
    (service names kept), its embeddings and which incidents have it.

    The symptoms view embeds title, summary and impact with service names masked (like the whole-text view);
    the cause view reuses ``cause_documents()`` (the pattern model's root-cause documents, whose vectors the
    embedding cache already holds).
    """
    from ml.patterns.views import CAUSE_FIELDS, SYMPTOM_FIELDS
    from ml.text.documents import DocumentBuilder

    incidents = list(incidents)
    out: dict[str, tuple[list[str], np.ndarray, list[bool]]] = {}
    for name in names:
        if name == SYMPTOMS:
            dense = DocumentBuilder(fields=SYMPTOM_FIELDS, mask_entities=True).fit(incidents)
            texts = DocumentBuilder(fields=SYMPTOM_FIELDS).build_many(incidents)
            out[name] = (texts, embed(dense.build_many(incidents)), [True] * len(incidents))
        elif name == CAUSE:
            texts = DocumentBuilder(fields=CAUSE_FIELDS).build_many(incidents)
            out[name] = (texts, embed(cause_documents()), [has_cause(inc) for inc in incidents])
        else:
            raise InputError(f"view must be one of {VIEW_NAMES}, got {name!r}", field="views", value=name)
    return out
