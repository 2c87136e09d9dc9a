"""Schemas: the supported date range (1900-01-01 to 2199-12-31 UTC) for every datetime and date field."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from ml.io.readers import read_experiments, read_incidents, read_indicators
from ml.io.schemas import EARLIEST_DATE, LATEST_DATE, Experiment, Incident, IndicatorObservation

BASE = {"id": "INC-1", "title": "t", "summary": "s", "started_at": "2025-01-01T00:00:00Z"}
EXP = {
    "id": "E1",
    "name": "n",
    "hypothesis": {"problem": "p", "solution": "s", "metric": "m"},
    "indicator": "reopens",
    "treated": "payments",
    "start": "2025-01-06",
}


@pytest.mark.parametrize(
    "value",
    [
        "1900-01-01T00:00:00Z",
        "1899-12-31T23:30:00-01:00",  # 1900-01-01T00:30Z
        "1969-07-20T20:17:00Z",
        "2199-12-31T23:59:59Z",
        "2199-12-31T23:00:00Z",
    ],
)
def test_dates_in_the_supported_range_are_accepted(value: str) -> None:
    inc = Incident.model_validate({**BASE, "started_at": value})
    assert EARLIEST_DATE <= inc.started_at.date() <= LATEST_DATE


@pytest.mark.parametrize(
    "value",
    [
        "1628-11-01T02:06:00Z",
        "1899-12-31T23:59:59Z",
        "1900-01-01T00:30:00+01:00",  # 1899-12-31T23:30Z
        "2200-01-01T00:00:00Z",
        "2199-12-31T23:30:00-01:00",  # 2200-01-01T00:30Z
        "0001-01-01T00:00:00+01:00",  # converting to UTC overflows: must be a validation error, not a crash
        "9999-12-31T23:59:59-01:00",
    ],
)
def test_dates_outside_the_range_are_a_validation_error_naming_the_field(value: str) -> None:
    for name in ("started_at", "resolved_at"):
        raw = (
            {**BASE, name: value}
            if name == "started_at"
            else {**BASE, "started_at": "1900-01-01", name: value}
        )
        with pytest.raises(ValidationError) as err:
            Incident.model_validate(raw)
        errors = err.value.errors()
        assert errors[0]["loc"] == (name,) and "supported date range" in errors[0]["msg"], errors


def test_action_item_dates_and_plain_dates_are_checked() -> None:
    item = {
        "id": "A",
        "title": "t",
        "created_at": "2025-01-01T00:00:00Z",
        "closed_at": "2300-01-01T00:00:00Z",
    }
    with pytest.raises(ValidationError, match="supported date range"):
        Incident.model_validate({**BASE, "action_items": [item]})
    with pytest.raises(ValidationError, match="supported date range"):
        IndicatorObservation.model_validate({"indicator": "x", "ds": "1850-01-07", "y": 1})
    with pytest.raises(ValidationError, match="supported date range"):
        IndicatorObservation.model_validate({"indicator": "x", "ds": "0001-01-01T00:00:00+05:00", "y": 1})
    with pytest.raises(ValidationError, match="supported date range"):
        Experiment.model_validate({**EXP, "start": "2300-01-01"})
    assert Experiment.model_validate({**EXP, "start": "1900-01-01"}).start == dt.date(1900, 1, 1)


def test_readers_quarantine_out_of_range_dates_with_the_field(tmp_path: Path) -> None:
    inc = tmp_path / "i.jsonl"
    inc.write_text(
        "\n".join(
            json.dumps({**BASE, "id": i, "started_at": s})
            for i, s in [("A", "1628-11-01T02:06:00Z"), ("B", "1969-07-20T20:17:00Z"), ("C", "2150-01-01")]
        )
        + "\n"
    )
    res = read_incidents(inc)
    assert [r.id for r in res.records] == ["B", "C"]
    (rej,) = res.rejects
    assert (rej.line, rej.field) == (1, "started_at") and "1900-01-01 to 2199-12-31" in rej.reason
    ind = tmp_path / "ind.csv"
    ind.write_text("indicator,ds,y\nx,1850-01-07,1\nx,1950-01-02,2\n")
    res_i = read_indicators(ind)
    assert res_i.accepted == 1 and res_i.rejects[0].field == "ds" and res_i.rejects[0].line == 2
    exp = tmp_path / "e.json"
    exp.write_text(json.dumps([{**EXP, "start": "2300-01-01"}]))
    assert read_experiments(exp).rejects[0].field == "start"
