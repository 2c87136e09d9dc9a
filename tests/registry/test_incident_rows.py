"""The incidents of a pattern artifact: the fast reading (pydantic-core on each line's bytes) accepts exactly what
the line-by-line reading accepts, with the same incidents, and leaves every refusal to it, so the message still
names the first bad line and field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ml.registry.artifacts import ArtifactError
from ml.registry.incident_rows import (
    _check_incident_rows,
    _incident_rows_fast,
    _jsonl,
    read_incident_rows,
)


def _row(i: int, **changes: object) -> dict[str, object]:
    row: dict[str, object] = {
        "id": f"INC-{i}",
        "title": f"database {i} ran out of connections",
        "summary": "checkout failed for 20 minutes",
        "root_cause": "a report query held every connection",
        "service": "orders-db",
        "team": "storage",
        "severity": "SEV2",
        "started_at": "2026-01-21T16:23:00Z",
        "resolved_at": "2026-01-21T17:00:00Z",
        "action_items": [
            {"id": f"AI-{i}", "title": "add an index", "status": "done", "closed_at": "2026-01-22T09:00:00Z"}
        ],
        "pattern_id": i % 3 - 1,
    }
    row.update(changes)
    return {k: v for k, v in row.items() if v is not ...}


def _write(path: Path, rows: list[object], sep: str = "\n") -> Path:
    path.write_text(
        sep.join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n", encoding="utf-8"
    )
    return path


def _slow(path: Path) -> list[tuple[object, int]]:
    return _check_incident_rows(path, _jsonl(path))


# Rows the fast reading takes as they are: the values the schema normalises (severity spellings, offsets and naive
# times, padded text, tags as one string), extra fields, an empty line and a line of spaces between rows.
ODD_BUT_VALID = [
    _row(0),
    _row(1, severity="sev-3", started_at="2026-01-21T18:23:00+02:00", resolved_at="2026-01-21T17:00:00"),
    _row(2, severity=1, title="  padded title  ", tags="db; connections\nreports", extra_field={"x": 1}),
    "",
    "   ",
    _row(3, action_items=[], root_cause=None, service=None, reopened=2, summary="é ü 日本 \\u00e9"),
    _row(4, pattern_id=10**20, root_cause="a \u00a0 non-breaking space and a tab\there"),
]


def test_the_fast_reading_gives_the_same_incidents_as_the_line_by_line_one(tmp_path: Path) -> None:
    path = _write(tmp_path / "incidents.jsonl", ODD_BUT_VALID)
    fast = _incident_rows_fast(path)
    assert fast is not None  # taken by the fast reading
    incidents, ids = fast
    assert incidents == _slow(path) and read_incident_rows(path) == fast
    assert ids == [f"INC-{i}" for i in range(5)]
    assert incidents[1][0].severity == "SEV3" and incidents[2][0].title == "padded title"
    assert incidents[1][0].started_at.isoformat() == "2026-01-21T16:23:00+00:00"


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (
            _row(9, action_items=[{"id": "AI", "title": "t", "status": "maybe"}]),
            "field action_items.0.status",
        ),
        (_row(9, root_cause=42), "field root_cause: Input should be a valid string"),
        (_row(9, started_at="2026-13-01T00:00:00Z"), "field started_at"),
        (
            _row(9, resolved_at="2020-01-01T00:00:00Z"),
            "field : Value error, resolved_at is before started_at",
        ),
        (_row(9, started_at="0001-01-01T00:00:00Z"), "field started_at: Value error, 0001-01-01 is outside"),
        (_row(9, pattern_id=True), "field pattern_id must be an integer"),
        (_row(9, pattern_id=1.0), "field pattern_id must be an integer"),
        (_row(9, pattern_id=...), "field pattern_id must be an integer"),
        (_row(9, title=""), "field title"),
        (_row(9, summary="   "), "field summary"),
    ],
)
def test_a_bad_row_is_refused_naming_its_line_and_field_as_before(
    tmp_path: Path, bad: dict[str, object], message: str
) -> None:
    path = _write(tmp_path / "incidents.jsonl", [_row(0), _row(1), bad, _row(3)])
    assert _incident_rows_fast(path) is None  # left to the line-by-line reading
    with pytest.raises(ArtifactError) as slow:
        _slow(path)
    with pytest.raises(ArtifactError) as got:
        read_incident_rows(path)
    assert str(got.value) == str(slow.value)  # the message of the line-by-line reading, unchanged
    assert str(got.value).startswith(f"model artifact {path}: line 3: ") and message in str(got.value)


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ([json.dumps(_row(0)), "{not json"], ":2: not valid JSON"),
        # two rows on one line, or one row over two lines: not one JSON value per line
        ([json.dumps(_row(0)) + ", " + json.dumps(_row(1))], ":1: not valid JSON"),
        ([json.dumps(_row(0))[:40], json.dumps(_row(0))[40:]], ":1: not valid JSON"),
        # a line break that str.splitlines sees inside a row (U+2028 unescaped)
        (
            [
                json.dumps(_row(0)),
                json.dumps(_row(1), ensure_ascii=False).replace("checkout", "check\u2028out"),
            ],
            ":2: not valid JSON",
        ),
        (
            [json.dumps(_row(0)), json.dumps(_row(1, id=...))],
            "every line must be an incident with a string id",
        ),
        ([json.dumps(_row(0)), json.dumps(_row(1, id=7))], "every line must be an incident with a string id"),
        ([json.dumps(_row(0)), "[1, 2]"], "every line must be an incident with a string id"),
        ([json.dumps(_row(0)), json.dumps(_row(0))], "repeats incident id 'INC-0'"),
    ],
)
def test_a_bad_file_is_refused_as_before(tmp_path: Path, lines: list[str], message: str) -> None:
    path = tmp_path / "incidents.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert _incident_rows_fast(path) is None
    with pytest.raises(ArtifactError, match=message.replace("(", r"\(").replace("[", r"\[")) as got:
        read_incident_rows(path)
    assert str(got.value).startswith(f"model artifact {path}")


def test_odd_files_the_line_by_line_reading_takes_are_still_taken(tmp_path: Path) -> None:
    """A row without a summary (older artifacts: the title stands in), CRLF line ends, an escaped lone surrogate,
    bytes that are not UTF-8: the fast reading steps aside and the line-by-line one decides, as before."""
    legacy = _write(tmp_path / "legacy.jsonl", [_row(0), _row(1, summary=...), _row(2, summary=None)])
    assert _incident_rows_fast(legacy) is None
    incidents, ids = read_incident_rows(legacy)
    assert [i.summary for i, _ in incidents][1:] == [_row(1)["title"], _row(2)["title"]] and len(ids) == 3
    crlf = _write(tmp_path / "crlf.jsonl", [_row(0), _row(1)], sep="\r\n")
    assert _incident_rows_fast(crlf) is None and read_incident_rows(crlf)[1] == ["INC-0", "INC-1"]
    surrogate = tmp_path / "surrogate.jsonl"
    surrogate.write_text(json.dumps(_row(0)).replace("checkout", "check\\ud800out") + "\n", encoding="utf-8")
    with pytest.raises(ArtifactError, match="line 1: field summary"):
        read_incident_rows(surrogate)
    latin = tmp_path / "latin.jsonl"
    latin.write_bytes(json.dumps(_row(0)).replace("checkout", "caf\xe9").encode("latin-1") + b"\n")
    with pytest.raises(ArtifactError, match="not UTF-8 text"):
        read_incident_rows(latin)
