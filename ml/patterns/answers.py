"""What a responder can act on in a similar-incident answer: each match's root cause (shortened at a sentence
boundary), its action items with their status, and a top-level suggestion of the fix that held last time.

The texts come from incidents that were redacted at ingestion; nothing here reads raw text from elsewhere.
The suggestion abstains (``None``) unless the evidence supports it: the query's pattern is known (assigned
above the model's confidence threshold, or an indexed incident's own pattern) and at least ``min_support`` of
the matches share it.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any

from ml.io.schemas import Incident

log = logging.getLogger(__name__)

ROOT_CAUSE_CHARS = 300
MIN_SUPPORT = 2
# The end of a sentence: ., ! or ? (optionally closed by a quote or bracket) then white space. Linear-time.
_SENTENCE_END = re.compile(r"[.!?][\"')\]]{0,2}\s")


def shorten(text: str | None, limit: int = ROOT_CAUSE_CHARS) -> str | None:
    """``text`` cut to at most about ``limit`` characters: whole sentences when the first one fits, else whole
    words followed by an ellipsis. ``None`` or blank stays ``None``."""
    if text is None or not text.strip():
        return None
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    ends = [m.end() for m in _SENTENCE_END.finditer(text, 0, limit + 1)]
    if ends:
        return text[: ends[-1]].rstrip()
    cut = text.rfind(" ", 0, limit)
    return text[: cut if cut > 0 else limit].rstrip(" ,;:") + "…"


def day(when: str | None) -> str | None:
    """The date part (``YYYY-MM-DD``) of an ISO date or time stamp."""
    return str(when)[:10] if when else None


def action_items_view(incident: Incident | None) -> list[dict[str, Any]]:
    """The action items of an incident as an answer shows them: title, status (open, done, wontfix), when
    closed."""
    if incident is None:
        return []
    return [
        {
            "title": a.title,
            "status": a.status,
            "closed_at": a.closed_at.date().isoformat() if a.closed_at else None,
        }
        for a in incident.action_items
    ]


def _fix_time(incident: Incident, item: Any) -> dt.datetime:
    return item.closed_at or incident.resolved_at or incident.started_at


def held_fix(
    candidates: Sequence[Incident], members: Sequence[Incident]
) -> tuple[Incident, Any, bool] | None:
    """The fix that held: the first done action item, in the order of ``candidates`` (most similar first),
    after which no incident of the pattern (``members``) started; else the most recently closed done one.
    Returns (incident, action item, held) or ``None`` when no candidate has a done action item."""
    last_start = max((m.started_at for m in members), default=None)
    latest: tuple[Incident, Any] | None = None
    for inc in candidates:
        for item in inc.action_items:
            if item.status != "done":
                continue
            when = _fix_time(inc, item)
            if last_start is None or last_start <= when:
                return inc, item, True
            if latest is None or _fix_time(*latest) < when:
                latest = (inc, item)
    return (latest[0], latest[1], False) if latest else None


def suggest(
    query_pattern: Mapping[str, Any] | None,
    matches: Sequence[Mapping[str, Any]],
    pattern: Mapping[str, Any] | None,
    members: Sequence[Incident],
    by_id: Mapping[str, Incident],
    *,
    min_support: int = MIN_SUPPORT,
) -> dict[str, Any] | None:
    """The top-level suggestion of an answer, or ``None`` (abstain) when the evidence is weak.

    ``query_pattern`` is the query's pattern (id -1: unclustered, i.e. below the model's threshold);
    ``matches`` the answer's matches (dicts with ``id`` and ``pattern_id``); ``pattern`` the pattern's view
    (name, size, last_seen); ``members`` the indexed incidents of the pattern; ``by_id`` every indexed incident.
    """
    if not query_pattern or pattern is None:
        return None
    pid = int(query_pattern.get("pattern_id", -1))
    if pid < 0:
        return None
    same = [m for m in matches if int(m.get("pattern_id", -1)) == pid]
    if len(same) < min_support:
        return None
    name, size, last = str(pattern["name"]), int(pattern["size"]), day(pattern.get("last_seen"))
    similar_first = [by_id[m["id"]] for m in same if m["id"] in by_id]
    seen = {i.id for i in similar_first}
    rest = sorted((m for m in members if m.id not in seen), key=lambda i: i.started_at)
    fix = held_fix([*similar_first, *reversed(rest)], members)
    text = f"looks like pattern {name} (seen {size} times, last on {last or 'an unknown date'})"
    fix_out: dict[str, Any] | None = None
    if fix is not None:
        inc, item, held = fix
        fix_out = {"incident_id": inc.id, "action_item": item.title, "held": held}
        label = (
            "the fix that held last time" if held else "the most recent fix (the pattern recurred after it)"
        )
        text += f"; {label}: {item.title} ({inc.id})"
    else:
        text += "; no done action item is recorded for it"
    return {
        "pattern_id": pid,
        "pattern_name": name,
        "seen": size,
        "last_seen": last,
        "support": len(same),
        "fix": fix_out,
        "text": text,
    }
