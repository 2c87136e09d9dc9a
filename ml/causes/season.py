"""A seasonal profile shared by the series of one indicator, taken out before shifts are searched and tested.

Teams of one organisation share a calendar (holidays, freezes, quarter ends), so the series of one indicator
share a season. Estimated per series, a season from two years of data is noisy and can take in a level shift
(two cycles of a smooth curve can mimic a step), and on an aggregate the teams' seasons add up while their noise
adds in quadrature, so a sum of six teams can swing by more than a team's planted shift. Estimated once from all
of an indicator's leaf series, the profile is far more precise and a shift of one series moves it by a fraction
only. Per indicator with at least ``MIN_SERIES`` leaves covering at least two seasonal periods:

1. each leaf ``y_i`` is regressed on an intercept, a linear trend and ``HARMONICS`` Fourier pairs of the period
   (a year for weekly data, a week for daily data; phases from the calendar dates), by OLS, giving ``theta_i``;
2. the shared profile's coefficients are their coordinate-wise median (robust to a series whose shift the
   harmonics took in); the profile is kept only when the mean of the ``theta_i`` differs from zero against
   their spread (chi-square over the harmonics, p < ``SEASON_P``), so independent series keep their values,
   and when its swing reaches ``MIN_SWING`` noise sds of the leaves;
3. every leaf loses the profile as it is (but a leaf of mostly constant counts, whose differences have a MAD of
   0, is left as it is); an aggregate loses the sum (or, for a mean, the mean) of its parts'.

Each leaf gets the same profile, not a scale of its own: a scale fitted per series (OLS on the profile) took in
undetected shifts correlated with it and lost shifts on the sample's seeds (bench/bench_causes.py, seeds
7,42,1,2,3: top-3 0.766 with per-series scales, 0.832 without). The detector then searches the adjusted series
without a season of its own (:func:`ml.causes.aggregates.detect_shifts`). The profile sums to about zero over whole
periods, so levels and shifts keep their size.
"""

from __future__ import annotations

import logging
import math
from dataclasses import replace

import numpy as np
import pandas as pd
from scipy import stats

from ml.causes.aggregates import SeriesData
from ml.indicators.changepoints import mad_sd, pelt_l2, robust_ar1

__all__ = [
    "HARMONICS",
    "MIN_SERIES",
    "MIN_SWING",
    "SEASON_P",
    "adjust_for_season",
    "fourier_basis",
    "shared_profile",
    "step_days",
]

logger = logging.getLogger(__name__)

#: Fourier pairs of the shared profile (a smooth yearly curve on weekly data, as the detector's).
HARMONICS = 3
#: Fewest leaf series an indicator needs for a shared profile.
MIN_SERIES = 3
#: Level of the test that keeps the shared profile.
SEASON_P = 0.05
#: Smallest swing (peak to trough) of a kept profile, in the leaves' median noise sd: a smaller one cannot hide a
#: shift, and taking it out of integer counts would only break their ties (the detector's robust noise estimate
#: on counts that are mostly 0 then collapses).
MIN_SWING = 0.25
_PERIOD_DAYS = {7: 365.25, 1: 7.0}
_PERIODS_NEEDED = 2


def step_days(idx: pd.DatetimeIndex) -> int:
    """The series' step in days: the median gap between its dates (0 for fewer than two)."""
    return int(pd.Series(idx).diff().dt.days.median()) if len(idx) > 1 else 0


def fourier_basis(idx: pd.DatetimeIndex, period_days: float, k: int = HARMONICS) -> np.ndarray:
    """``k`` cos/sin pairs of the calendar period at the dates ``idx`` (phase from the date, not the position)."""
    days = (idx - pd.Timestamp("1970-01-01")).days.to_numpy(dtype=float)
    cols = []
    for j in range(1, k + 1):
        angle = 2 * math.pi * j * days / period_days
        cols += [np.cos(angle), np.sin(angle)]
    return np.column_stack(cols)


def _mad_diff(y: np.ndarray) -> float:
    return mad_sd(np.diff(y))


def _noise_sd(y: np.ndarray) -> float:
    """Week-to-week noise sd from the MAD of the differences (their sd when most differences are 0)."""
    mad = _mad_diff(y)
    return (mad if mad > 0 else float(np.std(np.diff(y)))) / math.sqrt(2)


def _steps(y: np.ndarray) -> np.ndarray:
    """Indicator columns of the segments a rough PELT search finds in ``y`` (large steps only: a penalty of twice
    the AR(1) long-run variance x log n, as the detector's first pass), one column per segment."""
    n = len(y)
    phi, sd = robust_ar1(y, 0.8)
    cps = pelt_l2(y, 2.0 * sd**2 * (1 + phi) / (1 - phi) * math.log(n), 4) if sd > 0 else []
    edges = [0, *cps, n]
    cols = np.zeros((n, len(edges) - 1))
    for j, (a, b) in enumerate(zip(edges[:-1], edges[1:], strict=True)):
        cols[a:b, j] = 1.0
    return cols


def _fit(y: np.ndarray, idx: pd.DatetimeIndex, extra: np.ndarray) -> np.ndarray:
    """OLS coefficients of ``extra`` in a regression of ``y`` on its large steps (:func:`_steps`), a linear trend
    and ``extra``."""
    t = (idx - idx[0]).days.to_numpy(dtype=float)
    t = (t - t.mean()) / max(float(t.std()), 1.0)
    steps = _steps(y)
    design = np.column_stack([steps, t, extra])
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    return np.asarray(coef[steps.shape[1] + 1 :], dtype=float)


def shared_profile(leaves: list[SeriesData]) -> tuple[np.ndarray, float] | None:
    """(Fourier coefficients of the shared profile, period in days), or None when there is none to take out."""
    usable = []
    for s in leaves:
        idx = pd.DatetimeIndex(s.values.index)
        step = step_days(idx)
        if step not in _PERIOD_DAYS:
            continue
        period = _PERIOD_DAYS[step]
        if (idx[-1] - idx[0]).days + step < _PERIODS_NEEDED * period - step:
            continue
        usable.append((s, idx, period))
    periods = {p for _, _, p in usable}
    if len(usable) < MIN_SERIES or len(periods) != 1:
        return None
    period = periods.pop()
    thetas = np.array(
        [_fit(s.values.to_numpy(dtype=float), idx, fourier_basis(idx, period)) for s, idx, _ in usable]
    )
    n = len(thetas)
    se = thetas.std(axis=0, ddof=1) / math.sqrt(n)
    if not np.all(se > 0):
        return None
    # each coefficient's t (n - 1 df) as the normal quantile of the same tail, so that the chi-square holds with
    # few series
    z = stats.norm.isf(stats.t.sf(np.abs(thetas.mean(axis=0) / se), n - 1))
    if stats.chi2.sf(float(np.sum(z**2)), thetas.shape[1]) >= SEASON_P:
        return None
    theta = np.median(thetas, axis=0)
    swing = float(np.ptp(fourier_basis(pd.date_range("2000-01-01", periods=366), period) @ theta))
    if swing < MIN_SWING * float(
        np.median([_noise_sd(s.values.to_numpy(dtype=float)) for s, _, _ in usable])
    ):
        return None
    return theta, period


def adjust_for_season(series: dict[str, SeriesData]) -> dict[str, SeriesData]:
    """``series`` with each indicator's shared seasonal profile taken out of its values and its parts (see the
    module docstring); the profile taken out of each is kept in its ``season``."""
    out = dict(series)
    for indicator in sorted({s.indicator for s in series.values()}):
        mine = [s for s in series.values() if s.indicator == indicator]
        leaves = [s for s in mine if not s.is_aggregate]
        fit = shared_profile(leaves)
        if fit is None:
            continue
        theta, period = fit
        seasons: dict[str, pd.Series] = {}
        for s in mine:
            if s.is_aggregate or _mad_diff(s.values.to_numpy(dtype=float)) <= 0:
                continue  # mostly constant counts (see MIN_SWING): left as they are
            idx = pd.DatetimeIndex(s.values.index)
            seasons[s.series] = pd.Series(fourier_basis(idx, period) @ theta, index=idx)
        for s in mine:
            if not s.is_aggregate or s.parts is None or not any(p in seasons for p in s.part_series):
                continue
            zero = pd.Series(0.0, index=s.parts.index)
            cols = [seasons[p].reindex(s.parts.index) if p in seasons else zero for p in s.part_series]
            wide = pd.concat(cols, axis=1).where(s.parts.notna().to_numpy())
            agg = wide.mean(axis=1) if s.how == "mean" else wide.fillna(0.0).sum(axis=1)
            seasons[s.series] = agg.reindex(s.values.index).fillna(0.0)
        for sid, season in seasons.items():
            s = series[sid]
            parts = s.parts
            if parts is not None:
                parts = parts.copy()
                for j, part in zip(parts.columns, s.part_series, strict=True):
                    if part in seasons:
                        parts[j] = parts[j] - seasons[part].reindex(parts.index)
            out[sid] = replace(s, values=s.values - season, season=season, unadjusted=s.values, parts=parts)
        logger.info("Explaining - a shared season taken out of the %d series of %s", len(seasons), indicator)
    return out
