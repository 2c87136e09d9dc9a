"""The result of scoring an experiment (pydantic models at the boundary) and the verdict rule."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict

from ml.experiments.calibration import Calibration
from ml.experiments.checks import DiDCheck, MannWhitneyCheck
from ml.io.schemas import Direction

logger = logging.getLogger(__name__)

Verdict = Literal["improved", "worsened", "inconclusive"]


class ImpactSeries(BaseModel):
    """What a before/after/counterfactual plot needs; counterfactual and band are None before `start`."""

    ds: list[dt.date]
    observed: list[float]
    counterfactual: list[float | None]
    lower: list[float | None]
    upper: list[float | None]

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.model_dump())


class ImpactDiagnostics(BaseModel):
    did: DiDCheck | None
    mann_whitney: MannWhitneyCheck
    noise: dict[str, float]
    inflation: float
    n_placebos: int
    controls_used: list[str]
    control_mode: Literal["none", "each", "mean"]
    notes: list[str]


class ImpactResult(BaseModel):
    """The scored experiment. Effects are observed minus counterfactual, in the indicator's units per week."""

    model_config = ConfigDict(frozen=True)

    experiment_id: str
    indicator: str
    treated_series: str
    desired_direction: Direction
    start: dt.date
    n_pre: int
    n_post: int
    alpha: float
    observed_mean: float
    counterfactual_mean: float
    effect: float
    ci_low: float
    ci_high: float
    relative_effect: float | None
    relative_ci_low: float | None
    relative_ci_high: float | None
    cumulative_effect: float
    cumulative_ci_low: float
    cumulative_ci_high: float
    p_value: float
    verdict: Verdict
    mde: float
    mde_relative: float | None
    min_effect: float | None
    weeks_needed: int | None
    method: str
    calibration: Calibration
    diagnostics: ImpactDiagnostics
    series: ImpactSeries


def verdict_for(effect: float, p_value: float, alpha: float, desired_direction: Direction) -> Verdict:
    """'improved' / 'worsened' when significant at `alpha`, by the sign of `effect`; else 'inconclusive'."""
    if p_value >= alpha or effect == 0:
        return "inconclusive"
    good = effect < 0 if desired_direction == "decrease" else effect > 0
    return "improved" if good else "worsened"
