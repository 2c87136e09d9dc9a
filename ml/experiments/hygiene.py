"""Experiment hygiene: experiments that overlap, and how many experiments each team runs at once.

Two experiments on the same indicator that run in the same weeks confound each other when their slices meet:

- the **same slice** is treated by both: each estimate holds both changes;
- one experiment's treated slice is a **control** of the other: the other's counterfactual moves with a change,
  so its effect is biased (towards zero when both changes push the same way);
- either is **org-wide** (``treated: "*"``): it moves every slice of the indicator, the treated and the controls.

An experiment runs from ``start`` (included) to ``end`` (excluded), as the scorer cuts its post-period; without an
``end`` it is still running, so it overlaps every later experiment that meets its slice. Slices of different
dimensions (a team and a service) meet only where it is known which teams run which service (``owners``: from
indicators split by both, :func:`ml.indicators.completion.service_owners`): a service inside a treated team is a
**nested slice** (each estimate holds both changes), a service inside a control team, or a team running a control
service, a control as above; without ``owners`` they are not compared.

Experiment load (experiment fatigue): per slice (``team=payments``), the number of experiments treating it in
each week, now and at the most; an org-wide experiment counts for every slice of its dimension.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel

from ml.io.schemas import Experiment, parse_series_key

logger = logging.getLogger(__name__)

#: The treated value of an org-wide experiment (every slice of the indicator).
ORG_WIDE = "*"

OverlapKind = Literal["same slice", "nested slice", "treated is a control", "control is treated", "org-wide"]
#: Which teams run each service, by service (see the module docstring).
Owners = Mapping[str, Collection[str]]


@dataclass(frozen=True)
class ExperimentSpan:
    """What hygiene needs of an experiment: where (indicator, slice, controls) and when (start, end)."""

    id: str
    indicator: str
    dimension: str
    treated: str
    start: dt.date
    end: dt.date | None = None
    controls: tuple[str, ...] = field(default_factory=tuple)

    @classmethod
    def of(cls, exp: Experiment) -> ExperimentSpan:
        return cls(exp.id, exp.indicator, exp.dimension, exp.treated, exp.start, exp.end, tuple(exp.controls))

    @classmethod
    def from_record(cls, row: Mapping[str, Any]) -> ExperimentSpan | None:
        """From a recorded experiment (``ml.registry.runs``); None when it lacks a start or a slice."""
        start, treated, indicator = row.get("start"), row.get("treated"), row.get("indicator")
        if not (start and treated and indicator):
            return None
        treated_s = str(treated)
        dim = str(row.get("dimension") or "team")
        if "=" in treated_s:  # a recorded treated series key, e.g. "reopens/team=payments"
            key = parse_series_key(treated_s)
            dim = "service" if key["service"] else "team"
            treated_s = str(key[dim] or "")
        try:
            s = dt.date.fromisoformat(str(start)[:10])
            e = row.get("end")
            end = dt.date.fromisoformat(str(e)[:10]) if e and e != "open" else None
        except ValueError:
            return None
        controls = row.get("controls") or ()
        if isinstance(controls, str):
            controls = () if controls == "none" else tuple(c for c in controls.split(",") if c)
        return cls(str(row["id"]), str(indicator), dim, treated_s, s, end, tuple(str(c) for c in controls))

    @property
    def slice(self) -> str:
        return f"{self.dimension}={self.treated}"

    def active(self, lo: dt.date, hi: dt.date) -> bool:
        """Runs on some day of [lo, hi)."""
        return self.start < hi and (self.end is None or self.end > lo)


class Overlap(BaseModel):
    """Another experiment that overlaps this one in time and slice, on the same indicator."""

    other_id: str
    kind: OverlapKind
    other_slice: str
    start: dt.date
    end: dt.date | None
    reason: str


def _span(e: Experiment | ExperimentSpan) -> ExperimentSpan:
    return e if isinstance(e, ExperimentSpan) else ExperimentSpan.of(e)


def _window(a: ExperimentSpan, b: ExperimentSpan) -> tuple[dt.date, dt.date | None] | None:
    """The days both run, [start, end) (end None: both still running), or None."""
    lo = max(a.start, b.start)
    ends = [x for x in (a.end, b.end) if x is not None]
    hi = min(ends) if ends else None
    if hi is not None and hi <= lo:
        return None
    return lo, hi


def _inside(value: str, dim: str, other: str, owners: Owners) -> bool:
    """Whether ``dim=value`` and a slice of the other dimension, ``other``, meet: a team that runs the service."""
    team, service = (value, other) if dim == "team" else (other, value)
    return team in owners.get(service, ())


def _relation(a: ExperimentSpan, b: ExperimentSpan, owners: Owners | None = None) -> OverlapKind | None:
    """How b's slices meet a's on the same indicator, seen from a."""
    if a.indicator != b.indicator:
        return None
    if ORG_WIDE in (a.treated, b.treated):
        return "org-wide"
    if a.dimension != b.dimension:
        if not owners:
            return None
        if _inside(a.treated, a.dimension, b.treated, owners):
            return "nested slice"
        if any(_inside(c, a.dimension, b.treated, owners) for c in a.controls):
            return "treated is a control"
        if any(_inside(a.treated, a.dimension, c, owners) for c in b.controls):
            return "control is treated"
        return None
    if a.treated == b.treated:
        return "same slice"
    if b.treated in a.controls:
        return "treated is a control"
    if a.treated in b.controls:
        return "control is treated"
    return None


def _reason(a: ExperimentSpan, b: ExperimentSpan, kind: OverlapKind, lo: dt.date, hi: dt.date | None) -> str:
    when = f"from {lo}" + (f" to {hi}" if hi is not None else " on (both still running)")
    head = f"{b.id} runs on {a.indicator} {when}"
    if kind == "org-wide":
        return f"{head}, org-wide or against an org-wide change: the effects are confounded"
    if kind == "same slice":
        return (
            f"{head} and also treats {a.slice}: the effects are confounded (each estimate holds both changes)"
        )
    if kind == "nested slice":
        return (
            f"{head} and treats {b.slice}, {_link(b)} {a.slice}: the effects are confounded (each estimate holds"
            " both changes)"
        )
    if kind == "treated is a control":
        what = "a control here" if a.dimension == b.dimension else f"{_link(b)} a control here"
        return f"{head} and treats {b.slice}, {what}: the counterfactual moves with it (effect biased)"
    what = (
        f"{a.slice}, treated here,"
        if a.dimension == b.dimension
        else f"a slice {_link(b)} {a.slice}, treated here,"
    )
    return f"{head} with {what} as a control: its counterfactual moves with this change (biased)"


def _link(x: ExperimentSpan) -> str:
    """How a slice of another dimension relates to ``x``'s: a service is inside a team, a team holds a service."""
    return "inside" if x.dimension == "service" else "which holds"


def overlaps_with(
    experiment: Experiment | ExperimentSpan,
    others: Iterable[Experiment | ExperimentSpan],
    owners: Owners | None = None,
) -> list[Overlap]:
    """The experiments among `others` that overlap `experiment` in time and slice (itself, by id, excluded);
    `owners` (teams by service) lets a team and a service meet."""
    a = _span(experiment)
    out: list[Overlap] = []
    for other in others:
        b = _span(other)
        if b.id == a.id:
            continue
        kind = _relation(a, b, owners)
        window = _window(a, b) if kind is not None else None
        if kind is None or window is None:
            continue
        lo, hi = window
        out.append(
            Overlap(
                other_id=b.id,
                kind=kind,
                other_slice=b.slice,
                start=lo,
                end=hi,
                reason=_reason(a, b, kind, lo, hi),
            )
        )
    return out


def find_overlaps(
    experiments: Sequence[Experiment | ExperimentSpan], owners: Owners | None = None
) -> dict[str, list[Overlap]]:
    """Every experiment's overlaps with the others, by id (experiments without one are left out)."""
    spans = [_span(e) for e in experiments]
    out: dict[str, list[Overlap]] = {}
    for s in spans:
        found = overlaps_with(s, spans, owners)
        if found:
            out[s.id] = found
        for o in found:
            logger.info("Hygiene - %s overlaps %s (%s)", s.id, o.other_id, o.kind)
    return out


def overlap_pairs(experiments: Sequence[Experiment | ExperimentSpan]) -> list[tuple[str, Overlap]]:
    """Each overlapping pair once, as (first id, overlap seen from the first), in input order."""
    order = {_span(e).id: i for i, e in enumerate(experiments)}
    return [
        (eid, o)
        for eid, found in find_overlaps(experiments).items()
        for o in found
        if order.get(o.other_id, -1) > order[eid]
    ]


class SliceLoad(BaseModel):
    """How many experiments treat a slice at once, per week: now, and at the most (with the first such week)."""

    slice: str
    current: int
    max: int
    max_week: dt.date | None
    running: list[str]


def _monday(d: dt.date) -> dt.date:
    return d - dt.timedelta(days=d.weekday())


def experiment_load(
    experiments: Sequence[Experiment | ExperimentSpan], as_of: dt.date, owners: Owners | None = None
) -> list[SliceLoad]:
    """Per slice, experiments running in each week (Monday to Sunday) up to the week of `as_of`.

    `current` counts those running in the week of `as_of`; `max` is over every week from the first start. An
    org-wide experiment counts for every slice of its dimension that some experiment treats or uses as control;
    with `owners` (teams by service), an experiment on a service counts for each team that runs it too.
    """
    spans = [_span(e) for e in experiments]
    if not spans:
        return []
    slices: dict[str, list[ExperimentSpan]] = {}
    known: dict[str, set[str]] = {}
    for s in spans:
        if s.treated != ORG_WIDE:
            known.setdefault(s.dimension, set()).update({s.treated, *s.controls})
    for s in spans:
        values = sorted(known.get(s.dimension, set())) if s.treated == ORG_WIDE else [s.treated]
        for v in values or [ORG_WIDE]:
            slices.setdefault(f"{s.dimension}={v}", []).append(s)
        if s.dimension == "service" and s.treated != ORG_WIDE and owners:
            for team in sorted(owners.get(s.treated, ())):
                slices.setdefault(f"team={team}", []).append(s)
    now = _monday(as_of)
    out: list[SliceLoad] = []
    for name in sorted(slices):
        members = slices[name]
        week, last = _monday(min(m.start for m in members)), max(now, _monday(max(m.start for m in members)))
        best, best_week = 0, None
        while week <= last:
            n = sum(m.active(week, week + dt.timedelta(days=7)) for m in members)
            if n > best:
                best, best_week = n, week
            week += dt.timedelta(days=7)
        running = sorted(m.id for m in members if m.active(now, now + dt.timedelta(days=7)))
        out.append(SliceLoad(slice=name, current=len(running), max=best, max_week=best_week, running=running))
    return out
