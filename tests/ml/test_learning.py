from __future__ import annotations

import datetime as dt

from ml.io.schemas import ActionItem, Incident
from ml.reporting.learning import MATURITY_RULES, learning_health, maturity_level, repeat_incidents

T0 = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)


def inc(i: int, team: str, day: int, items: list[ActionItem] | None = None, hours: float = 2.0) -> Incident:
    start = T0 + dt.timedelta(days=day)
    return Incident(
        id=f"I{i}",
        title="t",
        summary="s",
        team=team,
        started_at=start,
        resolved_at=start + dt.timedelta(hours=hours),
        action_items=items or [],
    )


def ai(n: int, status: str, closed_day: int | None) -> ActionItem:
    return ActionItem(
        id=f"A{n}",
        title="fix",
        status=status,
        created_at=T0,
        closed_at=None if closed_day is None else T0 + dt.timedelta(days=closed_day),
    )


def test_measures_and_repeats() -> None:
    incidents = [
        inc(1, "a", 0, [ai(1, "done", 10)]),
        inc(2, "a", 5, [ai(2, "open", None)]),
        inc(3, "a", 20),  # pattern 0 after its fix on day 10: a repeat
        inc(4, "b", 1, [ai(3, "wontfix", None)]),
        inc(5, "b", 2),
    ]
    assign = {"I1": 0, "I2": 0, "I3": 0, "I4": 1, "I5": -1}
    out = learning_health(incidents, assign)
    a = next(t for t in out["teams"] if t["team"] == "a")
    assert a["completion_rate"] == 0.5
    assert a["median_days_to_improvement"] == 10.0
    assert a["repeat_rate"] == 1 / 3
    b = next(t for t in out["teams"] if t["team"] == "b")
    assert b["completion_rate"] is None and b["maturity"] == 2  # half its postmortems have items
    rep = repeat_incidents(incidents, assign).set_index("pattern_id")
    assert rep.loc[0, "repeats_after_fix"] == 1 and rep.loc[1, "first_fix_shipped"] is None
    assert out["rules"][0]["level"] == 2


def test_maturity_levels_are_consecutive() -> None:
    good = {
        "postmortems_with_action_items": 1.0,
        "completion_rate": 0.9,
        "median_days_to_improvement": 5,
        "repeat_rate": 0.0,
    }
    assert maturity_level(good) == 5
    assert maturity_level({**good, "completion_rate": 0.1}) == 2  # later rules do not count past a failed one
    assert maturity_level({}) == 1
    assert [r.level for r in MATURITY_RULES] == [2, 3, 4, 5]


def test_empty_input() -> None:
    out = learning_health([], {})
    assert out["teams"] == [] and out["overall"]["incidents"] == 0 and out["mttr_trend"] == []
