"""Readers with validation: incidents (JSONL, JSON, CSV, Markdown folder), indicators (CSV, Parquet),
experiments (YAML, JSON).

Every reader validates every record. A bad record never stops the good ones: it goes to the quarantine list with
the file, line (or record index), field and reason, and ``records in == accepted + quarantined`` always holds.
Nothing is skipped without a word: a file no reader recognises is itself a quarantined entry naming it, a UTF-8
byte-order mark (what spreadsheet tools write) is accepted, a CSV field over ``CSV_FIELD_LIMIT`` quarantines its
row only, and YAML aliases (which can expand exponentially) are refused with the line of the first one.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import logging
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Generic, Literal, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from ml.errors import InputError
from ml.io.schemas import Experiment, Incident, IndicatorObservation, series_key

log = logging.getLogger(__name__)

T = TypeVar("T", bound=BaseModel)
Kind = Literal["incidents", "indicators", "experiments"]

_DATETIME_FIELDS = {
    "incidents": ("started_at", "detected_at", "resolved_at"),
    "indicators": (),
    "experiments": (),
}
_NAIVE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?$")
_BOM = b"\xef\xbb\xbf"
CSV_FIELD_LIMIT = 1024 * 1024  # characters in one CSV field; a row with a longer one is quarantined
INCIDENT_SUFFIXES = (".jsonl", ".json", ".csv", ".md", ".markdown")
INDICATOR_SUFFIXES = (".csv", ".parquet", ".pq")
EXPERIMENT_SUFFIXES = (".yaml", ".yml", ".json")


@dataclass(frozen=True)
class Reject:
    """One quarantined record (or, in ``notes``, one accepted record with a remark)."""

    file: str
    line: int | None
    field: str | None
    reason: str
    record: str | None = None  # the record id when known

    def __post_init__(self) -> None:
        # A reason is one line (log lines and the CLI table are grepped): YAML and JSON errors span several.
        object.__setattr__(self, "reason", " ".join(self.reason.split()))

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        fld = f" [{self.field}]" if self.field else ""
        return f"{where}{fld}: {self.reason}"


@dataclass
class ReadResult(Generic[T]):
    """What a reader returns: accepted records, quarantined ones, and notes on accepted ones."""

    kind: Kind
    sources: list[str] = field(default_factory=list)
    records: list[T] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)
    notes: list[Reject] = field(default_factory=list)
    records_in: int = 0

    @property
    def accepted(self) -> int:
        return len(self.records)

    @property
    def quarantined(self) -> int:
        return len(self.rejects)

    def merge(self, other: ReadResult[T]) -> ReadResult[T]:
        if other.kind != self.kind:
            raise InputError(f"cannot merge {other.kind} into {self.kind}", field="kind", value=other.kind)
        self.sources += other.sources
        self.records += other.records
        self.rejects += other.rejects
        self.notes += other.notes
        self.records_in += other.records_in
        return self

    def summary(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "sources": self.sources,
            "records_in": self.records_in,
            "accepted": self.accepted,
            "quarantined": self.quarantined,
            "rejects": [asdict(r) for r in self.rejects],
            "notes": [asdict(n) for n in self.notes],
        }


# ---------------------------------------------------------------------------------------------- validation core


def _error_field(err: dict[str, Any]) -> str:
    loc = [str(p) for p in err.get("loc", ()) if not str(p).startswith("function-")]
    return ".".join(loc) if loc else "record"


def _reason(err: dict[str, Any]) -> str:
    msg = str(err.get("msg", "invalid value"))
    msg = msg.removeprefix("Value error, ")
    if err.get("type") == "string_too_short" and (err.get("ctx") or {}).get("min_length") == 1:
        return "is empty (text is required)"
    if err.get("type") == "missing":
        return "is required but missing"
    if "input" in err and err.get("type") not in ("missing",) and not isinstance(err["input"], dict | list):
        shown = repr(err["input"])
        if len(shown) > 60:
            shown = shown[:57] + "..."
        msg = f"{msg} (got {shown})"
    return msg


class _Validator(Generic[T]):
    """Validates raw dicts into models, tracking duplicates and naive datetimes."""

    def __init__(
        self,
        model: type[T],
        result: ReadResult[T],
        key: Callable[[T], Any],
        key_name: str,
    ) -> None:
        self.model = model
        self.result = result
        self.key = key
        self.key_name = key_name
        self.seen: dict[Any, str] = {}

    def add(self, raw: Any, file: str, line: int | None) -> None:
        self.result.records_in += 1
        if not isinstance(raw, dict):
            self.result.rejects.append(
                Reject(file, line, None, f"expected an object, got {type(raw).__name__}")
            )
            return
        rid = raw.get("id")
        rid_s = str(rid) if rid is not None else None
        try:
            rec = self.model.model_validate(raw)
        except ValidationError as exc:
            errs = exc.errors()
            fld = _error_field(errs[0])
            reason = "; ".join(f"{_error_field(e)}: {_reason(e)}" for e in errs)
            self.result.rejects.append(Reject(file, line, fld, reason, rid_s))
            return
        k = self.key(rec)
        if k in self.seen:
            self.result.rejects.append(
                Reject(
                    file,
                    line,
                    self.key_name,
                    f"duplicate {self.key_name} {k!r} (first seen at {self.seen[k]})",
                    rid_s,
                )
            )
            return
        self.seen[k] = f"{file}:{line}" if line is not None else file
        for name in _DATETIME_FIELDS[self.result.kind]:
            v = raw.get(name)
            if isinstance(v, str) and _NAIVE_RE.match(v.strip()):
                self.result.notes.append(
                    Reject(file, line, name, "timezone-naive datetime taken as UTC", rid_s)
                )
            elif isinstance(v, dt.datetime) and v.tzinfo is None:
                self.result.notes.append(
                    Reject(file, line, name, "timezone-naive datetime taken as UTC", rid_s)
                )
        self.result.records.append(rec)


_BLANK = " \t\r\n\x0b\x0c"


def _decode_lines(path: Path, result: ReadResult[Any]) -> Iterator[tuple[int, str | None]]:
    """Yield (line number, text) per line; a line that is not UTF-8 yields None and is quarantined by the caller."""
    with path.open("rb") as fh:
        for no, raw in enumerate(fh, start=1):
            if no == 1:
                raw = raw.removeprefix(_BOM)
            try:
                yield no, raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                result.records_in += 1
                result.rejects.append(
                    Reject(
                        str(path),
                        no,
                        None,
                        f"not valid UTF-8 (byte 0x{raw[exc.start]:02x} at column {exc.start + 1})",
                    )
                )
                yield no, None


# ---------------------------------------------------------------------------------------------- incidents


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


def _line_of(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


def _decode_file(path: Path, result: ReadResult[Any]) -> str | None:
    """The whole file as text (a byte-order mark dropped); None, after quarantining it, when it is not UTF-8."""
    data = path.read_bytes().removeprefix(_BOM)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        result.records_in += 1
        result.rejects.append(
            Reject(
                str(path),
                _line_of(data, exc.start),
                None,
                f"not valid UTF-8 (byte 0x{data[exc.start]:02x} at byte offset {exc.start})",
            )
        )
        return None


def _unrecognised(path: Path, result: ReadResult[Any], why: str) -> None:
    """A file no reader takes is quarantined by name, never skipped."""
    result.records_in += 1
    result.rejects.append(Reject(str(path), None, "path", why))


def unrecognised(path: str | Path) -> Reject:
    """The quarantine entry for a path that is not a Recur data file (``detect_kind`` gave None)."""
    p = Path(path)
    if p.is_dir():
        what = "a folder without Markdown postmortems"
    elif p.suffix.lower() == ".csv":
        what = "a CSV whose header has neither indicator,ds,y (indicators) nor id,title (incidents)"
    else:
        what = f"unrecognised file type {p.suffix or '(none)'!r}"
    return Reject(str(p), None, "path", f"not a Recur data file: {what}")


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


def _load_json_file(path: Path, result: ReadResult[Any]) -> Any:
    text = _decode_file(path, result)
    if text is None:
        return None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        result.records_in += 1
        result.rejects.append(
            Reject(str(path), exc.lineno, None, f"invalid JSON: {exc.msg} at column {exc.colno}")
        )
        return None
    except RecursionError:
        result.records_in += 1
        result.rejects.append(Reject(str(path), 1, None, "invalid JSON: nested too deeply"))
        return None
    if not isinstance(data, dict | list):
        result.records_in += 1
        result.rejects.append(
            Reject(str(path), 1, None, f"expected a list or an object, got {type(data).__name__}")
        )
        return None
    return data


_LIST_COLUMNS = ("contributing_factors", "tags")


def _csv_rows(path: Path, result: ReadResult[Any]) -> Iterator[tuple[int, dict[str, str]]]:
    """Rows of a CSV as dicts with the physical line each starts on; undecodable lines, rows with the wrong
    number of columns and rows with a field over ``CSV_FIELD_LIMIT`` characters are quarantined."""
    good: list[str] = []
    numbers: list[int] = []
    for no, text in _decode_lines(path, result):
        if text is not None:
            good.append(text)
            numbers.append(no)
    if not good:
        return
    data = "".join(good)
    # The csv module's own limit (128 KiB) raises mid-row and loses its place in a quoted multi-line field: lift
    # it to the file's size (which bounds every field) and apply CSV_FIELD_LIMIT per row instead.
    csv.field_size_limit(max(csv.field_size_limit(), len(data) + 1))
    reader = csv.reader(io.StringIO(data))

    def physical(n: int) -> int:
        return numbers[min(max(n, 1), len(numbers)) - 1]

    header: list[str] | None = None
    done = 0  # lines of `data` consumed so far
    while True:
        start = done + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:  # defensive: the csv module resynchronises at the next line
            done = reader.line_num
            result.records_in += 1
            result.rejects.append(Reject(str(path), physical(start), None, f"invalid CSV: {exc}"))
            continue
        done = reader.line_num
        line, last = physical(start), physical(done)
        if header is None:
            header = [h.strip() for h in row]
            continue
        if not any(c.strip() for c in row):
            continue
        span = f" (the row spans lines {line}-{last}: an unclosed quote?)" if last - line > 0 else ""
        longest = max(len(c) for c in row)
        if longest > CSV_FIELD_LIMIT:
            result.records_in += 1
            result.rejects.append(
                Reject(
                    str(path),
                    line,
                    None,
                    f"a field of {longest} characters is over the limit of {CSV_FIELD_LIMIT}{span}",
                )
            )
            continue
        if len(row) != len(header):
            result.records_in += 1
            result.rejects.append(
                Reject(str(path), line, None, f"expected {len(header)} columns, got {len(row)}{span}")
            )
            continue
        yield line, dict(zip(header, row, strict=True))


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


_SECTION_FIELDS = {
    "summary": "summary",
    "impact": "impact",
    "timeline": "timeline",
    "root cause": "root_cause",
    "root causes": "root_cause",
    "contributing factors": "contributing_factors",
    "action items": "action_items",
}
_ACTION_RE = re.compile(
    r"^[-*]\s*\[(?P<done>[ xX~-])\]\s*(?:(?P<id>[A-Za-z][\w.-]*)\s*:\s*)?(?P<title>.+?)\s*"
    r"(?:\((?P<meta>[^()]*)\))?\s*$"
)
_META_RE = re.compile(r"(created|closed)\s*:?\s*(\d{4}-\d{2}-\d{2}(?:[T ][\d:.]+Z?)?)", re.I)


class NoAliasLoader(yaml.SafeLoader):
    """A safe YAML loader that refuses aliases (``*name``): nested aliases expand exponentially downstream."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(
                None, None, "YAML aliases (*name) are not allowed", event.start_mark
            )
        return super().compose_node(parent, index)


def load_yaml(text: str) -> tuple[Any, yaml.Node | None]:
    """Parse YAML once, without aliases: the data and its node tree (for line numbers)."""
    loader = NoAliasLoader(text)
    try:
        node = loader.get_single_node()
        data = None if node is None else loader.construct_document(node)
        return data, node
    finally:
        loader.dispose()


def _yaml_problem(exc: Exception) -> tuple[int | None, str]:
    """(0-based line, one-line reason) of a YAML error; RecursionError for absurdly deep nesting."""
    if isinstance(exc, RecursionError):
        return None, "nested too deeply"
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None)
    return (mark.line if mark is not None else None), str(problem or exc)


class FrontMatterError(InputError):
    """A Markdown postmortem's front matter is unusable; ``line`` is the line in the file."""

    def __init__(self, message: str, line: int) -> None:
        super().__init__(message, field="front_matter")
        self.line = line


def _parse_action_items(body: str, incident_id: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for i, line in enumerate(ln.strip() for ln in body.splitlines()):
        if not line or line[0] not in "-*":
            continue
        m = _ACTION_RE.match(line)
        if not m:
            items.append(
                {"id": f"{incident_id}-AI{i + 1}", "title": line.lstrip("-* ").strip(), "status": "open"}
            )
            continue
        mark = m.group("done")
        status = "done" if mark in "xX" else ("wontfix" if mark in "~-" else "open")
        item: dict[str, Any] = {
            "id": m.group("id") or f"{incident_id}-AI{i + 1}",
            "title": m.group("title"),
            "status": status,
        }
        for kind, value in _META_RE.findall(m.group("meta") or ""):
            item[f"{kind.lower()}_at"] = value
        items.append(item)
    return items


def _bullets(body: str) -> list[str]:
    lines = [ln.strip() for ln in body.splitlines() if ln.strip()]
    if lines and all(ln[0] in "-*" for ln in lines):
        return [ln.lstrip("-* ").strip() for ln in lines]
    return [" ".join(lines)] if lines else []


def parse_markdown_postmortem(text: str) -> dict[str, Any]:
    """Turn a Markdown postmortem (YAML front matter + sections by heading) into a raw incident dict."""
    raw: dict[str, Any] = {}
    text = text.removeprefix("\ufeff")
    body = text
    if text.startswith("---"):
        end = text.find("\n---", 3)
        if end == -1:
            raise FrontMatterError("front matter is not closed by a '---' line", 1)
        try:
            front = load_yaml(text[3:end])[0] or {}
        except (yaml.YAMLError, RecursionError) as exc:
            line, problem = _yaml_problem(exc)
            # text[3:] starts on the file's first line, so YAML line 0 is line 1
            raise FrontMatterError(
                f"front matter is not valid YAML: {problem}", 1 if line is None else line + 1
            ) from exc
        if not isinstance(front, dict):
            raise FrontMatterError("front matter is not a mapping", 2)
        raw.update(front)
        body = text[end + 4 :]
    sections: dict[str, list[str]] = {}
    current: str | None = None
    preamble: list[str] = []
    for line in body.splitlines():
        m = re.match(r"^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$", line)
        if m:
            name = m.group(1).strip().lower().rstrip(":")
            if name in _SECTION_FIELDS:
                current = _SECTION_FIELDS[name]
                sections.setdefault(current, [])
                continue
            if current is None and "title" not in raw:
                raw["title"] = m.group(1).strip()
                continue
            current = "_other"  # an unknown section: kept out of the known fields
            sections.setdefault(current, [])
            continue
        if current is None:
            preamble.append(line)
        else:
            sections[current].append(line)
    sections.pop("_other", None)
    for fld, lines in sections.items():
        content = "\n".join(lines).strip()
        if fld == "contributing_factors":
            raw[fld] = _bullets(content)
        elif fld == "action_items":
            raw[fld] = _parse_action_items(content, str(raw.get("id", "PM")))
        else:
            raw[fld] = content or None
    if "summary" not in raw and "\n".join(preamble).strip():
        raw["summary"] = "\n".join(preamble).strip()
    for name in ("started_at", "detected_at", "resolved_at"):
        if isinstance(raw.get(name), dt.datetime | dt.date):
            raw[name] = raw[name].isoformat()
    return raw


def _read_markdown_folder(path: Path, v: _Validator[Incident]) -> None:
    """Every Markdown file under `path` is a postmortem, except README.md; any other file is quarantined by
    name. Hidden files and folders (``.git``, ``.DS_Store``) are left out, with a log line saying how many."""
    hidden = 0
    for f in sorted(path.rglob("*")):
        rel = f.relative_to(path).parts
        if any(part.startswith(".") for part in rel):
            hidden += not f.is_dir()
            continue
        if f.is_dir() or f.name.lower() == "readme.md":
            continue
        if f.suffix.lower() in (".md", ".markdown"):
            _read_markdown_file(f, v)
        else:
            _unrecognised(
                f,
                v.result,
                f"not a postmortem: only .md and .markdown files are read in a folder, got {f.name!r}",
            )
    if hidden:
        log.warning("Reading - %s: %d hidden files (names starting with '.') left out", path, hidden)


def _read_markdown_file(f: Path, v: _Validator[Incident]) -> None:
    text = _decode_file(f, v.result)
    if text is None:
        return
    try:
        raw = parse_markdown_postmortem(text)
    except InputError as exc:
        v.result.records_in += 1
        v.result.rejects.append(Reject(str(f), getattr(exc, "line", 1), exc.field, exc.message))
        return
    v.add(raw, str(f), 1)


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


def _unsupported(kind: str, p: Path, suffixes: tuple[str, ...]) -> str:
    return f"unsupported {kind} file type {p.suffix or '(none)'!r} (expected {', '.join(suffixes)})"


def _indicator_key(rec: IndicatorObservation) -> tuple[str, dt.date]:
    return (rec.series, rec.ds)


def read_indicators(paths: str | Path | Iterable[str | Path]) -> ReadResult[IndicatorObservation]:
    """Read long-format indicator observations (indicator, ds, y[, team][, service]) from CSV or Parquet."""
    result: ReadResult[IndicatorObservation] = ReadResult(kind="indicators")
    v = _Validator(IndicatorObservation, result, _indicator_key, "series+ds")
    for p in _as_paths(paths):
        result.sources.append(str(p))
        if p.suffix.lower() == ".csv":
            for line, row in _csv_rows(p, result):
                v.add({k: val for k, val in row.items() if val.strip() != ""}, str(p), line)
        elif p.suffix.lower() in (".parquet", ".pq"):
            import pandas as pd

            try:
                frame = pd.read_parquet(p)
            except Exception as exc:  # pyarrow raises many types for a broken file
                _unrecognised(p, result, f"cannot read Parquet: {exc}")
                continue
            for i, row in enumerate(frame.to_dict(orient="records")):
                v.add(row, str(p), i + 1)
        else:
            _unrecognised(p, result, _unsupported("indicator", p, INDICATOR_SUFFIXES))
    _log_result(result)
    return result


def indicators_frame(records: Iterable[IndicatorObservation]):  # -> pd.DataFrame
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
}


def read_path(path: str | Path, kind: Kind | None = None) -> ReadResult[Any]:
    """Read one file or folder of the given (or detected) kind."""
    kind = kind or detect_kind(path)
    if kind is None:
        raise InputError(f"{path}: not a recognised Recur data file", field="path", value=str(path))
    return READERS[kind](path)


def _log_result(result: ReadResult[Any]) -> None:
    log.info(
        "Reading - %s: %d in, %d accepted, %d quarantined",
        result.kind,
        result.records_in,
        result.accepted,
        result.quarantined,
    )
    for r in result.rejects[:20]:
        log.warning("Reading - quarantined %s", r)
