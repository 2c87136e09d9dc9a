"""Readers: good and bad input for every format, and the no-loss invariant."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ml.errors import InputError
from ml.io.readers import (
    detect_kind,
    indicators_frame,
    parse_markdown_postmortem,
    read_experiments,
    read_incidents,
    read_indicators,
)
from ml.io.schemas import Incident

GOOD = {
    "id": "INC-1",
    "title": "Checkout errors after config push",
    "summary": "A config push without canary broke checkout.",
    "root_cause": "Config flag flipped globally.",
    "contributing_factors": ["no canary", "no alert"],
    "action_items": [
        {
            "id": "AI-1",
            "title": "Add canary",
            "status": "done",
            "created_at": "2025-01-02T00:00:00Z",
            "closed_at": "2025-01-10T00:00:00Z",
        }
    ],
    "service": "checkout",
    "team": "payments",
    "severity": "SEV2",
    "started_at": "2025-01-01T10:00:00Z",
    "detected_at": "2025-01-01T10:05:00Z",
    "resolved_at": "2025-01-01T11:00:00Z",
    "reopened": 0,
    "tags": ["config"],
}


def _jsonl(path: Path, rows: list[object]) -> Path:
    path.write_text(
        "\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n", encoding="utf-8"
    )
    return path


def test_jsonl_good_and_bad_records_no_loss(tmp_path: Path) -> None:
    bad_date = dict(GOOD, id="INC-2", started_at="yesterday-ish")
    empty_text = dict(GOOD, id="INC-3", summary="   ")
    wrong_type = dict(GOOD, id="INC-4", reopened="many")
    dup = dict(GOOD)
    naive = dict(GOOD, id="INC-5", started_at="2025-01-01T10:00:00", detected_at=None, resolved_at=None)
    path = _jsonl(tmp_path / "i.jsonl", [GOOD, bad_date, empty_text, "{not json", wrong_type, dup, naive])
    res = read_incidents(path)
    assert res.records_in == 7
    assert res.records_in == res.accepted + res.quarantined
    assert [r.id for r in res.records] == ["INC-1", "INC-5"]
    by_line = {r.line: r for r in res.rejects}
    assert by_line[2].field == "started_at"
    assert by_line[3].field == "summary" and "empty" in by_line[3].reason.lower()
    assert "invalid JSON" in by_line[4].reason
    assert by_line[5].field == "reopened"
    assert "duplicate id 'INC-1'" in by_line[6].reason and str(path) + ":1" in by_line[6].reason
    assert all(r.file == str(path) for r in res.rejects)
    # naive datetime accepted as UTC, with a note
    assert res.records[1].started_at.tzinfo is not None
    assert any(n.field == "started_at" and "naive" in n.reason for n in res.notes)


def test_timezones_are_normalised_to_utc(tmp_path: Path) -> None:
    row = dict(GOOD, started_at="2025-01-01T12:00:00+02:00", detected_at=None, resolved_at=None)
    res = read_incidents(_jsonl(tmp_path / "i.jsonl", [row]))
    assert res.records[0].started_at.isoformat() == "2025-01-01T10:00:00+00:00"


def test_non_utf8_line_is_quarantined_and_others_kept(tmp_path: Path) -> None:
    path = tmp_path / "i.jsonl"
    path.write_bytes(
        json.dumps(GOOD).encode()
        + b"\n"
        + b'{"id": "X\xff\xfe"}\n'
        + json.dumps(dict(GOOD, id="INC-9")).encode()
    )
    res = read_incidents(path)
    assert res.accepted == 2 and res.quarantined == 1
    assert res.rejects[0].line == 2 and "UTF-8" in res.rejects[0].reason


def test_time_order_is_checked(tmp_path: Path) -> None:
    row = dict(GOOD, resolved_at="2024-12-31T00:00:00Z")
    res = read_incidents(_jsonl(tmp_path / "i.jsonl", [row]))
    assert res.accepted == 0 and "resolved_at is before started_at" in res.rejects[0].reason


def test_csv_incidents(tmp_path: Path) -> None:
    path = tmp_path / "i.csv"
    path.write_text(
        "id,title,summary,service,team,severity,started_at,contributing_factors,action_items\n"
        'A,Disk full,The log disk filled up,db,core,3,2025-02-01T00:00:00Z,"no alert; no rotation",'
        '"[{""id"": ""AI-1"", ""title"": ""Rotate logs"", ""status"": ""open""}]"\n'
        "B,,missing title,db,core,SEV3,2025-02-01T00:00:00Z,,\n"
        "C,Bad date,x,db,core,SEV3,31/02/2025,,\n"
        "D,Too few columns\n",
        encoding="utf-8",
    )
    res = read_incidents(path)
    assert res.records_in == 4 and res.accepted == 1
    inc = res.records[0]
    assert inc.severity == "SEV3" and inc.contributing_factors == ["no alert", "no rotation"]
    assert inc.action_items[0].title == "Rotate logs"
    fields = {r.line: r.field for r in res.rejects}
    assert fields[3] == "title" and fields[4] == "started_at" and fields[5] is None


MD = """---
id: PM-1
title: Certificate expired on the edge
service: edge
team: platform
severity: SEV2
started_at: 2025-03-01T08:00:00Z
resolved_at: 2025-03-01T09:30:00Z
---

## Summary
The TLS certificate on the edge proxies expired.

## Root cause
Renewal job silently failed for two weeks.

## Contributing factors
- No expiry alert
- Renewal errors went to a muted channel

## Action items
- [x] AI-7: Alert 14 days before expiry (created 2025-03-02, closed 2025-03-09)
- [ ] AI-8: Move renewal to cert-manager (created 2025-03-02)
"""


def test_markdown_folder(tmp_path: Path) -> None:
    folder = tmp_path / "pm"
    folder.mkdir()
    (folder / "a.md").write_text(MD, encoding="utf-8")
    (folder / "b.md").write_text("---\nid: PM-2\ntitle: [unclosed\n---\n", encoding="utf-8")
    (folder / "c.md").write_text(
        MD.replace("PM-1", "PM-3").replace("## Summary\nThe TLS", "## Summary\n\n## X\nThe TLS")
    )
    res = read_incidents(folder)
    assert res.records_in == 3
    assert res.records_in == res.accepted + res.quarantined
    inc = next(r for r in res.records if r.id == "PM-1")
    assert inc.root_cause == "Renewal job silently failed for two weeks."
    assert inc.contributing_factors == ["No expiry alert", "Renewal errors went to a muted channel"]
    assert [(a.id, a.status) for a in inc.action_items] == [("AI-7", "done"), ("AI-8", "open")]
    assert inc.action_items[0].closed_at is not None
    rej = {Path(r.file).name: r for r in res.rejects}
    assert rej["b.md"].field == "front_matter"
    assert rej["c.md"].field == "summary"


def test_parse_markdown_without_front_matter_uses_heading_as_title() -> None:
    raw = parse_markdown_postmortem("# DNS outage\n\n## Summary\nResolvers failed.\n")
    assert raw["title"] == "DNS outage" and raw["summary"] == "Resolvers failed."


def test_indicators_csv(tmp_path: Path) -> None:
    path = tmp_path / "ind.csv"
    path.write_text(
        "indicator,ds,y,team\n"
        "reopens,2025-01-06,3,payments\n"
        "reopens,2025-01-13,abc,payments\n"
        "reopens,2025-01-13,4,payments\n"
        "reopens,2025-01-13,5,payments\n"
        "reopens,2025-13-40,1,payments\n"
        "reopens,2025-01-06,nan,core\n"
        "mttr_hours,2025-01-06,1.5,\n",
        encoding="utf-8",
    )
    res = read_indicators(path)
    assert res.records_in == 7 and res.accepted == 3
    reasons = {r.line: (r.field, r.reason) for r in res.rejects}
    assert reasons[3][0] == "y"
    assert "duplicate" in reasons[5][1]
    assert reasons[6][0] == "ds"
    assert reasons[7][0] == "y"
    frame = indicators_frame(res.records)
    assert set(frame["series"]) == {"reopens/team=payments", "mttr_hours"}


def test_indicators_parquet(tmp_path: Path) -> None:
    import pandas as pd

    path = tmp_path / "ind.parquet"
    pd.DataFrame({"indicator": ["a", "a"], "ds": ["2025-01-06", "2025-01-13"], "y": [1.0, 2.0]}).to_parquet(
        path
    )
    res = read_indicators(path)
    assert res.accepted == 2 and detect_kind(path) == "indicators"
    assert res.notes == []


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_an_indicator_column_no_field_reads_is_noted_once_per_file(tmp_path: Path, suffix: str) -> None:
    import pandas as pd

    frame = pd.DataFrame(
        {
            "indicator": ["incidents"] * 3,
            "ds": ["2025-01-06", "2025-01-06", "2025-01-13"],
            "y": [2.0, 1.0, 1.0],
            "component": ["api", "web", "web"],
            "team": ["core"] * 3,
        }
    )
    path = tmp_path / f"ind{suffix}"
    frame.to_csv(path, index=False) if suffix == ".csv" else frame.to_parquet(path)
    res = read_indicators(path)
    assert [(n.file, n.line, n.field) for n in res.notes] == [(str(path), 1, "component")]
    assert res.notes[0].reason == (
        "column 'component' is not read: an indicator row has indicator, ds, y, team and service (rename it team "
        "or service to split the indicator on it)"
    )
    # the rows it told apart are one series: the second of a date is a duplicate, never lost in silence
    assert res.accepted == 2 and res.quarantined == 1 and "duplicate" in res.rejects[0].reason


def test_a_capitalised_indicator_header_is_told_to_be_lower_case(tmp_path: Path) -> None:
    path = tmp_path / "ind.csv"
    path.write_text("Indicator,ds,y\nincidents,2025-01-06,2\n", encoding="utf-8")
    res = read_indicators(path)
    assert res.accepted == 0 and res.quarantined == 1
    assert [n.reason for n in res.notes] == [
        "column 'Indicator' is not read: an indicator row has indicator, ds, y, team and service (column names are "
        "lower case: rename it indicator)"
    ]


EXP = """experiments:
  - id: EXP-1
    name: Canary gate
    hypothesis: {problem: config pushes break prod, solution: canary gate, metric: change failure rate}
    indicator: change_failure_rate
    treated: payments
    controls: [core, search]
    start: 2025-06-02
    desired_direction: decrease
  - id: EXP-2
    name: Broken
    indicator: reopens
    treated: core
    start: not-a-date
  - id: EXP-1
    name: Duplicate
    hypothesis: {problem: a, solution: b, metric: c}
    indicator: reopens
    treated: core
    start: 2025-06-02
"""


def test_experiments_yaml_with_lines(tmp_path: Path) -> None:
    path = tmp_path / "e.yaml"
    path.write_text(EXP, encoding="utf-8")
    res = read_experiments(path)
    assert res.records_in == 3 and res.accepted == 1
    assert res.records[0].treated_series == "change_failure_rate/team=payments"
    lines = {r.line: r for r in res.rejects}
    assert set(lines) == {10, 15}
    assert lines[10].field in ("hypothesis", "start")
    assert "duplicate id 'EXP-1'" in lines[15].reason


def test_experiments_json_and_invalid_yaml(tmp_path: Path) -> None:
    p = tmp_path / "e.json"
    p.write_text(
        json.dumps(
            [
                {
                    "id": "E",
                    "name": "n",
                    "hypothesis": {"problem": "p", "solution": "s", "metric": "m"},
                    "indicator": "i",
                    "treated": "t",
                    "controls": ["t"],
                    "start": "2025-01-01",
                }
            ]
        )
    )
    res = read_experiments(p)
    assert res.accepted == 0 and "also listed in controls" in res.rejects[0].reason
    bad = tmp_path / "bad.yaml"
    bad.write_text("experiments: [\n  - id: x\n")
    res = read_experiments(bad)
    assert res.records_in == 1 and res.quarantined == 1 and res.rejects[0].line is not None


def test_missing_path_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        read_incidents(tmp_path / "nope.jsonl")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=8), c, max_size=3),
    max_leaves=8,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows=st.lists(
        st.one_of(
            st.fixed_dictionaries({}, optional={k: json_values for k in GOOD}),
            st.builds(
                lambda d: {**GOOD, **d},
                st.dictionaries(st.sampled_from(sorted(GOOD)), json_values, max_size=3),
            ),
            st.binary(max_size=30),
            st.sampled_from([b"\xef\xbb\xbf", b"\xef\xbb\xbf{", b"\xef\xbb\xbf" + json.dumps(GOOD).encode()]),
        ),
        max_size=12,
    )
)
def test_no_loss_invariant_property(tmp_path: Path, rows: list[object]) -> None:
    path = tmp_path / "p.jsonl"
    with path.open("wb") as fh:
        for r in rows:
            line = r if isinstance(r, bytes) else json.dumps(r, allow_nan=True).encode()
            fh.write(line.replace(b"\n", b" ").replace(b"\r", b" ") + b"\n")
    res = read_incidents(path)
    # a byte-order mark opening the file is its encoding marker, not a line of content
    nonblank = sum(1 for ln in path.read_bytes().removeprefix(b"\xef\xbb\xbf").split(b"\n") if ln.strip())
    assert res.records_in == nonblank
    assert res.records_in == res.accepted + res.quarantined
    ids = [r.id for r in res.records]
    assert len(ids) == len(set(ids))
    for rej in res.rejects:
        assert rej.file == str(path) and rej.line is not None and rej.reason


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.text(max_size=6), st.text(max_size=12), st.text(max_size=6)), max_size=10))
def test_indicator_no_loss_property(tmp_path: Path, rows: list[tuple[str, str, str]]) -> None:
    import csv

    path = tmp_path / "p.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["indicator", "ds", "y"])
        w.writerows(rows)
    res = read_indicators(path)
    assert res.records_in == res.accepted + res.quarantined


def test_a_line_of_only_unicode_separators_is_reported_not_skipped(tmp_path: Path) -> None:
    path = tmp_path / "odd.jsonl"
    path.write_bytes(b"\x1c\n   \n\xc2\x85\n")  # U+001C, a blank line, U+0085
    res = read_incidents(path)
    assert res.records_in == 2 and res.quarantined == 2
    assert [r.line for r in res.rejects] == [1, 3] and all("invalid JSON" in r.reason for r in res.rejects)


# ---------------------------------------------------------------------------------------------- issue #12 item 8

BOM = "\ufeff"
CSV_HEADER = "id,title,summary,started_at\n"


def _csv_row(rid: str, summary: str = "Disk filled up") -> str:
    return f'{rid},Disk full,"{summary}",2025-02-01T00:00:00Z\n'


def test_bom_csv_is_read_and_recognised(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    path.write_text(BOM + CSV_HEADER + _csv_row("A") + _csv_row("B"), encoding="utf-8")
    assert detect_kind(path) == "incidents"
    res = read_incidents(path)
    assert [r.id for r in res.records] == ["A", "B"] and res.quarantined == 0


def test_bom_indicators_csv_is_recognised(tmp_path: Path) -> None:
    path = tmp_path / "ind.csv"
    path.write_text(BOM + "indicator,ds,y\nreopens,2025-01-06,3\n", encoding="utf-8")
    assert detect_kind(path) == "indicators"
    assert read_indicators(path).accepted == 1


@pytest.mark.parametrize("suffix", ["jsonl", "json"])
def test_bom_json_files_are_read(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"i.{suffix}"
    body = json.dumps(GOOD) if suffix == "jsonl" else json.dumps([GOOD])
    path.write_text(BOM + body + "\n", encoding="utf-8")
    res = read_incidents(path)
    assert res.accepted == 1 and res.quarantined == 0, res.rejects


def test_bom_markdown_and_yaml_are_read(tmp_path: Path) -> None:
    md = tmp_path / "pm.md"
    md.write_text(BOM + MD, encoding="utf-8")
    res = read_incidents(md)
    assert [r.id for r in res.records] == ["PM-1"], res.rejects
    exp = tmp_path / "e.yaml"
    exp.write_text(BOM + EXP, encoding="utf-8")
    assert read_experiments(exp).accepted == 1


def test_csv_field_over_128_kib_is_read_and_one_over_the_limit_is_quarantined(tmp_path: Path) -> None:
    from ml.io.readers import CSV_FIELD_LIMIT

    path = tmp_path / "big.csv"
    big = "x" * (200 * 1024)
    huge = "y" * (CSV_FIELD_LIMIT + 10)
    path.write_text(
        CSV_HEADER + _csv_row("A") + _csv_row("B", big) + _csv_row("C", huge) + _csv_row("D"),
        encoding="utf-8",
    )
    res = read_incidents(path)
    assert [r.id for r in res.records] == ["A", "B", "D"]
    assert res.records_in == 4 and res.quarantined == 1
    rej = res.rejects[0]
    assert rej.file == str(path) and rej.line == 4 and "limit" in rej.reason


def test_csv_unclosed_quote_is_one_reject_that_names_its_lines(tmp_path: Path) -> None:
    path = tmp_path / "q.csv"
    path.write_text(
        CSV_HEADER + _csv_row("A") + 'B,"unclosed,x,2025-02-01\n' + _csv_row("C"), encoding="utf-8"
    )
    res = read_incidents(path)
    assert [r.id for r in res.records] == ["A"] and res.records_in == 2
    assert res.rejects[0].line == 3 and "lines 3-4" in res.rejects[0].reason


BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(8)
)


def test_yaml_aliases_in_front_matter_are_quarantined_fast(tmp_path: Path) -> None:
    import time

    path = tmp_path / "bomb.md"
    path.write_text("---\nid: PM-9\ntitle: t\nsummary: s\nstarted_at: 2025-01-01\n" + BOMB + "---\n")
    t0 = time.perf_counter()
    res = read_incidents(path)
    assert time.perf_counter() - t0 < 2.0
    assert res.records_in == 1 and res.quarantined == 1
    rej = res.rejects[0]
    assert rej.field == "front_matter" and "alias" in rej.reason and rej.line == 7 and rej.file == str(path)


def test_yaml_aliases_in_experiments_are_quarantined(tmp_path: Path) -> None:
    path = tmp_path / "e.yaml"
    path.write_text(BOMB)
    res = read_experiments(path)
    assert res.records_in == 1 and res.accepted == 0 and "alias" in res.rejects[0].reason
    assert res.rejects[0].line == 2


def test_unknown_file_is_quarantined_by_name(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("hello\n")
    res = read_incidents(path)
    assert res.records_in == 1 and res.quarantined == 1
    assert res.rejects[0].file == str(path) and ".txt" in res.rejects[0].reason


def test_unknown_file_in_a_postmortem_folder_is_quarantined(tmp_path: Path) -> None:
    folder = tmp_path / "pm"
    folder.mkdir()
    (folder / "a.md").write_text(MD, encoding="utf-8")
    (folder / "b.txt").write_text("a postmortem saved as text\n")
    (folder / "README.md").write_text("# How to write a postmortem\n")
    res = read_incidents(folder)
    assert res.accepted == 1 and res.quarantined == 1 and res.records_in == 2
    assert res.rejects[0].file == str(folder / "b.txt")


def test_every_file_level_error_has_a_line(tmp_path: Path) -> None:
    j = tmp_path / "i.json"
    j.write_bytes(b'[\n{"id": "A",\n "title": "caf\xe9"}]\n')
    md = tmp_path / "x.md"
    md.write_bytes(b"---\nid: A\n---\n\n## Summary\nbad \xff byte\n")
    res = read_incidents([j, md])
    assert res.quarantined == 2 and [r.line for r in res.rejects] == [3, 6]


def test_reject_reasons_are_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("experiments: [\n  - id: x\n")
    res = read_experiments(bad)
    assert "\n" not in res.rejects[0].reason and "\n" not in str(res.rejects[0])


cells = st.text(alphabet=st.characters(codec="utf-8"), max_size=10) | st.sampled_from(
    ["", '"', "2025-01-01", "SEV2"]
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    bom=st.booleans(),
    rows=st.lists(st.lists(cells, min_size=0, max_size=6), max_size=10),
    raw_tail=st.binary(max_size=20),
)
def test_csv_incidents_no_loss_property(
    tmp_path: Path, bom: bool, rows: list[list[str]], raw_tail: bytes
) -> None:
    import csv
    import io

    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["id", "title", "summary", "started_at", "severity"])
    w.writerows(rows)
    path = tmp_path / "p.csv"
    path.write_bytes((BOM if bom else "").encode() + buf.getvalue().encode() + raw_tail)
    res = read_incidents(path)
    assert res.records_in == res.accepted + res.quarantined
    for rej in res.rejects:
        assert rej.file == str(path) and rej.line is not None and rej.reason and "\n" not in rej.reason


def test_unrecognised_csv_names_what_its_header_lacks(tmp_path: Path) -> None:
    from ml.io.readers import unrecognised

    path = tmp_path / "export.csv"
    path.write_text("ticket,text\n1,hello\n")
    assert detect_kind(path) is None
    rej = unrecognised(path)
    assert rej.file == str(path) and "indicator,ds,y" in rej.reason and "id,title" in rej.reason


def test_broken_parquet_and_unknown_types_are_quarantined_for_every_kind(tmp_path: Path) -> None:
    broken = tmp_path / "ind.parquet"
    broken.write_bytes(b"PAR1 not really parquet")
    odd = tmp_path / "ind.tsv"
    odd.write_text("indicator\tds\ty\n")
    res = read_indicators([broken, odd])
    assert res.records_in == 2 and res.quarantined == 2
    assert [r.file for r in res.rejects] == [str(broken), str(odd)]
    assert "Parquet" in res.rejects[0].reason and ".tsv" in res.rejects[1].reason
    exp = tmp_path / "e.toml"
    exp.write_text("x = 1\n")
    res_e = read_experiments(exp)
    assert res_e.quarantined == 1 and ".toml" in res_e.rejects[0].reason


# ---------------------------------------------------------------------------------------------- change log


def test_changes_csv_is_recognised_read_and_quarantined_without_loss(tmp_path: Path) -> None:
    from ml.io.readers import changes_frame, read_changes, read_path

    path = tmp_path / "changes.csv"
    path.write_text(
        "ds,team,service,kind,description,id\n"
        "2025-03-03,payments,,deploy-pipeline,Canary stage added,\n"  # no id: CHG-2
        "2025-03-10,,,on-call,New rotation for everyone,OC-1\n"  # org-wide
        "not a date,payments,,deploy,broken,\n"  # quarantined: ds
        "2025-04-01,payments,checkout,,no kind,\n"  # quarantined: kind
        "2025-04-02,data,,deploy,dup id,OC-1\n"  # quarantined: duplicate id
    )
    assert detect_kind(path) == "changes"
    res = read_changes(path)
    assert res.records_in == 5 == res.accepted + res.quarantined
    assert [c.id for c in res.records] == ["CHG-2", "OC-1"]
    assert res.records[1].team is None and res.records[1].service is None
    assert [(r.line, r.field) for r in res.rejects] == [(4, "ds"), (5, "kind"), (6, "id")]
    assert read_path(path).kind == "changes"
    frame = changes_frame(res.records)
    assert list(frame.columns) == ["id", "ds", "team", "service", "kind", "description"]
    assert frame["id"].tolist() == ["CHG-2", "OC-1"]


def test_changes_in_a_wrong_format_are_quarantined_by_name(tmp_path: Path) -> None:
    from ml.io.readers import read_changes

    odd = tmp_path / "changes.xlsx"
    odd.write_bytes(b"PK")
    res = read_changes(odd)
    assert res.records_in == 1 == res.quarantined and ".xlsx" in res.rejects[0].reason


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(
    rows=st.lists(
        st.tuples(
            st.sampled_from(["2025-01-06", "2025-13-01", "", "2025-02-03T10:00:00Z"]),
            st.sampled_from(["", "payments", "data"]),
            st.sampled_from(["", "deploy"]),
            st.sampled_from(["", "C-1", "C-2"]),
        ),
        max_size=12,
    )
)
def test_changes_no_loss_property(tmp_path: Path, rows: list[tuple[str, str, str, str]]) -> None:
    from ml.io.readers import read_changes

    path = tmp_path / "changes.csv"
    path.write_text("ds,team,kind,description,id\n" + "".join(f"{d},{t},{k},x,{i}\n" for d, t, k, i in rows))
    res = read_changes(path)
    assert res.records_in == len(rows) == res.accepted + res.quarantined


def test_a_field_no_incident_field_reads_is_noted_once_per_file_with_what_to_rename_it(
    tmp_path: Path,
) -> None:
    csv_path = tmp_path / "inc.csv"
    csv_path.write_text(
        "id,title,summary,started_at,component,Team,ticket_url\n"
        + "".join(f"I{i},t,s,2025-01-0{i + 1}T00:00:00Z,api,pay,https://t/{i}\n" for i in range(3)),
        encoding="utf-8",
    )
    res = read_incidents(csv_path)
    assert res.accepted == 3 and res.records_in == res.accepted + res.quarantined
    assert [(n.line, n.field, n.reason) for n in res.unread] == [
        (2, "component", "field 'component' is not read (rename it service to split the incidents by it)"),
        (2, "Team", "field 'Team' is not read (field names are lower case with _: rename it team)"),
        (
            2,
            "ticket_url",
            "field 'ticket_url' is not read (an incident's fields are "
            + ", ".join(Incident.model_fields)
            + ")",
        ),
    ]
    assert all(n in res.notes for n in res.unread)
    # JSONL: a key first seen on a later line is noted there, once; a rejected record notes nothing
    path = _jsonl(
        tmp_path / "inc.jsonl",
        [
            dict(GOOD, id="A"),
            dict(GOOD, id="B", squad="sre"),
            dict(GOOD, id="C", squad="x"),
            {"id": "D", "x": 1},
        ],
    )
    res = read_incidents(path)
    assert [(n.line, n.field) for n in res.unread] == [(2, "squad")]
    assert "rename it team to split the incidents by it" in res.unread[0].reason
    # Markdown front matter
    folder = tmp_path / "pm"
    folder.mkdir()
    (folder / "a.md").write_text(MD.replace("id: PM-1\n", "id: PM-1\nauthor: someone\n"), encoding="utf-8")
    assert [n.field for n in read_incidents(folder).unread] == ["author"]


def test_a_misspelt_experiment_field_is_noted_with_the_field_it_meant(tmp_path: Path) -> None:
    path = tmp_path / "exp.yaml"
    path.write_text(
        "- id: E1\n  name: x\n  hypothesis: {problem: a, solution: b, metric: c}\n  indicator: reopens\n"
        "  treated: payments\n  contols: [data]\n  start: 2025-03-03\n",
        encoding="utf-8",
    )
    res = read_experiments(path)
    assert res.accepted == 1 and res.records[0].controls == []
    assert [(n.line, n.field, n.reason) for n in res.unread] == [
        (1, "contols", "field 'contols' is not read (did you mean controls?)")
    ]


def test_unread_field_notes_are_bounded_and_quick_on_huge_names(tmp_path: Path) -> None:
    import time

    row = {"k" * 1_000_000: 1} | dict(GOOD) | {f"extra_{i}": i for i in range(300)}
    path = _jsonl(tmp_path / "inc.jsonl", [row])
    t0 = time.perf_counter()
    res = read_incidents(path)
    assert time.perf_counter() - t0 < 5.0
    assert res.accepted == 1 and len(res.unread) == 100 and len(res.notes) == 100
    assert res.unread[0].field == "k" * 80 and res.unread[0].reason.startswith(
        f"field '{'k' * 77}...' is not read"
    )


@settings(max_examples=300, deadline=None)
@given(
    st.tuples(
        st.text(min_size=1),
        st.one_of(st.none(), st.text(min_size=1)),
        st.one_of(st.none(), st.text(min_size=1)),
    ),
    st.tuples(
        st.text(min_size=1),
        st.one_of(st.none(), st.text(min_size=1)),
        st.one_of(st.none(), st.text(min_size=1)),
    ),
)
def test_series_ids_round_trip_and_never_collide(a: tuple, b: tuple) -> None:
    """A team called platform/infra (or a service a=b) is one value: its id parses back to it, and two different
    series never share an id (before, team "a/service=b" and team a x service b were one series)."""
    from ml.io.schemas import parse_series_key, series_key

    ka = series_key(a[0], team=a[1], service=a[2])
    kb = series_key(b[0], team=b[1], service=b[2])
    assert parse_series_key(ka) == {"indicator": a[0], "team": a[1] or None, "service": a[2] or None}
    assert (ka == kb) == ((a[0], a[1] or None, a[2] or None) == (b[0], b[1] or None, b[2] or None))


def test_a_team_with_a_slash_is_its_own_series_and_its_own_slice(tmp_path: Path) -> None:
    import numpy as np
    import pandas as pd

    from ml.causes import explain_signals

    path = tmp_path / "ind.csv"
    rng = np.random.default_rng(3)
    rows = ["indicator,ds,y,team,service"]
    for w in range(80):
        ds = (pd.Timestamp("2024-01-01") + pd.Timedelta(weeks=w)).date()
        rows.append(
            f"incidents,{ds},{10 + rng.normal(0, 1) + (8 if w >= 50 else 0):.2f},platform/service=infra,"
        )
        rows.append(f"incidents,{ds},{10 + rng.normal(0, 1):.2f},platform,infra")
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    res = read_indicators(path)
    assert (
        res.accepted == 160 and res.quarantined == 0
    )  # before: one series, the second row of a date a duplicate
    frame = indicators_frame(res.records)
    assert sorted(frame.series.unique()) == [
        "incidents/team=platform%2Fservice%3Dinfra",
        "incidents/team=platform/service=infra",
    ]
    # the slice that moved the total is named by a key that says which team it is (and its one service, db)
    frame = frame.assign(service=frame.service.fillna("db")).drop(columns="series")
    total = [s for s in explain_signals(frame) if s["series"] == "incidents"]
    assert total and total[0]["causes"][0]["key"] == "service=db,team=platform%2Fservice%3Dinfra"
    # people read the value itself
    assert total[0]["causes"][0]["summary"].startswith("service=db,team=platform/service=infra accounts for")


def test_unread_field_notes_are_once_per_field_across_files_and_bounded_for_indicators(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "pm"
    folder.mkdir()
    for i in range(30):
        (folder / f"pm{i}.md").write_text(
            MD.replace("id: PM-1\n", f"id: PM-{i}\nauthors: someone\nstatus: final\n"), encoding="utf-8"
        )
    res = read_incidents(folder)
    assert res.accepted == 30 and [n.field for n in res.unread] == ["authors", "status"]
    wide = tmp_path / "wide.csv"
    header = ["indicator", "ds", "y", *(f"extra_{i}" for i in range(300)), "x" * 5000]
    wide.write_text(",".join(header) + "\n" + ",".join(["reopens", "2025-01-06", "1"] + ["0"] * 301) + "\n")
    res = read_indicators(wide)
    assert res.accepted == 1 and len(res.unread) == 100 and len(res.notes) == 100


def test_a_header_in_another_case_or_not_comma_separated_says_what_to_rename(tmp_path: Path) -> None:
    from ml.io.readers import read_changes

    row = "2025-01-06,payments,deploy,Canary skipped,CHG-1\n"
    upper = tmp_path / "upper.csv"
    upper.write_text("DS,Team,Kind,Description,ID\n" + row, encoding="utf-8")
    res = read_changes(upper)
    assert res.records_in == 1 and not res.records
    assert res.rejects[0].reason.endswith(
        "(rename 'DS' to ds, 'Kind' to kind, 'Description' to description: field names are read as written)"
    )
    semi = tmp_path / "semi.csv"
    semi.write_text("ds;team;kind;description;id\n" + row.replace(",", ";"), encoding="utf-8")
    (reject,) = read_changes(semi).rejects
    assert reject.reason.endswith(
        "(the header 'ds;team;kind;description;id' is one column: separate the columns with commas, not ';')"
    )
    good = tmp_path / "good.csv"
    good.write_text("ds,team,kind,description,id\n2025-01-06,payments,deploy,,CHG-1\n", encoding="utf-8")
    (reject,) = read_changes(good).rejects  # a missing value of a field the header has: no rename hint
    assert "rename" not in reject.reason and "header" not in reject.reason
    path = tmp_path / "exp.yaml"
    path.write_text(
        "- id: EXP-1\n  name: n\n  hypothesis: {problem: p, solution: s, metric: m}\n  indicator: incidents\n"
        "  treated: payments\n  Start: 2025-01-06\n",
        encoding="utf-8",
    )
    (reject,) = read_experiments(path).rejects
    assert "rename 'Start' to start" in reject.reason


def test_a_date_given_as_a_number_is_refused_with_what_to_write(tmp_path: Path) -> None:
    path = tmp_path / "indicators.csv"
    path.write_text(
        "indicator,ds,y,team\nincidents,45610,3,payments\nincidents,20251221,4,payments\n"
        "incidents,0,5,payments\nincidents,2025-12-29,6,payments\n",
        encoding="utf-8",
    )
    res = read_indicators(path)
    assert res.records_in == 4 and [str(r.ds) for r in res.records] == ["2025-12-29"]
    reasons = [r.reason for r in res.rejects]
    assert "a spreadsheet's day number or a timestamp? export the column as a date" in reasons[0]
    assert "(got '20251221': write it 2025-12-21)" in reasons[1]
    assert "(got '0':" in reasons[2]  # read as seconds since 1970 before: 1970-01-01, accepted in silence


def test_default_change_ids_never_clash(tmp_path: Path) -> None:
    from ml.io.readers import read_changes

    head = "ds,team,kind,description,id\n"
    a = tmp_path / "a.csv"
    a.write_text(
        head + "2025-01-06,payments,deploy,one,\n2025-01-13,payments,deploy,two,CHG-2\n", encoding="utf-8"
    )
    b = tmp_path / "b.csv"
    b.write_text(head + "2025-01-20,data,deploy,three,\n", encoding="utf-8")
    res = read_changes([a, b])
    # line 2 of a.csv has no id, and a.csv names CHG-2 itself (line 3); line 2 of b.csv has no id either
    assert not res.rejects and [c.id for c in res.records] == ["CHG-a-2", "CHG-2", "CHG-b-2"]
    assert [c.id for c in read_changes(b).records] == ["CHG-2"]
