"""BM25 over the redacted incident text, for the similar-incident index.

Tokens come from :func:`ml.text.documents.tokenize` and, with ``stemming``, are conflated by the library's one
stemmer, :func:`ml.text.stemming.stem` (Snowball English). The index keeps the term counts as a sparse matrix
(rows: incidents), the vocabulary (stems) and, per stem, its most frequent spelling in the corpus (shown in the
reasons). Derived state, rebuilt on load: document frequencies, idf ``log(1 + (N - df + 0.5) / (df + 0.5))``,
the BM25 weight of every posting (``k1``, ``b``) and the postings transposed (rows: terms), so a query gathers
the postings of its terms and sums them with one ``bincount``. Query term frequencies are saturated with ``k3``
(a query may be a whole postmortem: a term it repeats weighs more, up to ``k3 + 1`` times).

Why not ``bm25s`` (``bench/bench_lexical.py``: same corpora and queries as ``bench/bench_retrieval.py``, same
tokens and stems, its ``lucene`` variant, whose idf is ours): in the fused ranking it is within noise (P@5 0.979
against our 0.978 on the sample, 0.890 against 0.888 on the GitHub status corpus), alone it is a little worse on
the sample (BM25-only P@5 0.972 against 0.977, paired 95% interval of the difference -0.008 .. -0.002; 0.855
against 0.854 on GitHub), and slower per query (1.9 against 1.4 ms on the sample, full ranking). It has no query
term saturation (a term repeated in a whole-postmortem query counts in full each time; giving it each term once
instead gains 0.008 P@5 on the sample and loses 0.027 on GitHub), and the index would still need these term
counts for the shared keywords and for saving: a dependency and a second index for no gain, so ours is kept.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
from scipy import sparse

from ml.errors import InputError
from ml.text.documents import tokenize
from ml.text.stemming import stem

log = logging.getLogger(__name__)

#: Query term ids (sorted) and their counts in the query.
Terms = tuple[np.ndarray, np.ndarray]
#: Recorded with a saved index: the stems in its vocabulary come from this stemmer.
STEMMER = "snowball-english"
#: A term in more than this share of the incidents is not a reason.
MAX_DF_KEYWORD = 0.5


class BM25Index:
    """BM25 term index of a corpus. ``fit(texts)`` learns the ``*_`` attributes and returns self."""

    def __init__(self, k1: float = 1.2, b: float = 0.75, k3: float = 8.0, stemming: bool = True) -> None:
        self.k1 = k1
        self.b = b
        self.k3 = k3
        self.stemming = stemming

    def term(self, token: str) -> str:
        return stem(token) if self.stemming else token

    def fit(self, texts: Sequence[str]) -> BM25Index:
        """Count the terms of ``texts`` (already redacted) and derive the BM25 weights."""
        vocab: dict[str, int] = {}
        spellings: dict[int, dict[str, int]] = {}
        n = len(texts)
        indptr = np.zeros(n + 1, dtype=np.int64)
        cols: list[int] = []
        vals: list[int] = []
        for i, text in enumerate(texts):
            counts: dict[int, int] = {}
            for tok in tokenize(text):
                j = vocab.setdefault(self.term(tok), len(vocab))
                counts[j] = counts.get(j, 0) + 1
                seen = spellings.setdefault(j, {})
                seen[tok] = seen.get(tok, 0) + 1
            for j in sorted(counts):
                cols.append(j)
                vals.append(counts[j])
            indptr[i + 1] = len(cols)
        tf = sparse.csr_matrix(
            (np.asarray(vals, dtype=np.int32), np.asarray(cols, dtype=np.int32), indptr),
            shape=(n, len(vocab)),
        )
        display = [max(sorted(spellings[j]), key=spellings[j].__getitem__) for j in range(len(vocab))]
        return self.set_state(tf, list(vocab), display)

    def set_state(self, tf: sparse.csr_matrix, vocabulary: list[str], display: list[str]) -> BM25Index:
        """Install stored term counts, vocabulary and spellings, and derive the rest (what ``load`` calls)."""
        n = tf.shape[0]
        self.term_counts_ = tf
        self.vocabulary_ = vocabulary
        self.display_ = display
        self.term_index_ = {t: j for j, t in enumerate(vocabulary)}
        df = np.bincount(tf.indices, minlength=len(vocabulary)).astype(np.float64)
        self.df_ = df
        self.informative_ = df <= max(1.0, MAX_DF_KEYWORD * n)
        self.idf_ = np.log1p((n - df + 0.5) / (df + 0.5)).astype(np.float64)
        lengths = np.asarray(tf.sum(axis=1), dtype=np.float64).ravel()
        avgdl = float(lengths.mean()) if n and lengths.mean() > 0 else 1.0
        norm = self.k1 * (1.0 - self.b + self.b * lengths / avgdl)
        row_of = np.repeat(np.arange(n), np.diff(tf.indptr))
        counts = tf.data.astype(np.float64)
        weights = self.idf_[tf.indices] * counts * (self.k1 + 1.0) / (counts + norm[row_of])
        self.weights_ = sparse.csr_matrix((weights.astype(np.float32), tf.indices, tf.indptr), shape=tf.shape)
        self.postings_ = self.weights_.T.tocsr()
        self.postings_.sort_indices()
        return self

    def query_terms(self, text: str) -> Terms:
        """The indexed terms of a query text with their counts (terms the corpus lacks are dropped)."""
        counts: dict[int, int] = {}
        for tok in tokenize(text):
            j = self.term_index_.get(self.term(tok))
            if j is not None:
                counts[j] = counts.get(j, 0) + 1
        ids = np.fromiter(sorted(counts), dtype=np.int64, count=len(counts))
        return ids, np.asarray([counts[j] for j in ids.tolist()], dtype=np.float64)

    def document_terms(self, i: int) -> Terms:
        """The stored terms of indexed document ``i`` with their counts."""
        tf = self.term_counts_
        lo, hi = tf.indptr[i], tf.indptr[i + 1]
        return tf.indices[lo:hi].astype(np.int64), tf.data[lo:hi].astype(np.float64)

    def scores(self, query: Terms) -> np.ndarray:
        """BM25 score of every document for the query terms (zeros where no term is shared)."""
        n = self.term_counts_.shape[0]
        terms, qtf = query
        if terms.size == 0 or n == 0:
            return np.zeros(n, dtype=np.float64)
        indptr = self.postings_.indptr
        starts = indptr[terms]
        lengths = indptr[terms + 1] - starts
        total = int(lengths.sum())
        if total == 0:
            return np.zeros(n, dtype=np.float64)
        offsets = np.repeat(starts - (np.cumsum(lengths) - lengths), lengths) + np.arange(total)
        query_weight = qtf * (self.k3 + 1.0) / (qtf + self.k3)
        weights = self.postings_.data[offsets] * np.repeat(query_weight, lengths)
        return np.bincount(self.postings_.indices[offsets], weights=weights, minlength=n)

    def shared_keywords(self, rows: np.ndarray, query: Terms, max_keywords: int) -> list[tuple[str, ...]]:
        """For each row, the informative query terms it contains, by their BM25 weight in it (all rows at once)."""
        terms = query[0]
        if max_keywords == 0 or terms.size == 0:
            return [()] * rows.size
        indptr = self.weights_.indptr
        starts = indptr[rows]
        lengths = indptr[rows + 1] - starts
        total = int(lengths.sum())
        offsets = np.repeat(starts - (np.cumsum(lengths) - lengths), lengths) + np.arange(total)
        owner = np.repeat(np.arange(rows.size), lengths)
        row_terms = self.weights_.indices[offsets]
        at = np.minimum(np.searchsorted(terms, row_terms), terms.size - 1)
        keep = np.flatnonzero((terms[at] == row_terms) & self.informative_[row_terms])
        keep = keep[np.lexsort((row_terms[keep], -self.weights_.data[offsets[keep]], owner[keep]))]
        out: list[list[str]] = [[] for _ in range(rows.size)]
        for o, t in zip(owner[keep].tolist(), row_terms[keep].tolist(), strict=True):
            if len(out[o]) < max_keywords:
                out[o].append(self.display_[t])
        return [tuple(words) for words in out]


def restem(
    tf: sparse.csr_matrix, vocabulary: list[str], display: list[str]
) -> tuple[sparse.csr_matrix, list[str], list[str]]:
    """Term counts of an index saved with another stemmer, re-keyed by :func:`stem` of each term's spelling.

    Terms whose spellings now share a stem are merged (their counts added); the merged term shows the spelling
    of its most frequent part.
    """
    if len(display) != len(vocabulary):
        raise InputError(
            "index vocabulary and spellings differ in length", field="display", value=len(display)
        )
    new_vocab: dict[str, int] = {}
    target = np.asarray([new_vocab.setdefault(stem(w), len(new_vocab)) for w in display], dtype=np.int64)
    v_old, v_new = len(vocabulary), len(new_vocab)
    remap = sparse.csr_matrix(
        (np.ones(v_old, dtype=np.int32), (np.arange(v_old), target)), shape=(v_old, v_new)
    )
    new_tf = sparse.csr_matrix(tf @ remap, dtype=np.int32)
    new_tf.sort_indices()
    totals = np.asarray(tf.sum(axis=0)).ravel()
    best = np.full(v_new, -1, dtype=np.int64)
    for j in np.argsort(-totals, kind="stable").tolist():
        if best[target[j]] < 0:
            best[target[j]] = j
    log.warning(
        "Similarity - index saved with another stemmer: vocabulary re-stemmed (%d -> %d terms)", v_old, v_new
    )
    return new_tf, list(new_vocab), [display[j] for j in best.tolist()]
