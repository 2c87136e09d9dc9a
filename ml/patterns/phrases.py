"""Candidate name phrases and class-based TF-IDF, for naming failure patterns.

A phrase is 1 to ``max_words`` contiguous words of one sentence that starts and ends with a content word (stop
words only inside), with no number, placeholder or name in it; phrases are keyed by their stems and shown in
their most common surface form. `c_tf_idf` weighs terms (or phrases) per class as BERTopic does. `name_texts`
gives the text each incident's name is drawn from. Used by `ml.patterns.labelling.PatternLabeller`.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import sparse

from ml.errors import InputError
from ml.io.schemas import Incident
from ml.text.documents import redact, strip_html
from ml.text.stemming import stem

# Phrase tokens, left to right: placeholders ([SERVICE]), words (with an apostrophe suffix), any other
# visible character. One pass, no nested repetition.
_PHRASE_TOKEN = re.compile(r"\[[A-Z_]{1,20}\]|[A-Za-z0-9]+(?:['’][A-Za-z]+)?|[^\sA-Za-z0-9]")
# Words that never start or end a name even though they are not stop words: status-page workflow and
# report vocabulary (the rest comes from the data through c-TF-IDF).
_EDGE_WORDS = frozenset(
    {"caused", "cause", "root", "due", "issue", "issues", "problem", "problems"}
    | {"reports", "reported", "experiencing", "seeing", "continuing", "normal", "back", "currently"}
    | {"ms", "sec", "secs", "seconds", "minute", "minutes", "hour", "hours", "gb", "mb", "kb", "percent"}
    | {"instead", "impact", "impacted", "visible"}
    # units, time words and amounts say how long or how much, never what failed
    | {"millisecond", "milliseconds", "msec", "second", "period", "periods", "day", "days", "week", "weeks"}
    | {"month", "months", "year", "years", "night", "nights", "morning", "evening", "afternoon", "weekend"}
    | {"today", "yesterday", "tonight", "time", "times", "quiet", "short", "long", "lot", "lots", "few"}
    | {"tb", "kib", "mib", "gib", "rps", "qps", "utc", "pst", "est", "am", "pm", "x"}
    # status-page and report words that name no mechanism
    | {"elevated", "degraded", "affecting", "affected", "customers", "customer", "users", "user"}
    # words of degree, order or state that qualify a cause without being one ("remaining regions", "real")
    | {"ahead", "remaining", "real", "actual", "healthy", "unhealthy", "new", "several", "many", "multiple"}
    | {"various", "other", "same", "different", "certain", "rest", "whole", "entire", "usual", "normally"}
    # verbs in the present tense that postmortems use to narrate ("applies TLS settings", "removes instances")
    | {"applies", "removes", "sends", "returns", "uses", "runs", "takes", "makes", "causes", "keeps", "needs"}
    | {"handles", "starts", "stops", "includes", "contains", "requires", "allows", "expects", "tries", "gets"}
)


def c_tf_idf(class_counts: sparse.csr_matrix) -> sparse.csr_matrix:
    """Class-based TF-IDF of a (classes x terms) count matrix."""
    counts = sparse.csr_matrix(class_counts, dtype=np.float64)
    words_per_class = np.asarray(counts.sum(axis=1)).ravel()
    tf = sparse.diags(1.0 / np.where(words_per_class > 0, words_per_class, 1.0)) @ counts
    term_freq = np.asarray(counts.sum(axis=0)).ravel()
    avg_words = float(words_per_class.mean()) if words_per_class.size else 0.0
    idf = np.log1p(avg_words / np.where(term_freq > 0, term_freq, 1.0))
    return sparse.csr_matrix(tf @ sparse.diags(idf))


def name_texts(incidents: Iterable[Incident], prepare: Callable[[str], str] | None = None) -> list[str]:
    """The text each incident's pattern name is drawn from: its root cause, or its summary when empty.

    `prepare` turns a raw text into the redacted, masked one (``DocumentBuilder.build_text`` of the
    pipeline's builder, so that services are masked the same way); by default HTML is stripped and the
    text redacted.
    """
    out: list[str] = []
    for i, inc in enumerate(incidents):
        if not isinstance(inc, Incident):
            raise InputError(
                f"incidents[{i}] must be an ml.schemas.Incident, got {type(inc).__name__}",
                field=f"incidents[{i}]",
            )
        raw = inc.root_cause if inc.root_cause and inc.root_cause.strip() else inc.summary
        out.append(prepare(raw) if prepare is not None else redact(strip_html(raw)))
    return out


@dataclass
class _Phrases:
    """Candidate name phrases of a corpus: a (documents x phrases) 0/1 matrix and how each phrase reads."""

    counts: sparse.csr_matrix
    keys: list[tuple[str, ...]]
    surface: list[str]


def _display_word(word: str) -> str:
    # acronyms (TLS, DNS, IPs) keep their capitals, other words are lower case
    if len(word) > 1 and (word.isupper() or (word[-1] == "s" and word[:-1].isupper() and len(word) > 2)):
        return word
    return word.lower()


def _segments(text: str) -> list[list[tuple[str, int, int]]]:
    """Runs of words (lower-case word, start, end) that a name may span: no punctuation (bar a hyphen
    inside a word), placeholder, number or contraction between them."""
    segs: list[list[tuple[str, int, int]]] = []
    cur: list[tuple[str, int, int]] = []
    prev_end = -1
    for m in _PHRASE_TOKEN.finditer(text):
        tok = m.group(0)
        if tok in ("-", "/") and m.start() == prev_end and m.end() < len(text) and text[m.end()].isalnum():
            prev_end = m.end()  # "feature-flag", "read/write": one name word continues
            continue
        word = tok.lower()
        if not tok[0].isalpha() or "'" in word or "’" in word or any(c.isdigit() for c in tok):
            if cur:
                segs.append(cur)
            cur = []
            prev_end = m.end()
            continue
        cur.append((word, m.start(), m.end()))
        prev_end = m.end()
    if cur:
        segs.append(cur)
    return segs


# Inside a name, only prepositions may stand between content words ("config push without canary"), and an
# article only right after one ("timeout of the pool").
_INSIDE = frozenset(
    "of without on in for from to after at under over between per across with behind before during into".split()
)
_ARTICLES = frozenset({"a", "an", "the"})
_LONGER_SHARE = 0.4
# Past tenses say what happened, not what it was: a regular one may open a name ("expired certificate",
# "cached answers") but not end it ("CPU stayed low", "secret scanning flagged"); irregular ones ("kept",
# "broke") are verbs, not adjectives, and stay out.
_IRREGULAR_PAST = frozenset(
    "ran kept held did went came took got made left sent began grew saw told found lost put set shut hit"
    " became brought caught fell felt gave knew led meant paid read rose said sold spent stood stuck threw"
    " thought understood won wrote broke spoke woke froze chose drove rode wore tore hid bit fed fought"
    " sought bought dug hung slid spun struck swung wound dealt built bent lent burnt overran overflowed"
    " forgot withheld".split()
)


# Words a verb takes as its object's first word; a noun is rarely followed by one ("needs the", "handles a").
_DETERMINERS = frozenset(
    "the a an its their his her our your them it this these those every all each".split()
)


def _verb_like(texts: Sequence[str], min_share: float = 0.3, min_uses: int = 2) -> frozenset[str]:
    """Words of the corpus that read as verbs: followed by a determiner in at least `min_share` of their
    uses ("needs the", "handles a", "orders the"). Data-driven, so "hosts" the noun stays a noun where the
    corpus uses it as one."""
    uses: Counter[str] = Counter()
    before_det: Counter[str] = Counter()
    for text in texts:
        prev = ""
        for m in _PHRASE_TOKEN.finditer(text):
            word = m.group(0).lower()
            if word in _DETERMINERS and prev:
                before_det[prev] += 1
            if word[0].isalpha():
                uses[word] += 1
                prev = word
            else:
                prev = ""
    return frozenset(w for w, n in before_det.items() if uses[w] >= min_uses and n >= min_share * uses[w])


def _word_role(word: str, stop_words: frozenset[str], verbs: frozenset[str] = frozenset()) -> str:
    """'content', 'past' (may only open a name), 'inside' (a preposition or article) or 'break'."""
    if len(word) < 2 or word in _EDGE_WORDS or (word.endswith("ly") and len(word) > 4):
        return "break"  # adverbs ("directly", "quickly") do not belong in a name
    if word in _INSIDE or word in _ARTICLES:
        return "inside"
    if word in stop_words or word in _IRREGULAR_PAST:
        return "break"
    if word.endswith("ed") and not word.endswith("eed") and len(word) > 3:  # "used", not "speed"
        return "past"
    if word in verbs:
        return "break"
    return "content"


def _phrases_of(
    text: str, max_words: int, stop_words: frozenset[str], verbs: frozenset[str] = frozenset()
) -> Iterable[tuple[tuple[str, ...], str]]:
    """(stem key, surface) of every candidate name phrase of one text."""
    for seg in _segments(text):
        roles = [_word_role(w, stop_words, verbs) for w, _, _ in seg]
        for i in range(len(seg)):
            if roles[i] not in ("content", "past"):
                continue
            if roles[i] == "past" and (i + 1 == len(seg) or roles[i + 1] != "content"):
                continue  # "changed to point", "failed over": a verb, not an adjective
            for j in range(i, min(i + max_words, len(seg))):
                role = roles[j]
                if role == "break" or (j > i and role == "past"):
                    break
                if role == "inside" and seg[j][0] in _ARTICLES and (j == i or roles[j - 1] != "inside"):
                    break
                if role != "content" or (j == i and (roles[i] == "past" or seg[i][0].endswith("ing"))):
                    continue  # a name ends on a content word; a past tense or an -ing form alone is no name
                words = seg[i : j + 1]
                key = tuple(stem(w) for w, _, _ in words)
                raw = text[words[0][1] : words[-1][2]]
                surface = " ".join(
                    "-".join(_display_word(p) for p in part.split("-")) for part in raw.split()
                )
                yield key, surface


def _collect_phrases(texts: Sequence[str], max_words: int, stop_words: frozenset[str]) -> _Phrases:
    index: dict[tuple[str, ...], int] = {}
    forms: list[Counter[str]] = []
    rows: list[int] = []
    cols: list[int] = []
    verbs = _verb_like(texts)
    for d, text in enumerate(texts):
        seen: set[int] = set()
        for key, surface in _phrases_of(text, max_words, stop_words, verbs):
            j = index.setdefault(key, len(index))
            if j == len(forms):
                forms.append(Counter())
            forms[j][surface] += 1
            seen.add(j)
        rows.extend([d] * len(seen))
        cols.extend(sorted(seen))
    counts = sparse.csr_matrix(
        (np.ones(len(rows)), (rows, cols)), shape=(len(texts), len(index)), dtype=np.float64
    )
    keys = sorted(index, key=index.__getitem__)
    surfaces = [f.most_common(1)[0][0] for f in forms]
    return _Phrases(counts=counts, keys=keys, surface=surfaces)


def _title(phrase: str) -> str:
    return phrase[:1].upper() + phrase[1:]


def _contains(longer: tuple[str, ...], shorter: tuple[str, ...]) -> bool:
    """Whether `shorter` is a contiguous part of `longer` (as stem tuples)."""
    n = len(shorter)
    return any(longer[i : i + n] == shorter for i in range(len(longer) - n + 1))
