"""Weekly incident counts from an incident history (``ml.indicators.incident_counts``)."""

from __future__ import annotations

import pandas as pd

from ml.indicators.incident_counts import UNSPECIFIED, weekly_incident_counts


def test_each_combination_gets_every_week_from_the_first_incident_to_the_last() -> None:
    incidents = pd.DataFrame(
        {
            "date": pd.to_datetime(["2025-01-01", "2025-01-02", "2025-01-20", "2025-02-05"]),
            "team": ["a", "a", "b", "b"],
            "service": ["x", "y", "x", "x"],
        }
    )
    out = weekly_incident_counts(incidents)
    assert list(out.columns) == ["indicator", "ds", "y", "team", "service"]
    assert set(out["indicator"]) == {"incidents"}
    weeks = pd.date_range("2024-12-30", "2025-02-03", freq="7D")  # Mondays
    for _, part in out.groupby(["team", "service"]):
        assert list(part["ds"]) == list(weeks)
    assert len(out) == 3 * len(weeks)  # a/x, a/y, b/x: only the combinations seen
    b = out[(out.team == "b") & (out.service == "x")].set_index("ds")["y"]
    assert b[pd.Timestamp("2025-01-20")] == 1 and b[pd.Timestamp("2025-02-03")] == 1 and b.sum() == 2
    assert out["y"].sum() == len(incidents)


def test_an_incident_without_a_value_counts_as_unspecified_and_an_unused_dimension_is_dropped() -> None:
    incidents = pd.DataFrame(
        {
            "date": pd.to_datetime(["2025-03-03", "2025-03-04", "2025-03-12"]),
            "team": ["", None, ""],
            "service": ["api", "", None],
        }
    )
    out = weekly_incident_counts(incidents)
    assert list(out.columns) == ["indicator", "ds", "y", "service"]
    totals = out.groupby("service")["y"].sum()
    assert totals.to_dict() == {"api": 1.0, UNSPECIFIED: 2.0}


def test_without_dimensions_one_series_and_aware_dates_keep_their_own_day() -> None:
    incidents = pd.DataFrame(
        {"date": pd.to_datetime(["2025-01-05T23:30:00+00:00", "2025-01-06T00:10:00+00:00"])},
        index=[7, 3],
    )
    out = weekly_incident_counts(incidents)
    assert list(out.columns) == ["indicator", "ds", "y"]
    assert out.set_index("ds")["y"].to_dict() == {
        pd.Timestamp("2024-12-30"): 1.0,  # Sunday the 5th belongs to the week of Monday the 30th
        pd.Timestamp("2025-01-06"): 1.0,
    }
    assert len(weekly_incident_counts(incidents.iloc[:0])) == 0


def test_the_main_stretch_leaves_out_an_incident_with_a_mistyped_year() -> None:
    from ml.indicators.incident_counts import main_stretch

    dates = pd.Series(pd.to_datetime(["2022-01-03", "2122-05-03", "2022-06-01", "2023-02-01", "2002-01-01"]))
    assert main_stretch(dates).tolist() == [True, False, True, True, False]
    # a year-long lull splits a history: the stretch with more incidents is kept (ties: the later one)
    two = pd.Series(pd.to_datetime(["2020-01-01", "2020-02-01", "2022-01-01", "2022-03-01"]))
    assert main_stretch(two).tolist() == [False, False, True, True]
    assert main_stretch(pd.Series([], dtype="datetime64[ns]")).empty
