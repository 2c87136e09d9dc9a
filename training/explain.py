"""`recur explain`: why did an indicator move? Candidate causes for every detected shift, ranked, with evidence.

The analysis is :func:`ml.causes.explain_signals`; this module gathers its inputs from files and the registry:

- the indicators (their parts: ``team``, ``service``; aggregates are built by the library);
- the incidents with the pattern of each, from an ``incident-patterns`` version (the champion for
  ``recur explain``, the version just trained for ``recur train all``): incidents it was trained on keep their
  pattern, others are assigned by the model; without a pattern model the explanation has no pattern causes and
  says so once on stderr;
- the experiment definitions and the optional change log (``changes.csv``).

``recur train all`` stores the explanations with the forecaster (``causes.json`` in its artifact), so the
champion serves them (``GET /v1/signals/{id}/causes``) and the report shows them ("Why it moved").
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ml.errors import InputError, ModelUnavailableError, StrictModeError
from ml.io.decoding import ReadResult
from ml.io.schemas import Incident
from ml.registry.names import PATTERNS_MODEL
from ml.text.redaction import redact
from training.ingest import (
    indicator_history,
    load_changes,
    load_experiments,
    load_indicators,
    quarantine_note,
    unread_notes,
)
from training.settings import Settings

log = logging.getLogger(__name__)

DIMENSIONS = ("team", "service")


@dataclass
class ExplainInputs:
    """What the explanation draws on besides the indicators; ``notes`` say what is missing, in one line each."""

    incidents: pd.DataFrame | None = None
    experiments: list[dict[str, Any]] | None = None
    changes: pd.DataFrame | None = None
    patterns_version: str | None = None
    notes: list[str] = field(default_factory=list)
    #: The accepted incidents (redacted), with or without a pattern model.
    records: list[Incident] = field(default_factory=list)
    #: The note on the incidents quarantined, if any (:func:`training.ingest.quarantine_note`).
    rejected: str | None = None


# ---------------------------------------------------------------------------------------------- inputs


def indicators_for_explain(history: pd.DataFrame) -> pd.DataFrame:
    """The long frame the library takes: ``indicator, ds, y`` and the dimension columns that hold a value."""
    cols = ["indicator", "ds", "y"] + [d for d in DIMENSIONS if d in history and history[d].notna().any()]
    frame = history[cols].copy()
    for d in cols[3:]:
        frame[d] = frame[d].fillna("").astype(str)
    return frame.reset_index(drop=True)


def incidents_frame(incidents: Sequence[Incident], runtime: Any | None) -> pd.DataFrame:
    """``id, date, pattern_id, pattern_name, team, service``: the pattern an incident was trained into, else the
    one the model assigns it (-1: unclustered). Without a pattern model (``runtime`` None): ``id, date, team,
    service``, which give no pattern causes but tell which team owns which service."""
    frame = pd.DataFrame(
        {
            "id": [inc.id for inc in incidents],
            "date": pd.to_datetime([inc.started_at.date() for inc in incidents]),
            "team": [inc.team or "" for inc in incidents],
            "service": [inc.service or "" for inc in incidents],
        },
        columns=["id", "date", "team", "service"],
    )
    if runtime is None:
        return frame
    known = runtime.assignments
    new = [inc for inc in incidents if inc.id not in known]
    assigned: dict[str, int] = {}
    if new:
        ids, _conf = runtime.model.assign(new)
        assigned = {inc.id: int(pid) for inc, pid in zip(new, ids, strict=True)}
        log.info("Explain - %d incident(s) not in pattern model: assigned by it", len(new))
    pids = [int(known[inc.id]) if inc.id in known else assigned[inc.id] for inc in incidents]
    frame.insert(2, "pattern_id", pids)
    frame.insert(3, "pattern_name", [runtime.pattern_name(pid) for pid in pids])
    return frame


def pattern_runtime(settings: Settings, version: str | None = None) -> tuple[Any, str]:
    """The runtime of ``incident-patterns`` at `version`, or of its champion; ModelUnavailableError if none."""
    if version is None:
        from training.champions import load_runtime

        return load_runtime(settings, PATTERNS_MODEL)
    from ml.registry.artifacts import fetch_version
    from ml.registry.runtimes import open_runtime
    from training import tracking

    tracking.configure(settings)
    tmp = Path(tempfile.mkdtemp(prefix="recur-explain-"))
    try:
        runtime = open_runtime(
            fetch_version(settings.tracking_uri, PATTERNS_MODEL, version, dest=tmp), "patterns"
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return runtime, version


def read_changes_frame(paths: Sequence[Path], strict: bool, notes: list[str]) -> pd.DataFrame | None:
    """The change log as a frame (``ds, <dimensions>, kind, description, id``), or None without one; the notes on
    rejected entries and unread columns go to ``notes``."""
    if not paths:
        return None
    from ml.io.readers import changes_frame

    read = load_changes(list(paths))  # redacted, once, here
    if strict and read.quarantined:
        raise StrictModeError(
            f"{read.quarantined} change(s) rejected (first: {read.rejects[0]})", field="changes"
        )
    _read_notes(read, "change-log entries", notes)
    return changes_frame(read.records) if read.records else None


def read_experiment_dicts(
    paths: Sequence[Path], strict: bool, notes: list[str]
) -> list[dict[str, Any]] | None:
    """The experiments as dicts, or None without a file; the notes on rejected ones and unread fields go to
    ``notes``."""
    if not paths:
        return None
    read = load_experiments(list(paths))  # redacted, once, here
    if strict and read.quarantined:
        raise StrictModeError(
            f"{read.quarantined} experiment(s) rejected (first: {read.rejects[0]})", field="experiments"
        )
    _read_notes(read, "experiments", notes)
    return [e.model_dump(mode="json") for e in read.records]


def _read_notes(read: ReadResult[Any], what: str, notes: list[str]) -> str | None:
    """Append to ``notes`` the line on the records ``read`` quarantined and one per field nothing reads; return the
    first (None when nothing was quarantined)."""
    rejected = quarantine_note(read, what)
    notes += [*([rejected] if rejected else []), *unread_notes(read)]
    return rejected


def gather_inputs(
    settings: Settings,
    *,
    incidents_paths: Sequence[Path] = (),
    experiments_paths: Sequence[Path] = (),
    changes_paths: Sequence[Path] = (),
    patterns_version: str | None = None,
    strict: bool = False,
) -> ExplainInputs:
    """Read the incidents (with their patterns), experiments and change log for an explanation."""
    inputs = ExplainInputs()
    inputs.experiments = read_experiment_dicts(experiments_paths, strict, inputs.notes)
    inputs.changes = read_changes_frame(changes_paths, strict, inputs.notes)
    if not incidents_paths:
        return inputs
    from training.ingest import load_incidents

    read = load_incidents(list(incidents_paths))  # redacted, once, here
    if strict and read.quarantined:
        raise StrictModeError(
            f"{read.quarantined} incident(s) rejected (first: {read.rejects[0]})", field="incidents"
        )
    inputs.records = list(read.records)
    inputs.rejected = _read_notes(read, "incidents", inputs.notes)
    try:
        runtime, version = pattern_runtime(settings, patterns_version)
    except ModelUnavailableError:
        inputs.notes.append(
            f"no champion '{PATTERNS_MODEL}' model: explaining without pattern causes "
            "(train one with `recur train patterns --promote`)"
        )
        inputs.incidents = incidents_frame(read.records, None)  # who owns what, for the change log
        return inputs
    inputs.incidents = incidents_frame(read.records, runtime)
    inputs.patterns_version = version
    return inputs


# ---------------------------------------------------------------------------------------------- analysis


def mean_rule(mean: Sequence[str] = (), total: Sequence[str] = ()) -> Callable[[str], bool]:
    """Whether an indicator's aggregate is the mean of its parts: named in ``mean`` (``--mean``), not named in
    ``total`` (``--sum``) and its name's words say so (:func:`ml.indicators.completion.looks_like_mean`). The count
    completion and the aggregates both follow it. Naming one indicator in both is an :class:`InputError`."""
    from ml.indicators.completion import looks_like_mean

    both = sorted(set(mean) & set(total))
    if both:
        raise InputError(
            f"--mean and --sum both name {both[0]!r}: an aggregate is one or the other", field="mean"
        )
    return lambda name: name in mean or (name not in total and looks_like_mean(name))


def aggregation_config(
    history: pd.DataFrame, is_mean: Callable[[str], bool], mean: Sequence[str] = (), total: Sequence[str] = ()
) -> tuple[Any, list[str]]:
    """The :class:`~ml.causes.ExplainConfig` whose aggregates are means for the indicators ``is_mean``
    (:func:`mean_rule`) says so of; and a note on each indicator named in ``mean`` or ``total`` that the history
    lacks."""
    from ml.causes import ExplainConfig

    known = set(history["indicator"].astype(str)) if len(history) else set()
    notes = [
        f"--{flag} {name!r}: no such indicator (the indicators are {', '.join(sorted(known)) or 'none'})"
        for flag, names in (("mean", mean), ("sum", total))
        for name in names
        if name not in known
    ]
    return ExplainConfig(mean_indicators=tuple(sorted(filter(is_mean, known)))), [redact(n) for n in notes]


def explain_history(
    history: pd.DataFrame,
    inputs: ExplainInputs | None = None,
    since: dt.date | None = None,
    config: Any | None = None,
) -> list[dict[str, Any]]:
    """Every shift of the indicators (series and aggregates) with its ranked causes, newest first."""
    from ml.causes import explain_signals

    inputs = inputs or ExplainInputs()
    return explain_signals(
        indicators_for_explain(history),
        None,
        incidents=inputs.incidents,
        experiments=inputs.experiments,
        changes=inputs.changes,
        since=since,
        config=config,
    )


def explain(
    settings: Settings,
    indicators_paths: Sequence[Path],
    *,
    incidents_paths: Sequence[Path] = (),
    experiments_paths: Sequence[Path] = (),
    changes_paths: Sequence[Path] = (),
    since: dt.date | None = None,
    strict: bool = False,
    mean: Sequence[str] = (),
    total: Sequence[str] = (),
) -> dict[str, Any]:
    """`recur explain`: ``{"signals": [...], "notes": [...], "patterns_version": ...}``. Without indicator
    files, the weekly incident counts of the incidents are explained (:func:`incident_count_history`). ``mean`` /
    ``total`` name indicators whose aggregate is the mean / the sum of their parts (:func:`aggregation_config`)."""
    if not indicators_paths and not incidents_paths:
        raise InputError(
            "nothing to explain: give --indicators, or --incidents to explain their weekly counts",
            field="indicators",
        )
    is_mean = mean_rule(mean, total)  # a flag error before any file is read
    read = load_indicators(indicators_paths, strict=strict) if indicators_paths else None
    inputs = gather_inputs(
        settings,
        incidents_paths=incidents_paths,
        experiments_paths=experiments_paths,
        changes_paths=changes_paths,
        strict=strict,
    )
    if read is not None:
        history, completed = indicator_history(read, is_mean)
    elif not inputs.records:
        raise InputError(
            "nothing to explain: no incident of --incidents could be read"
            + (f" ({inputs.rejected})" if inputs.rejected else ""),
            field="incidents",
        )
    else:
        history, completed = incident_count_history(inputs.records)
    config, named = aggregation_config(history, is_mean, mean, total)
    signals = explain_history(history, inputs, since, config)
    notes = [*completed, *(unread_notes(read) if read is not None else []), *inputs.notes, *named]
    from ml.causes.aggregates import MIN_POINTS

    notes += [
        redact(n)
        for n in [
            *unknown_slices(inputs.changes, history, inputs.incidents),
            *unmatched_experiments(inputs, history),
        ]
    ]  # they quote the change log's values and the experiments' ids
    # an aggregate spans the dates of all its parts: count an indicator's dates, not a series' rows
    longest = int(history.groupby("indicator")["ds"].nunique().max()) if len(history) else 0
    if longest < MIN_POINTS:
        notes.append(
            (
                f"no indicator has the {MIN_POINTS} dates a shift needs to be searched (the longest has {longest})"
                if read is not None
                else f"the incidents span {longest} week(s), and a shift needs {MIN_POINTS} to be searched"
            )
            + ": nothing to explain yet"
        )
    last = history["ds"].max() if len(history) else None
    if since is not None and last is not None and pd.Timestamp(since) > last:
        notes.append(
            f"--since {since} is after the last date of the history ({last.date()}): no shift can be listed"
        )
    return {"signals": signals, "notes": notes, "patterns_version": inputs.patterns_version}


def incident_count_history(incidents: Sequence[Incident]) -> tuple[pd.DataFrame, list[str]]:
    """The weekly incident counts of `incidents` (:func:`ml.indicators.incident_counts.weekly_incident_counts`)
    as the long frame :func:`training.ingest.indicator_history` gives, and a note saying so."""
    from ml.indicators.incident_counts import (
        INCIDENTS_INDICATOR,
        MAX_GAP_DAYS,
        main_stretch,
        weekly_incident_counts,
    )
    from ml.io.schemas import series_key

    rows = incidents_frame(incidents, None)
    notes = []
    keep = main_stretch(rows["date"])
    if not keep.all():
        away = rows[~keep].sort_values("date", kind="stable")
        first = away.iloc[0]
        notes.append(
            f"{len(away)} incident(s) more than {MAX_GAP_DAYS} days from the rest of the history left out of the "
            f"weekly counts (first: {first['id']} on {first['date'].date()}; a mistyped year?): the counts cover "
            f"{rows['date'][keep].min().date()} to {rows['date'][keep].max().date()}"
        )
        rows = rows[keep]
    counts = weekly_incident_counts(rows, DIMENSIONS)
    dims = [d for d in DIMENSIONS if d in counts]
    history = counts.reindex(columns=["indicator", "ds", "y", *DIMENSIONS])
    history["series"] = (
        [series_key(INCIDENTS_INDICATOR, **{d: r[d] for d in dims}) for r in history[dims].to_dict("records")]
        if dims
        else INCIDENTS_INDICATOR
    )
    history["ds"] = pd.to_datetime(history["ds"])
    parts = len(history.groupby(dims)) if dims and len(history) else min(len(history), 1)
    by = " x ".join(dims) if dims else "all incidents together (they name no team or service)"
    note = (
        f"no --indicators: explaining the weekly count of the {len(rows)} incident(s) "
        f"('{INCIDENTS_INDICATOR}', by {by}: {parts} series, {history['ds'].nunique()} weeks, "
        "a 0 for a week without one)"
    )
    notes = [redact(n) for n in [note, *notes]]  # the note on left-out incidents quotes an id
    for n in notes:
        log.info("Explain - %s", n)
    history = history.sort_values(["series", "ds"], kind="stable").reset_index(drop=True)
    return history[["series", "indicator", "team", "service", "ds", "y"]], notes


def unmatched_experiments(inputs: ExplainInputs, history: pd.DataFrame) -> list[str]:
    """A note on the experiments whose indicator no series of the history has: they are checked as the cause of
    no shift (an experiment on an indicator's slice is checked against that indicator's series only)."""
    known = set(history["indicator"].astype(str)) if "indicator" in history else set()
    odd = [
        f"{e.get('id')} ({e.get('indicator')})"
        for e in inputs.experiments or []
        if e.get("indicator") and str(e["indicator"]) not in known
    ]
    if not odd:
        return []
    return [
        f"{len(odd)} experiment(s) name an indicator the history does not have: {', '.join(odd[:3])}"
        f"{f' and {len(odd) - 3} more' if len(odd) > 3 else ''}; they explain no shift"
    ]


def listed(changes: pd.DataFrame, dim: str) -> str:
    """The first three change-log entries as ``id (dim=value)``, for a note."""
    return ", ".join(f"{i} ({dim}={v})" for i, v in zip(changes["id"][:3], changes[dim][:3], strict=True))


def unknown_slices(
    changes: pd.DataFrame | None, history: pd.DataFrame, incidents: pd.DataFrame | None = None
) -> list[str]:
    """One note per dimension on which change-log entries name a value no indicator series has: a misspelt service
    (such a change explains no shift) or a team the indicators are not split on. Such a team's change is matched
    through the incidents, which name both, to the series of the services it owns
    (:func:`ml.causes.changes.ownership`); one whose team owns none counts as partly agreeing with a series' shift
    (none where the incidents show the series is another team's), as an org-wide change does, and as no cause of
    an aggregate's."""
    from ml.causes.changes import ownership

    if changes is None or not len(changes):
        return []
    split = [d for d in DIMENSIONS if d in history and (history[d].fillna("").astype(str) != "").any()]
    owners = ownership(incidents, list(DIMENSIONS))
    notes = []
    for dim in DIMENSIONS:
        if dim not in changes:
            continue
        known = set(history[dim].dropna().astype(str)) if dim in history else set()
        named = changes[changes[dim].notna() & (changes[dim].astype(str).str.strip() != "")]
        odd = named[~named[dim].astype(str).isin(known)]
        if not len(odd):
            continue
        ids, more = listed(odd, dim), f" and {len(odd) - 3} more" if len(odd) > 3 else ""
        if known:
            notes.append(
                f"{len(odd)} change(s) name a {dim} no indicator series has: {ids}{more}; they explain no shift"
            )
            continue
        # the values that own (hold most incidents of) a slice of a dimension the indicators are split on
        values = odd[dim].astype(str).str.strip()
        owns = values.isin({v for v in set(values) if any(e in split for e, _ in owners.owned_by(dim, v))})
        matched = int(owns.sum())
        head = f"{len(odd)} change(s) name a {dim}, which the indicators are not split on: {ids}{more}; "
        partly = (
            f"count as partly agreeing with any series' shift (in proportion to the share of its incidents the {dim} "
            "holds, where the incidents name one) and as no cause of an aggregate's"
        )
        if matched == len(odd):
            notes.append(head + f"each is matched through the incidents to the series of what its {dim} owns")
        elif matched:
            rest = odd[~owns]
            named_ids = listed(rest, dim)
            notes.append(
                head
                + f"{matched} are matched through the incidents to the series of what their {dim} owns; the "
                f"other {len(rest)} ({named_ids}{' and more' if len(rest) > 3 else ''}), whose {dim} owns nothing "
                "by the incidents (spelt as there?), " + partly
            )
        elif incidents is not None and len(incidents):
            notes.append(
                head + f"their {dim} owns nothing by the incidents (spelt as there?): they " + partly
            )
        else:
            notes.append(
                head
                + "each counts as partly agreeing with any series' shift and as no cause of an aggregate's "
                f"(give --incidents that name the {dim} to match it to the series of what it owns)"
            )
    return notes


def summary_counts(signals: Sequence[dict[str, Any]]) -> dict[str, int]:
    explained = sum(1 for s in signals if s.get("verdict") == "explained")
    return {"shifts": len(signals), "explained": explained, "no_convincing_cause": len(signals) - explained}


# ---------------------------------------------------------------------------------------------- output


def _pct(v: Any) -> str:
    return "" if v is None else f"{100 * float(v):.0f}%"


def explanations_table(signals: Sequence[dict[str, Any]], top: int = 3) -> Any:
    """A rich table: each shift, then its top causes (or the abstention), one row each."""
    from rich.markup import escape
    from rich.table import Table

    from ml.causes import when_text  # ml.causes.explain imports scipy: not at the CLI's start-up

    table = Table(
        title="Why it moved: candidate causes of each shift (newest first)",
        caption=None if signals else "no shift found",
    )
    for col in ("shift", "cause", "contribution", "confidence", "why"):
        table.add_column(col, overflow="fold")
    for s in signals:
        head = f"{s['series']} {when_text(s)} {s['direction']} {float(s['magnitude']):+.3g}"
        causes = list(s.get("causes") or [])[:top]
        if s.get("verdict") != "explained":
            table.add_row(
                escape(head),
                "[yellow]no convincing cause[/]",
                "",
                _pct(causes[0]["confidence"]) if causes else "",
                escape(f"best candidate: {causes[0]['summary']}") if causes else "",
            )
            continue
        for i, c in enumerate(causes):
            table.add_row(
                escape(head) if i == 0 else "",
                escape(f"{c['kind']} {c['key']}"),
                _pct(c.get("contribution")),
                _pct(c["confidence"]),
                escape(str(c.get("summary") or "")),
            )
    return table
