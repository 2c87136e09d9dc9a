"""Ingestion: where the jobs read incidents, and the one place they are redacted.

Every job that reads incidents (``train patterns``, ``report``) calls :func:`load_incidents`, never
:func:`ml.io.readers.read_incidents` directly: the records it returns have every free-text field redacted
(:func:`ml.text.redaction.redact_incident`), and so do the reasons of quarantined records (a reason may quote
the rejected value). The pattern model, the similarity index, the ``incidents.jsonl`` of the model artifact,
the report and everything logged to MLflow are built from these records only, so no later path can forget to
redact. A test (``tests/test_pii_leak.py``) plants personal data and secrets and scans every output for them.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable
from pathlib import Path

from ml.errors import InputError, StrictModeError
from ml.io.readers import ReadResult, read_incidents, read_indicators
from ml.io.schemas import Incident, IndicatorObservation
from ml.text.redaction import redact, redact_incident

log = logging.getLogger(__name__)

__all__ = ["load_incidents", "load_indicators"]


def load_incidents(paths: str | Path | Iterable[str | Path]) -> ReadResult[Incident]:
    """Read incidents like :func:`ml.io.readers.read_incidents` (same counts, same quarantine), redacted."""
    result = read_incidents(paths)
    result.records = [redact_incident(inc) for inc in result.records]
    result.rejects = [dataclasses.replace(r, reason=redact(r.reason)) for r in result.rejects]
    result.notes = [dataclasses.replace(n, reason=redact(n.reason)) for n in result.notes]
    log.info("Ingestion - %d incident(s) redacted", len(result.records))
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
