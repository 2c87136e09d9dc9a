"""Ingestion (training/ingest.py): incidents come back redacted, with the reader's counts unchanged."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from ml.io.readers import read_incidents, read_indicators
from training.ingest import indicator_history, load_incidents, load_indicators


def _write(path: Path) -> None:
    rows = [
        {
            "id": "INC-1",
            "title": "DB 10.1.2.3 down",
            "summary": "paged @alice via alice@example.com",
            "root_cause": "password is hunter2x",
            "action_items": [{"id": "A1", "title": "rotate ghp_abcdefghijklmnopqrstuvwxyz0123456789"}],
            "tags": ["db"],
            "started_at": "2024-01-01T10:00:00Z",
        },
        # Rejected: the reason quotes the bad value, which carries an e-mail address.
        {"id": "INC-2", "title": "x", "summary": "y", "started_at": "bob@example.com"},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + "not json\n", encoding="utf-8")


def test_load_incidents_redacts_records_and_reasons(tmp_path: Path) -> None:
    path = tmp_path / "incidents.jsonl"
    _write(path)
    raw, read = read_incidents(path), load_incidents(path)
    assert (read.records_in, read.accepted, read.quarantined) == (
        raw.records_in,
        raw.accepted,
        raw.quarantined,
    )
    assert read.records_in == read.accepted + read.quarantined == 3
    (inc,) = read.records
    assert inc.title == "DB [IP] down"
    assert inc.summary == "paged [HANDLE] via [EMAIL]"
    assert inc.root_cause == "password is [SECRET]"
    assert inc.action_items[0].title == "rotate [SECRET]"
    assert "bob@example.com" in " ".join(r.reason for r in raw.rejects)  # the reader quotes it ...
    assert "bob@example.com" not in " ".join(r.reason for r in read.rejects)  # ... ingestion does not


def test_experiments_and_changes_come_back_redacted(tmp_path: Path) -> None:
    from training.ingest import load_changes, load_experiments

    exp = tmp_path / "experiments.yaml"
    exp.write_text(
        "- id: EXP-1\n"
        "  name: Pager rota for jane.doe@example.com\n"
        "  hypothesis:\n"
        "    problem: Host 10.1.2.3 pages at night\n"
        "    solution: Ask bob@example.com to own it\n"
        "    metric: Pages per week\n"
        "  indicator: pages\n"
        "  treated: payments\n"
        "  start: 2024-03-04\n"
        "  owner: '@ewalker'\n",
        encoding="utf-8",
    )
    (e,) = load_experiments(exp).records
    assert "example.com" not in e.name and "10.1.2.3" not in e.hypothesis.problem
    assert "bob@" not in e.hypothesis.solution and e.hypothesis.metric == "Pages per week"
    assert (e.id, e.treated, e.owner) == ("EXP-1", "payments", "@ewalker")  # keys and owner as written
    changes = tmp_path / "changes.csv"
    changes.write_text(
        "ds,team,kind,description\n2024-03-04,payments,deploy,Rolled back by carol@example.com on 10.9.8.7\n"
        "not-a-date,payments,deploy,mail dave@example.com\n",
        encoding="utf-8",
    )
    read = load_changes(changes)
    (c,) = read.records
    assert read.records_in == read.accepted + read.quarantined == 2
    assert "carol@" not in c.description and "10.9.8.7" not in c.description and c.kind == "deploy"
    assert all("dave@" not in r.reason for r in read.rejects)


def test_indicator_history_counts_absent_weeks_of_counts_as_zero(tmp_path: Path) -> None:
    path = tmp_path / "indicators.csv"
    path.write_text(
        "indicator,ds,y,team\n"
        "incidents,2025-01-06,2,a\n"
        "incidents,2025-01-27,1,a\n"
        "incidents,2025-01-13,1,b\n"
        "mttr_hours,2025-01-06,3.5,a\n"
        "mttr_hours,2025-01-27,4.0,a\n",
        encoding="utf-8",
    )
    history, notes = indicator_history(load_indicators([path]))
    inc = history[history.indicator == "incidents"]
    assert inc.groupby("series").size().to_dict() == {"incidents/team=a": 4, "incidents/team=b": 4}
    assert inc[inc.series == "incidents/team=b"].y.tolist() == [0.0, 1.0, 0.0, 0.0]
    assert history[history.indicator == "mttr_hours"].y.tolist() == [3.5, 4.0]  # a duration keeps its gaps
    assert list(history.columns) == ["series", "indicator", "team", "service", "ds", "y"]
    assert len(notes) == 1 and notes[0].startswith(
        "incidents: 5 absent dates of 2 of its 2 series counted as 0"
    )


def test_indicator_history_says_how_many_rows_were_quarantined(tmp_path: Path) -> None:
    path = tmp_path / "indicators.csv"
    rows = "".join(f"incidents,2025-01-{6 + 7 * (i % 3):02d},{i},a\n" for i in range(25))  # 22 duplicates
    path.write_text("indicator,ds,y,team\n" + rows, encoding="utf-8")
    _, notes = indicator_history(load_indicators([path]))
    assert notes[0].startswith(f"22 of 25 indicator rows quarantined (first: {path}:5 [series+ds]: duplicate")
    assert notes[0].endswith("`recur validate` lists them all, --strict fails on them")


def test_indicator_notes_are_redacted(tmp_path: Path) -> None:
    path = tmp_path / "indicators.csv"
    path.write_text(
        "indicator,ds,y,team\nincidents,2025-01-06,2,a\nincidents,2025-01-13,jane.doe@example.com,a\n",
        encoding="utf-8",
    )
    _, notes = indicator_history(load_indicators([path]))
    assert notes and "jane.doe@example.com" not in " ".join(notes)


def test_negative_values_of_a_count_are_a_note_and_a_mean_may_be_negative(tmp_path: Path) -> None:
    path = tmp_path / "indicators.csv"
    rows = ["indicator,ds,y,team"]
    for i, d in enumerate(pd.date_range("2025-01-06", periods=6, freq="W-MON").date):
        rows += [
            f"incidents,{d},{-4 if i == 3 else 5},payments",
            f"latency_delta_p95,{d},{-1.5 + i},payments",
        ]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    _, notes = indicator_history(read_indicators(path))
    assert notes == [
        "incidents: 1 value(s) below 0 (first incidents/team=payments on 2025-01-27: -4), though its values are whole "
        "numbers like a count's: check the export"
    ]
