"""Template text discounted: sentences that recur across many documents carry no cause.

Status-page updates ("We are investigating reports of degraded performance for Pages."), report templates
("Customers experienced degraded performance between 00:00 and 00:55 UTC.") and apologies recur, with only
dates, numbers and names changed, in a large share of all incidents. Left in, they pull unrelated incidents
together in the embedding space and end up in the keywords and names of patterns.

:class:`BoilerplateFilter` learns them by *sentence-level document frequency*: every document is split
into sentences (:func:`split_sentences`, one linear-time regex), each sentence is normalised
(:func:`sentence_key`: lower case, dates, times, numbers, ids, capitalised names and placeholders masked,
whitespace folded, a leading time stamp dropped), and a key is boilerplate when it occurs in more than
``max_doc_share`` of the documents and in at least ``min_docs`` of them. :meth:`BoilerplateFilter.transform`
removes those sentences; a document that is nothing but boilerplate is kept whole for embedding (never
emptied), or emptied with ``keep_whole=False`` for naming and keywords (a template is no cause).

Defaults (``max_doc_share=0.02``, ``min_docs=5``, as issue #11 suggested; not tuned): on the GitHub status
corpus (1,282 real incidents, components masked) they learn the 14 status-page templates in 26 to 969
documents ("We are investigating reports of degraded performance for <component>.", "<component> is
operating normally.", "This incident has been resolved."); the next keys, in 25 documents and fewer, are
component-specific updates ("... degraded availability for <component>") and stay. On the generated sample
(600) 40 keys are learned, 37 of them spread over the known patterns (distractor sentences such as "Log
timestamps from two hosts disagreed"); on the hard sample (460) 78, of which 64 are spread and 14 are
cause sentences written the same way in one mechanism. Those are removed before embedding too; the
labeller keeps them (:meth:`BoilerplateFilter.within_patterns`). The bar of 5 documents keeps a small
corpus (under 250 documents, where 2% is under 5) from treating a sentence shared by a handful of
incidents as a template. The fitted filter is saved as its sorted sentence keys with their document
counts (readable JSON, no pickle).
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from ml.errors import InputError, NotFittedError, check_format
from ml.text.entities import names_pattern

__all__ = ["BoilerplateFilter", "sentence_key", "split_sentences"]

logger = logging.getLogger(__name__)

FORMAT = "recur-boilerplate/1"

# A sentence ends at a run of ., ! or ? followed by white space, or at a line break. A run is only tried from
# its first character (the lookbehind), so a long run of dots costs its length once, not its square: linear.
_SENTENCE_END = re.compile(r"(?<![.!?])[.!?]+(?=\s)|\n")
_WS = re.compile(r"\s+")
# Tokens of a sentence key, left to right: placeholders, dates, times, then words/numbers, then punctuation.
_KEY_TOKEN = re.compile(
    r"\[[A-Z_]{1,20}\]"  # placeholders of redaction and masking ([IP], [SERVICE])
    r"|[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}(?:[T ][0-9]{1,2}:[0-9]{2}(?::[0-9]{2})?(?:\.[0-9]{1,6})?Z?)?"  # dates
    r"|[0-9]{1,2}:[0-9]{2}(?::[0-9]{2})?(?:\s?[AaPp][Mm])?"  # times
    r"|[A-Za-z0-9_]+(?:['’.-][A-Za-z0-9_]+){0,8}"  # words, numbers, versions, ids, hyphenated words
    r"|[^\sA-Za-z0-9_]"  # any other visible character
)
_MONTHS = frozenset(
    "jan feb mar apr may jun jul aug sep sept oct nov dec january february march april june july august"
    " september october november december".split()
)
_WEEKDAYS = frozenset(
    "mon tue wed thu fri sat sun monday tuesday wednesday thursday friday saturday sunday".split()
)
_NAME = "<name>"
_NUM = "<num>"
_ID = "<id>"
_DATE = "<date>"
_TIME = "<time>"
_MASK = "<mask>"
_MASKS = frozenset({_NAME, _NUM, _ID, _DATE, _TIME, _MASK})
_JOINERS = frozenset({"and", "&", ",", "/", "or"})


def split_sentences(text: str) -> list[str]:
    """Split `text` into sentences, each with its trailing punctuation and white space.

    ``"".join(split_sentences(t)) == t``; a sentence ends at ``.``, ``!`` or ``?`` followed by white space, or
    at a line break (status updates come one per line once HTML is stripped). Linear time.
    """
    if not isinstance(text, str):
        raise InputError(f"text must be a string, got {type(text).__name__}", field="text", value=text)
    out: list[str] = []
    start = 0
    n = len(text)
    for m in _SENTENCE_END.finditer(text):
        end = m.end()
        while end < n and text[end].isspace():
            end += 1
        if end > start:
            out.append(text[start:end])
        start = end
    if start < n:
        out.append(text[start:])
    return out


def _mask_token(tok: str, at_start: bool) -> str:
    if tok.startswith("[") and tok.endswith("]"):
        return _MASK
    if tok[0].isdigit() and ("-" in tok[:5] and tok.count("-") >= 2 and len(tok) >= 8):
        return _DATE
    if ":" in tok and tok[0].isdigit():
        return _TIME
    low = tok.lower()
    if any(c.isdigit() for c in tok):
        return _NUM if low.replace(".", "").replace(",", "").isdigit() else _ID
    if low in _MONTHS or low in _WEEKDAYS:
        return _DATE
    if not at_start and tok[0].isupper():
        return _NAME  # a capitalised word mid-sentence: a product, service, vendor or person name
    return low


def sentence_key(sentence: str) -> str:
    """The normalised form of one sentence that templates share.

    Lower case; dates, times, month and weekday names -> ``<date>``/``<time>``; numbers -> ``<num>``; tokens
    with digits (ids, versions, hosts) -> ``<id>``; capitalised words after the first -> ``<name>``;
    placeholders such as ``[SERVICE]`` -> ``<mask>``; a run of masks joined by "and", "," or "/" -> one mask;
    leading masks and punctuation (a time stamp, a bullet) and closing punctuation dropped; white space
    folded. An empty key means
    the sentence has no words of its own.
    """
    toks = _KEY_TOKEN.findall(sentence)
    out: list[str] = []
    at_start = True
    for tok in toks:
        mapped = _mask_token(tok, at_start) if tok[0].isalnum() or tok[0] == "[" else tok
        if mapped[0].isalnum():
            at_start = False  # a time stamp or bullet before the first word does not start the sentence
        if mapped in _MASKS and out:
            # fold "<name> and <name>", "<name>, <name>", "<date> <time>" into one mask
            j = len(out) - 1
            while j >= 0 and out[j] in _JOINERS:
                j -= 1
            if j >= 0 and out[j] in _MASKS:
                del out[j + 1 :]
                out[j] = mapped if out[j] == mapped else _MASK
                continue
        out.append(mapped)
    # drop a leading time stamp, bullet or name list: the key starts at the first word
    i = 0
    while i < len(out) and (out[i] in _MASKS or not out[i][0].isalnum()):
        i += 1
    j = len(out)
    while j > i and not out[j - 1][0].isalnum() and out[j - 1] not in _MASKS:
        j -= 1  # and the closing punctuation: "Everything operating normally" is the same template
    return " ".join(out[i:j])


class BoilerplateFilter:
    """Removes template sentences: those whose normalised form recurs in many documents.

    Parameters
    ----------
    max_doc_share:
        A sentence key is boilerplate when it occurs in more than this share of the documents (0 < x < 1).
    min_docs:
        ... and in at least this many documents.
    min_key_words:
        Keys with fewer words (masks not counted) are never learned ("Resolved.", "Update:"), so a short
        line is not counted as the template of a longer one; 1 by default, which keeps them all.

    Fitted attributes: ``sentences_`` (sorted boilerplate keys), ``doc_freq_`` (key -> documents),
    ``n_docs_``, ``names_`` (names masked in the keys).
    """

    def __init__(self, max_doc_share: float = 0.02, min_docs: int = 5, min_key_words: int = 1) -> None:
        self.max_doc_share = max_doc_share
        self.min_docs = min_docs
        self.min_key_words = min_key_words

    def get_params(self) -> dict[str, Any]:
        return {
            "max_doc_share": self.max_doc_share,
            "min_docs": self.min_docs,
            "min_key_words": self.min_key_words,
        }

    def _validate(self) -> None:
        share = self.max_doc_share
        if isinstance(share, bool) or not isinstance(share, int | float) or not 0.0 < share < 1.0:
            raise InputError(
                f"max_doc_share must be a number in (0, 1), got {share!r}", field="max_doc_share", value=share
            )
        for name in ("min_docs", "min_key_words"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise InputError(f"{name} must be a positive integer, got {v!r}", field=name, value=v)

    @staticmethod
    def _check_texts(texts: Iterable[str]) -> list[str]:
        if isinstance(texts, str):
            raise InputError("texts must be a list of strings, got a single string", field="texts")
        out = list(texts)
        for i, t in enumerate(out):
            if not isinstance(t, str):
                raise InputError(
                    f"texts[{i}] must be a string, got {type(t).__name__}", field=f"texts[{i}]", value=t
                )
        return out

    def fit(
        self, texts: Sequence[str], y: None = None, names: Iterable[str | None] = ()
    ) -> BoilerplateFilter:
        """Learn the boilerplate sentence keys of a corpus (one text per document).

        `names` (services, teams, status-page components) are masked in the keys wherever they stand, so
        that "Pages is operating normally." and "Webhooks is operating normally." are one template.
        """
        self._validate()
        docs = self._check_texts(texts)
        if isinstance(names, str):
            raise InputError("names must be a list of names, got a single string", field="names", value=names)
        self.names_ = sorted(
            {p.strip() for n in names if n is not None for p in str(n).split(",") if p.strip()}
        )
        self._names_re = names_pattern(self.names_)
        df: Counter[str] = Counter()
        for doc in docs:
            df.update({k for k in map(self._key, split_sentences(doc)) if k})
        n = len(docs)
        bar = max(float(self.min_docs), self.max_doc_share * n)
        keep = {
            k: c
            for k, c in df.items()
            if c >= self.min_docs
            and c > self.max_doc_share * n
            and sum(1 for t in k.split() if t[0].isalnum() and t not in _MASKS) >= self.min_key_words
        }
        self.sentences_ = sorted(keep)
        self.doc_freq_ = dict(sorted(keep.items()))
        self.n_docs_ = n
        self._keys = frozenset(self.sentences_)
        logger.info(
            "Boilerplate - %d template sentences learned from %d documents (in > %.0f documents each)",
            len(self.sentences_),
            n,
            bar,
        )
        return self

    def _key(self, sentence: str) -> str:
        if self._names_re is not None:
            sentence = self._names_re.sub("[NAME]", sentence)
        return sentence_key(sentence)

    def _check_fitted(self) -> None:
        if not hasattr(self, "sentences_"):
            raise NotFittedError("BoilerplateFilter is not fitted; call fit(texts) first")

    def is_boilerplate(self, sentence: str) -> bool:
        """Whether one sentence is a learned template."""
        self._check_fitted()
        key = self._key(sentence)
        return bool(key) and key in self._keys

    def within_patterns(
        self, texts: Sequence[str], labels: Sequence[int], min_share: float = 0.8
    ) -> list[str]:
        """Learned keys that, in `texts` grouped by `labels`, are mostly inside one pattern.

        A template recurs across unrelated incidents; a sentence that recurs within one pattern (a cause
        written the same way each time) describes that pattern. Once patterns are known, a labeller can keep
        such sentences (``transform(..., keep=...)``): those with at least `min_share` of their documents in
        one pattern (label >= 0; noise, -1, counts against).
        """
        self._check_fitted()
        docs = self._check_texts(texts)
        labs = list(labels)
        if len(labs) != len(docs):
            raise InputError(
                f"labels must have one label per text ({len(docs)}), got {len(labs)}",
                field="labels",
                value=len(labs),
            )
        per_key: dict[str, Counter[int]] = {}
        for doc, lab in zip(docs, labs, strict=True):
            for k in {self._key(s) for s in split_sentences(doc)} & self._keys:
                per_key.setdefault(k, Counter())[int(lab)] += 1
        out = []
        for k, counts in per_key.items():
            total = sum(counts.values())
            top = max((n for lab, n in counts.items() if lab >= 0), default=0)
            if total and top >= min_share * total:
                out.append(k)
        return sorted(out)

    def transform_one(self, text: str, keep_whole: bool = True, keep: frozenset[str] = frozenset()) -> str:
        """`text` without its template sentences.

        When nothing else would be left, the original text with `keep_whole` (what to embed: an incident
        needs a vector), else ``""`` (what to name and describe patterns with: a template is no cause).
        """
        self._check_fitted()
        if not isinstance(text, str):
            raise InputError(f"text must be a string, got {type(text).__name__}", field="text", value=text)
        kept = [s for s in split_sentences(text) if (k := self._key(s)) not in self._keys or k in keep]
        out = "".join(kept).strip()
        if not any(ch.isalnum() for ch in out):
            return text if keep_whole else ""
        return _WS.sub(" ", out) if "\n" not in text else out

    def transform(self, texts: Sequence[str], keep_whole: bool = True, keep: Iterable[str] = ()) -> list[str]:
        """The documents without their template sentences, in order (see :meth:`transform_one`); the keys
        in `keep` (from :meth:`within_patterns`) stay."""
        self._check_fitted()
        kept = frozenset(keep)
        return [self.transform_one(t, keep_whole, kept) for t in self._check_texts(texts)]

    def fit_transform(
        self, texts: Sequence[str], y: None = None, names: Iterable[str | None] = ()
    ) -> list[str]:
        docs = self._check_texts(texts)
        return self.fit(docs, names=names).transform(docs)

    # -- persistence -----------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Parameters and learned keys as a JSON-ready dict."""
        self._check_fitted()
        return {
            "format": FORMAT,
            "params": self.get_params(),
            "n_docs": self.n_docs_,
            "names": list(self.names_),
            "doc_freq": dict(self.doc_freq_),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BoilerplateFilter:
        """Rebuild a fitted filter from :meth:`to_dict` output."""
        data = check_format(data, FORMAT, "boilerplate filter")
        out = cls(**data.get("params", {}))
        out._validate()
        freq = {str(k): int(v) for k, v in dict(data.get("doc_freq", {})).items()}
        out.sentences_ = sorted(freq)
        out.doc_freq_ = dict(sorted(freq.items()))
        out.n_docs_ = int(data.get("n_docs", 0))
        out.names_ = sorted(str(n) for n in data.get("names", []))
        out._names_re = names_pattern(out.names_)
        out._keys = frozenset(out.sentences_)
        return out
