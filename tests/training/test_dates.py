"""Any date the schema accepts trains (issue #11 item 7): 1900, 1969 and far-future incidents go through the heat
maps, trends, `recur train patterns` and `recur report`; a date outside the range is quarantined with a reason."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ml.io.schemas import Incident
from ml.patterns.heatmap import MAX_MONTH_SPAN, heatmap_table, render_html, render_png
from ml.patterns.model import pattern_trend
from tests.conftest import ROOT, SAMPLE

YEARS = {0: 1628, 1: 1969, 2: 1900, 3: 2150, 4: 1969, 5: 2199}  # row index -> year (1628 is out of range)


def _incident(i: int, started: str) -> Incident:
    return Incident.model_validate({"id": f"I{i}", "title": "t", "summary": "s", "started_at": started})


SPREAD = [
    "1900-01-01T00:00:00Z",
    "1969-07-20T20:17:00Z",
    "2024-11-03T10:00:00Z",
    "2024-12-24T10:00:00Z",
    "2025-01-05T10:00:00Z",
    "2150-06-01T00:00:00Z",
    "2199-12-31T23:59:59Z",
]


def test_month_heat_map_over_three_centuries_is_bounded() -> None:
    incidents = [_incident(i, s) for i, s in enumerate(SPREAD)]
    table = heatmap_table(incidents, [0, 0, 1, 1, -1, 0, 1], {0: "a", 1: "b"}, by="month")
    assert list(table.columns) == [
        "1900-01",
        "1969-07",
        "2024-11",
        "2024-12",
        "2025-01",
        "2150-06",
        "2199-12",
    ]
    assert int(table.to_numpy().sum()) == len(SPREAD)
    short = heatmap_table(incidents[2:5], [0, 1, 1], {0: "a", 1: "b"}, by="month")
    assert list(short.columns) == ["2024-11", "2024-12", "2025-01"]  # a short span keeps every month
    assert MAX_MONTH_SPAN >= 24


@pytest.mark.parametrize(
    "since",
    [dt.date(1, 1, 1), dt.date(1677, 1, 1), dt.date(2263, 1, 1), dt.date(9999, 12, 31), dt.date(1969, 1, 1)],
)
def test_any_since_is_safe(since: dt.date) -> None:
    incidents = [_incident(i, s) for i, s in enumerate(SPREAD)]
    table = heatmap_table(incidents, [0] * len(SPREAD), {0: "a"}, by="month", since=since)
    expected = sum(1 for s in SPREAD if dt.datetime.fromisoformat(s).date() >= since)
    assert int(table.to_numpy().sum()) == expected
    assert table.shape[1] <= len(SPREAD)


def test_heat_map_renders_and_trend_over_extreme_dates(tmp_path: Path) -> None:
    incidents = [_incident(i, s) for i, s in enumerate(SPREAD)]
    table = heatmap_table(incidents, [0] * len(SPREAD), {0: "a"}, by="month")
    assert render_png(table, "t", tmp_path / "h.png").stat().st_size > 0
    assert render_html(table, "t", tmp_path / "h.html").stat().st_size > 0
    starts = [inc.started_at for inc in incidents]
    trend = pattern_trend(starts, max(starts))
    assert trend.direction == "flat" and sum(trend.counts) == 1
    early = pattern_trend(starts, dt.datetime(1900, 6, 1, tzinfo=dt.UTC))
    assert sum(early.counts) == 1


def _recur(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "training.cli", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, **env},
        timeout=900,
    )


@pytest.mark.slow
def test_historical_and_future_incidents_train_and_report(tmp_path: Path) -> None:
    rows = [json.loads(line) for line in (SAMPLE / "incidents.jsonl").read_text().splitlines()[:80]]
    for i, year in YEARS.items():
        for name in ("started_at", "detected_at", "resolved_at"):
            if rows[i].get(name):
                rows[i][name] = f"{year}{rows[i][name][4:]}"
        for item in rows[i].get("action_items") or []:
            for name in ("created_at", "closed_at"):
                if item.get(name):
                    item[name] = f"{year}{item[name][4:]}"
            if item.get("closed_at") and item.get("created_at") and item["closed_at"] < item["created_at"]:
                item["closed_at"] = item["created_at"]
    path = tmp_path / "incidents.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    env = {
        "RECUR_MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
        "RECUR_MLFLOW_ARTIFACT_ROOT": str(tmp_path / "artifacts"),
        "RECUR_CACHE_DIR": os.environ.get("RECUR_TEST_CACHE", str(tmp_path / "cache")),
    }
    check = _recur(["validate", str(path), "--json"], env)
    assert check.returncode == 0, check.stderr
    (rej,) = json.loads(check.stdout)["results"][0]["rejects"]
    assert rej["line"] == 1 and "outside the supported date range" in rej["reason"]

    out = tmp_path / "out"
    train = _recur(
        ["train", "patterns", "--incidents", str(path), "--out", str(out), "--promote", "--json"], env
    )
    assert train.returncode == 0, train.stderr[-3000:]
    assert "Traceback" not in train.stderr
    result = json.loads(train.stdout)
    assert result["quarantined"] == 1
    header = (out / "heatmap_month.csv").read_text().splitlines()[0].split(",")
    months = header[2:]
    assert {"1900-11", "1969-11", "2150-11", "2199-11"} <= set(months)
    assert len(months) < 20  # months with incidents, not 3,600 columns from 1900 to 2199
    assert (out / "heatmap_month.png").stat().st_size > 0

    report = _recur(["report", "--out", str(tmp_path / "report"), "--incidents", str(path), "--json"], env)
    assert report.returncode == 0, report.stderr[-3000:]
    sections = {s["id"]: s for s in json.loads(report.stdout)["sections"]}
    assert sections["patterns"]["has_content"]
    for since in ("2300-01-01", "0001-01-01"):  # after every incident (no heat map), before every one
        late = _recur(
            ["report", "--out", str(tmp_path / since), "--incidents", str(path), "--since", since], env
        )
        assert late.returncode == 0, late.stderr[-3000:]
