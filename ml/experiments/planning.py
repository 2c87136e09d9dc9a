"""Plan an experiment before launch: the effect it can detect, its power, and the effect to expect.

The plan runs the scorer itself (:class:`~ml.experiments.impact.ImpactScorer`) on the history extended by the
planned weeks, so the plan and the later verdict share one noise model and one calibration: the counterfactual's
predictive spread for the planned post-period, widened by the same pooled placebo windows and learned prior. The
spread does not depend on the (placeholder) post-period values; future control values are held at their mean
over the last eight weeks. With ``se`` the scorer's standard error of the effect (its 1 - alpha interval's half
width over z_{1-alpha/2})::

    MDE = (z_{1-alpha/2} + z_{power}) * se           (80% power, alpha 0.05: 2.80 se)
    power(d) = Phi(|d| / se - z_{1-alpha/2}) + Phi(-|d| / se - z_{1-alpha/2})

The spread for other durations comes from the same fitted model, each duration with its own calibration factor
(placebo windows of that many weeks; one factor serves every duration from ``MAX_PLACEBO_HORIZON`` weeks on, as
the scorer caps the placebos' horizon), which gives the weeks needed for 80% power at the likely effect whatever
duration was planned. The power can fall from a short duration to a longer one: the placebos may show that the
model's interval holds over a few weeks but must be widened over more (a level that wanders).

The likely effect comes from past experiments on the same indicator (effects and intervals as the scorer gave
them): a random-effects model (DerSimonian-Laird) estimates the indicator's mean effect ``mu`` and the spread of
true effects between experiments ``tau``; each past effect is shrunk towards ``mu`` by empirical Bayes
(weight ``tau^2 / (tau^2 + se_i^2)`` on its own estimate), and the likely effect of a new experiment is ``mu``
with the prediction interval ``mu +- z * sqrt(tau^2 + se(mu)^2)``. Fewer than :data:`MIN_PAST` past experiments
give no likely effect: the plan says so and gives the MDE alone.
"""

from __future__ import annotations

import copy
import datetime as dt
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel
from scipy import stats

from ml.errors import InputError, NotFoundError
from ml.experiments.calibration import MAX_PLACEBO_HORIZON, Calibration
from ml.experiments.effect import se_by_horizon
from ml.experiments.hygiene import ExperimentSpan, Overlap, overlaps_with
from ml.experiments.impact import ImpactScorer
from ml.indicators.completion import service_owners
from ml.io.schemas import Direction, Experiment, Hypothesis, series_key

logger = logging.getLogger(__name__)

#: Fewest past experiments on the indicator for a likely effect.
MIN_PAST = 3
#: Longest plan, in weeks.
MAX_WEEKS = 104
#: Power the MDE is given at.
POWER = 0.80
#: Recent weeks whose mean stands in for the controls' (and the treated series') future values.
RECENT_WEEKS = 8


class PastEffect(BaseModel):
    """A past experiment's effect on the indicator (observed minus counterfactual per week) and its shrunk value."""

    id: str
    treated: str | None = None
    desired_direction: Direction | None = None
    effect: float
    se: float
    shrunk: float | None = None


class LikelyEffect(BaseModel):
    """The effect to expect from past experiments on the same indicator (None with too few of them)."""

    n_past: int
    effect: float | None
    ci_low: float | None
    ci_high: float | None
    overall_mean: float | None
    between_sd: float | None
    past: list[PastEffect]
    note: str


class PowerAt(BaseModel):
    label: str
    effect: float
    power: float


class ExperimentPlan(BaseModel):
    """The plan: what the planned weeks can detect, with which power, and what to expect."""

    indicator: str
    treated_series: str
    controls: list[str]
    desired_direction: Direction
    hypothesis: str | None
    weeks: int
    start: dt.date
    alpha: float
    n_pre: int
    baseline_mean: float
    mde: float
    mde_relative: float | None
    se: float
    calibration: Calibration
    power: list[PowerAt]
    likely: LikelyEffect
    weeks_needed: int | None
    overlaps: list[Overlap]
    notes: list[str]


def _other(direction: str) -> str:
    return "increase" if direction == "decrease" else "decrease"


def power_at(effect: float, se: float, alpha: float) -> float:
    """Two-sided power of a level-`alpha` test of an effect with standard error `se`."""
    if se <= 0:
        return 1.0 if effect != 0 else alpha
    zc = float(stats.norm.ppf(1 - alpha / 2))
    d = abs(effect) / se
    return float(stats.norm.cdf(d - zc) + stats.norm.cdf(-d - zc))


def likely_effect(past: Sequence[PastEffect], alpha: float = 0.05) -> LikelyEffect:
    """Random-effects (DerSimonian-Laird) mean of past effects, each past effect shrunk towards it."""
    rows = [p for p in past if math.isfinite(p.effect) and math.isfinite(p.se) and p.se > 0]
    k = len(rows)
    if k < MIN_PAST:
        return LikelyEffect(
            n_past=k,
            effect=None,
            ci_low=None,
            ci_high=None,
            overall_mean=None,
            between_sd=None,
            past=list(rows),
            note=f"{k} past experiment(s) on this indicator: too few (< {MIN_PAST}) to predict an effect; MDE only",
        )
    e = np.array([p.effect for p in rows])
    v = np.array([p.se for p in rows]) ** 2
    w = 1.0 / v
    mu_fe = float(w @ e / w.sum())
    q = float(w @ (e - mu_fe) ** 2)
    c = float(w.sum() - (w @ w) / w.sum())
    tau2 = max(0.0, (q - (k - 1)) / c) if c > 0 else 0.0
    ws = 1.0 / (v + tau2)
    mu = float(ws @ e / ws.sum())
    var_mu = float(1.0 / ws.sum())
    z = float(stats.norm.ppf(1 - alpha / 2))
    half = z * math.sqrt(tau2 + var_mu)
    shrunk = mu + (tau2 / (tau2 + v)) * (e - mu)
    note = (
        f"{k} past experiments on this indicator: mean effect {mu:.4g} per week, spread between experiments"
        f" {math.sqrt(tau2):.4g} (each past effect shrunk towards the mean by empirical Bayes)"
    )
    return LikelyEffect(
        n_past=k,
        effect=mu,
        ci_low=mu - half,
        ci_high=mu + half,
        overall_mean=mu,
        between_sd=math.sqrt(tau2),
        past=[p.model_copy(update={"shrunk": float(s)}) for p, s in zip(rows, shrunk, strict=True)],
        note=note,
    )


def past_from_records(
    rows: Sequence[Mapping[str, Any]], indicator: str, alpha: float = 0.05
) -> list[PastEffect]:
    """Effects of recorded experiments (``ml.registry.runs`` rows) on `indicator`, se from their interval."""
    z = float(stats.norm.ppf(1 - alpha / 2))
    out = []
    for r in rows:
        lo, hi, eff = r.get("ci_low"), r.get("ci_high"), r.get("effect")
        if r.get("indicator") != indicator or lo is None or hi is None or eff is None or not hi > lo:
            continue
        direction = r.get("desired_direction")
        out.append(
            PastEffect(
                id=str(r["id"]),
                treated=r.get("treated"),
                desired_direction=direction if direction in ("increase", "decrease") else None,
                effect=float(eff),
                se=(hi - lo) / (2 * z),
            )
        )
    return out


def check_plan_args(weeks: object, direction: object) -> None:
    """The planned weeks (1..MAX_WEEKS) and direction, checked before any data is read."""
    if not isinstance(weeks, int) or isinstance(weeks, bool) or not 1 <= weeks <= MAX_WEEKS:
        raise InputError(f"weeks must be a whole number from 1 to {MAX_WEEKS}", field="weeks", value=weeks)
    if direction not in ("increase", "decrease"):
        raise InputError("direction must be 'increase' or 'decrease'", field="direction", value=direction)


#: Longest treated slice text read (a name, not a document).
MAX_TREATED_CHARS = 300


def _pair_cuts(text: str) -> list[int]:
    """Where ``text`` splits into dimension=value parts: at a ``,`` or ``/`` followed by ``team`` or ``service`` and
    ``=`` (spaces allowed between), so that a value may itself hold ``,``, ``/`` or ``=``."""
    cuts = []
    for i, ch in enumerate(text):
        if ch in ",/":
            name, sep, _ = text[i + 1 :].partition("=")
            if sep and name.strip() in ("team", "service"):
                cuts.append(i)
            elif sep and name.strip().isidentifier():  # another dimension, e.g. region=eu: not a slice here
                raise InputError(
                    f"treated: unknown dimension {name.strip()!r} (team or service)",
                    field="treated",
                    value=text,
                )
    return cuts


def parse_treated(treated: str) -> dict[str, str]:
    """The dimension values of a treated slice given as ``team=VALUE``, ``service=VALUE`` or a team and service
    pair (``team=payments,service=checkout``, either order, ``,`` or ``/`` between, a value free to hold either);
    its form only."""
    text = str(treated).strip()
    if len(text) > MAX_TREATED_CHARS:
        raise InputError(
            f"treated is {len(text)} characters long (at most {MAX_TREATED_CHARS})",
            field="treated",
            value=None,
        )
    edges = [-1, *_pair_cuts(text), len(text)]
    parts = [text[a + 1 : b].partition("=") for a, b in zip(edges[:-1], edges[1:], strict=True)]
    pair = {d.strip(): v.strip() for d, _, v in parts}
    ok = all(sep for _, sep, _ in parts) and all(pair.values()) and len(pair) == len(parts) <= 2
    if not ok or not set(pair) <= {"team", "service"}:
        raise InputError(
            f"treated must be team=VALUE, service=VALUE or team=VALUE,service=VALUE, got {text!r}",
            field="treated",
            value=text,
        )
    return pair


def resolve_treated(treated: str, series: Iterable[str], indicator: str | None = None) -> tuple[str, str]:
    """(dimension, value) of a treated slice (:func:`parse_treated`). A pair names the service when the indicators
    (``series`` keys, those of ``indicator`` when given) show that team alone runs it: its series is the service's.
    A service several teams run is no slice one team can treat (the experiment model has one dimension), and that
    is said."""
    pair = parse_treated(treated)
    if len(pair) == 1:
        ((dim, value),) = pair.items()
        return dim, value
    text = str(treated).strip()
    team, service = pair["team"], pair["service"]
    mine = [str(s) for s in series if indicator is None or str(s).startswith(f"{indicator}/")]
    owners = service_owners(mine)
    teams = owners.get(service, set())
    if not teams:
        known = ", ".join(sorted(owners)[:10]) or "none: not split by team and service"
        raise InputError(
            f"treated: the indicators show no team running service {service!r} (services with a team: {known}); "
            "give team=VALUE or service=VALUE",
            field="treated",
            value=text,
        )
    if team not in teams:
        raise InputError(
            f"treated: service {service!r} is run by {', '.join(sorted(teams))}, not {team!r}",
            field="treated",
            value=text,
        )
    if len(teams) > 1:
        raise InputError(
            f"treated: service {service!r} is run by {len(teams)} teams ({', '.join(sorted(teams))}): one team's "
            f"part of it is no slice an experiment can treat; give service={service} (all of it) or team={team}",
            field="treated",
            value=text,
        )
    return "service", service


def _check_inputs(
    data: pd.DataFrame, indicator: str, dimension: str, treated: str, controls: Sequence[str], weeks: int
) -> tuple[str, list[str]]:
    if dimension not in ("team", "service"):
        raise InputError(
            "the treated slice must be team=VALUE or service=VALUE", field="treated", value=dimension
        )
    names = set(data["series"].astype(str).unique())
    indicators = sorted({n.split("/", 1)[0] for n in names})
    if indicator not in indicators:
        raise InputError(
            f"unknown indicator {indicator!r} (known: {', '.join(indicators[:20])})",
            field="indicator",
            value=indicator,
        )
    slices = sorted(n.split("/", 1)[1] for n in names if n.startswith(indicator + "/") and "/" in n)
    known = ", ".join(slices[:20]) or "none"
    treated_series = series_key(indicator, **{dimension: treated})
    if treated_series not in names:
        raise InputError(
            f"treated: no series {treated_series!r} (slices of {indicator}: {known})",
            field="treated",
            value=treated,
        )
    control_series = []
    for c in controls:
        key = series_key(indicator, **{dimension: c})
        if key not in names:
            raise InputError(
                f"controls: no series {key!r} (slices of {indicator}: {known})", field="controls", value=c
            )
        if c == treated:
            raise InputError(f"{c!r} is both treated and a control", field="controls", value=c)
        control_series.append(key)
    return treated_series, control_series


def _extended(
    data: pd.DataFrame, series: list[str], weeks: int
) -> tuple[pd.DataFrame, pd.DatetimeIndex, np.ndarray, pd.Series]:
    """`data` (series, ds, y) with `weeks` placeholder weeks appended to `series`; the planned weeks, their
    period numbers on the scorer's grid, and the recent level of each series (the placeholder values)."""
    frame = data[["series", "ds", "y"]].copy()
    frame["series"] = frame["series"].astype(str)
    frame["ds"] = pd.to_datetime(frame["ds"], errors="coerce")
    frame["y"] = pd.to_numeric(frame["y"], errors="coerce")
    mine = frame[frame["series"].isin(series)].dropna()
    wide = mine.pivot_table(index="ds", columns="series", values="y").sort_index()
    wide = wide.reindex(columns=series).dropna()
    if len(wide) < 2:
        raise InputError(
            f"{series[0]!r} and its controls share fewer than 2 weeks", field="treated", value=series[0]
        )
    days = ((wide.index - wide.index[0]) / pd.Timedelta(days=1)).to_numpy(dtype=float)
    step = float(np.median(np.diff(days)))
    last = float(np.round(days[-1] / step))
    future = pd.DatetimeIndex([wide.index[-1] + pd.Timedelta(days=step * i) for i in range(1, weeks + 1)])
    level = wide.tail(RECENT_WEEKS).mean()
    extra = pd.DataFrame(
        [{"series": s, "ds": d, "y": float(level[s])} for s in series for d in future],
        columns=["series", "ds", "y"],
    )
    t_future = last + np.arange(1, weeks + 1, dtype=float)
    return pd.concat([frame, extra], ignore_index=True), future, t_future, level


def _se_by_horizon(
    scorer: ImpactScorer, t_future: np.ndarray, level: pd.Series, controls: list[str]
) -> np.ndarray:
    """The scorer's standard error of the effect over the first 1..len(t_future) weeks (its model and factor)."""
    est, diag = scorer.estimate_, scorer.result_.diagnostics
    X = None
    if diag.control_mode != "none":
        x = np.array([float(level[c]) for c in controls if c in diag.controls_used])
        row = x if diag.control_mode == "each" else np.array([x.mean()])
        X = np.repeat(row[None, :], t_future.size, axis=0)
    return se_by_horizon(est, t_future, X, scorer.alpha)


def _weeks_needed(
    scorer: ImpactScorer,
    exp: Experiment,
    frame: pd.DataFrame,
    future: pd.DatetimeIndex,
    se_unit: np.ndarray,
    z: float,
    effect: float,
    known: tuple[int, float],
) -> tuple[int | None, float]:
    """The fewest weeks whose MDE (``z`` x se) reaches ``effect``: ``se_unit`` is the model's standard error by
    duration before calibration, each duration widened by its own factor (from a fit of the scorer for that many
    weeks, once per duration up to the placebos' longest horizon; see the module docstring). None: not within
    ``MAX_WEEKS``. ``known``: the planned duration and its factor. Also the factor at the weeks found."""
    factors = {min(known[0], MAX_PLACEBO_HORIZON): known[1]}
    for h in range(1, se_unit.size + 1):
        k = min(h, MAX_PLACEBO_HORIZON)
        if k not in factors:
            try:
                fit = copy.copy(scorer).fit(exp.model_copy(update={"end": future[k].date()}), frame)
                factors[k] = fit.result_.calibration.factor
            except (InputError, NotFoundError):
                factors[k] = math.inf  # no estimate for that duration
        if z * float(se_unit[h - 1]) * factors[k] <= effect:
            return h, factors[k]
    return None, math.inf


def plan_experiment(
    data: pd.DataFrame,
    *,
    indicator: str,
    treated: str,
    dimension: str = "team",
    controls: Sequence[str] = (),
    weeks: int,
    direction: Direction = "decrease",
    hypothesis: str | None = None,
    past: Sequence[PastEffect] = (),
    running: Sequence[ExperimentSpan] = (),
    scorer: ImpactScorer | None = None,
) -> ExperimentPlan:
    """Plan an experiment on `treated` (a `dimension` value) of `indicator` for `weeks` weeks after the history.

    `data` is the history (long: series, ds, y); `past` the effects of past experiments on the same indicator;
    `running` the recorded experiments, checked for overlaps with the planned one (a team and a service meet where
    the history's series split by both show the team runs it);
    `scorer` the scorer whose calibration the plan shares (default: :class:`ImpactScorer` with its defaults, as
    ``experiment score``).
    """
    check_plan_args(weeks, direction)
    if not isinstance(data, pd.DataFrame) or not {"series", "ds", "y"} <= set(data.columns):
        raise InputError("data needs the columns series, ds, y", field="data", value=None)
    controls = list(dict.fromkeys(controls))
    treated_series, control_series = _check_inputs(data, indicator, dimension, treated, controls, weeks)
    frame, future, t_future, level = _extended(data, [treated_series, *control_series], MAX_WEEKS)
    start = future[0].date()
    end = future[weeks].date() if weeks < MAX_WEEKS else None
    exp = Experiment(
        id="PLAN",
        name="planned experiment",
        hypothesis=Hypothesis(problem=hypothesis or "planned", solution="planned", metric=indicator),
        indicator=indicator,
        dimension=dimension,  # type: ignore[arg-type]
        treated=treated,
        controls=controls,
        start=start,
        end=end,
        desired_direction=direction,
    )
    scorer = scorer if scorer is not None else ImpactScorer()
    try:
        result = scorer.fit(exp, frame).result_
    except (InputError, NotFoundError) as exc:
        field = exc.field if exc.field == "controls" else "treated"
        raise InputError(
            f"cannot plan on {treated_series!r}: {exc.message.removeprefix(f'experiment {exp.id!r}: ')}",
            field=field,
            value=treated,
        ) from exc
    alpha = scorer.alpha
    zc, zp = float(stats.norm.ppf(1 - alpha / 2)), float(stats.norm.ppf(POWER))
    se = result.mde / (zc + zp)
    se_h = _se_by_horizon(scorer, t_future, level, control_series)
    notes = [f"calibration: {result.calibration.reason}"]
    # past changes that aimed the other way (e.g. a campaign to report more incidents) predict nothing here
    same_aim = [p for p in past if p.desired_direction in (None, direction)]
    if len(same_aim) < len(past):
        notes.append(
            f"{len(past) - len(same_aim)} past experiment(s) on {indicator} aimed to {_other(direction)} it:"
            " left out of the likely effect"
        )
    likely = likely_effect(same_aim, alpha)
    power = [
        PowerAt(label=f"{m:g}x MDE", effect=m * result.mde, power=power_at(m * result.mde, se, alpha))
        for m in (0.5, 1.0, 2.0)
    ]
    weeks_needed = None
    if likely.effect is not None:
        power.append(
            PowerAt(label="likely effect", effect=likely.effect, power=power_at(likely.effect, se, alpha))
        )
        weeks_needed, factor_needed = _weeks_needed(
            scorer,
            exp,
            frame,
            future,
            se_h / result.calibration.factor,
            zc + zp,
            abs(likely.effect),
            (weeks, result.calibration.factor),
        )
        if weeks_needed is None:
            notes.append(f"the likely effect is not detectable with 80% power within {MAX_WEEKS} weeks")
        elif weeks_needed < weeks and power[-1].power < POWER:
            notes.append(
                f"{weeks_needed} weeks reach 80% power at the likely effect but the {weeks} planned do not: the"
                f" placebo windows widen the interval x{result.calibration.factor:.2f} over {weeks} weeks and"
                f" x{factor_needed:.2f} over {weeks_needed} (the model's interval holds over a few weeks, not"
                " over more), so a longer experiment is not more sensitive here"
            )
        good = likely.effect < 0 if direction == "decrease" else likely.effect > 0
        if likely.effect != 0 and not good:
            notes.append(f"past experiments on {indicator} moved it the other way on average")
    baseline = float(level[treated_series])
    spans = [s for s in running if s.id != exp.id]
    return ExperimentPlan(
        indicator=indicator,
        treated_series=treated_series,
        controls=control_series,
        desired_direction=direction,
        hypothesis=hypothesis,
        weeks=weeks,
        start=start,
        alpha=alpha,
        n_pre=result.n_pre,
        baseline_mean=baseline,
        mde=result.mde,
        mde_relative=result.mde_relative,
        se=se,
        calibration=result.calibration,
        power=power,
        likely=likely,
        weeks_needed=weeks_needed,
        overlaps=overlaps_with(ExperimentSpan.of(exp), spans, service_owners(data["series"].unique())),
        notes=notes + [n for n in result.diagnostics.notes if not n.startswith("calibration:")],
    )
