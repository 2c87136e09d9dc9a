from __future__ import annotations

import datetime as dt
import json
import re

import numpy as np
import pandas as pd
import pytest

from ml.errors import InputError
from ml.io.schemas import Incident
from ml.patterns import heatmap as hm

NAMES = {0: "dns change", 1: "certificate expiry", 2: "disk full"}


def _incident(i: int, day: int, service: str | None, team: str | None) -> Incident:
    return Incident(
        id=f"INC-{i:03d}",
        title=f"incident {i}",
        summary="s",
        started_at=dt.datetime(2025, 1, 1, 12, tzinfo=dt.UTC) + dt.timedelta(days=day),
        service=service,
        team=team,
    )


@pytest.fixture(scope="module")
def corpus() -> tuple[list[Incident], dict[str, int]]:
    rng = np.random.default_rng(11)
    incidents, assignments = [], {}
    for i in range(90):
        day = int(rng.integers(0, 365))
        if 31 <= day < 59:  # a quiet February: its month column must still be there, with zeros
            day += 28
        service = [None, "api", "db", "queue"][int(rng.integers(0, 4))]
        team = ["core", "edge", None][int(rng.integers(0, 3))]
        incidents.append(_incident(i, day, service, team))
        assignments[f"INC-{i:03d}"] = int(rng.integers(-1, 3))
    return incidents, assignments


@pytest.mark.parametrize("by", ["service", "team", "month"])
def test_tables_sum_to_the_number_of_incidents(corpus, by: str) -> None:
    incidents, assignments = corpus
    table = hm.heatmap_table(incidents, assignments, NAMES, by=by)
    assert int(table.to_numpy().sum()) == len(incidents)
    assert table.columns.name == by
    assert list(table.index.names) == ["pattern_id", "pattern"]
    assert table.index[-1] == (-1, "unclustered")
    for pid, name in NAMES.items():
        expected = sum(a == pid for a in assignments.values())
        assert int(table.loc[(pid, name)].sum()) == expected
    tidy = hm.heatmap_counts(incidents, assignments, NAMES, by=by)
    assert list(tidy.columns) == ["pattern_id", "pattern", by, "count"]
    assert int(tidy["count"].sum()) == len(incidents)
    assert len(tidy) == table.size  # zeros are kept


def test_service_and_team_columns_count_missing_values(corpus) -> None:
    incidents, assignments = corpus
    table = hm.heatmap_table(incidents, assignments, NAMES, by="service")
    assert table.columns[-1] == hm.NONE_LABEL
    assert int(table[hm.NONE_LABEL].sum()) == sum(inc.service is None for inc in incidents)
    db = [inc for inc in incidents if inc.service == "db" and assignments[inc.id] == 2]
    assert int(table.loc[(2, "disk full"), "db"]) == len(db)


def test_month_columns_are_contiguous_and_since_filters(corpus) -> None:
    incidents, assignments = corpus
    table = hm.heatmap_table(incidents, assignments, NAMES, by="month")
    months = list(table.columns)
    expected = pd.period_range(months[0], months[-1], freq="M").strftime("%Y-%m").tolist()
    assert months == expected
    assert int(table["2025-02"].sum()) == 0  # the quiet month is a zero column, not missing
    since = dt.date(2025, 7, 1)
    recent = hm.heatmap_table(incidents, assignments, NAMES, by="month", since=since)
    assert recent.columns[0] == "2025-07"
    assert int(recent.to_numpy().sum()) == sum(inc.started_at.date() >= since for inc in incidents)
    by_team = hm.heatmap_table(incidents, assignments, NAMES, by="team", since=since)
    assert int(by_team.to_numpy().sum()) == int(recent.to_numpy().sum())


def test_assignments_as_list_and_missing_assignments(corpus) -> None:
    incidents, assignments = corpus
    as_list = [assignments[inc.id] for inc in incidents]
    a = hm.heatmap_table(incidents, assignments, NAMES, by="team")
    b = hm.heatmap_table(incidents, as_list, NAMES, by="team")
    pd.testing.assert_frame_equal(a, b)
    partial = {k: v for k, v in list(assignments.items())[:-5]}
    with pytest.raises(InputError) as err:
        hm.heatmap_table(incidents, partial, NAMES)
    assert err.value.field == "assignments"
    table = hm.heatmap_table(incidents, partial, NAMES, on_missing="unclustered")
    assert int(table.to_numpy().sum()) == len(incidents)
    with pytest.raises(InputError):
        hm.heatmap_table(incidents, as_list[:-1], NAMES)
    with pytest.raises(InputError) as err:
        hm.heatmap_table(incidents, assignments, NAMES, by="region")  # type: ignore[arg-type]
    assert err.value.field == "by"


def test_unknown_and_unused_patterns_get_rows() -> None:
    incidents = [_incident(i, i, "api", "core") for i in range(3)]
    table = hm.heatmap_table(incidents, [7, 7, -1], {0: "dns change"}, by="service")
    assert list(table.index) == [(7, "pattern 7"), (0, "dns change"), (-1, "unclustered")]
    assert table.loc[(0, "dns change")].sum() == 0


def test_empty_input_gives_empty_table_with_unclustered_row() -> None:
    table = hm.heatmap_table([], {}, NAMES, by="month")
    assert table.shape == (len(NAMES) + 1, 0) and table.index[-1] == (-1, "unclustered")
    assert hm.heatmap_json(table)["total"] == 0
    assert hm.recurrence_table([], {}, NAMES).empty
    assert hm.trend_table([], {}, NAMES).empty


def test_heatmap_json_shape(corpus) -> None:
    incidents, assignments = corpus
    table = hm.heatmap_table(incidents, assignments, NAMES, by="service")
    out = hm.heatmap_json(table)
    json.dumps(out)  # plain JSON types only
    assert out["by"] == "service" and out["columns"] == list(table.columns)
    assert len(out["values"]) == len(out["rows"]) == len(table)
    assert all(len(row) == len(out["columns"]) for row in out["values"])
    assert out["total"] == len(incidents)
    assert out["rows"][-1]["pattern"] == "unclustered"
    assert [r["total"] for r in out["rows"]] == [sum(v) for v in out["values"]]


def test_recurrence_counts_repeats_after_the_first() -> None:
    incidents = [
        _incident(0, 0, "api", "core"),
        _incident(1, 10, "api", "core"),
        _incident(2, 30, "db", "edge"),
        _incident(3, 5, "db", "core"),
        _incident(4, 6, None, None),
    ]
    table = hm.recurrence_table(incidents, [0, 0, 0, 1, -1], NAMES)
    assert list(table["pattern_id"]) == [0, 1]  # unclustered is not a pattern
    dns = table.iloc[0]
    assert dns["incidents"] == 3 and dns["repeats"] == 2 and dns["repeats_same_service"] == 1
    assert dns["services"] == 2 and dns["teams"] == 2
    assert dns["first_seen"] == dt.date(2025, 1, 1) and dns["last_seen"] == dt.date(2025, 1, 31)
    assert dns["median_days_between"] == pytest.approx(15.0)
    cert = table.iloc[1]
    assert cert["repeats"] == 0 and np.isnan(cert["median_days_between"])


def test_trend_table_finds_rising_and_falling_patterns() -> None:
    incidents, assignments = [], {}
    as_of = dt.datetime(2025, 12, 31, tzinfo=dt.UTC)
    i = 0
    for window, (rising, falling, flat) in enumerate(
        [(1, 12, 4), (2, 10, 4), (3, 7, 4), (6, 4, 4), (9, 2, 4), (13, 1, 4)]
    ):
        for pid, n in ((0, rising), (1, falling), (2, flat)):
            for j in range(n):
                start = as_of - dt.timedelta(days=30 * (6 - window) - 1 - (j % 25))
                incidents.append(Incident(id=f"T-{i}", title="t", summary="s", started_at=start))
                assignments[f"T-{i}"] = pid
                i += 1
    table = hm.trend_table(incidents, assignments, NAMES, as_of=as_of).set_index("pattern_id")
    assert table.loc[0, "trend"] == "rising" and table.loc[0, "slope"] > 0
    assert table.loc[1, "trend"] == "falling" and table.loc[1, "monthly_change"] < 0
    assert table.loc[2, "trend"] == "flat"
    assert table.loc[0, "counts"] == [1, 2, 3, 6, 9, 13]
    assert table.loc[0, "incidents"] == 34
    with pytest.raises(InputError):
        hm.trend_table(incidents, assignments, NAMES, periods=2)


def test_render_png_html_csv(corpus, tmp_path) -> None:
    incidents, assignments = corpus
    table = hm.heatmap_table(incidents, assignments, NAMES, by="month")
    png = hm.render_png(table, "Failure patterns by month", tmp_path / "out" / "heat.png")
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    html = hm.render_html(table, "Failure patterns by month", tmp_path / "heat.html")
    text = html.read_text(encoding="utf-8")
    assert len(text) > 100_000  # plotly.js is inlined
    assert re.search(r"<script[^>]*\bsrc\s*=", text, re.IGNORECASE) is None  # no external script
    assert "Failure patterns by month" in text and "unclustered" in text
    csv = hm.render_csv(table, tmp_path / "heat.csv")
    back = pd.read_csv(csv, index_col=[0, 1])
    assert back.to_numpy().sum() == len(incidents)
    assert list(back.columns) == list(table.columns)


def test_render_rejects_an_empty_table(tmp_path) -> None:
    empty = hm.heatmap_table([], {}, NAMES, by="service")
    with pytest.raises(InputError):
        hm.render_png(empty, "nothing", tmp_path / "x.png")
    with pytest.raises(InputError):
        hm.render_html(empty, "nothing", tmp_path / "x.html")
