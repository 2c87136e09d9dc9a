"""Is a failure pattern rising, falling or flat? A Poisson regression of its counts per period.

`pattern_trend` counts a pattern's incidents in `periods` windows of `period_days` days ending at ``as_of`` and
fits ``log E[count] = a + b t`` with statsmodels' Poisson GLM. The slope is tested against zero with the
likelihood-ratio (deviance) test; when the counts are over-dispersed (Pearson dispersion above 1, as bursts of
incidents make them) the quasi-Poisson F test is used instead, so a burst is not taken for a trend.
"""

from __future__ import annotations

import datetime as dt
import math
import warnings
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ml.io.schemas import to_utc

__all__ = ["Trend", "pattern_trend"]


@dataclass
class Trend:
    """Direction of a pattern's incident rate over the last `len(counts)` periods of `period_days` days.

    `slope` is the Poisson-regression log-rate change per period, `monthly_change` the same as a fraction
    (0.25 = +25% per period), `p_value` that of the likelihood-ratio test of slope = 0 (quasi-Poisson F test
    when the counts are over-dispersed).
    """

    direction: str  # "rising" | "falling" | "flat"
    slope: float
    monthly_change: float
    p_value: float
    counts: list[int]
    period_days: int
    as_of: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _counts(dates: list[dt.datetime], as_of: dt.datetime, periods: int, period_days: int) -> np.ndarray:
    edges = [as_of - dt.timedelta(days=period_days * (periods - i)) for i in range(periods + 1)]
    counts = np.zeros(periods, dtype=np.int64)
    for d in dates:
        d = to_utc(d)
        if edges[0] < d <= edges[-1]:
            counts[min(periods - 1, int((d - edges[0]).total_seconds() // (period_days * 86400)))] += 1
    return counts


def pattern_trend(
    dates: list[dt.datetime],
    as_of: dt.datetime,
    periods: int = 6,
    period_days: int = 30,
    alpha: float = 0.05,
) -> Trend:
    """Rising / falling / flat from a Poisson regression of counts per period over the last `periods` periods.

    Periods are `period_days`-day windows ending at `as_of` (so the latest window is complete). Fewer than 3
    incidents in the window is always "flat".
    """
    import statsmodels.api as sm
    from scipy import stats

    as_of = to_utc(as_of)
    counts = _counts(dates, as_of, periods, period_days)
    flat = Trend("flat", 0.0, 0.0, 1.0, counts.tolist(), period_days, as_of.isoformat())
    y = counts.astype(np.float64)
    if y.sum() < 3 or periods < 3:
        return flat
    t = np.arange(periods, dtype=np.float64) - (periods - 1) / 2.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # perfect separation (all counts in one period) is a steep slope
        fit = sm.GLM(y, sm.add_constant(t), family=sm.families.Poisson()).fit(method="newton", maxiter=100)
    b = float(np.clip(fit.params[1], -10.0, 10.0))
    lr = max(0.0, float(fit.null_deviance - fit.deviance))
    df_resid = periods - 2
    dispersion = float(fit.pearson_chi2 / df_resid)
    p = float(stats.f.sf(lr / dispersion, 1, df_resid)) if dispersion > 1.0 else float(stats.chi2.sf(lr, 1))
    if not math.isfinite(p):
        return flat
    direction = "flat"
    if p < alpha:
        direction = "rising" if b > 0 else "falling"
    return Trend(direction, b, float(math.expm1(b)), p, counts.tolist(), period_days, as_of.isoformat())
