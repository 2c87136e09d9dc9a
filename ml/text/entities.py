"""Names of things, not causes: services, teams, vendors, products and people, learned from the corpus.

A pattern name or keyword such as "identikit / provider" or "business hours / taxcalc" tells a reader which
vendor or service was involved, not how things failed. :class:`EntityMasker` learns which words are names
so that labelling can keep them out of pattern names and keywords. It is data-driven; a word is a name when

1. it is (part of) a name given to :meth:`EntityMasker.fit`: the incidents' own ``service`` and ``team``
   fields (status-page components, for a status corpus). A one-word name with a capital ("Pages")
   matches with that capital only, so "pages" the ordinary word stays; other names ("Git Operations",
   "payments-api", "payments") match in any case and spelling (payments-api, payments api, payments_api);
2. it is written in CamelCase ("IdentiKit", "TaxCalc", "PagerDuty", "HAProxy"): a brand, not a word;
3. it starts with a capital and contains a digit ("EC2", "Route53"): a product or model name;
4. away from the start of a sentence it is capitalised in at least ``min_capitalised_share`` of its uses
   (80%), over at least ``min_mentions`` uses (``min_mentions_word`` for an English word): proper nouns
   ("Kafka", "Stripe", "Elena") are capitalised wherever they stand, ordinary words only at the start of a
   sentence. Words in capitals (TLS, DNS, SEV2) are acronyms of technical terms and are kept;
5. it is only ever seen capitalised at the start of a sentence, at least ``min_mentions_word`` times, and is not a
   word of the embedding model's English vocabulary (the MiniLM WordPiece list) nor an inflection of one
   (same Snowball stem): "Kafka lag grew.";
6. it is a lower-case hyphenated identifier ("events-pg", "tenant-registry", "checkout-api") that ends
   like a service: with the last part of a given name ("-api" from "payments-api") or an infrastructure
   suffix (``SERVICE_SUFFIXES``: -pg, -db, -api, -service, -proxy, -registry...), seen ``min_mentions``
   times: the services an incident calls are named in its text, not in its ``service`` field;
7. @handles are redacted to ``[HANDLE]`` before any of this (``ml.text.documents.redact``).

The fitted masker is saved as JSON (`to_dict`): its names and the learned words.
"""

from __future__ import annotations

import functools
import logging
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from ml.errors import InputError, NotFittedError, check_format
from ml.text.stemming import stem

__all__ = ["EntityMasker", "ENTITY", "names_pattern"]

logger = logging.getLogger(__name__)

FORMAT = "recur-entities/1"
ENTITY = "[SERVICE]"  # a placeholder the tokenizer already drops (ml.text.documents.tokenize)

_WORD = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:['’][A-Za-z]+)?")
# Sentence starts: the start of the text, or after . ! ? : ; a line break, a bullet or an opening bracket
# (only white space, quotes and brackets between). Decided per word by looking back at one character run.
# How service identifiers end (rule 6), besides the last parts of the given names.
SERVICE_SUFFIXES = frozenset(
    "api apis svc service services pg db dbs sql redis cache proxy gateway gw registry store worker workers"
    " queue bff web frontend backend server cluster".split()
)
_SLUG = re.compile(r"(?<![A-Za-z0-9_.-])[a-z][a-z0-9]{0,30}(?:-[a-z0-9]{1,30}){1,4}(?![A-Za-z0-9_-])")
_CAMEL = re.compile(r"[a-z][A-Z]|[A-Z]{2}[a-z]{2}")
_SPLIT = re.compile(r"[-_\s.]+")


def names_pattern(names: Iterable[str]) -> re.Pattern[str] | None:
    """One regex for the given names in any spelling (``payments-api``, ``payments api``, ``payments_api``).

    One-word names with an upper-case letter match case-sensitively (``Pages`` but not ``pages``); other
    names match in any case, a plural last word also in the singular (``Pull Requests``, ``pull request``).
    Longest names first, whole words only; ``None`` for no names.
    """
    sensitive: list[str] = []
    insensitive: list[str] = []
    split = {p.strip() for n in names if n for p in str(n).split(",")}
    for name in sorted({p for p in split if p}, key=len, reverse=True):
        parts = [re.escape(p) for p in _SPLIT.split(name) if p]
        if not parts or len(name) < 2:
            continue
        if len(parts) > 1 and parts[-1].endswith("s") and len(parts[-1]) > 3:
            parts[-1] = parts[-1][:-1] + "s?"  # "Pull Requests" also names "pull request"
        alt = r"[-_ .]?".join(parts)
        # one capitalised word ("Pages") is matched with its capital only; names of several words are
        # distinctive in any case ("Git Operations", "git operations")
        (sensitive if name != name.lower() and len(parts) == 1 else insensitive).append(alt)
    alts = [*(f"(?:{a})" for a in sensitive), *(f"(?i:{a})" for a in insensitive)]
    if not alts:
        return None
    return re.compile(r"(?<![A-Za-z0-9_])(?:" + "|".join(alts) + r")(?![A-Za-z0-9_])")


@functools.lru_cache(maxsize=1)
def _vocabulary() -> frozenset[str]:
    """Whole English words of the MiniLM WordPiece vocabulary (empty when the model package is absent)."""
    try:
        from ml.text.embedding import default_model_path

        path = default_model_path() / "vocab.txt"
        words = path.read_text(encoding="utf-8").split()
    except Exception:  # noqa: BLE001 - no vocabulary means rule 5 cannot fire, not an error
        logger.warning("Entities - no MiniLM vocabulary found; words seen only at sentence starts are kept")
        return frozenset()
    whole = [w for w in words if w.isalpha() and w.islower()]
    return frozenset(whole) | frozenset(stem(w) for w in whole)


def _in_vocabulary(word: str, vocab: frozenset[str]) -> bool:
    """An English word of the vocabulary, or an inflection of one ("thundering", "restarting")."""
    return word in vocab or stem(word) in vocab


def _words_with_starts(text: str) -> Iterable[tuple[str, bool]]:
    """The words of `text`, each with whether it starts a sentence: it is the first word of the text or
    the first after a ``.``, ``!``, ``?``, ``:``, ``;`` or line break (time stamps and bullets between)."""
    prev_end = 0
    for m in _WORD.finditer(text):
        gap = text[prev_end : m.start()]
        yield m.group(0), prev_end == 0 or any(c in ".!?:;\n" for c in gap)
        prev_end = m.end()


class EntityMasker:
    """Learns the service, team, vendor, product and people names of a corpus (see the module docstring).

    Parameters
    ----------
    min_mentions:
        Uses a word needs before rules 4 and 5 may call it a name.
    min_mentions_word:
        Uses away from a sentence start an English word of the vocabulary needs for rule 4 ("Vault",
        "Stripe" are names, a heading's "Pending" is not), and uses at sentence starts a word outside the
        vocabulary needs for rule 5.
    min_capitalised_share:
        Share of a word's uses away from a sentence start that must be capitalised (rule 4).
    use_vocabulary:
        Rule 5: a word only seen at sentence starts is a name unless it is an English word of the MiniLM
        vocabulary.

    Fitted attributes: ``names_`` (the given names), ``slugs_`` (learned service identifiers, rule 6),
    ``words_`` (learned lower-case name words).
    """

    def __init__(
        self,
        min_mentions: int = 2,
        min_mentions_word: int = 5,
        min_capitalised_share: float = 0.8,
        use_vocabulary: bool = True,
    ) -> None:
        self.min_mentions = min_mentions
        self.min_mentions_word = min_mentions_word
        self.min_capitalised_share = min_capitalised_share
        self.use_vocabulary = use_vocabulary

    def get_params(self) -> dict[str, Any]:
        return {
            "min_mentions": self.min_mentions,
            "min_mentions_word": self.min_mentions_word,
            "min_capitalised_share": self.min_capitalised_share,
            "use_vocabulary": self.use_vocabulary,
        }

    def _validate(self) -> None:
        for name in ("min_mentions", "min_mentions_word"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise InputError(f"{name} must be a positive integer, got {v!r}", field=name, value=v)
        s = self.min_capitalised_share
        if isinstance(s, bool) or not isinstance(s, int | float) or not 0.0 < s <= 1.0:
            raise InputError(
                f"min_capitalised_share must be a number in (0, 1], got {s!r}",
                field="min_capitalised_share",
                value=s,
            )

    def fit(self, texts: Sequence[str], names: Iterable[str | None] = ()) -> EntityMasker:
        """Learn name words from `texts` (original case, redacted) plus the given `names` (services, teams)."""
        self._validate()
        if isinstance(texts, str):
            raise InputError("texts must be a list of strings, got a single string", field="texts")
        docs = list(texts)
        for i, t in enumerate(docs):
            if not isinstance(t, str):
                raise InputError(
                    f"texts[{i}] must be a string, got {type(t).__name__}", field=f"texts[{i}]", value=t
                )
        if isinstance(names, str):
            raise InputError("names must be a list of names, got a single string", field="names", value=names)
        given = sorted({p.strip() for n in names if n is not None for p in str(n).split(",") if p.strip()})

        mid: Counter[str] = Counter()  # uses away from a sentence start
        mid_cap: Counter[str] = Counter()  # ... capitalised (Title case, not all capitals)
        start: Counter[str] = Counter()
        start_cap: Counter[str] = Counter()
        shaped: set[str] = set()  # CamelCase or capitalised with a digit
        for doc in docs:
            for w, at_start in _words_with_starts(doc):
                low = w.lower()
                acronym = w.isupper() or (w[-1] == "s" and w[:-1].isupper())  # TLS, IPs, SDKs
                title = w[0].isupper() and not acronym
                if title and (_CAMEL.search(w) or any(c.isdigit() for c in w)):
                    shaped.add(low)
                if at_start:
                    start[low] += 1
                    start_cap[low] += title
                else:
                    mid[low] += 1
                    mid_cap[low] += title
        vocab = _vocabulary() if self.use_vocabulary else frozenset()
        words = set(shaped)
        for w, n in mid.items():
            # an English word ("Pending", "Rollback complete") needs more evidence than a coined one
            need = (
                self.min_mentions
                if not _in_vocabulary(w, vocab)
                else max(self.min_mentions, self.min_mentions_word)
            )
            if n >= need and mid_cap[w] >= self.min_capitalised_share * n:
                words.add(w)
        for w, n in start.items():
            if (
                self.use_vocabulary
                and vocab
                and mid[w] == 0
                and n >= max(self.min_mentions, self.min_mentions_word)
                and start_cap[w] == n
                and not _in_vocabulary(w, vocab)
            ):
                words.add(w)
        suffixes = set(SERVICE_SUFFIXES) | {
            parts[-1].lower() for n in given if len(parts := [p for p in _SPLIT.split(n) if p]) > 1
        }
        slug_uses: Counter[str] = Counter()
        for doc in docs:
            slug_uses.update(m.group(0) for m in _SLUG.finditer(doc))
        self.slugs_ = sorted(
            w for w, n in slug_uses.items() if n >= self.min_mentions and w.rsplit("-", 1)[-1] in suffixes
        )
        self.names_ = given
        self.words_ = sorted(words)
        self._compile()
        logger.info(
            "Entities - %d given names and %d learned name words from %d texts",
            len(self.names_),
            len(self.words_),
            len(docs),
        )
        return self

    def _compile(self) -> None:
        self._names_re = names_pattern([*self.names_, *getattr(self, "slugs_", [])])
        self._words = frozenset(self.words_)
        name_tokens: set[str] = set()
        for n in self.names_:
            parts = [p for p in _SPLIT.split(n) if p]
            if len(parts) == 1 and n == n.lower():
                name_tokens.add(parts[0])
        self._tokens = self._words | name_tokens

    def _check_fitted(self) -> None:
        if not hasattr(self, "words_"):
            raise NotFittedError("EntityMasker is not fitted; call fit(texts, names) first")

    def mask(self, text: str, placeholder: str = ENTITY) -> str:
        """`text` with every given name and learned name word replaced by `placeholder`."""
        self._check_fitted()
        if not isinstance(text, str):
            raise InputError(f"text must be a string, got {type(text).__name__}", field="text", value=text)
        out = self._names_re.sub(placeholder, text) if self._names_re is not None else text
        if self._words:
            out = _WORD.sub(lambda m: placeholder if m.group(0).lower() in self._words else m.group(0), out)
        return out

    def is_entity(self, token: str) -> bool:
        """Whether a lower-case word is a name (a learned word or a one-word given name)."""
        self._check_fitted()
        return token.lower() in self._tokens

    def term_has_entity(self, term: str) -> bool:
        """Whether a keyword or name ("identikit outage", "payments api") contains a name."""
        self._check_fitted()
        if any(w in self._tokens for w in term.lower().split()):
            return True
        return self._names_re is not None and bool(self._names_re.search(term))

    # -- persistence -----------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        self._check_fitted()
        return {
            "format": FORMAT,
            "params": self.get_params(),
            "names": self.names_,
            "slugs": self.slugs_,
            "words": self.words_,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EntityMasker:
        data = check_format(data, FORMAT, "entity masker")
        out = cls(**data.get("params", {}))
        out._validate()
        out.names_ = sorted(str(n) for n in data.get("names", []))
        out.slugs_ = sorted(str(n) for n in data.get("slugs", []))
        out.words_ = sorted(str(w) for w in data.get("words", []))
        out._compile()
        return out
