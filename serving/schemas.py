"""Request and response models of the API."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, model_validator

FilterValue = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[\w .:/@+-]+$")]
Text = Annotated[str, Field(min_length=1, max_length=20_000)]


class IncidentText(BaseModel):
    """The parts of a postmortem used for matching (any subset; at least a title or summary)."""

    model_config = ConfigDict(extra="forbid")
    title: Annotated[str, Field(max_length=500)] = ""
    summary: Annotated[str, Field(max_length=20_000)] = ""
    root_cause: Annotated[str, Field(max_length=20_000)] = ""
    contributing_factors: Annotated[list[Annotated[str, Field(max_length=2_000)]], Field(max_length=50)] = []
    service: FilterValue | None = None
    team: FilterValue | None = None

    def as_text(self) -> str:
        return "\n".join(
            p for p in [self.title, self.summary, self.root_cause, *self.contributing_factors] if p
        )


class _TextOrIncident(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: Text | None = Field(None, description="What is happening, in free text.")
    incident: IncidentText | None = Field(None, description="A structured postmortem instead of free text.")

    @model_validator(mode="after")
    def _one(self) -> _TextOrIncident:
        if (self.text is None) == (self.incident is None):
            raise ValueError("give exactly one of 'text' or 'incident'")
        if self.incident is not None and not self.incident.as_text().strip():
            raise ValueError("incident has no text: give a title, summary or root_cause")
        if self.text is not None and not self.text.strip():
            raise ValueError("text is blank")
        return self

    def query_text(self) -> str:
        return self.text if self.text is not None else self.incident.as_text()  # type: ignore[union-attr]


class SimilarRequest(_TextOrIncident):
    k: Annotated[StrictInt, Field(ge=1, le=50)] = 5
    service: FilterValue | None = Field(None, description="Only incidents of this service.")
    team: FilterValue | None = Field(None, description="Only incidents of this team.")
    since: dt.date | None = Field(None, description="Only incidents that started on or after this date.")

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "text": "checkout returns 503s right after a feature-flag config push; no canary stage",
                    "k": 5,
                }
            ]
        },
    )


class ClassifyRequest(_TextOrIncident):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"text": "TLS handshake failures: the edge certificate expired overnight"}]
        },
    )


class ModelRef(BaseModel):
    name: str
    version: str


class PatternRef(BaseModel):
    pattern_id: int
    pattern_name: str
    confidence: float | None = None


class Reasons(BaseModel):
    shared_keywords: list[str] = Field(
        description="Informative terms shared with the query, most telling first."
    )
    matching_fields: list[str] = Field(description="Fields in common with the query: service, team, pattern.")


class Match(BaseModel):
    id: str
    title: str
    date: str | None
    service: str | None
    team: str | None
    score: float = Field(description="Fused rank score (higher is closer).")
    dense_score: float | None = Field(description="Cosine similarity of the embeddings (null for text-only).")
    lexical_score: float = Field(description="BM25 score relative to the best lexical match (0..1).")
    pattern_id: int = Field(description="-1 when unclustered")
    pattern_name: str
    reasons: Reasons
    root_cause: str | None = Field(
        None, description="Its root cause, redacted, shortened to about 300 characters at a sentence end."
    )
    action_items: list[ActionItemOut] = Field(default_factory=list, description="What was done after it.")
    pattern: MatchPattern | None = Field(None, description="Its pattern (null when unclustered).")


class ActionItemOut(BaseModel):
    title: str
    status: Literal["open", "done", "wontfix"]
    closed_at: str | None = None


class MatchPattern(BaseModel):
    id: int
    name: str
    seen: int = Field(description="How many indexed incidents the pattern holds.")
    last_seen: str | None = Field(None, description="Start date of its latest incident.")


class Fix(BaseModel):
    incident_id: str
    action_item: str = Field(description="The done action item.")
    held: bool = Field(description="True when no incident of the pattern started after it was closed.")


class Suggestion(BaseModel):
    pattern_id: int
    pattern_name: str
    seen: int
    last_seen: str | None
    support: int = Field(description="How many of the matches share the pattern.")
    fix: Fix | None
    text: str


class SimilarResponse(BaseModel):
    model: ModelRef
    query_pattern: PatternRef | None = None
    suggestion: Suggestion | None = Field(
        None,
        description="The pattern this looks like and the fix that held last time; null when evidence is weak.",
    )
    matches: list[Match]


class ClassifyResponse(BaseModel):
    model: ModelRef
    pattern_id: int = Field(description="-1 when unclustered")
    pattern_name: str
    confidence: float
    unclustered: bool


class Representative(BaseModel):
    id: str
    title: str


class Pattern(BaseModel):
    id: int
    name: str
    keywords: list[str]
    size: int
    trend: str
    trend_slope: float | None = None
    recent: int | None = Field(
        None, description="Incidents in the trend window (the last 6 periods of 30 days)."
    )
    representatives: list[Representative]
    first_seen: str | None = None
    last_seen: str | None = None


class PatternList(BaseModel):
    model: ModelRef
    unclustered: int
    patterns: list[Pattern]


class Heatmap(BaseModel):
    model: ModelRef
    by: str
    period: str
    rows: list[str]
    columns: list[str]
    values: list[list[int]]


class SeriesInfo(BaseModel):
    series: str
    indicator: str
    team: str | None
    service: str | None
    status: str | None
    model: str | None = Field(description="The model the backtest chose (or a combination).")
    reason: str | None = Field(description="Why that model, with the backtest figures.")
    mase: float | None
    baseline_mase: float | None
    n_obs: int | None
    last_ds: str | None
    last_y: float | None
    notes: list[str]


class SeriesList(BaseModel):
    model: ModelRef
    series: list[SeriesInfo]


#: A series id as GET /v1/indicators lists it (a ``/``, ``=``, ``,`` or ``%`` inside a name or value is
#: percent-encoded there: ``incidents/team=platform%2Finfra``).
SeriesId = Annotated[str, Field(min_length=1, max_length=300, pattern=r"^[\w .:/=@+,%-]+$")]


class ForecastRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"series": "reopens/team=payments", "horizon": 8}]}
    )
    series: SeriesId
    horizon: Annotated[StrictInt, Field(ge=1, le=104)] = 13


class ForecastPoint(BaseModel):
    ds: str
    yhat: float
    yhat_lower: float
    yhat_upper: float


class ForecastResponse(BaseModel):
    model: ModelRef
    series: str
    chosen_model: str | None
    level: int = Field(description="Central prediction interval, percent.")
    points: list[ForecastPoint]


class Signal(BaseModel):
    id: str = Field(description="The shift's id: GET /v1/signals/{id}/causes explains it")
    rank: int | None = None
    series: str
    date: str
    kind: str = Field(description="shift (a level/trend change) or outlier (an isolated point)")
    direction: str
    magnitude: float
    magnitude_sigma: float | None = None
    confidence: float
    outside_interval: float | None = None
    detail: str | None = None
    verdict: str | None = Field(None, description='"explained" or "no convincing cause"; null: not explained')
    n_causes: int | None = Field(None, description="How many candidate causes its explanation lists")


class SignalList(BaseModel):
    model: ModelRef
    signals: list[Signal]


class SignalCause(BaseModel):
    kind: Literal["slice", "pattern", "change", "experiment"]
    key: str = Field(description="team=payments, service=checkout,team=payments, a pattern or change id")
    contribution: float | None = Field(description="Share of the change it explains (0-1); null: undefined")
    confidence: float = Field(ge=0, le=1)
    evidence: dict[str, Any]
    summary: str


class SignalCauses(BaseModel):
    """One shift with its candidate causes, most confident first; verdict "no convincing cause" when none is."""

    model: ModelRef
    id: str
    series: str
    indicator: str | None = None
    date: str
    date_range: list[str] | None = Field(
        None,
        description="[first, last]: the dates the shift may have happened between (the 95% likelihood-ratio set "
        "of its break date); null when its neighbouring shifts leave no room",
    )
    direction: str
    magnitude: float
    confidence: float
    verdict: Literal["explained", "no convincing cause"]
    causes: list[SignalCause]
    detail: str | None = Field(None, description="How the shift was found and dated")
    aliases: list[str] = Field(
        default_factory=list,
        description="Other ids that lead here: that of the date the detector found the shift at, when it was "
        "re-dated to a known date (an experiment's start, or the shift of the part that made it)",
    )


class EarlyWarning(BaseModel):
    series: str
    threshold: float
    direction: str
    horizon: int
    probability: float


class WarningList(BaseModel):
    model: ModelRef
    warnings: list[EarlyWarning]


class HypothesisIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    problem: Annotated[str, Field(min_length=1, max_length=2000)]
    solution: Annotated[str, Field(min_length=1, max_length=2000)]
    metric: Annotated[str, Field(min_length=1, max_length=500)]


class ExperimentIn(BaseModel):
    """An experiment definition (as in experiments.yaml)."""

    model_config = ConfigDict(extra="forbid")
    id: Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[\w.:-]+$")]
    name: Annotated[str, Field(min_length=1, max_length=300)]
    hypothesis: HypothesisIn
    indicator: Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[\w.:-]+$")]
    dimension: Literal["team", "service"] = "team"
    treated: FilterValue
    controls: Annotated[list[FilterValue], Field(max_length=20)] = []
    start: dt.date
    end: dt.date | None = None
    desired_direction: Literal["decrease", "increase"] = "decrease"
    min_effect: Annotated[StrictFloat, Field(gt=0, lt=1e12)] | None = None
    owner: Annotated[str, Field(max_length=100)] | None = None


class Observation(BaseModel):
    model_config = ConfigDict(extra="forbid")
    indicator: Annotated[str, Field(min_length=1, max_length=100)]
    ds: dt.date
    y: Annotated[StrictFloat, Field(allow_inf_nan=False, ge=-1e12, le=1e12)]
    team: FilterValue | None = None
    service: FilterValue | None = None


class ScoreRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "experiment": {
                        "id": "EXP-100",
                        "name": "Canary gate",
                        "hypothesis": {
                            "problem": "Config pushes break production",
                            "solution": "A canary gate",
                            "metric": "change failure rate",
                        },
                        "indicator": "change_failure_rate",
                        "treated": "payments",
                        "controls": ["identity", "storage"],
                        "start": "2026-03-02",
                        "desired_direction": "decrease",
                    }
                }
            ]
        },
    )
    experiment: ExperimentIn
    data: Annotated[list[Observation], Field(max_length=20_000)] | None = Field(
        None, description="Indicator observations; default: the history held by the forecaster champion."
    )


class ExperimentOverlap(BaseModel):
    """Another experiment on the same indicator running in the same weeks on a slice that meets this one."""

    other_id: str
    kind: Literal["same slice", "nested slice", "treated is a control", "control is treated", "org-wide"]
    other_slice: str
    start: dt.date
    end: dt.date | None
    reason: str


class ExperimentResult(BaseModel):
    """The scored experiment (see ml.impact.ImpactResult for every field)."""

    model_config = ConfigDict(extra="allow")
    experiment_id: str
    verdict: Literal["improved", "worsened", "inconclusive"]
    effect: float
    ci_low: float
    ci_high: float
    relative_effect: float | None
    p_value: float
    mde: float
    weeks_needed: int | None
    method: str
    overlaps: list[ExperimentOverlap] = Field(
        default_factory=list, description="Recorded experiments overlapping this one (effects confounded)."
    )


class RecordedExperiment(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str
    name: str
    verdict: str | None
    effect: float | None
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    run_id: str
    scored_at: str


class ExperimentLoad(BaseModel):
    """Experiments treating a slice at once, per week: in the current week and at the most."""

    slice: str
    current: int
    max: int
    max_week: dt.date | None
    running: list[str]


class RecordedExperimentList(BaseModel):
    experiments: list[RecordedExperiment]
    load: list[ExperimentLoad] = Field(default_factory=list, description="Experiment load per team.")


class PlanRequest(BaseModel):
    """A proposed experiment; the history is the forecaster champion's, past experiments the recorded ones."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "indicator": "incidents",
                    "treated": "team=payments",
                    "controls": ["data", "platform"],
                    "weeks": 8,
                    "direction": "decrease",
                    "hypothesis": "A canary gate for config pushes cuts incidents",
                }
            ]
        },
    )
    indicator: Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[\w.:-]+$")]
    treated: Annotated[
        str,
        Field(
            min_length=3,
            max_length=200,
            pattern=r"^(team|service)=[^\x00-\x1f]+$",
            description="team=VALUE, service=VALUE, or a pair team=VALUE,service=VALUE (either order) naming a "
            "service that team alone runs in the history",
        ),
    ]
    controls: Annotated[list[FilterValue], Field(max_length=20)] = []
    weeks: Annotated[StrictInt, Field(ge=1, le=104)]
    direction: Literal["increase", "decrease"]
    hypothesis: Annotated[str, Field(max_length=2000)] | None = None


class PowerAtOut(BaseModel):
    label: str
    effect: float
    power: float


class ExperimentPlanOut(BaseModel):
    """The plan (see ml.experiments.planning.ExperimentPlan for every field)."""

    model_config = ConfigDict(extra="allow")
    indicator: str
    treated_series: str
    weeks: int
    mde: float
    mde_relative: float | None
    power: list[PowerAtOut]
    likely: dict[str, Any]
    weeks_needed: int | None
    overlaps: list[ExperimentOverlap]
    notes: list[str]
