"""Markdown postmortems: YAML front matter plus sections by heading, read into raw incident dicts."""

from __future__ import annotations

import datetime as dt
import logging
import re
from pathlib import Path
from typing import Any

import yaml

from ml.errors import InputError
from ml.io.decoding import Reject, _decode_file, _unrecognised, _Validator, _yaml_problem, load_yaml
from ml.io.schemas import Incident

log = logging.getLogger(__name__)


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
    for row in body.splitlines():
        m = re.match(r"^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$", row)
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
            preamble.append(row)
        else:
            sections[current].append(row)
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
