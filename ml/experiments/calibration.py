"""Calibration of an experiment's interval by placebo windows pooled across series, with a learned prior.

Thirty weeks of one series cannot show how far its own model's interval is off. Placebo windows can: the same
estimator (:mod:`ml.experiments.effect`) is applied at fake intervention dates where nothing happened, and the
normal score of each placebo outcome (``z = Phi^-1(F(observed))``, F the counterfactual mean's distribution)
should be standard normal. The windows are pooled from the treated series' own older history and from the
organisation's other series of the same indicator, always ending before the experiment's start (nothing after
the change is used).

The interval is then widened by a factor ``f = max(1, c / z_crit)`` where ``c`` solves a conformal-style,
empirical-Bayes quantile equation: the share of placebo scores beyond ``c`` plus ``prior_strength``
pseudo-placebos drawn from the prior ``|N(0, f0^2)|`` equals ``alpha``. The prior factor ``f0`` was learned
from placebo windows of real weekly series (``bench/bench_calibration.py``, on a time split that it does not
report on): it is larger for short fitted windows and for series the model finds non-stationary (a wandering
level or a trend, as the pre-period fit finds). With no placebo the prior alone sets the factor; with many, the
placebos dominate.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import BaseModel
from scipy import stats

from ml.errors import InputError

logger = logging.getLogger(__name__)

CalibrationMethod = Literal["model", "prior", "pooled placebos"]
#: How the effect is read: "step", the coefficient of a step at the start in the model fitted on the pre- and
#: post-period together (intervention analysis, the default); "forecast", the post-period mean compared with the
#: model's forecast from the pre-period alone (the method before).
Estimator = Literal["step", "forecast"]

#: Prior inflation factor f0 at 30 and 52 fitted pre-period weeks, by (controls, non-stationary), for the step
#: estimator; learned by ``python bench/bench_calibration.py --fit-prior`` on the tuning half (in time) of the
#: real series.
PRIOR_FACTORS: dict[tuple[bool, bool], tuple[float, float]] = {
    (False, False): (1.00, 1.00),
    (False, True): (1.01, 1.44),
    (True, False): (1.13, 1.03),
    (True, True): (1.00, 1.41),
}
#: The same for the forecast comparison (learned so before the step estimator; kept for comparison).
FORECAST_PRIOR_FACTORS: dict[tuple[bool, bool], tuple[float, float]] = {
    (False, False): (1.28, 1.42),
    (False, True): (2.12, 2.38),
    (True, False): (1.37, 1.60),
    (True, True): (1.81, 1.61),
}
#: Weight of the prior, in placebo windows.
PRIOR_STRENGTH = 10.0
#: Most placebo windows pooled for one experiment.
MAX_PLACEBOS = 40
#: Longest placebo post-period: a longer experiment is calibrated on placebos of this many weeks, so that a
#: year of history still gives placebo windows (the bench measures the calibration at this horizon).
MAX_PLACEBO_HORIZON = 8
#: Bayes factor (posterior over prior odds of a wandering level or a trend) above which a series counts as
#: non-stationary: 3 is "substantial evidence" on Jeffreys' scale.
NONSTATIONARY_BAYES_FACTOR = 3.0


class Calibration(BaseModel):
    """How the interval of a scored experiment was calibrated, and why."""

    method: CalibrationMethod
    factor: float
    prior_factor: float
    n_placebos: int
    n_series: int
    nonstationary: bool
    reason: str


@dataclass(frozen=True)
class PlaceboWindow:
    """One fake intervention: `train` fitting observations then `horizon` placebo ones, cut from `series`."""

    series: str
    y: np.ndarray
    X: np.ndarray | None
    t: np.ndarray


def prior_factor(n_fit: int, *, controls: bool, nonstationary: bool, estimator: Estimator = "step") -> float:
    """The prior inflation f0 for `n_fit` fitted weeks: never smaller for a shorter window.

    Linear in 1 / n_fit through the 30- and 52-week values (extrapolated down to 12 weeks), the 52-week value
    beyond 52 weeks.
    """
    table = PRIOR_FACTORS if estimator == "step" else FORECAST_PRIOR_FACTORS
    f30, f52 = table[(controls, nonstationary)]
    f30 = max(f30, f52)
    n = float(max(n_fit, 12))
    if n >= 52:
        return max(1.0, f52)
    slope = (f30 - f52) / (1.0 / 30 - 1.0 / 52)
    return max(1.0, f52 + slope * (1.0 / n - 1.0 / 52))


def placebo_train(n_fit: int, longest_pool: int, horizon: int) -> int:
    """Fitting length of the placebos: `n_fit`, unless the other series' histories (`longest_pool`) are too short
    for four placebos at that length; then shorter, down to half of `n_fit` (at least 12 weeks), so that siblings
    with barely more history than the fitted window still give placebos (normal scores are on the same footing).
    """
    step = max(1, horizon // 2)
    room = longest_pool - horizon - 3 * step
    if longest_pool == 0 or room >= n_fit:
        return n_fit
    return max(room, 12, n_fit // 2)


def placebo_ends(n: int, train: int, horizon: int, max_placebos: int) -> list[int]:
    """Ends of placebo fitting windows in a series of `n` observations, stepping back half a horizon."""
    step = max(1, horizon // 2)
    ends = [n - horizon - i * step for i in range(max_placebos)]
    return [e for e in ends if e >= train]


def normal_score(cdf_at_observed: float) -> float:
    """Phi^-1 of a predictive CDF value, clipped to +-6."""
    return float(stats.norm.ppf(min(max(cdf_at_observed, 1e-9), 1.0 - 1e-9)))


def calibrated_factor(
    scores: Sequence[float] | np.ndarray,
    *,
    alpha: float,
    prior: float,
    prior_strength: float = PRIOR_STRENGTH,
) -> float:
    """Inflation of the model's scale: c / z_crit, c the (1 - alpha) quantile of |score| pooled with the prior.

    Solves ``(prior_strength * P(|N(0, prior^2)| > c) + #{|z_i| > c}) / (prior_strength + n) = alpha`` by
    bisection; never below 1 (the model's own interval is the narrowest reported).
    """
    if not 0.0 < alpha < 1.0:
        raise InputError("alpha must be between 0 and 1", field="alpha", value=alpha)
    z = np.abs(np.asarray(scores, dtype=float))
    z = z[np.isfinite(z)]
    z_crit = float(stats.norm.ppf(1.0 - alpha / 2.0))
    if z.size == 0:
        return max(1.0, prior)
    total = prior_strength + z.size

    def tail(c: float) -> float:
        return float((prior_strength * 2.0 * float(stats.norm.sf(c / prior)) + float(np.sum(z > c))) / total)

    lo, hi = 0.0, max(float(z.max()), 8.0 * prior)
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if tail(mid) > alpha:
            lo = mid
        else:
            hi = mid
    return max(1.0, hi / z_crit)


def describe(
    method: CalibrationMethod,
    factor: float,
    f0: float,
    n_placebos: int,
    n_series: int,
    n_fit: int,
    nonstationary: bool,
) -> str:
    """Why the interval is what it is, in one sentence."""
    shape = "non-stationary (wandering level or trend)" if nonstationary else "stationary"
    if method == "model":
        return "the model's own interval (calibration switched off)"
    if method == "prior":
        return (
            f"no placebo window before the start: the prior learned on real series for {n_fit} fitted weeks of a"
            f" {shape} series widens the interval x{factor:.2f}"
        )
    widened = f"widened x{factor:.2f}" if factor > 1.0 else "the model's interval kept (x1.00)"
    return (
        f"{n_placebos} placebo window(s) from {n_series} series of the same indicator before the start, pooled"
        f" with the prior for {n_fit} fitted weeks of a {shape} series (x{f0:.2f}): {widened}"
    )


def is_nonstationary(noise: dict[str, float]) -> bool:
    """The data give substantial evidence that the level wanders or trends (against the model's prior odds)."""
    p, p0 = noise.get("p_nonstationary", 0.0), noise.get("prior_nonstationary", 0.0)
    if not (math.isfinite(p) and 0.0 < p0 < 1.0):
        return False
    if p >= 1.0:
        return True
    return (p / (1.0 - p)) / (p0 / (1.0 - p0)) > NONSTATIONARY_BAYES_FACTOR
