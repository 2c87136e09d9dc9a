"""Text preparation for pattern mining and search: redaction, HTML stripping, documents, tokens.

Redaction lives in :mod:`ml.text.redaction` (re-exported here as :func:`redact`): incidents are redacted once,
when a job reads them. The builder redacts again (it is idempotent and cheap), but no path depends on it; the
tokenizer drops the placeholders so they never become keywords.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterable, Sequence

from ml.errors import InputError
from ml.io.schemas import Incident
from ml.text.redaction import PLACEHOLDERS, redact, redact_incident
from ml.text.stop_words import ENGLISH_STOP_WORDS

__all__ = [
    "PLACEHOLDERS",
    "STOP_WORDS",
    "DocumentBuilder",
    "make_analyzer",
    "redact",
    "redact_incident",
    "strip_html",
    "tokenize",
]

# --- HTML ------------------------------------------------------------------------------------------------
# Script and style blocks are dropped by _drop_blocks: an open tag, then a search for its close tag that
# starts where the open tag ends (a regex ".*?</script>" would rescan the rest of the text from every unclosed
# "<script>": quadratic).
_HTML_BLOCK_OPEN = re.compile(r"(?i)<(script|style)\b[^<>]{0,1024}>")
_HTML_BLOCK_CLOSE = {
    "script": re.compile(r"(?i)</script\s{0,16}>"),
    "style": re.compile(r"(?i)</style\s{0,16}>"),
}
_HTML_BREAK = re.compile(
    r"(?i)</?(?:p|div|li|ul|ol|br|hr|tr|td|th|h[1-6]|table|blockquote|pre|section|article)\b[^<>]*>"
)
_HTML_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9-]*(?:\s[^<>]*)?/?>")
_SPACES = re.compile(r"[ \t\r\f\v]+")
_BLANK_LINES = re.compile(r"\s*\n\s*")


def _drop_blocks(text: str) -> str:
    """Replace each closed ``<script>``/``<style>`` block with a space, in one pass (linear time)."""
    parts: list[str] = []
    pos = search = 0
    unclosed: set[str] = set()  # a kind with no close tag after some point has none after any later point
    while (m := _HTML_BLOCK_OPEN.search(text, search)) is not None:
        kind = m.group(1).lower()
        close = None if kind in unclosed else _HTML_BLOCK_CLOSE[kind].search(text, m.end())
        if close is None:
            unclosed.add(kind)
            search = m.end()
            continue
        parts += [text[pos : m.start()], " "]
        pos = search = close.end()
    parts.append(text[pos:])
    return "".join(parts)


def strip_html(text: str) -> str:
    """Remove HTML tags (block tags become line breaks), unescape entities and squeeze whitespace.

    Only real tags are removed (``<p>``, ``</li>``, ``<a href=...>``), so ``a < b`` or ``<@U123>`` stay.
    """
    if not isinstance(text, str):
        raise InputError(f"text must be a string, got {type(text).__name__}", field="text", value=text)
    out = _drop_blocks(text)
    out = _HTML_BREAK.sub("\n", out)
    out = _HTML_TAG.sub("", out)
    out = html.unescape(out)
    out = _SPACES.sub(" ", out)
    out = _BLANK_LINES.sub("\n", out)
    return out.strip()


# --- documents -----------------------------------------------------------------------------------------
_TEXT_FIELDS = ("title", "summary", "impact", "timeline", "root_cause", "contributing_factors", "tags")


SERVICE = "[SERVICE]"
REGION = "[REGION]"
_REGION = re.compile(
    r"(?i)(?<![A-Za-z0-9])(?:us|eu|ap|sa|ca|me|af|il|mx)-(?:gov-)?"
    r"(?:east|west|north|south|central|northeast|southeast|northwest|southwest)-[0-9](?![A-Za-z0-9])"
)


def _entity_regex(names: Iterable[str]) -> re.Pattern[str] | None:
    """One regex for service names in any of their spellings (payments-api, payments api, payments_api),
    with host-like suffixes (payments-api-7, payments-api.internal)."""
    alts = []
    for name in sorted({n.strip() for n in names if n and len(n.strip()) >= 3}, key=len, reverse=True):
        parts = [re.escape(p) for p in re.split(r"[-_\s.]+", name) if p]
        if parts:
            alts.append(r"[-_ .]?".join(parts))
    if not alts:
        return None
    return re.compile(
        r"(?i)(?<![A-Za-z0-9_-])(?:"
        + "|".join(alts)
        + r")(?:-[0-9]+|\.[a-z0-9-]+(?:\.[a-z0-9-]+)*)?(?![A-Za-z0-9_])"
    )


class DocumentBuilder:
    """Builds the (redacted) text that represents an incident for embedding and keywords.

    Parameters
    ----------
    fields:
        Incident fields to join, in order. List fields (contributing factors, tags) are joined with "; ".
    strip_html:
        Remove HTML markup from the fields first.
    mask_entities:
        Replace service names with ``[SERVICE]`` and cloud regions (us-east-1) with ``[REGION]``. A failure
        pattern is *how* things failed, across services; without masking, texts about the same service look
        alike whatever went wrong. The names are the incident's own ``service`` plus, after :meth:`fit`,
        every service of the corpus (team names are not masked: they are usually ordinary words such as
        "data" or "platform"). Off by default (similar-incident search wants the service);
        :class:`ml.patterns.PatternModel` turns it on.
    """

    def __init__(
        self,
        fields: Sequence[str] = ("title", "summary", "root_cause", "contributing_factors"),
        strip_html: bool = True,
        mask_entities: bool = False,
    ) -> None:
        self.fields = fields
        self.strip_html = strip_html
        self.mask_entities = mask_entities

    def fit(self, incidents: Iterable[Incident], y: None = None) -> DocumentBuilder:
        """Learn the service names to mask (``entities_``) from the incidents' ``service`` field."""
        names: set[str] = set()
        for inc in incidents:
            if not isinstance(inc, Incident):
                raise InputError(
                    f"incidents must be ml.schemas.Incident records, got {type(inc).__name__}",
                    field="incidents",
                )
            if inc.service:
                names.add(inc.service)
        return self.set_entities(names)

    def set_entities(self, names: Iterable[str]) -> DocumentBuilder:
        """Set the learned service names directly (e.g. when loading a saved model)."""
        self.entities_ = sorted({str(n) for n in names if n})
        self._entity_re = _entity_regex(self.entities_)
        return self

    def build_text(self, text: str) -> str:
        """Prepare a free text (e.g. a query) the way :meth:`build` prepares incident fields."""
        if not isinstance(text, str):
            raise InputError(f"text must be a string, got {type(text).__name__}", field="text", value=text)
        out = strip_html(text) if self.strip_html else text
        out = " ".join(out.split())
        if self.mask_entities:
            out = self._mask(out, None)
        return redact(out)

    def _mask(self, text: str, incident: Incident | None) -> str:
        own = [incident.service] if incident is not None and incident.service else []
        learned = getattr(self, "entities_", [])
        if own and not set(own) <= set(learned):
            pattern = _entity_regex([*learned, *own])
        else:
            pattern = getattr(self, "_entity_re", None)
        if pattern is not None:
            text = pattern.sub(SERVICE, text)
        return _REGION.sub(REGION, text)

    def _check_fields(self) -> tuple[str, ...]:
        if isinstance(self.fields, str) or not self.fields:
            raise InputError(
                f"fields must be a non-empty list of incident fields, got {self.fields!r}",
                field="fields",
                value=self.fields,
            )
        for f in self.fields:
            if f not in _TEXT_FIELDS:
                raise InputError(
                    f"fields: {f!r} is not a text field of Incident (choose from {', '.join(_TEXT_FIELDS)})",
                    field="fields",
                    value=f,
                )
        return tuple(self.fields)

    def build(self, incident: Incident) -> str:
        """The redacted document text of one incident."""
        fields = self._check_fields()
        return self._build(incident, fields)

    def build_many(self, incidents: Iterable[Incident]) -> list[str]:
        """The redacted document texts of several incidents, in order."""
        fields = self._check_fields()
        return [self._build(inc, fields) for inc in incidents]

    def _build(self, incident: Incident, fields: tuple[str, ...]) -> str:
        if not isinstance(incident, Incident):
            raise InputError(
                f"incident must be an ml.schemas.Incident, got {type(incident).__name__}",
                field="incident",
                value=incident,
            )
        parts: list[str] = []
        for f in fields:
            value = getattr(incident, f)
            if value is None:
                continue
            if isinstance(value, list):
                value = "; ".join(str(v) for v in value if str(v).strip())
            value = str(value)
            if self.strip_html:
                value = strip_html(value)
            value = " ".join(value.split())
            if not value:
                continue
            if value[-1] not in ".!?;:":
                value += "."
            parts.append(value)
        doc = " ".join(parts)
        if self.mask_entities:
            doc = self._mask(doc, incident)
        return redact(doc)


# --- tokens --------------------------------------------------------------------------------------------
# scikit-learn's English list minus words that name failures in incident text ("disk full", "third party",
# "roll back", "system down"), plus web residue, time-zone abbreviations and status-page workflow words
# that every incident carries ("investigating", "resolved").
_KEEP_WORDS = frozenset(
    {
        "back",
        "bill",
        "bottom",
        "call",
        "down",
        "empty",
        "fill",
        "fire",
        "full",
        "move",
        "name",
        "system",
        "third",
        "top",
    }
)
STOP_WORDS: frozenset[str] = (frozenset(ENGLISH_STOP_WORDS) - _KEEP_WORDS) | frozenset(
    {"nbsp", "amp", "quot", "http", "https", "www", "com", "html", "etc", "ie", "eg", "via"}
    | {"utc", "gmt", "pst", "pdt", "est", "edt", "cet", "cest", "pm"}
    | {"incident", "incidents", "investigating", "resolved", "identified", "update", "updates"}
)
_PLACEHOLDER_RE = re.compile(r"\[(?:EMAIL|IP|PHONE|SECRET|HANDLE|SERVICE|REGION)\]")
_TOKEN = re.compile(r"[a-z0-9]+(?:['’][a-z]+)?")


def tokenize(text: str, stop_words: frozenset[str] | None = STOP_WORDS) -> list[str]:
    """Lower-case word tokens for TF-IDF/BM25: placeholders, stop words, numbers and 1-letter tokens out."""
    if not isinstance(text, str):
        raise InputError(f"text must be a string, got {type(text).__name__}", field="text", value=text)
    text = _PLACEHOLDER_RE.sub(" ", text).lower()
    out: list[str] = []
    for tok in _TOKEN.findall(text):
        tok = tok.replace("’", "'")
        if tok.endswith("'s"):
            tok = tok[:-2]
        elif "'" in tok:
            continue  # contractions (don't, we're) carry no topic
        if len(tok) < 2 or tok.isdigit():
            continue
        if stop_words is not None and tok in stop_words:
            continue
        out.append(tok)
    return out


def make_analyzer(
    ngram_range: tuple[int, int] = (1, 1), stop_words: frozenset[str] | None = STOP_WORDS
) -> Callable[[str], list[str]]:
    """An analyzer for ``sklearn`` vectorizers (``analyzer=make_analyzer((1, 2))``): :func:`tokenize` + n-grams.

    N-grams are built from the tokens left after stop words are removed.
    """
    lo, hi = ngram_range
    if not (isinstance(lo, int) and isinstance(hi, int) and 1 <= lo <= hi):
        raise InputError(
            f"ngram_range must be (min, max) with 1 <= min <= max, got {ngram_range!r}",
            field="ngram_range",
            value=ngram_range,
        )

    def analyze(text: str) -> list[str]:
        toks = tokenize(text, stop_words)
        if lo == hi == 1:
            return toks
        grams: list[str] = []
        for n in range(lo, hi + 1):
            grams.extend(" ".join(toks[i : i + n]) for i in range(len(toks) - n + 1))
        return grams

    return analyze
