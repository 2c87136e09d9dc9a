"""Experiment hygiene: overlaps in time and slice on the same indicator, and experiment load per team."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from ml.experiments.hygiene import (
    ORG_WIDE,
    ExperimentSpan,
    experiment_load,
    find_overlaps,
    overlap_pairs,
    overlaps_with,
)
from ml.io.readers import read_experiments
from ml.io.schemas import Experiment

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample"
D = dt.date


def exp(eid: str, treated: str, start: dt.date, end: dt.date | None = None, **kw: Any) -> Experiment:
    return Experiment.model_validate(
        {
            "id": eid,
            "name": eid,
            "hypothesis": {"problem": "p", "solution": "s", "metric": "m"},
            "indicator": kw.pop("indicator", "incidents"),
            "treated": treated,
            "start": start,
            "end": end,
            **kw,
        }
    )


A = exp("A", "payments", D(2026, 1, 5), D(2026, 3, 2), controls=["data"])


@pytest.mark.parametrize(
    ("other", "kind"),
    [
        (exp("B", "payments", D(2026, 2, 2)), "same slice"),  # open, starts inside A
        (exp("B", "data", D(2025, 12, 1), D(2026, 1, 12)), "treated is a control"),  # A's control treated
        (
            exp("B", "storage", D(2026, 2, 2), controls=["payments"]),
            "control is treated",
        ),  # A's slice is B's control
        (exp("B", ORG_WIDE, D(2026, 2, 23)), "org-wide"),
    ],
)
def test_overlaps_are_flagged(other: Experiment, kind: str) -> None:
    found = overlaps_with(A, [other])
    assert [(o.other_id, o.kind) for o in found] == [("B", kind)]
    assert "confounded" in found[0].reason or "biased" in found[0].reason
    back = overlaps_with(other, [A])  # symmetric: B sees A too
    assert [o.other_id for o in back] == ["A"]


@pytest.mark.parametrize(
    "other",
    [
        exp("B", "payments", D(2026, 3, 2)),  # starts the day A ends (end is excluded): disjoint in time
        exp("B", "payments", D(2025, 6, 2), D(2026, 1, 5)),  # ends the day A starts
        exp("B", "payments", D(2026, 2, 2), indicator="mttr_hours"),  # another indicator
        exp(
            "B", "storage", D(2026, 2, 2), controls=["identity"]
        ),  # disjoint slices (a shared control is fine)
        exp("B", "payments", D(2026, 2, 2), dimension="service"),  # a service is not compared with a team
    ],
)
def test_non_overlaps_are_not_flagged(other: Experiment) -> None:
    assert overlaps_with(A, [other]) == []


def test_a_team_and_a_service_meet_where_the_team_runs_it() -> None:
    """Which teams run which service comes from the indicators (split by both): a service experiment inside a
    treated team is a nested slice, one inside a control team (or a team holding a control service) biases the
    other's counterfactual; a service run by another team, or no ownership known, meets nothing."""
    owners = {"checkout": {"payments"}, "etl": {"data"}}
    svc = exp("S", "checkout", D(2026, 2, 2), D(2026, 4, 6), dimension="service")
    nested = overlaps_with(A, [svc], owners)
    assert [(o.other_id, o.kind) for o in nested] == [("S", "nested slice")]
    assert "treats service=checkout, inside team=payments: the effects are confounded" in nested[0].reason
    back = overlaps_with(svc, [A], owners)
    assert [o.kind for o in back] == ["nested slice"] and "which holds service=checkout" in back[0].reason
    # A's control team runs etl: an etl experiment moves A's counterfactual; seen from it, its slice is a control
    etl = exp("E", "etl", D(2026, 2, 2), dimension="service")
    assert [o.kind for o in overlaps_with(A, [etl], owners)] == ["treated is a control"]
    seen = overlaps_with(etl, [A], owners)
    assert [o.kind for o in seen] == ["control is treated"] and "which holds service=etl" in seen[0].reason
    # a service experiment with a control service that payments runs
    ctl = exp("C", "search", D(2026, 2, 2), dimension="service", controls=["checkout"])
    assert [o.kind for o in overlaps_with(A, [ctl], owners)] == ["control is treated"]
    assert overlaps_with(A, [exp("O", "etl", D(2026, 2, 2), dimension="service")], {"etl": {"x"}}) == []
    assert overlaps_with(A, [svc]) == [] and find_overlaps([A, svc], owners)["S"][0].other_id == "A"


def test_window_of_two_open_experiments_is_open() -> None:
    found = overlaps_with(exp("X", "growth", D(2026, 1, 5)), [exp("Y", "growth", D(2026, 4, 6))])
    assert found[0].start == D(2026, 4, 6) and found[0].end is None and "still running" in found[0].reason


def test_pairs_are_listed_once_and_the_sample_has_none() -> None:
    exps = [A, exp("B", "payments", D(2026, 2, 2)), exp("C", "identity", D(2026, 2, 2))]
    pairs = overlap_pairs(exps)
    assert [(a, o.other_id) for a, o in pairs] == [("A", "B")]
    sample = read_experiments(SAMPLE / "experiments.yaml").records
    assert len(sample) == 12 and find_overlaps(sample) == {}


def test_span_from_a_recorded_row() -> None:
    row = {
        "id": "EXP-1",
        "indicator": "reopens",
        "treated": "reopens/team=payments",
        "start": "2026-01-05",
        "end": "open",
        "controls": "data,storage",
    }
    span = ExperimentSpan.from_record(row)
    assert span == ExperimentSpan(
        "EXP-1", "reopens", "team", "payments", D(2026, 1, 5), None, ("data", "storage")
    )
    assert ExperimentSpan.from_record({"id": "EXP-2", "indicator": "reopens", "treated": "x"}) is None


def test_experiment_load_per_team() -> None:
    exps = [
        exp("A", "payments", D(2026, 1, 5), D(2026, 3, 2)),
        exp("B", "payments", D(2026, 2, 2), indicator="mttr_hours"),  # another indicator, same team: counts
        exp("C", "payments", D(2026, 2, 16), D(2026, 2, 23), indicator="reopens"),
        exp("D", "storage", D(2026, 1, 5), D(2026, 1, 19), controls=["payments"]),  # a control is not load
        exp("E", ORG_WIDE, D(2026, 5, 4), D(2026, 5, 11)),  # org-wide: every known team
    ]
    load = {r.slice: r for r in experiment_load(exps, as_of=D(2026, 6, 3))}
    pay = load["team=payments"]
    assert (pay.current, pay.max, pay.max_week) == (1, 3, D(2026, 2, 16)) and pay.running == ["B"]
    assert (load["team=storage"].current, load["team=storage"].max) == (0, 1)
    assert load["team=payments"].max == 3 and "team=data" not in load
    assert experiment_load([], as_of=D(2026, 1, 1)) == []
    # with who runs which service: an experiment on checkout counts for payments too (and for its own slice)
    svc = exp("S", "checkout", D(2026, 2, 2), D(2026, 7, 6), dimension="service")
    load = {
        r.slice: r
        for r in experiment_load([*exps, svc], as_of=D(2026, 6, 3), owners={"checkout": {"payments"}})
    }
    assert load["team=payments"].running == ["B", "S"] and load["team=payments"].max == 4
    assert load["service=checkout"].running == ["S"]
    assert "team=payments" not in {
        r.slice for r in experiment_load([svc], as_of=D(2026, 6, 3))
    }  # no ownership known: the service alone
