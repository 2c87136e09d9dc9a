"""What every reader shares: the quarantine records (``Reject``, ``ReadResult``), validation into the schemas, and
decoding that never loses count (UTF-8 lines and files, JSON files, CSV rows, YAML without aliases).

A record that cannot be decoded is quarantined with its file and line, so ``records in == accepted + quarantined``.
"""

from __future__ import annotations

import csv
import datetime as dt
import difflib
import io
import json
import logging
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Generic, Literal, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from ml.errors import InputError

log = logging.getLogger(__name__)

T = TypeVar("T", bound=BaseModel)
Kind = Literal["incidents", "indicators", "experiments", "changes"]

_DATETIME_FIELDS = {
    "incidents": ("started_at", "detected_at", "resolved_at"),
    "indicators": (),
    "experiments": (),
    "changes": (),
}
_NAIVE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?$")
_BOM = b"\xef\xbb\xbf"
CSV_FIELD_LIMIT = 1024 * 1024  # characters in one CSV field; a row with a longer one is quarantined
INCIDENT_SUFFIXES = (".jsonl", ".json", ".csv", ".md", ".markdown")
INDICATOR_SUFFIXES = (".csv", ".parquet", ".pq")
EXPERIMENT_SUFFIXES = (".yaml", ".yml", ".json")
CHANGE_SUFFIXES = (".csv",)


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
    #: The notes on fields (columns) no field of the record reads, one per file and field (also in ``notes``).
    unread: list[Reject] = field(default_factory=list)
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
        self.unread += other.unread
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


def _error_field(err: Mapping[str, Any]) -> str:
    loc = [str(p) for p in err.get("loc", ()) if not str(p).startswith("function-")]
    return ".".join(loc) if loc else "record"


def _missing_hint(errs: list[Any], raw: dict[Any, Any]) -> str:
    """Where a required field is missing, the name the record gives it instead (``DS``, ``Team``, ``desciption``),
    or a header whose columns are not separated by commas; "" when there is none."""
    keys = [str(k) for k in raw]
    glued = next((k for k in keys if ";" in k or "\t" in k), None)
    if glued is not None:
        sep = "';'" if ";" in glued else "a tab"
        return (
            f" (the header {shown_name(glued)!r} is one column: separate the columns with commas, not {sep})"
        )
    missing = [str(e["loc"][0]) for e in errs if e.get("type") == "missing" and len(e.get("loc", ())) == 1]
    meant = {_spelt(k, missing)[1]: k for k in reversed(keys) if k not in missing}
    renames = [f"{shown_name(meant[want])!r} to {want}" for want in missing if want in meant]
    return f" (rename {', '.join(renames)}: field names are read as written)" if renames else ""


def _spelt(name: str, fields: list[str]) -> tuple[str, str | None]:
    """(``name`` lower case with _, the field of ``fields`` it is another case or spelling of, if any)."""
    low = name.strip().lower().replace("-", "_").replace(" ", "_")[:80]
    return low, low if low in fields else next(
        iter(difflib.get_close_matches(low, fields, n=1, cutoff=0.8)), None
    )


def _reason(err: Mapping[str, Any]) -> str:
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


#: The reason of the note on a datetime without a time zone.
NAIVE_NOTE = "timezone-naive datetime taken as UTC"


class _Validator(Generic[T]):
    """Validates raw dicts into models, tracking duplicates and naive datetimes."""

    def __init__(
        self,
        model: type[T],
        result: ReadResult[T],
        key: Callable[[T], Any],
        key_name: str,
        note_unread: bool = True,
    ) -> None:
        self.model = model
        self.result = result
        self.key = key
        self.key_name = key_name
        self.seen: dict[Any, str] = {}
        self.note_unread = note_unread
        self.unread: set[str] = set()  # fields already noted

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
            self.result.rejects.append(Reject(file, line, fld, reason + _missing_hint(errs, raw), rid_s))
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
        if self.note_unread:
            self._note_unread(raw, file, line)
        for name in _DATETIME_FIELDS[self.result.kind]:
            v = raw.get(name)
            if isinstance(v, str) and _NAIVE_RE.match(v.strip()):
                self.result.notes.append(Reject(file, line, name, NAIVE_NOTE, rid_s))
            elif isinstance(v, dt.datetime) and v.tzinfo is None:
                self.result.notes.append(Reject(file, line, name, NAIVE_NOTE, rid_s))
        self.result.records.append(rec)

    def _note_unread(self, raw: dict[Any, Any], file: str, line: int | None) -> None:
        """One note per field of an accepted record that no field of the model reads, at its first file and line:
        a misspelt ``contols`` of an experiment, or an incidents export's ``component`` column, would otherwise
        vanish in silence (the experiment scored without its controls; every incident counted under one service).
        Once per field, not per file: a folder of 1,000 postmortems whose front matter has ``authors`` gives one."""
        fields = self.model.model_fields
        for name in raw:
            key = str(name)
            if key in fields or key in self.unread:
                continue
            self.unread.add(key)
            if not add_unread_note(
                self.result, file, line, key, unread_reason(self.result.kind, key, list(fields))
            ):
                return


def add_unread_note(result: ReadResult[Any], file: str, line: int | None, name: str, reason: str) -> bool:
    """Record (in ``notes`` and ``unread``) and log the note that field or column ``name`` is not read; False, and
    nothing recorded, once ``result`` holds ``MAX_UNREAD_NOTES`` of them."""
    if len(result.unread) >= MAX_UNREAD_NOTES:
        return False
    note = Reject(file, line, name[:80], reason)
    result.notes.append(note)
    result.unread.append(note)
    log.warning("Reading - note %s", note)
    return True


def shown_name(name: str) -> str:
    """A field or column name as a note quotes it: cut to 80 characters."""
    return name if len(name) <= 80 else name[:77] + "..."


#: Unread-field notes kept per reader (an export with hundreds of extra columns says so a hundred times at most).
MAX_UNREAD_NOTES = 100
#: Names of the fields an incident's other names most likely meant (a status page's component, a squad).
_MEANT = {
    "service": ("component", "components", "system", "product", "application", "app", "service_name"),
    "team": ("squad", "owner_team", "owning_team", "team_name", "group"),
}


_RECORD = {"incidents": "an incident", "experiments": "an experiment", "changes": "a change-log entry"}


def unread_reason(kind: str, name: str, fields: list[str]) -> str:
    """Why a field of a ``kind`` record is not read, and what to rename it: the field of another case or
    spelling (``Team``, ``contols``), a name that most likely means one (``component``: service), or the list."""
    shown = shown_name(name)
    low, spelt = _spelt(name, fields)
    meant = next((f for f, names in _MEANT.items() if low in names), None)
    if low in fields:
        hint = f"field names are lower case with _: rename it {low}"
    elif spelt is not None:
        hint = f"did you mean {spelt}?"
    elif meant is not None and meant in fields:
        hint = f"rename it {meant} to split the {kind} by it"
    else:
        hint = f"{_RECORD.get(kind, 'a record')}'s fields are {', '.join(fields)}"
    return f"field {shown!r} is not read ({hint})"


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
        what = (
            "a CSV whose header has neither indicator,ds,y (indicators), ds,kind,description (changes) "
            "nor id,title (incidents)"
        )
    else:
        what = f"unrecognised file type {p.suffix or '(none)'!r}"
    return Reject(str(p), None, "path", f"not a Recur data file: {what}")


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


class NoAliasLoader(yaml.SafeLoader):  # type: ignore[misc]  # PyYAML is untyped here (no stubs)
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


def _unsupported(kind: str, p: Path, suffixes: tuple[str, ...]) -> str:
    return f"unsupported {kind} file type {p.suffix or '(none)'!r} (expected {', '.join(suffixes)})"


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
