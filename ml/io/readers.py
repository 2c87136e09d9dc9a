"""Readers with validation: incidents (JSONL, JSON, CSV, Markdown folder), indicators (CSV, Parquet),
experiments (YAML, JSON), the change log (``changes.csv``).

Every reader validates every record. A bad record never stops the good ones: it goes to the quarantine list with
the file, line (or record index), field and reason, and ``records in == accepted + quarantined`` always holds.
Nothing is skipped without a word: a file no reader recognises is itself a quarantined entry naming it, a UTF-8
byte-order mark (what spreadsheet tools write) is accepted, a CSV field over ``CSV_FIELD_LIMIT`` quarantines its
row only, and YAML aliases (which can expand exponentially) are refused with the line of the first one.

The shared decoding and quarantine records are in ``ml.io.decoding``, Markdown postmortems in ``ml.io.markdown``;
their public names are re-exported here.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from ml.errors import InputError
from ml.io.decoding import (
    _BLANK,
    _BOM,
    CHANGE_SUFFIXES,
    CSV_FIELD_LIMIT,
    EXPERIMENT_SUFFIXES,
    INCIDENT_SUFFIXES,
    INDICATOR_SUFFIXES,
    Kind,
    NoAliasLoader,
    ReadResult,
    Reject,
    _csv_rows,
    _decode_file,
    _decode_lines,
    _load_json_file,
    _log_result,
    _unrecognised,
    _unsupported,
    _Validator,
    _yaml_problem,
    add_unread_note,
    load_yaml,
    shown_name,
    unrecognised,
)
from ml.io.markdown import (
    FrontMatterError,
    _read_markdown_file,
    _read_markdown_folder,
    parse_markdown_postmortem,
)
from ml.io.schemas import Change, Experiment, Incident, IndicatorObservation, series_key

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "CHANGE_SUFFIXES",
    "CSV_FIELD_LIMIT",
    "EXPERIMENT_SUFFIXES",
    "INCIDENT_SUFFIXES",
    "INDICATOR_SUFFIXES",
    "READERS",
    "FrontMatterError",
    "Kind",
    "NoAliasLoader",
    "ReadResult",
    "Reject",
    "changes_frame",
    "detect_kind",
    "indicators_frame",
    "load_yaml",
    "parse_markdown_postmortem",
    "read_changes",
    "read_experiments",
    "read_incidents",
    "read_indicators",
    "read_path",
    "unrecognised",
]

log = logging.getLogger(__name__)


def _incident_key(rec: Incident) -> str:
    return rec.id


def _parse_json_field(value: str, name: str) -> Any:
    value = value.strip()
    if not value:
        return None
    if value[0] in "[{":
        try:
            return json.loads(value)
        except json.JSONDecodeError as exc:
            raise InputError(f"{name} is not valid JSON: {exc.msg}", field=name, value=value) from exc
    return value


def _read_incidents_jsonl(path: Path, v: _Validator[Incident]) -> None:
    for no, text in _decode_lines(path, v.result):
        # Blank means ASCII whitespace only: str.strip() would also drop a line of, say, U+001C or U+0085,
        # which is not a record but must be reported, not skipped.
        if text is None or not text.strip(_BLANK):
            continue
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as exc:
            v.result.records_in += 1
            v.result.rejects.append(
                Reject(str(path), no, None, f"invalid JSON: {exc.msg} at column {exc.colno}")
            )
            continue
        except RecursionError:
            v.result.records_in += 1
            v.result.rejects.append(Reject(str(path), no, None, "invalid JSON: nested too deeply"))
            continue
        v.add(raw, str(path), no)


def _read_incidents_json(path: Path, v: _Validator[Incident]) -> None:
    data = _load_json_file(path, v.result)
    if data is None:
        return
    if isinstance(data, dict):
        data = data.get("incidents", [data])
    if not isinstance(data, list):
        _unrecognised(path, v.result, f"'incidents' is a {type(data).__name__}, expected a list")
        return
    for i, raw in enumerate(data):
        v.add(raw, str(path), i + 1)


_LIST_COLUMNS = ("contributing_factors", "tags")


def _read_incidents_csv(path: Path, v: _Validator[Incident]) -> None:
    for line, row in _csv_rows(path, v.result):
        raw: dict[str, Any] = {k: val for k, val in row.items() if val.strip() != ""}
        try:
            if raw.get("action_items"):
                raw["action_items"] = _parse_json_field(raw["action_items"], "action_items")
            for name in _LIST_COLUMNS:
                if raw.get(name) and raw[name].lstrip().startswith("["):
                    raw[name] = _parse_json_field(raw[name], name)
        except InputError as exc:
            v.result.records_in += 1
            v.result.rejects.append(Reject(str(path), line, exc.field, exc.message, raw.get("id")))
            continue
        v.add(raw, str(path), line)


def read_incidents(paths: str | Path | Iterable[str | Path]) -> ReadResult[Incident]:
    """Read incidents from JSONL, JSON, CSV files or folders of Markdown postmortems; ids unique across all."""
    result: ReadResult[Incident] = ReadResult(kind="incidents")
    v = _Validator(Incident, result, _incident_key, "id")
    for p in _as_paths(paths):
        result.sources.append(str(p))
        if p.is_dir():
            _read_markdown_folder(p, v)
        elif p.suffix.lower() == ".jsonl":
            _read_incidents_jsonl(p, v)
        elif p.suffix.lower() == ".json":
            _read_incidents_json(p, v)
        elif p.suffix.lower() == ".csv":
            _read_incidents_csv(p, v)
        elif p.suffix.lower() in (".md", ".markdown"):
            _read_markdown_file(p, v)
        else:
            _unrecognised(p, result, _unsupported("incident", p, INCIDENT_SUFFIXES))
    _log_result(result)
    return result


# ---------------------------------------------------------------------------------------------- indicators


def _indicator_key(rec: IndicatorObservation) -> tuple[str, dt.date]:
    return (rec.series, rec.ds)


def _note_unread_columns(
    result: ReadResult[IndicatorObservation], path: Path, columns: Iterable[Any]
) -> None:
    """One note per column of an indicator file that no field reads (a ``component`` or ``region`` column would
    otherwise vanish in silence, and the rows it told apart come back as duplicates)."""
    for col in map(str, columns):
        if col in IndicatorObservation.model_fields:
            continue
        field = col[:80].strip().lower()
        hint = (
            f"column names are lower case: rename it {field}"
            if field in IndicatorObservation.model_fields
            else "rename it team or service to split the indicator on it"
        )
        reason = (
            f"column {shown_name(col)!r} is not read: an indicator row has indicator, ds, y, team and service "
            f"({hint})"
        )
        if not add_unread_note(result, str(path), 1, col, reason):
            break


def read_indicators(paths: str | Path | Iterable[str | Path]) -> ReadResult[IndicatorObservation]:
    """Read long-format indicator observations (indicator, ds, y[, team][, service]) from CSV or Parquet; a column
    that is none of these is noted once per file."""
    result: ReadResult[IndicatorObservation] = ReadResult(kind="indicators")
    v = _Validator(IndicatorObservation, result, _indicator_key, "series+ds", note_unread=False)
    for p in _as_paths(paths):
        result.sources.append(str(p))
        if p.suffix.lower() == ".csv":
            noted = False
            for line, row in _csv_rows(p, result):
                if not noted:
                    _note_unread_columns(result, p, row)
                    noted = True
                v.add({k: val for k, val in row.items() if val.strip() != ""}, str(p), line)
        elif p.suffix.lower() in (".parquet", ".pq"):
            import pandas as pd

            try:
                frame = pd.read_parquet(p)
            except Exception as exc:  # pyarrow raises many types for a broken file
                _unrecognised(p, result, f"cannot read Parquet: {exc}")
                continue
            _note_unread_columns(result, p, frame.columns)
            for i, row in enumerate(frame.to_dict(orient="records")):
                v.add(row, str(p), i + 1)
        else:
            _unrecognised(p, result, _unsupported("indicator", p, INDICATOR_SUFFIXES))
    _log_result(result)
    return result


def indicators_frame(records: Iterable[IndicatorObservation]) -> pd.DataFrame:
    """Long DataFrame ``series, indicator, team, service, ds (Timestamp), y`` sorted by series and date."""
    import pandas as pd

    rows = [
        {
            "series": series_key(r.indicator, team=r.team, service=r.service),
            "indicator": r.indicator,
            "team": r.team,
            "service": r.service,
            "ds": pd.Timestamp(r.ds),
            "y": float(r.y),
        }
        for r in records
    ]
    frame = pd.DataFrame(rows, columns=["series", "indicator", "team", "service", "ds", "y"])
    return frame.sort_values(["series", "ds"]).reset_index(drop=True)


# ---------------------------------------------------------------------------------------------- experiments


def _yaml_items_with_lines(text: str) -> list[tuple[Any, int | None]]:
    """Items of a YAML list (top level or under ``experiments:``) with the line where each starts."""
    data, node = load_yaml(text)
    if node is None:
        return []
    if isinstance(node, yaml.MappingNode) and isinstance(data, dict) and "experiments" in data:
        for k, val in node.value:
            if k.value == "experiments":
                node = val
                data = data["experiments"]
                break
    if isinstance(node, yaml.SequenceNode) and isinstance(data, list):
        return [(item, child.start_mark.line + 1) for item, child in zip(data, node.value, strict=True)]
    return [(data, 1)]


def read_experiments(paths: str | Path | Iterable[str | Path]) -> ReadResult[Experiment]:
    """Read experiment definitions from YAML or JSON (a list, or a mapping with an ``experiments`` list)."""
    result: ReadResult[Experiment] = ReadResult(kind="experiments")
    v = _Validator(Experiment, result, lambda e: e.id, "id")
    for p in _as_paths(paths):
        result.sources.append(str(p))
        suffix = p.suffix.lower()
        if suffix in (".yaml", ".yml"):
            text = _decode_file(p, result)
            if text is None:
                continue
            try:
                items = _yaml_items_with_lines(text)
            except (yaml.YAMLError, RecursionError) as exc:
                line, problem = _yaml_problem(exc)
                result.records_in += 1
                result.rejects.append(
                    Reject(str(p), 1 if line is None else line + 1, None, f"invalid YAML: {problem}")
                )
                continue
            for raw, line in items:
                v.add(raw, str(p), line)
        elif suffix == ".json":
            data = _load_json_file(p, result)
            if data is None:
                continue
            if isinstance(data, dict):
                data = data.get("experiments", [data])
            if not isinstance(data, list):
                _unrecognised(p, result, f"'experiments' is a {type(data).__name__}, expected a list")
                continue
            for i, raw in enumerate(data):
                v.add(raw, str(p), i + 1)
        else:
            _unrecognised(p, result, _unsupported("experiment", p, EXPERIMENT_SUFFIXES))
    _log_result(result)
    return result


# ---------------------------------------------------------------------------------------------- changes


def read_changes(paths: str | Path | Iterable[str | Path]) -> ReadResult[Change]:
    """Read the change log (CSV: ``ds``, ``team`` and/or ``service`` (empty: org-wide), ``kind``,
    ``description``, optional ``id``; a row without an id gets ``CHG-<line>``, or ``CHG-<file stem>-<line>`` in a
    second file or where a row of its file gives that id itself, so that a default id never clashes)."""
    result: ReadResult[Change] = ReadResult(kind="changes")
    v = _Validator(Change, result, lambda c: c.id, "id")
    for i, p in enumerate(_as_paths(paths)):
        result.sources.append(str(p))
        if p.suffix.lower() == ".csv":
            rows = list(_csv_rows(p, result))
            given = {str(r.get("id") or "").strip() for _, r in rows}
            for line, row in rows:
                raw: dict[str, Any] = {k: val for k, val in row.items() if val.strip() != ""}
                auto = f"CHG-{line}"
                raw.setdefault("id", auto if i == 0 and auto not in given else f"CHG-{p.stem}-{line}")
                v.add(raw, str(p), line)
        else:
            _unrecognised(p, result, _unsupported("change log", p, CHANGE_SUFFIXES))
    _log_result(result)
    return result


def changes_frame(records: Iterable[Change]) -> pd.DataFrame:
    """DataFrame ``id, ds (Timestamp), team, service, kind, description`` sorted by date and id."""
    import pandas as pd

    rows = [
        {
            "id": r.id,
            "ds": pd.Timestamp(r.ds),
            "team": r.team,
            "service": r.service,
            "kind": r.kind,
            "description": r.description,
        }
        for r in records
    ]
    frame = pd.DataFrame(rows, columns=["id", "ds", "team", "service", "kind", "description"])
    return frame.sort_values(["ds", "id"]).reset_index(drop=True)


# ---------------------------------------------------------------------------------------------- dispatch


def _as_paths(paths: str | Path | Iterable[str | Path]) -> list[Path]:
    items = [paths] if isinstance(paths, str | Path) else list(paths)
    out = []
    for p in items:
        path = Path(p)
        if not path.exists():
            raise InputError(f"{path}: no such file or folder", field="path", value=str(path))
        out.append(path)
    return out


def detect_kind(path: str | Path) -> Kind | None:
    """Guess what a file holds from its name and content; None when it is not a Recur data file."""
    p = Path(path)
    if p.is_dir():
        return "incidents" if any(p.rglob("*.md")) else None
    suffix = p.suffix.lower()
    if suffix in (".jsonl", ".md", ".markdown"):
        return "incidents"
    if suffix in (".yaml", ".yml"):
        return "experiments"
    if suffix in (".parquet", ".pq"):
        return "indicators"
    if suffix == ".csv":
        with p.open("rb") as fh:
            head = fh.readline().removeprefix(_BOM).decode("utf-8", errors="replace").lower()
        cols = {c.strip().strip('"') for c in head.split(",")}
        if {"indicator", "ds", "y"} <= cols:
            return "indicators"
        if {"ds", "kind", "description"} <= cols:
            return "changes"
        if {"id", "title"} <= cols:
            return "incidents"
        return None
    if suffix == ".json":
        head = p.read_bytes()[:4096].decode("utf-8", errors="replace")
        return "experiments" if '"hypothesis"' in head else "incidents"
    return None


READERS: dict[Kind, Callable[[Any], ReadResult[Any]]] = {
    "incidents": read_incidents,
    "indicators": read_indicators,
    "experiments": read_experiments,
    "changes": read_changes,
}


def read_path(path: str | Path, kind: Kind | None = None) -> ReadResult[Any]:
    """Read one file or folder of the given (or detected) kind."""
    kind = kind or detect_kind(path)
    if kind is None:
        raise InputError(f"{path}: not a recognised Recur data file", field="path", value=str(path))
    return READERS[kind](path)
