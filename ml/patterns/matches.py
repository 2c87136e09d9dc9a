"""What the similar-incident index returns: a :class:`Match` with its :class:`MatchReasons`, and the
metadata it keeps per incident (:class:`IndexedIncident`)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ml.patterns.fusion import Ranking
    from ml.patterns.similarity import SimilarityIndex


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


def matches_for(
    index: SimilarityIndex,
    ranking: Ranking,
    keywords: list[tuple[str, ...]],
    context: tuple[str | None, str | None, int | None],
    *,
    with_vector: bool,
    explain: bool,
) -> list[Match]:
    """The :class:`Match` objects of a ranking; ``context`` is the query's (service, team, pattern id)."""
    query_service, query_team, query_pattern_id = context
    rows = ranking.top.tolist()
    out: list[Match] = []
    for r, i in enumerate(rows):
        pid = int(index.pattern_ids_[i])
        matching: list[str] = []
        if explain:
            if query_service is not None and index.services_[i] == query_service:
                matching.append("service")
            if query_team is not None and index.teams_[i] == query_team:
                matching.append("team")
            if query_pattern_id is not None and pid == query_pattern_id:
                matching.append("pattern")
        out.append(
            Match(
                id=index.ids_[i],
                title=index.titles_[i],
                date=index.dates_[i],
                service=index.services_[i],
                team=index.teams_[i],
                score=float(ranking.scores[r]),
                pattern_id=pid,
                pattern_name=index._pattern_name(pid),
                reasons=MatchReasons(shared_keywords=keywords[r], matching_fields=tuple(matching)),
                dense_score=float(ranking.cosine[r]) if with_vector else None,
                lexical_score=float(ranking.lexical[r]),
            )
        )
    return out
