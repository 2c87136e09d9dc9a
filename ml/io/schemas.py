"""Pydantic v2 schemas: the records Recur reads (incidents, indicator observations, experiments).

Datetimes are always normalised to timezone-aware UTC. A naive datetime is taken as UTC and the reader
records a note about it; dates (indicators, experiments) are plain calendar dates.

Every datetime and date must lie in the supported range ``EARLIEST_DATE`` .. ``LATEST_DATE`` (1900-01-01 to
2199-12-31, UTC): inside it every job (pandas timestamps hold 1677-09-22 to 2262-04-11, heat maps, trends, the
report) works; outside it the record is a validation error naming the field, so readers quarantine it.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from typing import Annotated, Literal
from urllib.parse import unquote

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

Severity = Literal["SEV1", "SEV2", "SEV3", "SEV4", "SEV5"]
ActionStatus = Literal["open", "done", "wontfix"]
Direction = Literal["decrease", "increase"]
Dimension = Literal["team", "service"]

NonBlank = Annotated[str, Field(min_length=1)]

EARLIEST_DATE = dt.date(1900, 1, 1)
LATEST_DATE = dt.date(2199, 12, 31)
_RANGE = f"{EARLIEST_DATE.isoformat()} to {LATEST_DATE.isoformat()}"


def to_utc(value: dt.datetime) -> dt.datetime:
    """Return `value` as an aware UTC datetime (a naive value is taken as UTC)."""
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        return value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


def utc_in_range(value: dt.datetime) -> dt.datetime:
    """`value` as aware UTC, or ValueError when its UTC date is outside EARLIEST_DATE..LATEST_DATE."""
    if not EARLIEST_DATE.year - 1 <= value.year <= LATEST_DATE.year + 1:  # before converting: 0001 or 9999
        raise ValueError(f"{value.date().isoformat()} is outside the supported date range {_RANGE}")
    value = to_utc(value)
    if not EARLIEST_DATE <= value.date() <= LATEST_DATE:
        raise ValueError(f"{value.date().isoformat()} is outside the supported date range {_RANGE}")
    return value


def date_in_range(value: dt.date) -> dt.date:
    """`value`, or ValueError when it is outside EARLIEST_DATE..LATEST_DATE."""
    if not EARLIEST_DATE <= value <= LATEST_DATE:
        raise ValueError(f"{value.isoformat()} is outside the supported date range {_RANGE}")
    return value


def _not_a_number(value: object) -> None:
    """A calendar date given as a number (a spreadsheet's day number 45610, ``20251221``, ``0``) is refused with what
    to write instead; pydantic would read it as seconds since 1970 (0: 1970-01-01, accepted in silence)."""
    text = str(value).strip() if isinstance(value, str | int | float) and not isinstance(value, bool) else ""
    if not text or not text.replace(".", "", 1).isdigit():
        return
    if len(text) == 8 and text.isdigit():
        try:
            day = dt.date(int(text[:4]), int(text[4:6]), int(text[6:]))
        except ValueError:
            pass
        else:
            raise ValueError(f"a date is written YYYY-MM-DD (got {text!r}: write it {day.isoformat()})")
    raise ValueError(
        f"a date is written YYYY-MM-DD (got {text!r}: a spreadsheet's day number or a timestamp? export the column "
        "as a date)"
    )


def _day_of(value: object) -> object:
    """A datetime (or an ISO datetime string) as its UTC date; anything else as it is, for pydantic's date (a
    number is refused: :func:`_not_a_number`)."""
    _not_a_number(value)
    if isinstance(value, dt.datetime):
        return utc_in_range(value).date()
    if isinstance(value, str) and ("T" in value or " " in value.strip()):
        return utc_in_range(dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))).date()
    return value


#: A calendar date in the supported range; a datetime is taken as its UTC date.
Day = Annotated[dt.date, BeforeValidator(_day_of), AfterValidator(date_in_range)]


def _strip_nonblank(value: str, field: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError(f"{field} is empty")
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)


class ActionItem(_Strict):
    id: NonBlank
    title: NonBlank
    status: ActionStatus = "open"
    created_at: dt.datetime | None = None
    closed_at: dt.datetime | None = None

    @field_validator("created_at", "closed_at")
    @classmethod
    def _utc(cls, v: dt.datetime | None) -> dt.datetime | None:
        return None if v is None else utc_in_range(v)

    @model_validator(mode="after")
    def _closed_after_created(self) -> ActionItem:
        if self.closed_at and self.created_at and self.closed_at < self.created_at:
            raise ValueError("closed_at is before created_at")
        return self


class Incident(_Strict):
    """A postmortem. `pattern` is an optional known label (ground truth), used only to score models."""

    id: NonBlank
    title: NonBlank
    summary: NonBlank
    impact: str | None = None
    timeline: str | None = None
    root_cause: str | None = None
    contributing_factors: list[str] = Field(default_factory=list)
    action_items: list[ActionItem] = Field(default_factory=list)
    service: str | None = None
    team: str | None = None
    severity: Severity | None = None
    started_at: dt.datetime
    detected_at: dt.datetime | None = None
    resolved_at: dt.datetime | None = None
    reopened: int = Field(default=0, ge=0)
    tags: list[str] = Field(default_factory=list)
    pattern: str | None = None
    #: The root-cause category an analyst assigned (free text, e.g. "certificate expiry"); optional. When some
    #: incidents carry one, training uses them to guide the pattern model and scores it on held-out ones.
    root_cause_category: str | None = Field(default=None, max_length=200)

    @field_validator("severity", mode="before")
    @classmethod
    def _severity(cls, v: object) -> object:
        if isinstance(v, str):
            s = v.strip().upper().replace("-", "").replace(" ", "")
            if s.isdigit():
                s = f"SEV{s}"
            return s or None
        if isinstance(v, int) and not isinstance(v, bool):
            return f"SEV{v}"
        return v

    @field_validator("started_at", "detected_at", "resolved_at")
    @classmethod
    def _utc(cls, v: dt.datetime | None) -> dt.datetime | None:
        return None if v is None else utc_in_range(v)

    @field_validator("contributing_factors", "tags", mode="before")
    @classmethod
    def _listify(cls, v: object) -> object:
        if v is None:
            return []
        if isinstance(v, str):
            parts = [p.strip() for p in v.replace("\n", ";").split(";")]
            return [p for p in parts if p]
        return v

    @field_validator("contributing_factors", "tags")
    @classmethod
    def _drop_blank(cls, v: list[str]) -> list[str]:
        return [s.strip() for s in v if s and s.strip()]

    @model_validator(mode="after")
    def _time_order(self) -> Incident:
        if self.detected_at and self.detected_at < self.started_at:
            raise ValueError("detected_at is before started_at")
        if self.resolved_at and self.resolved_at < self.started_at:
            raise ValueError("resolved_at is before started_at")
        return self

    @property
    def ttr_hours(self) -> float | None:
        """Time to resolve, in hours, when resolved."""
        if self.resolved_at is None:
            return None
        return (self.resolved_at - self.started_at).total_seconds() / 3600.0


class IndicatorObservation(_Strict):
    """One observation in long format: an indicator value on a date, for optional team/service."""

    indicator: NonBlank
    ds: Day
    y: float
    team: str | None = None
    service: str | None = None

    @field_validator("y")
    @classmethod
    def _finite(cls, v: float) -> float:
        if not math.isfinite(v):
            raise ValueError("y is not a finite number")
        return v

    @field_validator("team", "service", mode="before")
    @classmethod
    def _blank_none(cls, v: object) -> object:
        if v is None or (isinstance(v, str) and not v.strip()):
            return None
        if isinstance(v, float) and math.isnan(v):
            return None
        return v

    @property
    def series(self) -> str:
        return series_key(self.indicator, team=self.team, service=self.service)


#: Characters a series id or a slice key uses as separators, percent-encoded inside a name or value (``%`` first).
_KEY_ESCAPES = str.maketrans({"%": "%25", "/": "%2F", "=": "%3D", ",": "%2C"})


def key_part(text: str) -> str:
    """``text`` as it appears inside a series id or a slice key: ``%``, ``/``, ``=`` and ``,`` percent-encoded, so
    that a team called ``platform/infra`` is one value (``team=platform%2Finfra``) and no two series share an id."""
    return text.translate(_KEY_ESCAPES)


def readable(key: str) -> str:
    """A series id or slice key as people read it in a sentence: the encoded characters decoded (``team=platform
    /infra``); for text only, never parsed back."""
    return unquote(key)


def slice_key(dims: Mapping[str, str]) -> str:
    """The key of a slice: its dimension values by name, ``service=checkout,team=payments`` (:func:`key_part`)."""
    return ",".join(f"{key_part(d)}={key_part(dims[d])}" for d in sorted(dims))


def series_key(indicator: str, *, team: str | None = None, service: str | None = None) -> str:
    """The id of a series: the indicator plus its dimensions, e.g. ``reopens/team=payments`` (names and values
    with a separator in them are encoded: :func:`key_part`)."""
    parts = [key_part(indicator)]
    if team:
        parts.append(f"team={key_part(team)}")
    if service:
        parts.append(f"service={key_part(service)}")
    return "/".join(parts)


def parse_series_key(key: str) -> dict[str, str | None]:
    """Inverse of :func:`series_key`."""
    indicator, *dims = key.split("/")
    out: dict[str, str | None] = {"indicator": unquote(indicator), "team": None, "service": None}
    for d in dims:
        name, _, value = d.partition("=")
        if name in ("team", "service"):
            out[name] = unquote(value)
    return out


class Hypothesis(_Strict):
    problem: NonBlank
    solution: NonBlank
    metric: NonBlank


class Experiment(_Strict):
    """A process experiment: a change made to `treated` (a team or service) from `start` on."""

    id: NonBlank
    name: NonBlank
    hypothesis: Hypothesis
    indicator: NonBlank
    dimension: Dimension = "team"
    treated: NonBlank
    controls: list[str] = Field(default_factory=list)
    start: dt.date
    end: dt.date | None = None
    desired_direction: Direction = "decrease"
    min_effect: float | None = Field(default=None, gt=0)
    owner: str | None = None

    @field_validator("start", "end", mode="before")
    @classmethod
    def _date(cls, v: object) -> object:
        _not_a_number(v)
        if isinstance(v, dt.datetime):
            return utc_in_range(v).date()
        return v

    @field_validator("start", "end")
    @classmethod
    def _in_range(cls, v: dt.date | None) -> dt.date | None:
        return None if v is None else date_in_range(v)

    @model_validator(mode="after")
    def _check(self) -> Experiment:
        if self.end is not None and self.end <= self.start:
            raise ValueError("end is not after start")
        if self.treated in self.controls:
            raise ValueError(f"treated {self.treated!r} is also listed in controls")
        return self

    @property
    def treated_series(self) -> str:
        return series_key(self.indicator, **{self.dimension: self.treated})

    @property
    def control_series(self) -> list[str]:
        return [series_key(self.indicator, **{self.dimension: c}) for c in self.controls]


class Change(_Strict):
    """One entry of the change log (``changes.csv``): something changed on ``ds`` for a team or service.

    An empty ``team`` and ``service`` means an org-wide change. ``id`` defaults to ``CHG-<line>`` in the reader.
    """

    id: NonBlank
    ds: Day
    kind: NonBlank
    description: NonBlank
    team: str | None = None
    service: str | None = None

    @field_validator("team", "service", mode="before")
    @classmethod
    def _blank_none(cls, v: object) -> object:
        if v is None or (isinstance(v, str) and not v.strip()):
            return None
        return v
