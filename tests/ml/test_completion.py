"""Absent dates of a count indicator are zeros (ml/indicators/completion.py), and the explanation of a sparse
export (only the weeks with an incident) is the explanation of the full one."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ml.causes import explain_signals
from ml.causes.aggregates import build_series
from ml.errors import InputError
from ml.indicators.completion import complete_counts, looks_like_mean

MONDAY = pd.Timestamp("2025-01-06")


def weeks(*idx: int) -> list[pd.Timestamp]:
    return [MONDAY + pd.Timedelta(weeks=i) for i in idx]


def frame(indicator: str, rows: dict[str, dict[int, float]]) -> pd.DataFrame:
    """Long frame of one indicator: team -> {week index: value}."""
    out = [
        {"indicator": indicator, "ds": MONDAY + pd.Timedelta(weeks=w), "team": team, "y": y}
        for team, values in rows.items()
        for w, y in values.items()
    ]
    return pd.DataFrame(out)


def test_a_sparse_count_gets_a_zero_at_every_date_of_its_indicator_span() -> None:
    # team a has rows in weeks 0 and 5 only (gaps of 5 weeks: not a regular grid on its own), b in 1-3
    f = frame("incidents", {"a": {0: 2, 5: 1}, "b": {1: 3, 2: 1, 3: 4}})
    out, notes = complete_counts(f, ["team"])
    a = out[out.team == "a"].set_index("ds").y.sort_index()
    b = out[out.team == "b"].set_index("ds").y.sort_index()
    assert list(a.index) == weeks(0, 1, 2, 3, 4, 5)
    assert a.tolist() == [2, 0, 0, 0, 0, 1]
    # b is completed over the indicator's span (weeks 0-5), not only its own
    assert list(b.index) == weeks(0, 1, 2, 3, 4, 5)
    assert b.tolist() == [0, 3, 1, 4, 0, 0]
    assert notes == [
        "incidents: 7 absent dates of 2 of its 2 series counted as 0 (whole-number counts summed over their "
        "parts: a date without a row had none)"
    ]
    assert len(f) == 5  # the input is not changed


@pytest.mark.parametrize(
    ("indicator", "values"),
    [
        ("mttr_hours", {0: 2, 3: 5}),  # a duration: an absent week is unknown
        ("change_failure_rate", {0: 1, 3: 0}),  # a rate, even when its values are whole
        ("incidents", {0: 2.5, 3: 1}),  # not whole numbers: not a count
        ("incidents", {0: -1, 3: 2}),  # negative: not a count
    ],
)
def test_means_fractions_and_negatives_are_left_with_their_gaps(
    indicator: str, values: dict[int, float]
) -> None:
    f = frame(indicator, {"a": values})
    out, notes = complete_counts(f, ["team"])
    assert out is f
    assert notes == []


def test_daily_counts_and_an_explicit_empty_value() -> None:
    days = pd.to_datetime(["2025-03-01", "2025-03-02", "2025-03-03", "2025-03-06"])
    f = pd.DataFrame({"indicator": "reopens", "ds": days, "team": "a", "y": [1.0, np.nan, 3.0, 2.0]})
    out, _ = complete_counts(f, ["team"])
    got = out.set_index("ds").y.sort_index()
    assert list(got.index) == list(pd.date_range("2025-03-01", "2025-03-06"))
    # absent days are 0; the row that is there without a value stays a gap
    assert got.loc["2025-03-04"] == 0 and got.loc["2025-03-05"] == 0
    assert np.isnan(got.loc["2025-03-02"])


def test_a_sparse_daily_export_is_completed_day_by_day() -> None:
    # a quiet service: incidents on 6 of 14 days, most gaps longer than a day
    days = pd.to_datetime(
        ["2025-03-01", "2025-03-02", "2025-03-05", "2025-03-09", "2025-03-10", "2025-03-14"]
    )
    f = pd.DataFrame({"indicator": "incidents", "ds": days, "service": "api", "y": 1.0})
    out, notes = complete_counts(f, ["service"])
    assert list(out.sort_values("ds").ds) == list(pd.date_range("2025-03-01", "2025-03-14"))
    assert out.y.sum() == 6 and len(notes) == 1


def test_monthly_counts_are_not_taken_for_sparse_daily_ones() -> None:
    f = pd.DataFrame(
        {
            "indicator": "incidents",
            "ds": pd.to_datetime(["2025-01-01", "2025-02-01", "2025-03-01", "2025-04-01"]),
            "team": "a",
            "y": [3.0, 1.0, 4.0, 1.0],
        }
    )
    out, notes = complete_counts(f, ["team"])
    assert out is f and notes == []


def test_dates_on_no_single_grid_are_left_for_validation_to_name() -> None:
    # weekly on Mondays but one Tuesday: neither one weekday nor days that follow each other
    mondays = pd.date_range("2025-01-06", periods=8, freq="7D")
    f = pd.DataFrame(
        {
            "indicator": "incidents",
            "ds": mondays.insert(3, pd.Timestamp("2025-01-21")).delete(4),
            "team": "a",
            "y": 1.0,
        }
    )
    out, notes = complete_counts(f, ["team"])
    assert out is f and notes == []


def test_completion_is_idempotent_and_names_are_read_as_before() -> None:
    f = frame("incidents", {"a": {0: 2, 4: 1}, "b": {0: 1, 1: 1}})
    once, _ = complete_counts(f, ["team"])
    twice, notes = complete_counts(once, ["team"])
    assert twice is once and notes == []
    assert (
        looks_like_mean("MTTR_hours") and looks_like_mean("error_rate") and not looks_like_mean("incidents")
    )


@pytest.mark.parametrize(
    ("name", "mean"),
    [
        ("p95_latency_ms", True),
        ("apiP99", True),  # camelCase words
        ("p95Ms", True),
        ("mttr", True),
        ("lead_time_for_changes", True),
        ("hours_to_resolve", True),
        ("incident_duration_hours", True),
        ("ticket_age_days", True),
        ("apdex_score", True),
        ("availability", True),
        ("pages_sent", False),  # "age" only as a word of its own
        ("alarms", False),  # nor "ms"
        ("sla_breaches", False),
        ("open_bugs", False),
        # counts whose name holds a duration or level word that is not the word the name is about
        ("latency_alerts", False),
        ("availability_incidents", False),
        ("uptime_check_failures", False),
        ("sec_findings", False),
        ("node_cpu_seconds_total", False),
        ("request_timeouts", False),
        ("migrated_services", False),  # "rate" only as a word
    ],
)
def test_a_latency_percentile_or_duration_name_is_a_mean(name: str, mean: bool) -> None:
    assert looks_like_mean(name) is mean


def sparse_history(seed: int = 3) -> pd.DataFrame:
    """Weekly incidents of 5 quiet services (0-2 a week) over 80 weeks, one of them rising by 3 a week from week
    50; the first and last weeks hold an incident, so the span of the rows with one is the whole span."""
    rng = np.random.default_rng(seed)
    rows = []
    for k, service in enumerate(["api", "auth", "db", "queue", "web"]):
        lam = 0.3 + 0.2 * k
        y = rng.poisson(lam, 80).astype(float)
        if service == "db":
            y[50:] += rng.poisson(3.0, 30)
        y[0], y[-1] = max(y[0], 1), max(y[-1], 1)
        rows += [
            {"indicator": "incidents", "ds": d, "service": service, "y": v}
            for d, v in zip(weeks(*range(80)), y, strict=True)
        ]
    return pd.DataFrame(rows)


def test_a_sparse_export_is_explained_as_the_full_one() -> None:
    full = sparse_history()
    export = full[full.y != 0]  # GROUP BY service, week: no row for a week without an incident
    assert len(export) < 0.7 * len(full)
    a, b = build_series(full), build_series(export)
    assert sorted(a) == sorted(b)
    for sid in a:
        pd.testing.assert_series_equal(a[sid].values, b[sid].values, check_names=False, check_freq=False)
    got, want = explain_signals(export), explain_signals(full)
    assert got == want
    rise = [
        s
        for s in want
        if s["series"] == "incidents" and abs(pd.Timestamp(s["date"]) - weeks(50)[0]).days <= 14
    ]
    assert rise and rise[0]["causes"][0]["key"] == "service=db"


def test_weekly_series_on_different_weekdays_are_named_not_taken_for_daily_ones() -> None:
    # 3 services on Mondays, one exported on Sundays: the union of their dates has many one-day gaps
    mondays = pd.date_range("2025-01-06", periods=20, freq="7D")
    rows = [
        {
            "indicator": "incidents",
            "ds": d - pd.Timedelta(days=1 if s == "actions" else 0),
            "service": s,
            "y": 1.0,
        }
        for s in ("actions", "api", "pages", "web")
        for d in mondays
    ]
    f = pd.DataFrame(rows)
    out, notes = complete_counts(f, ["service"])
    assert out is f
    assert notes == [
        "incidents: its series are weekly on different weekdays (3 on Monday, 1 on Sunday): absent weeks are not "
        "counted as 0 and no aggregate over them can be built; put every series on the same weekday"
    ]
    # each part is analysed on its own; no total interleaving Sundays and Mondays is built
    series = build_series(f)
    assert sorted(series) == [f"incidents/service={s}" for s in ("actions", "api", "pages", "web")]


def test_busy_counts_fortnights_and_mixed_grids_are_not_completed() -> None:
    # a busy count (median above 5): an absent week is more likely unmeasured than quiet
    busy = frame("deploys", {"a": {0: 40, 1: 38, 3: 41}, "b": {0: 12, 2: 9, 3: 11}})
    assert complete_counts(busy, ["team"]) == (busy, [])
    # a fortnightly (sprint) grid is not a weekly one with every other week at 0
    sprints = frame("sprint_bugs", {"a": {0: 2, 2: 1, 4: 3, 6: 1}, "b": {0: 1, 2: 2, 6: 4}})
    assert complete_counts(sprints, ["team"]) == (sprints, [])
    # one series daily, one weekly: neither grid fits both
    daily = pd.DataFrame(
        {"indicator": "incidents", "ds": pd.date_range("2025-01-06", periods=30), "team": "a", "y": 1.0}
    )
    weekly = pd.DataFrame(
        {
            "indicator": "incidents",
            "ds": pd.date_range("2025-01-06", periods=5, freq="7D"),
            "team": "b",
            "y": 2.0,
        }
    )
    mixed = pd.concat([daily, weekly], ignore_index=True)
    out, notes = complete_counts(mixed, ["team"])
    assert out is mixed
    assert notes == [
        "incidents: some of its series are daily and some weekly: absent dates are not counted as 0; give every "
        "series of an indicator on one grid"
    ]


def test_dates_pandas_cannot_hold_are_left_for_validation() -> None:
    import datetime as dt

    f = pd.DataFrame(
        {
            "indicator": "incidents",
            "ds": [dt.date(68, 11, 16), dt.date(1576, 11, 3)],
            "team": "a",
            "y": [1.0, 2.0],
        }
    )
    assert complete_counts(f, ["team"]) == (f, [])


def test_a_repeated_index_does_not_mix_indicators_up() -> None:
    a = frame("incidents", {"a": {0: 2, 2: 1}, "b": {1: 1, 2: 3}})
    b = frame("deploys", {"a": dict.fromkeys(range(-30, 3), 1.0), "b": dict.fromkeys(range(-30, 3), 2.0)})
    joined = pd.concat([a, b])  # the caller's index repeats 0, 1, 2 ...
    series = build_series(joined)
    assert len(series["incidents/team=a"].values) == 3  # weeks 0-2, not the deploys' span
    assert series["incidents/team=a"].values.tolist() == [2.0, 0.0, 1.0]


@pytest.mark.parametrize("name", ["aA" * 500_000, "_" * 1_000_000, "time_" * 200_000, "lead_tim" * 125_000])
def test_the_name_rule_is_linear_on_long_names(name: str) -> None:
    import time

    t0 = time.perf_counter()
    looks_like_mean(name)
    assert time.perf_counter() - t0 < 5.0  # a backtracking regex would take minutes on a million characters


def test_slice_totals_let_a_team_experiment_be_planned_on_indicators_split_by_service() -> None:
    from ml.experiments.planning import plan_experiment
    from ml.indicators.completion import slice_totals

    rng = np.random.default_rng(3)
    ds = pd.date_range("2025-01-06", periods=60, freq="W-MON")
    rows = [
        {"series": f"{ind}/team={team}/service={svc}", "ds": d, "y": float(y)}
        for ind, lam in (("incidents", 3.0), ("mttr_hours", 4.0))
        for team, svcs in (("payments", ("checkout", "billing")), ("data", ("etl",)))
        for svc in svcs
        for d, y in zip(ds, rng.poisson(lam, len(ds)), strict=True)
    ]
    history = pd.DataFrame(rows)
    out = slice_totals(history)
    wide = out.pivot_table(index="ds", columns="series", values="y")
    leaves = wide[["incidents/team=payments/service=checkout", "incidents/team=payments/service=billing"]]
    assert np.allclose(wide["incidents/team=payments"], leaves.sum(axis=1))  # a count: the sum
    mttr = wide[["mttr_hours/team=payments/service=checkout", "mttr_hours/team=payments/service=billing"]]
    assert np.allclose(wide["mttr_hours/team=payments"], mttr.mean(axis=1))  # a duration: the mean
    assert "incidents/team=data" in wide and len(out) == len(history) + 4 * len(ds)  # teams only: no service
    assert slice_totals(out).equals(out)  # a team series the input has is kept, not added again
    # each service too, when asked: checkout, billing and etl, each run by one team here (their leaf's values)
    both = slice_totals(history, ("team", "service")).pivot_table(index="ds", columns="series", values="y")
    assert np.allclose(both["incidents/service=checkout"], both["incidents/team=payments/service=checkout"])
    assert both.shape[1] == wide.shape[1] + 6
    with pytest.raises(InputError):
        plan_experiment(history, indicator="incidents", treated="payments", weeks=8)
    plan = plan_experiment(out, indicator="incidents", treated="payments", controls=["data"], weeks=8)
    assert plan.treated_series == "incidents/team=payments" and plan.mde > 0


def test_a_service_or_a_team_and_service_pair_is_planned_on_indicators_split_by_both() -> None:
    """On indicators split by team and service, ``service=checkout`` is the sum of checkout's leaves (a service
    two teams run: both), and a pair names the service when that team alone runs it; otherwise one clear error."""
    from ml.experiments.planning import parse_treated, plan_experiment, resolve_treated
    from ml.indicators.completion import service_owners, slice_totals

    rng = np.random.default_rng(4)
    ds = pd.date_range("2025-01-06", periods=60, freq="W-MON")
    leaves = (("payments", "checkout"), ("payments", "billing"), ("data", "etl"), ("data", "billing"))
    history = pd.DataFrame(
        [
            {"series": f"incidents/team={team}/service={svc}", "ds": d, "y": float(y)}
            for team, svc in leaves
            for d, y in zip(ds, rng.poisson(4.0, len(ds)), strict=True)
        ]
    )
    out = slice_totals(history, ("service",))
    wide = out.pivot_table(index="ds", columns="series", values="y")
    assert not any("/team=" in c and "/service=" not in c for c in wide)  # no team total: not asked for
    both = wide[["incidents/team=payments/service=billing", "incidents/team=data/service=billing"]]
    assert np.allclose(wide["incidents/service=billing"], both.sum(axis=1))
    names = history["series"].unique()
    assert service_owners(names) == {
        "checkout": {"payments"},
        "billing": {"payments", "data"},
        "etl": {"data"},
    }
    for text in ("team=payments,service=checkout", "service=checkout/team=payments", " service = checkout "):
        assert resolve_treated(text, names) == ("service", "checkout")
    assert resolve_treated("team=data", names) == ("team", "data")
    assert parse_treated("service=api/v2") == {"service": "api/v2"}
    # a value may hold , / or =: the parts split only before a dimension name
    assert parse_treated("team=payments/service=api/v2") == {"team": "payments", "service": "api/v2"}
    assert parse_treated("team=data,service=billing,eu") == {"team": "data", "service": "billing,eu"}
    assert parse_treated("service=a/b c=d") == {"service": "a/b c=d"}  # "b c" names no dimension
    for bad, says in (
        ("team=data,service=checkout", "service 'checkout' is run by payments, not 'data'"),
        ("team=data,service=billing", "run by 2 teams (data, payments)"),
        ("team=data,service=nope", "the indicators show no team running service 'nope'"),
        ("payments", "treated must be team=VALUE, service=VALUE or team=VALUE,service=VALUE"),
        ("team=a,team=b", "treated must be"),
        ("team=a,region=eu", "unknown dimension 'region' (team or service)"),
    ):
        with pytest.raises(InputError) as exc:
            resolve_treated(bad, names)
        assert says in exc.value.message and exc.value.field == "treated", exc.value.message
    dim, value = resolve_treated("team=payments,service=checkout", names)
    plan = plan_experiment(
        out, indicator="incidents", treated=value, dimension=dim, controls=["etl"], weeks=8
    )
    assert plan.treated_series == "incidents/service=checkout" and plan.mde > 0
    assert plan.controls == ["incidents/service=etl"]
    # a running experiment on payments holds the planned checkout one: the history says payments runs checkout
    from ml.experiments.hygiene import ExperimentSpan

    running = [ExperimentSpan("EXP-7", "incidents", "team", "payments", ds[-10].date())]
    plan = plan_experiment(
        out, indicator="incidents", treated="checkout", dimension="service", weeks=8, running=running
    )
    assert [(o.other_id, o.kind) for o in plan.overlaps] == [("EXP-7", "nested slice")]


def test_the_treated_slice_is_parsed_in_linear_time_at_its_longest() -> None:
    """The longest text read, made of separators and spaces (each separator looks ahead past the spaces): fast, and
    longer text is one clear error."""
    import time

    from ml.experiments.planning import MAX_TREATED_CHARS, parse_treated

    n = MAX_TREATED_CHARS - 8
    for text in (", " * (n // 2) + "service", "/" + " " * n + "team", "/ team " * (n // 7)):
        assert len(text) <= MAX_TREATED_CHARS
        t0 = time.perf_counter()
        with pytest.raises(InputError):
            parse_treated(text)
        assert time.perf_counter() - t0 < 0.5
    with pytest.raises(InputError) as exc:
        parse_treated("team=" + "x" * MAX_TREATED_CHARS)
    assert f"at most {MAX_TREATED_CHARS}" in exc.value.message
