"""What the similar-incident index returns: a :class:`Match` with its :class:`MatchReasons`, and the
metadata it keeps per incident (:class:`IndexedIncident`)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, fields
from typing import Any


@dataclass(frozen=True)
class MatchReasons:
    """Why a match was returned: informative terms shared with the query (most telling first) and the fields
    it has in common with the query incident (``service``, ``team``, ``pattern``)."""

    shared_keywords: tuple[str, ...]
    matching_fields: tuple[str, ...]


@dataclass(frozen=True)
class Match:
    """One similar incident. ``score`` ranks the results (its scale depends on the mode and fusion);
    ``dense_score`` is the cosine similarity (``None`` for a text-only query) and ``lexical_score`` the BM25
    score relative to the best lexical match of this query among the candidates (1.0 = best, 0.0 = no shared
    term)."""

    id: str
    title: str
    date: dt.date
    service: str | None
    team: str | None
    score: float
    pattern_id: int
    pattern_name: str
    reasons: MatchReasons
    dense_score: float | None
    lexical_score: float

    def to_dict(self) -> dict[str, Any]:
        # built field by field: dataclasses.asdict deep-copies and was most of a query's time
        out = {name: getattr(self, name) for name in _MATCH_FIELDS}
        out["date"] = self.date.isoformat()
        out["reasons"] = {
            "shared_keywords": list(self.reasons.shared_keywords),
            "matching_fields": list(self.reasons.matching_fields),
        }
        return out


_MATCH_FIELDS = tuple(f.name for f in fields(Match))


@dataclass(frozen=True)
class IndexedIncident:
    """The metadata the index keeps for one incident."""

    id: str
    title: str
    started_at: dt.datetime
    service: str | None
    team: str | None
    pattern_id: int
    pattern_name: str

    @property
    def date(self) -> dt.date:
        return self.started_at.date()
