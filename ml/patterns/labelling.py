"""Describing failure patterns: class-based TF-IDF keywords, representative incidents, short names, stable ids.

- `PatternLabeller`: c-TF-IDF (as in BERTopic: term frequency per pattern, L1-normalised, times
  ``log(1 + mean words per class / term frequency over all classes)``) on uni- and bi-grams with stop words
  and redaction placeholders out; the incidents closest to each pattern's centroid; and a short name built
  from the top keywords ("certificate expiry / tls").
- `match_patterns`: keeps pattern ids stable across retrains by matching centroids (cosine) with an optimal
  one-to-one assignment (Hungarian method).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
from scipy import sparse
from scipy.optimize import linear_sum_assignment

from ml.errors import InputError, NotFittedError
from ml.patterns.ids import NOISE
from ml.text.documents import STOP_WORDS, make_analyzer

__all__ = ["PatternLabeller", "PatternMatch", "c_tf_idf", "match_patterns"]

logger = logging.getLogger(__name__)



def c_tf_idf(class_counts: sparse.csr_matrix) -> sparse.csr_matrix:
    """Class-based TF-IDF of a (classes x terms) count matrix."""
    counts = sparse.csr_matrix(class_counts, dtype=np.float64)
    words_per_class = np.asarray(counts.sum(axis=1)).ravel()
    tf = sparse.diags(1.0 / np.where(words_per_class > 0, words_per_class, 1.0)) @ counts
    term_freq = np.asarray(counts.sum(axis=0)).ravel()
    avg_words = float(words_per_class.mean()) if words_per_class.size else 0.0
    idf = np.log1p(avg_words / np.where(term_freq > 0, term_freq, 1.0))
    return sparse.csr_matrix(tf @ sparse.diags(idf))


class PatternLabeller:
    """Keywords, representative incidents and names for each pattern.

    Parameters
    ----------
    n_keywords:
        Keywords kept per pattern.
    ngram_range:
        Word n-grams used as candidate keywords.
    n_representatives:
        Incidents closest to the pattern centre to show as examples.
    n_name_terms:
        Keywords in a name (more are added when two patterns would otherwise share a name).
    min_df:
        A term must appear in at least this many incidents (lowered to 1 for tiny corpora).
    """

    def __init__(
        self,
        n_keywords: int = 10,
        ngram_range: tuple[int, int] = (1, 2),
        n_representatives: int = 3,
        n_name_terms: int = 2,
        min_df: int = 2,
        stop_words: frozenset[str] | None = STOP_WORDS,
    ) -> None:
        self.n_keywords = n_keywords
        self.ngram_range = ngram_range
        self.n_representatives = n_representatives
        self.n_name_terms = n_name_terms
        self.min_df = min_df
        self.stop_words = stop_words

    def get_params(self) -> dict[str, object]:
        return {
            "n_keywords": self.n_keywords,
            "ngram_range": list(self.ngram_range),
            "n_representatives": self.n_representatives,
            "n_name_terms": self.n_name_terms,
            "min_df": self.min_df,
        }

    def fit(
        self,
        docs: list[str],
        labels: np.ndarray,
        embeddings: np.ndarray | None = None,
        centroids: np.ndarray | None = None,
    ) -> PatternLabeller:
        """Label the patterns 0..k-1 of `labels` (-1 is noise) using the texts `docs`.

        With `embeddings` and `centroids` (unit rows), representatives are the members closest to the
        centroid; otherwise the members whose TF-IDF vector is closest to the pattern's keyword vector.
        """
        from sklearn.feature_extraction.text import CountVectorizer

        for name in ("n_keywords", "n_representatives", "n_name_terms", "min_df"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise InputError(f"{name} must be a positive integer, got {v!r}", field=name, value=v)
        labels = np.asarray(labels)
        if labels.ndim != 1 or labels.shape[0] != len(docs):
            raise InputError(
                f"labels must be 1-D with one label per document ({len(docs)}), got shape {labels.shape}",
                field="labels",
            )
        k = int(labels.max()) + 1 if labels.size and labels.max() >= 0 else 0
        analyzer = make_analyzer(tuple(self.ngram_range), self.stop_words)  # type: ignore[arg-type]
        min_df = self.min_df if len(docs) >= 10 * self.min_df else 1
        try:
            vec = CountVectorizer(analyzer=analyzer, min_df=min_df)
            counts = vec.fit_transform(docs)
        except ValueError:  # empty vocabulary (e.g. only stop words)
            vec = CountVectorizer(analyzer=analyzer, min_df=1)
            try:
                counts = vec.fit_transform(docs)
            except ValueError:
                counts, vec = None, None
        self.keywords_: dict[int, list[tuple[str, float]]] = {c: [] for c in range(k)}
        self.representatives_: dict[int, list[int]] = {c: [] for c in range(k)}
        scores = None
        offset = 0
        if counts is not None and vec is not None:
            classes = list(range(k)) + ([NOISE] if np.any(labels == NOISE) else [])
            membership = sparse.csr_matrix(
                (
                    np.ones(labels.size),
                    (np.searchsorted(np.array(sorted(classes)), labels), np.arange(labels.size)),
                ),
                shape=(len(classes), labels.size),
            )
            # rows in sorted class order: -1 (if present) first, then 0..k-1
            scores = c_tf_idf(membership @ counts)
            offset = 1 if NOISE in classes else 0
            terms = vec.get_feature_names_out()
            for c in range(k):
                row = scores.getrow(c + offset).toarray().ravel()
                top = np.argsort(-row, kind="stable")[: self.n_keywords]
                self.keywords_[c] = [(str(terms[j]), float(row[j])) for j in top if row[j] > 0]

        for c in range(k):
            members = np.flatnonzero(labels == c)
            if members.size == 0:
                continue
            if embeddings is not None and centroids is not None:
                sims = np.asarray(embeddings)[members] @ np.asarray(centroids)[c]
            elif scores is not None and counts is not None:
                sims = np.asarray((counts[members] @ scores.getrow(c + offset).T).todense()).ravel()
            else:
                sims = np.zeros(members.size)
            order = np.argsort(-sims, kind="stable")[: self.n_representatives]
            self.representatives_[c] = [int(members[i]) for i in order]

        self.names_ = self._names(k)
        logger.info("Labelling - %d patterns named from c-TF-IDF keywords", k)
        return self

    def _names(self, k: int) -> dict[int, str]:
        names: dict[int, str] = {}
        used: set[str] = set()
        for c in range(k):
            terms = self.keywords_[c]
            chosen: list[str] = []
            want = self.n_name_terms
            name = ""
            for _ in range(2):
                chosen = _pick_terms(terms, want)
                name = " / ".join(chosen) if chosen else f"pattern {c}"
                if name not in used:
                    break
                want += 1
            if name in used:
                name = f"{name} ({c})"
            used.add(name)
            names[c] = name
        return names

    def _check_fitted(self) -> None:
        if not hasattr(self, "names_"):
            raise NotFittedError("PatternLabeller is not fitted; call fit(docs, labels) first")

    def keywords(self, label: int) -> list[str]:
        self._check_fitted()
        return [t for t, _ in self.keywords_.get(label, [])]


def _stem(word: str) -> str:
    """A crude English stem, only to tell that "retry", "retries" and "retried" are one word in a name."""
    for suffix, repl in (("ies", "y"), ("ied", "y"), ("ing", ""), ("ed", ""), ("s", "")):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3 and not word.endswith("ss"):
            return word[: -len(suffix)] + repl
    return word


def _stems(term: str) -> set[str]:
    return {_stem(w) for w in term.split()}


def _pick_terms(terms: list[tuple[str, float]], want: int) -> list[str]:
    """Top terms without repeats.

    A longer term replaces the chosen ones it contains when it scores at least 80% as much ("certificate"
    -> "certificate expiry", but not "tls" -> "broke tls"); other terms sharing a word are skipped.
    """
    chosen: list[tuple[str, float]] = []
    for term, score in terms:
        words = _stems(term)
        clash = [i for i, (c, _) in enumerate(chosen) if words & _stems(c)]
        if not clash:
            if len(chosen) < want:
                chosen.append((term, score))
            continue
        contained = all(_stems(chosen[i][0]) < words for i in clash)
        if contained and score >= 0.8 * max(chosen[i][1] for i in clash):
            # "certificate" -> "certificate expiry"; "disk" + "full" -> "disk full"
            first = clash[0]
            chosen = [c for i, c in enumerate(chosen) if i not in clash[1:]]
            chosen[first] = (term, score)
        if len(chosen) >= want and all(" " in c for c, _ in chosen):
            break
    return [c for c, _ in chosen]


@dataclass
class PatternMatch:
    """Result of :func:`match_patterns`.

    `ids[i]` is the id given to new pattern i; `similarity[i]` its cosine to the matched old centroid (NaN
    when it got a fresh id); `fresh` the new ids; `vanished` the old ids no new pattern matched.
    """

    ids: list[int]
    similarity: list[float]
    fresh: list[int] = field(default_factory=list)
    vanished: list[int] = field(default_factory=list)

    @property
    def next_id(self) -> int:
        return max([*self.ids, *self.vanished, -1]) + 1


def match_patterns(
    new_centroids: np.ndarray,
    old_centroids: np.ndarray,
    old_ids: list[int] | np.ndarray,
    min_similarity: float = 0.7,
    next_id: int | None = None,
) -> PatternMatch:
    """Give new patterns the ids of the old ones they continue.

    Optimal one-to-one assignment on centroid cosine similarity; a pair counts only when its similarity is
    at least `min_similarity`. Unmatched new patterns get fresh ids from ``max(old_ids) + 1`` (or `next_id`,
    if larger, so that ids retired in earlier retrains are never reused).
    """
    new = np.asarray(new_centroids, dtype=np.float64)
    old = np.asarray(old_centroids, dtype=np.float64)
    old_ids = [int(i) for i in old_ids]
    if new.ndim != 2 or old.ndim != 2:
        raise InputError("centroids must be 2-D arrays (patterns, dim)", field="new_centroids")
    if old.shape[0] != len(old_ids):
        raise InputError(
            f"old_ids has {len(old_ids)} ids for {old.shape[0]} old centroids",
            field="old_ids",
            value=len(old_ids),
        )
    if len(set(old_ids)) != len(old_ids):
        raise InputError("old_ids contains duplicates", field="old_ids", value=old_ids)
    if old.shape[0] and new.shape[0] and old.shape[1] != new.shape[1]:
        raise InputError(
            f"new centroids have dim {new.shape[1]}, old ones {old.shape[1]}", field="new_centroids"
        )
    if not -1.0 <= min_similarity <= 1.0:
        raise InputError(
            f"min_similarity must be in [-1, 1], got {min_similarity!r}",
            field="min_similarity",
            value=min_similarity,
        )

    def unit(a: np.ndarray) -> np.ndarray:
        n = np.linalg.norm(a, axis=1, keepdims=True)
        return a / np.where(n > 0, n, 1.0)

    k_new = new.shape[0]
    ids: list[int | None] = [None] * k_new
    sim_out = [float("nan")] * k_new
    if k_new and old.shape[0]:
        sims = unit(new) @ unit(old).T
        rows, cols = linear_sum_assignment(-sims)
        for r, c in zip(rows, cols, strict=True):
            if sims[r, c] >= min_similarity:
                ids[r] = old_ids[c]
                sim_out[r] = float(sims[r, c])
    start = max([*old_ids, -1]) + 1
    if next_id is not None:
        start = max(start, int(next_id))
    fresh: list[int] = []
    for i in range(k_new):
        if ids[i] is None:
            ids[i] = start
            fresh.append(start)
            start += 1
    matched = {i for i in ids if i is not None}
    vanished = [i for i in old_ids if i not in matched]
    out = PatternMatch(
        ids=[int(i) for i in ids if i is not None], similarity=sim_out, fresh=fresh, vanished=vanished
    )
    logger.info(
        "Labelling - pattern ids: %d kept, %d new, %d vanished", k_new - len(fresh), len(fresh), len(vanished)
    )
    return out
