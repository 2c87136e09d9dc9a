"""Learning health from postmortems' action items: completion, time to improvement, repeats, MTTR, maturity.

The maturity level (1-5) per team comes from a small rule table that the report prints in full, so it can be
argued with: each rule is a measure, a threshold and the level it unlocks; a team's level is 1 plus the number of
consecutive rules it meets, in order.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from ml.io.schemas import Incident

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MaturityRule:
    level: int
    measure: str
    op: str  # ">=" or "<="
    threshold: float
    meaning: str

    def met(self, value: float | None) -> bool:
        if value is None or np.isnan(value):
            return False
        return value >= self.threshold if self.op == ">=" else value <= self.threshold


MATURITY_RULES: tuple[MaturityRule, ...] = (
    MaturityRule(
        2, "postmortems_with_action_items", ">=", 0.5, "at least half of postmortems end in action items"
    ),
    MaturityRule(3, "completion_rate", ">=", 0.6, "at least 60% of action items are done"),
    MaturityRule(4, "median_days_to_improvement", "<=", 30.0, "improvements ship within a month (median)"),
    MaturityRule(
        5, "repeat_rate", "<=", 0.15, "at most 15% of incidents repeat a pattern after its fix shipped"
    ),
)


def rules_table() -> list[dict[str, Any]]:
    return [asdict(r) for r in MATURITY_RULES]


def _items_frame(incidents: Sequence[Incident]) -> pd.DataFrame:
    rows = []
    for inc in incidents:
        for ai in inc.action_items:
            rows.append(
                {
                    "incident_id": inc.id,
                    "team": inc.team or "(no team)",
                    "status": ai.status,
                    "incident_at": inc.started_at,
                    "closed_at": ai.closed_at,
                }
            )
    return pd.DataFrame(rows, columns=["incident_id", "team", "status", "incident_at", "closed_at"])


def _measures(incs: Sequence[Incident], items: pd.DataFrame, repeat_rate: float | None) -> dict[str, Any]:
    n = len(incs)
    with_items = sum(1 for i in incs if i.action_items) / n if n else None
    actionable = items[items["status"] != "wontfix"]
    completion = float((actionable["status"] == "done").mean()) if len(actionable) else None
    done = items[(items["status"] == "done") & items["closed_at"].notna()]
    days = (
        [
            (c - s).total_seconds() / 86400.0
            for s, c in zip(done["incident_at"], done["closed_at"], strict=True)
        ]
        if len(done)
        else []
    )
    ttr = [i.ttr_hours for i in incs if i.ttr_hours is not None]
    return {
        "incidents": n,
        "action_items": int(len(items)),
        "postmortems_with_action_items": with_items,
        "completion_rate": completion,
        "median_days_to_improvement": float(np.median(days)) if days else None,
        "mttr_hours": float(np.median(ttr)) if ttr else None,
        "repeat_rate": repeat_rate,
    }


def maturity_level(measures: Mapping[str, Any]) -> int:
    level = 1
    for rule in MATURITY_RULES:
        if not rule.met(measures.get(rule.measure)):
            break
        level = rule.level
    return level


def repeat_incidents(incidents: Sequence[Incident], assignments: Mapping[str, int]) -> pd.DataFrame:
    """Per pattern: when its first fix shipped (an action item on one of its incidents closed as done) and how
    many of its incidents came after that."""
    rows = []
    by_pattern: dict[int, list[Incident]] = {}
    for inc in incidents:
        pid = assignments.get(inc.id, -1)
        if pid >= 0:
            by_pattern.setdefault(pid, []).append(inc)
    for pid, incs in sorted(by_pattern.items()):
        closes = [ai.closed_at for i in incs for ai in i.action_items if ai.status == "done" and ai.closed_at]
        fixed_at = min(closes) if closes else None
        after = [i for i in incs if fixed_at is not None and i.started_at > fixed_at]
        rows.append(
            {
                "pattern_id": pid,
                "incidents": len(incs),
                "first_fix_shipped": fixed_at.date().isoformat() if fixed_at else None,
                "repeats_after_fix": len(after),
                "repeat_rate": len(after) / len(incs) if fixed_at else None,
            }
        )
    return pd.DataFrame(
        rows, columns=["pattern_id", "incidents", "first_fix_shipped", "repeats_after_fix", "repeat_rate"]
    )


def _team_repeat_rate(
    incs: Sequence[Incident], fixes: Mapping[int, dt.datetime], assignments: Mapping[str, int]
) -> float | None:
    eligible = [i for i in incs if assignments.get(i.id, -1) in fixes]
    if not eligible:
        return None
    repeats = sum(1 for i in eligible if i.started_at > fixes[assignments[i.id]])
    return repeats / len(eligible)


def mttr_trend(incidents: Sequence[Incident]) -> pd.DataFrame:
    """Monthly median time to resolve (hours) and incident count."""
    rows = [
        {"month": i.started_at.strftime("%Y-%m"), "ttr_hours": i.ttr_hours}
        for i in incidents
        if i.ttr_hours is not None
    ]
    if not rows:
        return pd.DataFrame(columns=["month", "median_ttr_hours", "incidents"])
    frame = pd.DataFrame(rows)
    out = frame.groupby("month")["ttr_hours"].agg(["median", "size"]).reset_index()
    return out.rename(columns={"median": "median_ttr_hours", "size": "incidents"})


def learning_health(
    incidents: Sequence[Incident], assignments: Mapping[str, int] | None = None
) -> dict[str, Any]:
    """All learning-health measures: overall, per team (with maturity level), per pattern, and the MTTR trend."""
    assignments = assignments or {}
    items = _items_frame(incidents)
    repeats = repeat_incidents(incidents, assignments)
    fixes = {
        int(r.pattern_id): dt.datetime.fromisoformat(r.first_fix_shipped).replace(tzinfo=dt.UTC)
        for r in repeats.itertuples()
        if r.first_fix_shipped
    }
    overall = _measures(incidents, items, _team_repeat_rate(incidents, fixes, assignments))
    teams = []
    for team in sorted({i.team or "(no team)" for i in incidents}):
        incs = [i for i in incidents if (i.team or "(no team)") == team]
        m = _measures(incs, items[items["team"] == team], _team_repeat_rate(incs, fixes, assignments))
        m["team"] = team
        m["maturity"] = maturity_level(m)
        teams.append(m)
    trend = mttr_trend(incidents)
    slope = None
    if len(trend) >= 3:
        slope = float(np.polyfit(np.arange(len(trend)), trend["median_ttr_hours"].to_numpy(float), 1)[0])
    return {
        "overall": overall,
        "teams": teams,
        "patterns": repeats.to_dict(orient="records"),
        "mttr_trend": trend.to_dict(orient="records"),
        "mttr_slope_hours_per_month": slope,
        "rules": rules_table(),
    }
