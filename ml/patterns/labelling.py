"""Describing failure patterns: readable names, class-based TF-IDF keywords, representative incidents, stable ids.

- `PatternLabeller`:
  - a *name* per pattern, a short root-cause phrase ("Expired TLS certificate", "Connection pool
    exhaustion") picked by c-TF-IDF among the phrases of the members' root-cause texts (their summaries
    when a root cause is missing): a phrase is 1 to ``max_name_words`` contiguous words of one sentence
    that starts and ends with a content word (stop words only inside: "config push without canary"), with
    no number, placeholder or name in it. Service, team, vendor, product and people names never appear in
    names or keywords (`ml.text.entities.EntityMasker`). Names are unique: patterns that would share one
    are told apart by their next best distinct phrase, and ``duplicate_names_`` reports them.
  - *keywords*, a secondary field: c-TF-IDF (as in BERTopic: term frequency per pattern, L1-normalised,
    times ``log(1 + mean words per class / term frequency over all classes)``) on uni- and bi-grams of the
    documents with stop words, placeholders and names out;
  - the incidents closest to each pattern's centroid.
- `match_patterns`: keeps pattern ids stable across retrains by matching centroids (cosine) with an optimal
  one-to-one assignment (Hungarian method).

Template sentences (status-page updates, report boilerplate) are removed before labelling by
`ml.text.boilerplate.BoilerplateFilter`; see `PatternLabeller.fit` for the order of the stages.

Phrases and c-TF-IDF live in `ml.patterns.phrases`, id matching in `ml.patterns.stable_ids`; their public names
are re-exported here.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from scipy import sparse

from ml.errors import InputError, NotFittedError
from ml.patterns.ids import NOISE
from ml.patterns.phrases import (
    _LONGER_SHARE,
    _collect_phrases,
    _contains,
    _Phrases,
    _title,
    c_tf_idf,
    name_texts,
)
from ml.patterns.stable_ids import PatternMatch, match_patterns
from ml.text.boilerplate import BoilerplateFilter
from ml.text.documents import STOP_WORDS, make_analyzer
from ml.text.entities import EntityMasker
from ml.text.stemming import stem

__all__ = ["PatternLabeller", "PatternMatch", "c_tf_idf", "match_patterns", "name_texts"]

logger = logging.getLogger(__name__)

FORMAT = "recur-labeller/1"


# A one-word name ("Pool", "Primary") says what was involved, not what happened: the best phrase of two or more
# words takes its place when it scores at least this share of it (else one that holds the word, see _fit_names).
_PHRASE_SHARE = 0.5


def _phrase_first(
    order: list[int], row: np.ndarray, phrases: _Phrases, keywords: frozenset[str] = frozenset()
) -> list[int]:
    """`order` with the best phrase of several words first when the best is a single word and the phrase
    scores at least ``_PHRASE_SHARE`` of it and holds one of the pattern's leading keywords (stems)."""
    if not order or len(phrases.keys[order[0]]) > 1:
        return order
    for pos, j in enumerate(order[1:], start=1):
        key = phrases.keys[j]
        if len(key) > 1 and row[j] >= _PHRASE_SHARE * row[order[0]] and keywords & set(key):
            return [j, *order[:pos], *order[pos + 1 :]]
    return order


class PatternLabeller:
    """Names, keywords and representative incidents for each pattern.

    Parameters
    ----------
    n_keywords:
        Keywords kept per pattern.
    ngram_range:
        Word n-grams used as candidate keywords.
    n_representatives:
        Incidents closest to the pattern centre to show as examples.
    n_name_terms:
        Next best phrases tried, in order, to tell apart patterns that would share a name.
    min_df:
        A keyword must appear in at least this many incidents (lowered to 1 for tiny corpora).
    max_name_words:
        Longest name phrase, in words.
    min_name_share:
        A name phrase must appear in at least this share of the pattern's incidents (at least 2 of them when
        the pattern has 2 or more), so a name describes the pattern, not one incident.
    max_name_pattern_share:
        A phrase common (``min_name_share``) in more than this share of the patterns, and in 3 or more, is
        the corpus' own vocabulary ("customers", "errors") and names none of them.
    mask_entities:
        Keep service, team, vendor, product and people names out of names and keywords; without a fitted
        `EntityMasker` passed to `fit`, one is learned from the texts alone.
    template_pattern_share:
        A template sentence with at least this share of its incidents in one pattern is kept for labelling
        (see `fit`).
    """

    def __init__(
        self,
        n_keywords: int = 10,
        ngram_range: tuple[int, int] = (1, 2),
        n_representatives: int = 3,
        n_name_terms: int = 2,
        min_df: int = 2,
        stop_words: Iterable[str] | None = STOP_WORDS,
        max_name_words: int = 4,
        min_name_share: float = 0.1,
        max_name_pattern_share: float = 0.5,
        mask_entities: bool = True,
        template_pattern_share: float = 0.8,
    ) -> None:
        self.n_keywords = n_keywords
        self.ngram_range = ngram_range
        self.n_representatives = n_representatives
        self.n_name_terms = n_name_terms
        self.min_df = min_df
        self.stop_words = stop_words
        self.max_name_words = max_name_words
        self.min_name_share = min_name_share
        self.max_name_pattern_share = max_name_pattern_share
        self.mask_entities = mask_entities
        self.template_pattern_share = template_pattern_share

    def get_params(self) -> dict[str, object]:
        return {
            "n_keywords": self.n_keywords,
            "ngram_range": list(self.ngram_range),
            "n_representatives": self.n_representatives,
            "n_name_terms": self.n_name_terms,
            "min_df": self.min_df,
            "stop_words": self._stop_words_param(),
            "max_name_words": self.max_name_words,
            "min_name_share": self.min_name_share,
            "max_name_pattern_share": self.max_name_pattern_share,
            "mask_entities": self.mask_entities,
            "template_pattern_share": self.template_pattern_share,
        }

    def _stop_words_param(self) -> str | list[str] | None:
        """The default list by name: a saved model (and an MLflow parameter) need not spell it out."""
        stop = self._stop_words()
        return None if stop is None else "default" if stop == STOP_WORDS else sorted(stop)

    def _stop_words(self) -> frozenset[str] | None:
        """The stop words: ``None`` (none), ``"default"`` (``STOP_WORDS``) or a collection of words."""
        words = self.stop_words
        if words is None:
            return None
        if words == "default":
            return STOP_WORDS
        if isinstance(words, str) or not all(isinstance(w, str) for w in words):
            raise InputError(
                f"stop_words must be None, 'default' or a list of words, got {words!r}",
                field="stop_words",
                value=words,
            )
        return frozenset(words)

    def _validate(self) -> None:
        self._stop_words()
        for name in ("n_keywords", "n_representatives", "n_name_terms", "min_df", "max_name_words"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise InputError(f"{name} must be a positive integer, got {v!r}", field=name, value=v)
        for name in ("min_name_share", "max_name_pattern_share", "template_pattern_share"):
            share = getattr(self, name)
            if isinstance(share, bool) or not isinstance(share, int | float) or not 0.0 <= share <= 1.0:
                raise InputError(f"{name} must be a number in [0, 1], got {share!r}", field=name, value=share)

    @staticmethod
    def _check_texts(texts: Sequence[str], name: str, n: int | None = None) -> list[str]:
        if isinstance(texts, str):
            raise InputError(f"{name} must be a list of strings, got a single string", field=name)
        out = list(texts)
        for i, t in enumerate(out):
            if not isinstance(t, str):
                raise InputError(
                    f"{name}[{i}] must be a string, got {type(t).__name__}", field=f"{name}[{i}]", value=t
                )
        if n is not None and len(out) != n:
            raise InputError(
                f"{name} must have one text per document ({n}), got {len(out)}", field=name, value=len(out)
            )
        return out

    def fit(
        self,
        docs: Sequence[str],
        labels: np.ndarray,
        embeddings: np.ndarray | None = None,
        centroids: np.ndarray | None = None,
        name_texts: Sequence[str] | None = None,
        entities: EntityMasker | None = None,
        boilerplate: BoilerplateFilter | None = None,
    ) -> PatternLabeller:
        """Label the patterns 0..k-1 of `labels` (-1 is noise) using the texts `docs`.

        `docs` are the documents the patterns were mined from (redacted); they give the keywords.
        `name_texts`, one per document, give the names: the root causes (`name_texts` of this module);
        `docs` when omitted. `entities`: a fitted `EntityMasker` (names of the corpus' services, teams and
        vendors); learned from the texts when omitted and `mask_entities` is on. `boilerplate`: the fitted
        `BoilerplateFilter` of the pipeline; its template sentences are removed from both texts here (a
        text of nothing but templates becomes empty: no cause stated), except those that turn out to lie
        mostly within one pattern (``within_patterns``: a cause written the same way each time), kept in
        ``kept_sentences_``.
        With `embeddings` and `centroids` (unit rows), representatives are the members closest to the
        centroid; otherwise the members whose TF-IDF vector is closest to the pattern's keyword vector.
        """
        self._validate()
        docs = self._check_texts(docs, "docs")
        labels = np.asarray(labels)
        if labels.ndim != 1 or labels.shape[0] != len(docs):
            raise InputError(
                f"labels must be 1-D with one label per document ({len(docs)}), got shape {labels.shape}",
                field="labels",
            )
        if labels.size and not np.issubdtype(labels.dtype, np.integer):
            raise InputError(
                f"labels must be integers, got {labels.dtype}", field="labels", value=str(labels.dtype)
            )
        if labels.size and labels.min() < NOISE:
            raise InputError(
                f"labels must be pattern numbers 0..k-1 or {NOISE} (noise), got {int(labels.min())}",
                field="labels",
                value=int(labels.min()),
            )
        texts = docs if name_texts is None else self._check_texts(name_texts, "name_texts", len(docs))
        if entities is not None and not isinstance(entities, EntityMasker):
            raise InputError(
                f"entities must be a fitted EntityMasker, got {type(entities).__name__}", field="entities"
            )
        if boilerplate is not None:
            if not isinstance(boilerplate, BoilerplateFilter):
                raise InputError(
                    f"boilerplate must be a fitted BoilerplateFilter, got {type(boilerplate).__name__}",
                    field="boilerplate",
                )
            share = self.template_pattern_share
            keep = set(boilerplate.within_patterns(docs, labels.tolist(), share))
            if texts is not docs:
                keep |= set(boilerplate.within_patterns(texts, labels.tolist(), share))
            same = texts is docs
            docs = boilerplate.transform(docs, keep_whole=False, keep=keep)
            texts = docs if same else boilerplate.transform(texts, keep_whole=False, keep=keep)
            self.kept_sentences_: list[str] = sorted(keep)
        else:
            self.kept_sentences_ = []
        if self.mask_entities:
            masker = (
                entities
                if entities is not None
                else EntityMasker().fit(docs if texts is docs else [*docs, *texts])
            )
            masker._check_fitted()
            docs = [masker.mask(d) for d in docs]
            texts = [masker.mask(t) for t in texts]
            self.entities_: EntityMasker | None = masker
        else:
            self.entities_ = None
        k = int(labels.max()) + 1 if labels.size and labels.max() >= 0 else 0
        classes = list(range(k)) + ([NOISE] if np.any(labels == NOISE) else [])
        order = np.array(sorted(classes))
        membership = sparse.csr_matrix(
            (np.ones(labels.size), (np.searchsorted(order, labels), np.arange(labels.size))),
            shape=(len(classes), labels.size),
        )
        offset = (
            1 if NOISE in classes else 0
        )  # rows in sorted class order: -1 (if present) first, then 0..k-1

        counts, scores = self._fit_keywords(docs, membership, k, offset)
        self._fit_representatives(labels, k, offset, counts, scores, embeddings, centroids)
        self._fit_names(texts, labels, membership, k, offset)
        logger.info(
            "Labelling - %d patterns named from root-cause phrases (%d names shared before telling apart)",
            k,
            len(self.duplicate_names_),
        )
        return self

    # -- keywords --------------------------------------------------------------------------------------
    def _fit_keywords(
        self, docs: list[str], membership: sparse.csr_matrix, k: int, offset: int
    ) -> tuple[sparse.csr_matrix | None, sparse.csr_matrix | None]:
        from sklearn.feature_extraction.text import CountVectorizer

        analyzer = make_analyzer(tuple(self.ngram_range), self._stop_words())  # type: ignore[arg-type]
        min_df = self.min_df if len(docs) >= 10 * self.min_df else 1
        counts: sparse.csr_matrix | None = None
        vec: CountVectorizer | None = None
        for df in dict.fromkeys((min_df, 1)):
            try:
                vec = CountVectorizer(analyzer=analyzer, min_df=df)
                counts = vec.fit_transform(docs)
                break
            except ValueError:  # empty vocabulary (e.g. only stop words)
                counts, vec = None, None
        self.keywords_: dict[int, list[tuple[str, float]]] = {c: [] for c in range(k)}
        if counts is None or vec is None:
            return None, None
        scores = c_tf_idf(membership @ counts)
        terms = vec.get_feature_names_out()
        masker = self.entities_
        allowed = np.array([masker is None or not masker.term_has_entity(str(t)) for t in terms], dtype=bool)
        for c in range(k):
            row = scores.getrow(c + offset).toarray().ravel()
            row = np.where(allowed, row, 0.0)
            top = np.argsort(-row, kind="stable")[: self.n_keywords]
            self.keywords_[c] = [(str(terms[j]), float(row[j])) for j in top if row[j] > 0]
        return counts, scores

    def _fit_representatives(
        self,
        labels: np.ndarray,
        k: int,
        offset: int,
        counts: sparse.csr_matrix | None,
        scores: sparse.csr_matrix | None,
        embeddings: np.ndarray | None,
        centroids: np.ndarray | None,
    ) -> None:
        self.representatives_: dict[int, list[int]] = {c: [] for c in range(k)}
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

    # -- names -----------------------------------------------------------------------------------------
    def _fit_names(
        self, texts: list[str], labels: np.ndarray, membership: sparse.csr_matrix, k: int, offset: int
    ) -> None:
        stop = self._stop_words() or frozenset()
        phrases = _collect_phrases(texts, self.max_name_words, stop)
        ranked: dict[int, list[int]] = {c: [] for c in range(k)}
        if phrases.keys:
            class_docs = membership @ phrases.counts  # documents of each class holding each phrase
            scores = c_tf_idf(class_docs).tocsr()
            sizes = np.asarray(membership.sum(axis=1)).ravel()
            class_docs = class_docs.tocsr()
            need = np.maximum(np.minimum(2.0, sizes), self.min_name_share * sizes)
            present = class_docs.toarray()[offset:] >= need[offset:, None]  # (patterns, phrases)
            # the genre's own vocabulary ("customers", "errors", "customer request"), common in most
            # patterns, names none of them
            n_present = present.sum(axis=0)
            specific = (n_present < 3) | (n_present <= self.max_name_pattern_share * k)
            for c in range(k):
                full = scores.getrow(c + offset).toarray().ravel()
                row = np.where(present[c] & specific, full, 0.0) * self._keyword_boost(c, phrases)
                leading = frozenset(stem(t) for t, _ in self.keywords_.get(c, [])[:3] if " " not in t)
                order = _phrase_first(self._rank_phrases(row, phrases), row, phrases, leading)
                if order and len(phrases.keys[order[0]]) == 1:
                    # still one word ("Pull"): the pattern's best phrase that holds it ("Pull requests"), told by
                    # two of its members at least
                    word = phrases.keys[order[0]]
                    held = class_docs.getrow(c + offset).toarray().ravel() >= min(2.0, sizes[c + offset])
                    longer = [
                        j
                        for j in np.flatnonzero(held & (full > 0))
                        if len(phrases.keys[j]) > 1 and _contains(phrases.keys[j], word)
                    ]
                    if longer:
                        order = [int(max(longer, key=lambda j: full[j])), *order]
                ranked[c] = order
        base: dict[int, str] = {}
        base_key: dict[int, tuple[str, ...]] = {}
        for c in range(k):
            if ranked[c]:
                j = ranked[c][0]
                base[c], base_key[c] = _title(phrases.surface[j]), phrases.keys[j]
            elif self.keywords_.get(c):
                top = self.keywords_[c][0][0]
                base[c], base_key[c] = _title(top), tuple(stem(w) for w in top.split())
            else:  # every member's text was a template (or empty): say so rather than invent a cause
                base[c], base_key[c] = "No cause stated", ("no cause stated",)
        groups: dict[tuple[str, ...], list[int]] = defaultdict(list)
        for c in range(k):
            groups[base_key[c]].append(c)
        self.duplicate_names_: dict[str, list[int]] = {
            base[cs[0]]: cs for cs in groups.values() if len(cs) > 1
        }
        names = dict(base)
        for cs in groups.values():
            if len(cs) < 2:
                continue
            for c in cs:
                used = set(base_key[c])
                # distinct: not among the leading phrases of the patterns it would share the name with
                others = {j for o in cs if o != c for j in ranked[o][: 5 * self.n_name_terms]}
                for j in ranked[c][1 : 1 + 10 * self.n_name_terms]:
                    if used & set(phrases.keys[j]) or j in others:
                        continue
                    # two patterns: "Expired TLS certificate (renewal job)"; a name three or more patterns
                    # would share is no name: the distinct phrase is
                    names[c] = (
                        f"{base[c]} ({phrases.surface[j]})" if len(cs) == 2 else _title(phrases.surface[j])
                    )
                    break
        seen: Counter[str] = Counter()
        for c in range(k):
            if seen[names[c].lower()]:
                names[c] = f"{names[c]} ({c})"  # still the same after the next best phrase: number it
            seen[names[c].lower()] += 1
        self.names_ = names

    def _keyword_boost(self, c: int, phrases: _Phrases) -> np.ndarray:
        """1 plus the pattern's keyword weight of a phrase's words (the best keyword counts 1): the most
        representative phrase is made of the pattern's own keywords ("disk" in "temporary files filled the
        disk" and in titles such as "Disk full" makes "disk" outrank "data volume")."""
        weights: dict[str, float] = {}
        for term, score in self.keywords_.get(c, []):
            if " " not in term:
                weights[stem(term)] = max(weights.get(stem(term), 0.0), score)
        top = max(weights.values(), default=0.0)
        if top <= 0:
            return np.ones(len(phrases.keys))
        return np.fromiter(
            (1.0 + max((weights.get(w, 0.0) for w in key), default=0.0) / top for key in phrases.keys),
            dtype=np.float64,
            count=len(phrases.keys),
        )

    def _rank_phrases(self, row: np.ndarray, phrases: _Phrases) -> list[int]:
        """Phrase indices best first. A phrase of several words takes the place of a shorter one it
        contains when it scores at least half as much ("certificate" -> "expired TLS certificate")."""
        cand = [int(j) for j in np.argsort(-row, kind="stable") if row[j] > 0][:200]
        if not cand:
            return []
        out: list[int] = []
        for j in cand:
            key = phrases.keys[j]
            if any(_contains(phrases.keys[i], key) for i in out):
                continue  # a part of a phrase already ranked higher
            best = j
            for i in cand:
                longer = phrases.keys[i]
                if len(longer) > len(phrases.keys[best]) and _contains(longer, phrases.keys[best]):
                    if row[i] >= _LONGER_SHARE * row[best]:
                        best = i
            if best not in out:
                out.append(best)
        return out

    def _check_fitted(self) -> None:
        if not hasattr(self, "names_"):
            raise NotFittedError("PatternLabeller is not fitted; call fit(docs, labels) first")

    def keywords(self, label: int) -> list[str]:
        self._check_fitted()
        return [t for t, _ in self.keywords_.get(label, [])]

    # -- persistence -----------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Parameters and what `fit` learned, as a JSON-ready dict (no pickle)."""
        self._check_fitted()
        return {
            "format": FORMAT,
            "params": self.get_params(),
            "names": {str(c): n for c, n in sorted(self.names_.items())},
            "keywords": {str(c): [[t, s] for t, s in kw] for c, kw in sorted(self.keywords_.items())},
            "representatives": {str(c): r for c, r in sorted(self.representatives_.items())},
            "duplicate_names": {n: cs for n, cs in sorted(self.duplicate_names_.items())},
            "kept_sentences": list(self.kept_sentences_),
            "entities": self.entities_.to_dict() if self.entities_ is not None else None,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PatternLabeller:
        """Rebuild a fitted labeller from :meth:`to_dict` output."""
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            got = data.get("format") if isinstance(data, dict) else type(data).__name__
            raise InputError(
                f"labeller data has format {got!r}, expected {FORMAT!r}", field="format", value=got
            )
        params = dict(data.get("params", {}))
        if "ngram_range" in params:
            params["ngram_range"] = tuple(params["ngram_range"])
        out = cls(**params)
        out._validate()
        out.names_ = {int(c): str(n) for c, n in data.get("names", {}).items()}
        out.keywords_ = {
            int(c): [(str(t), float(s)) for t, s in kw] for c, kw in data.get("keywords", {}).items()
        }
        out.representatives_ = {
            int(c): [int(i) for i in r] for c, r in data.get("representatives", {}).items()
        }
        out.duplicate_names_ = {
            str(n): [int(c) for c in cs] for n, cs in data.get("duplicate_names", {}).items()
        }
        out.kept_sentences_ = [str(k) for k in data.get("kept_sentences", [])]
        ent = data.get("entities")
        out.entities_ = EntityMasker.from_dict(ent) if ent is not None else None
        return out
