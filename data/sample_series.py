"""The sample's weekly indicator series and process experiments: series parameters, experiment plans and their
true effects, level shifts, outliers, and the simulation (trend + seasonality + AR(1) noise, Poisson for counts).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field

import numpy as np
from sample_spec import EXPERIMENTS, PEOPLE, TEAMS, ExperimentText, Rand
from sample_text import person_handle

WEEK0 = dt.date(2024, 11, 4)  # first Monday of the indicator series
N_WEEKS = 104  # last week: 2026-10-26


@dataclass(frozen=True)
class IndicatorSpec:
    name: str
    kind: str  # count | continuous
    level: tuple[float, float]
    noise: tuple[float, float]  # count: AR sd as a fraction of level; continuous: AR sd in units
    season_frac: float  # common seasonal amplitude, as a fraction of the typical level
    trend_frac: float  # common trend over the two years is within +-trend_frac of the typical level
    decimals: int
    upper: float | None = None


INDICATORS: list[IndicatorSpec] = [
    IndicatorSpec("incidents", "count", (9, 14), (0.05, 0.10), 0.10, 0.25, 0),
    IndicatorSpec("reopens", "count", (7, 11), (0.05, 0.10), 0.08, 0.20, 0),
    IndicatorSpec("skipped_checklist_items", "count", (18, 30), (0.05, 0.10), 0.10, 0.30, 0),
    IndicatorSpec("manual_retries", "count", (25, 45), (0.05, 0.10), 0.12, 0.30, 0),
    IndicatorSpec("mttr_hours", "continuous", (3.0, 7.0), (0.4, 0.8), 0.06, 0.20, 2),
    IndicatorSpec("change_failure_rate", "continuous", (0.10, 0.25), (0.015, 0.03), 0.05, 0.25, 4, 1.0),
]
IND_BY_NAME = {s.name: s for s in INDICATORS}


def week_dates() -> list[dt.date]:
    return [WEEK0 + dt.timedelta(weeks=i) for i in range(N_WEEKS)]


@dataclass
class Series:
    indicator: str
    team: str
    level: float
    slope: float  # units per week
    season_amp: float
    season_phase: float
    phi: float
    ar_sd: float  # marginal sd of the AR(1) component
    noise_sd: float  # total week-to-week noise sd (AR + Poisson for counts)
    shifts: list[tuple[int, float, str]] = field(default_factory=list)  # (week index, magnitude, kind)
    outliers: list[int] = field(default_factory=list)
    values: list[float] = field(default_factory=list)

    @property
    def key(self) -> str:
        return f"{self.indicator}/team={self.team}"

    def expected(self, i: int, with_shifts: bool = True) -> float:
        """The mean of the series in week `i` (level + trend + seasonality + shifts)."""
        d = WEEK0 + dt.timedelta(weeks=i)
        season = self.season_amp * math.sin(2 * math.pi * d.timetuple().tm_yday / 365.25 + self.season_phase)
        mean = self.level + self.slope * (i - (N_WEEKS - 1) / 2) + season
        if with_shifts:
            mean += sum(m for j, m, _ in self.shifts if i >= j)
        return mean


def build_series(rng: Rand) -> dict[tuple[str, str], Series]:
    series: dict[tuple[str, str], Series] = {}
    for spec in INDICATORS:
        ref = sum(spec.level) / 2
        slope = rng.uniform(-spec.trend_frac, spec.trend_frac) * ref / (N_WEEKS - 1)
        amp = spec.season_frac * ref
        phase = rng.uniform(0, 2 * math.pi)
        for team in TEAMS:
            level = rng.uniform(*spec.level)
            if spec.kind == "count":
                ar_sd = rng.uniform(*spec.noise) * level
                noise_sd = math.sqrt(level + ar_sd**2)
            else:
                ar_sd = rng.uniform(*spec.noise)
                noise_sd = ar_sd
            series[(spec.name, team)] = Series(
                indicator=spec.name,
                team=team,
                level=level,
                slope=slope + float(rng.g.normal(0, 0.3 * noise_sd / N_WEEKS)),
                season_amp=amp * (1 + float(rng.g.normal(0, 0.1))),
                season_phase=phase + float(rng.g.normal(0, 0.15)),
                phi=rng.uniform(0.3, 0.6),
                ar_sd=ar_sd,
                noise_sd=noise_sd,
            )
    return series


@dataclass
class ExperimentPlan:
    id: str
    text: ExperimentText
    treated: str
    controls: list[str]
    start: int
    end: int | None
    is_null: bool
    wrong_direction: bool
    true_effect: float = 0.0
    true_relative_effect: float = 0.0
    min_effect: float = 0.0
    owner: str = ""


def plan_experiments(rng: Rand, series: dict[tuple[str, str], Series]) -> list[ExperimentPlan]:
    n = len(EXPERIMENTS)
    null_idx = set(rng.sample(range(n), n // 3))
    wrong_idx = rng.pick([i for i in range(n) if i not in null_idx])
    plans: list[ExperimentPlan] = []
    by_indicator: dict[str, list[int]] = {}
    for i, e in enumerate(EXPERIMENTS):
        by_indicator.setdefault(e.indicator, []).append(i)
    assignment: dict[int, tuple[str, list[str]]] = {}
    for indicator in [s.name for s in INDICATORS]:
        idxs = by_indicator.get(indicator, [])
        teams = rng.sample(TEAMS, len(TEAMS))
        treated = teams[: len(idxs)]
        pool = teams[len(idxs) :]
        for i, t in zip(idxs, treated, strict=True):
            k = min(rng.int(2, 3), len(pool))
            assignment[i] = (t, sorted(rng.sample(pool, k)))
    for i, e in enumerate(EXPERIMENTS):
        treated, controls = assignment[i]
        start = rng.int(28, N_WEEKS - 10)
        end = start + rng.int(12, 20) if rng.chance(0.25) else None
        if end is not None and end >= N_WEEKS:
            end = None
        first, last = rng.pick(PEOPLE)
        plans.append(
            ExperimentPlan(
                id=f"EXP-{i + 1:03d}",
                text=e,
                treated=treated,
                controls=controls,
                start=start,
                end=end,
                is_null=i in null_idx,
                wrong_direction=i == wrong_idx,
                owner=person_handle(first, last, 0),
            )
        )
    for p in plans:
        s = series[(p.text.indicator, p.treated)]
        spec = IND_BY_NAME[p.text.indicator]
        pre_mean = float(np.mean([s.expected(i) for i in range(p.start - 26, p.start)]))
        p.min_effect = round(s.noise_sd, 1 if spec.kind == "count" else (2 if spec.decimals == 2 else 3))
        if p.is_null:
            continue
        sign = -1.0 if p.text.direction == "decrease" else 1.0
        if p.wrong_direction:
            sign = -sign
        # a decrease may not take more than 60% off the level (counts stay positive)
        hi = 4.0 if sign > 0 else min(4.0, 0.6 * pre_mean / s.noise_sd)
        # 2.5-4 noise SDs: an 8-week post period detects that reliably (about 2 SDs is the 80%-power limit)
        effect = round(sign * rng.uniform(2.5, max(hi, 2.6)) * s.noise_sd, 4)
        p.true_effect = effect
        p.true_relative_effect = round(effect / pre_mean, 4)
        s.shifts.append((p.start, effect, "experiment"))
    return plans


def plan_shifts(rng: Rand, series: dict[tuple[str, str], Series], plans: list[ExperimentPlan]) -> None:
    """Level shifts in about a third of the series together with the experiment effects."""
    involved = {(p.text.indicator, t) for p in plans for t in [p.treated, *p.controls]}
    free = [k for k in series if k not in involved]
    chosen = rng.sample(free, min(5, len(free)))
    for j, key in enumerate(chosen):
        s = series[key]
        n_shifts = 2 if j == 0 else 1
        idxs = sorted(rng.sample(range(12, N_WEEKS - 10, 4), n_shifts))
        if n_shifts == 2 and idxs[1] - idxs[0] < 20:
            idxs[1] = min(idxs[0] + 24, N_WEEKS - 10)
        sign = 1.0 if rng.chance(0.6) else -1.0
        for idx in idxs:
            size = rng.uniform(2.0, 4.0) * s.noise_sd
            if sign < 0 and size > 0.6 * s.expected(idx - 1):
                sign = 1.0  # too big a drop for this level: shift up instead
            s.shifts.append((idx, round(sign * size, 4), "shift"))
            sign = -sign  # a second shift in the same series goes back the other way
        s.shifts.sort()


def simulate(rng: Rand, series: dict[tuple[str, str], Series]) -> None:
    for (name, _team), s in series.items():
        spec = IND_BY_NAME[name]
        innov = s.ar_sd * math.sqrt(1 - s.phi**2)
        e = float(rng.g.normal(0, s.ar_sd))
        values: list[float] = []
        for i in range(N_WEEKS):
            if i > 0:
                e = s.phi * e + float(rng.g.normal(0, innov))
            mean = s.expected(i) + e
            if spec.kind == "count":
                y = float(rng.g.poisson(max(mean, 0.1)))
            else:
                y = max(mean, 0.01 * s.level)
            values.append(y)
        # isolated outliers, away from shifts and from each other
        blocked = {j + k for j, _, _ in s.shifts for k in range(-2, 3)}
        n_out = min(int(rng.g.poisson(1.0)), 3)
        for _ in range(n_out):
            cands = [i for i in range(3, N_WEEKS - 3) if i not in blocked]
            if not cands:
                break
            i = rng.pick(cands)
            up = spec.kind == "count" or rng.chance(0.8)
            size = rng.uniform(4.0, 7.0) * s.noise_sd
            values[i] = values[i] + size if up else max(values[i] - size, 0.0)
            s.outliers.append(i)
            blocked |= {i + k for k in range(-3, 4)}
        s.outliers.sort()
        if spec.upper is not None:
            values = [min(v, spec.upper) for v in values]
        s.values = [round(v) if spec.kind == "count" else round(v, spec.decimals) for v in values]
