"""Signal events: the fields of one event and their ranking (shared by the detector and the monitor)."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

logger = logging.getLogger(__name__)

EVENT_FIELDS: tuple[str, ...] = (
    "rank",
    "series",
    "date",
    "kind",
    "direction",
    "magnitude",
    "magnitude_sigma",
    "confidence",
    "outside_interval",
    "detail",
)


def is_trend_change(event: Mapping[str, Any]) -> bool:
    """A ``shift`` the detector reports for a change in slope (a kink), not in level: it has no single date or step."""
    return "trend change" in str(event.get("detail") or "")


def rank_events(events: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Sort by confidence, then shifts before outliers, then absolute size; number them from 1."""

    def key(e: Mapping[str, Any]) -> tuple[float, int, float]:
        ms = e.get("magnitude_sigma")
        size = abs(ms) if isinstance(ms, int | float) and math.isfinite(ms) else 0.0
        return (-float(e.get("confidence") or 0.0), 0 if e.get("kind") == "shift" else 1, -size)

    ranked = sorted(events, key=key)
    out = []
    for r, e in enumerate(ranked, start=1):
        row = {f: e.get(f) for f in EVENT_FIELDS}
        row["rank"] = r
        out.append(row)
    return out
