"""Ingestion: where the jobs read incidents (and the free text of experiments and the change log), and the one
place they are redacted.

Every job that reads incidents (``train patterns``, ``report``) calls :func:`load_incidents`, never
:func:`ml.io.readers.read_incidents` directly: the records it returns have every free-text field redacted
(:func:`ml.text.redaction.redact_incident`), and so do the reasons of quarantined records (a reason may quote
the rejected value). The pattern model, the similarity index, the ``incidents.jsonl`` of the model artifact,
the report and everything logged to MLflow are built from these records only, so no later path can forget to
redact. A test (``tests/test_pii_leak.py``) plants personal data and secrets and scans every output for them.
Experiments (:func:`load_experiments`: name and hypothesis) and the change log (:func:`load_changes`: kind and
description) reach the MLflow runs, the forecaster's ``causes.json``, the API and the report the same way.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from ml.errors import InputError, StrictModeError
from ml.io.readers import (
    ReadResult,
    indicators_frame,
    read_changes,
    read_experiments,
    read_incidents,
    read_indicators,
)
from ml.io.schemas import Change, Experiment, Incident, IndicatorObservation
from ml.text.redaction import redact, redact_incident

log = logging.getLogger(__name__)

__all__ = [
    "indicator_history",
    "quarantine_note",
    "unread_notes",
    "load_changes",
    "load_experiments",
    "load_incidents",
    "load_indicators",
]


def load_incidents(paths: str | Path | Iterable[str | Path]) -> ReadResult[Incident]:
    """Read incidents like :func:`ml.io.readers.read_incidents` (same counts, same quarantine), redacted."""
    result = _redacted_reasons(read_incidents(paths))
    result.records = [redact_incident(inc) for inc in result.records]
    log.info("Ingestion - %d incident(s) redacted", len(result.records))
    return result


def _redacted_reasons(result: ReadResult[Any]) -> ReadResult[Any]:
    """The reasons of quarantined records and of notes redacted (a reason may quote the rejected value)."""
    result.rejects = [dataclasses.replace(r, reason=redact(r.reason)) for r in result.rejects]
    # each note once: an unread-field note is in both lists (its field is a name from the input, redacted too)
    done = {
        id(n): dataclasses.replace(n, field=redact(n.field) if n.field else n.field, reason=redact(n.reason))
        for n in result.notes
    }
    result.notes = [done[id(n)] for n in result.notes]
    result.unread = [done[id(n)] for n in result.unread]
    return result


def unread_notes(read: ReadResult[Any]) -> list[str]:
    """One line per file and field of ``read`` that nothing reads (``ReadResult.unread``), redacted; then one line
    on the records whose datetimes had no time zone (taken as UTC), if any."""
    from ml.io.decoding import NAIVE_NOTE

    lines = [redact(str(n)) for n in read.unread]
    naive = [n for n in read.notes if n.reason == NAIVE_NOTE]
    if naive:
        records = len({(n.file, n.line) for n in naive})
        lines.append(
            redact(
                f"{records} of {read.records_in} records give a datetime without a time zone, taken as UTC "
                f"(first: {naive[0]})"
            )
        )
    return lines


def load_experiments(paths: str | Path | Iterable[str | Path]) -> ReadResult[Experiment]:
    """Experiment definitions with their name and hypothesis redacted (ids, slices and dates as they are)."""
    result = _redacted_reasons(read_experiments(paths))
    result.records = [
        e.model_copy(
            update={
                "name": redact(e.name),
                "hypothesis": e.hypothesis.model_copy(
                    update={k: redact(getattr(e.hypothesis, k)) for k in ("problem", "solution", "metric")}
                ),
            }
        )
        for e in result.records
    ]
    return result


def load_changes(paths: str | Path | Iterable[str | Path]) -> ReadResult[Change]:
    """The change log with each entry's kind and description redacted."""
    result = _redacted_reasons(read_changes(paths))
    result.records = [
        c.model_copy(update={"kind": redact(c.kind), "description": redact(c.description)})
        for c in result.records
    ]
    return result


def load_indicators(paths: Iterable[str | Path], strict: bool = False) -> ReadResult[IndicatorObservation]:
    """Read indicator observations; with ``strict`` any reject is an error, and no valid observation always is."""
    read = read_indicators(list(paths))
    if strict and read.quarantined:
        raise StrictModeError(
            f"{read.quarantined} indicator row(s) rejected (first: {read.rejects[0]})", field="indicators"
        )
    if not read.records:
        raise InputError("no valid indicator observations", field="indicators")
    return read


def quarantine_note(read: ReadResult[Any], what: str) -> str | None:
    """One line on the records ``read`` quarantined (the log lists only the first 20): how many, the first, and
    where to see them all; redacted (the first reject may quote a rejected value). None when there are none."""
    if not read.quarantined:
        return None
    return redact(
        f"{read.quarantined} of {read.records_in} {what} quarantined (first: {read.rejects[0]}); "
        "`recur validate` lists them all, --strict fails on them"
    )


def negative_counts(frame: Any, is_mean: Callable[[str], bool]) -> list[str]:
    """One note per count indicator (not a mean, every value a whole number) with values below 0: a count never
    is, so the export is wrong (a difference exported as a count?); its shifts and levels are reported as given."""
    import pandas as pd

    notes = []
    for name, rows in frame.groupby("indicator", sort=True):
        y = rows["y"].to_numpy(dtype=float)
        if is_mean(str(name)) or not (y < 0).any() or not (y == y.round()).all():
            continue
        first = rows[rows["y"] < 0].iloc[0]
        notes.append(
            f"{name}: {int((y < 0).sum())} value(s) below 0 (first {first['series']} on "
            f"{pd.Timestamp(first['ds']).date()}: {first['y']:g}), though its values are whole numbers like a "
            "count's: check the export"
        )
    return notes


def indicator_history(
    read: ReadResult[IndicatorObservation], is_mean: Callable[[str], bool] | None = None
) -> tuple[Any, list[str]]:
    """The observations as the long frame every job works on (:func:`ml.io.readers.indicators_frame`), with a 0
    at each date a series of a count indicator has no row for (:func:`ml.indicators.completion.complete_counts`:
    an export that lists only the weeks with an incident), sorted by series and date; and the notes (also
    logged): how many rows were quarantined, if any, then one per indicator completed. The forecaster, the
    experiment scorer and ``recur explain`` all read their indicators through here, so each sees the same
    series. ``is_mean`` says which indicators are means, never completed (default: by their names' words,
    :func:`ml.indicators.completion.looks_like_mean`)."""
    from ml.indicators.completion import complete_counts, looks_like_mean

    frame, notes = complete_counts(indicators_frame(read.records), ["series"], is_mean or looks_like_mean)
    notes += negative_counts(frame, is_mean or looks_like_mean)
    rejected = quarantine_note(read, "indicator rows")
    if rejected:
        notes.insert(0, rejected)
    notes = [redact(n) for n in notes]
    for note in notes:
        log.info("Indicators - %s", note)
    return frame.sort_values(["series", "ds"], kind="stable").reset_index(drop=True), notes
