"""Signal versus noise: level shifts and outliers that the series' own noise cannot explain.

History (:class:`ChangeDetector`), per series on a regular grid:

1. The series is split into seasonality + a global linear trend + a piecewise-constant level + noise, estimated by
   alternation: outliers (Hampel filter) -> changes in level (PELT, L2 cost, then tests) -> seasonality and trend
   (one regression on segment dummies + trend + Fourier harmonics of the nominal period; each kept only when its
   Wald test, with the AR(1) long-run variance of that regression's residuals, rejects at 1%) -> again, until the
   change points settle. Seasonality needs two full cycles.
2. Noise is AR(1). A first phi and sd come from a robust variogram (MADs of lag-1..8 differences, which a shift or
   an outlier barely touches), later ones from the residuals (lag-1 autocorrelation, bias-corrected); phi is
   capped at ``max_phi``. The PELT penalty and every test use the long-run variance s^2 (1 + phi) / (1 - phi), so
   autocorrelated wandering is not taken for a shift.
3. With two or three seasonal cycles a step and a smooth season (or a trend) can mimic each other, and an
   unmodelled shift makes noise look more persistent than it is (which then hides the shift). So the alternation
   runs from three starts (season/trend first; changes first; changes first with a white-noise first pass) and the
   run with the best penalised AR(1) likelihood wins (BIC on the innovations, one phi for all runs: the least
   persistent one any run found, so persistence cannot stand in for structure for free).
4. Each change point is tested: the difference of the neighbouring segment means over its standard error under
   AR(1) noise (exact variance of a mean of n AR(1) values), two-sided, Bonferroni-corrected for the ~n /
   min_segment places a change could have been put. The weakest change point is dropped and the rest re-tested
   until all pass ``min_confidence`` and are at least ``min_shift_sigma`` noise sds. Locations are then refined on
   the prewhitened residuals (PELT's L2 cost ignores the autocorrelation). Beside the test, the prediction-interval
   view is reported: ``outside_interval`` is the share of the first (up to 8) points after the change outside the
   ``level``% interval of the model before it, on the side of the change.
5. Outliers are found first, by the Hampel filter (more than ``outlier_z`` noise sds from a centred running median
   of 7), and replaced by that median, so one bad week cannot create a shift; runs of 4 or more are level changes.
6. Sparse counts (whole numbers with a median of at most 5) are fitted on Anscombe's square-root scale, where
   Poisson noise has one sd at every level (one robust sd on the values is the quiet stretches', and a busy stretch
   then breaks into a staircase of shifts); their events give levels and magnitudes in counts. Their noise sd is
   at least the sd Poisson counts at the series' mean rate have on that scale
   (:func:`~ml.indicators.changepoints.count_scale_sd`): the robust sd of a series that is 0 in most weeks (a
   component that barely existed for years) is near 0, and every busy stretch would again be shifts and outliers.
   The size bar is in those Poisson sds (a bursty component's larger fitted sd is for the tests). A series constant
   once its outliers are set aside gets no shift. A 0 is the same value at any rate there, so the starts are compared
   and change points dated by the counts' Poisson likelihood (:func:`~ml.indicators.changepoints.poisson_refine`).

New observations against a forecast (:func:`monitor`): points outside the forecast's interval, and a two-sided
robust CUSUM on the standardised forecast errors; a CUSUM alarm is a shift, an isolated far point an outlier.

Events are dicts with :data:`EVENT_FIELDS`, ranked by confidence, then shifts before outliers, then size.
Calibration (bench/bench_signals.py): on simulated weekly series with AR(1) phi 0-0.6 and seasonality, about 0.05
false shifts per series-year on pure noise.

Layout: the noise model and PELT are in :mod:`ml.indicators.changepoints`, the event fields and ranking in
:mod:`~ml.indicators.events`, :func:`monitor` in :mod:`~ml.indicators.monitoring`; this module holds the detector
and re-exports the others' public names.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from ml.errors import InputError, NotFittedError
from ml.indicators.changepoints import (
    _fourier,
    _hampel,
    _mad_var,
    _segment_means,
    ar1_mean_variance,
    best_hinge,
    count_scale_sd,
    from_count_scale,
    pelt_l2,
    poisson_deviance,
    poisson_refine,
    residual_ar1,
    robust_ar1,
    sparse_counts,
    to_count_scale,
)
from ml.indicators.events import EVENT_FIELDS, is_trend_change, rank_events
from ml.indicators.grid import NOMINAL_SEASON, fill_gaps, to_grid
from ml.indicators.monitoring import MonitorConfig, monitor

__all__ = [
    "EVENT_FIELDS",
    "ChangeDetector",
    "MonitorConfig",
    "ar1_mean_variance",
    "detect_signals",
    "make_detector",
    "monitor",
    "pelt_l2",
    "rank_events",
    "residual_ar1",
    "robust_ar1",
]

logger = logging.getLogger(__name__)

#: Seasonal harmonics kept for periods above 24 (a smooth yearly profile on weekly data).
LONG_SEASON_HARMONICS = 3
#: Parameters charged per change point when the starts are compared (BIC on the AR(1) innovations).
CP_PARAMS = 3.0


# --------------------------------------------------------------------------------------------------------------
# The detector
# --------------------------------------------------------------------------------------------------------------


def per_week_bars(
    min_segment: int, min_shift_sigma: float, dates: pd.DatetimeIndex | None
) -> tuple[int, float]:
    """(shortest segment in points, size bar in noise sds of one point) on grid ``dates`` from the per-week
    settings: k points a week (7 daily; 1 weekly, coarser or undated) give k x min_segment and bar / sqrt(k)."""
    step = float(np.median(np.diff(dates.asi8))) / 86_400e9 if dates is not None and len(dates) > 1 else 0.0
    k = max(1, round(7 / step)) if step > 0 else 1
    return min_segment * k, min_shift_sigma / math.sqrt(k)


class ChangeDetector:
    """Level shifts and outliers in one series (see the module docstring).

    Parameters:
        season_length: nominal seasonal period (1: none; 52 for weekly data, 7 for daily).
        min_segment: fewest weeks between two changes (and the shortest run that counts as a level change): that
            many points on a weekly grid, 7 times as many on a daily one (``segment_``).
        penalty: PELT penalty in units of long-run variance x log(n) (a first pass; the tests decide).
        min_confidence: smallest Bonferroni-corrected confidence for a reported shift.
        min_shift_sigma: smallest reported shift, in noise sds of a weekly value (sparse counts: Poisson's at their
            mean rate; practical significance): daily, a week's mean of days, sigma / sqrt(7), so the same change of
            a process is reported whether it is exported by day or by week (a rate tripling from 0.3 to 0.9
            incidents a day is under one sd of a day's noise, and was never reported).
        outlier_z: Hampel threshold in noise sds.
        level: interval (percent) used for ``outside_interval``.
        max_iter: rounds of the seasonality/trend/level alternation.
        max_phi: cap on the AR(1) coefficient.
        count_scale: "auto" (default): sparse counts (:func:`~ml.indicators.changepoints.sparse_counts`) are
            tested on Anscombe's square-root scale, where Poisson noise has one sd at every level; events still
            give their levels and magnitudes as counts. "off": always on the values.

    Learned attributes: ``change_points_`` (indices of the first point of each new level), ``outliers_``,
    ``level_``, ``seasonal_``, ``trend_``, ``phi_``, ``sigma_`` (on the scale tested), ``count_scale_`` (whether that
    was the square-root scale), ``shifts_`` and ``outlier_events_`` (dicts without the series id), ``notes_``.
    """

    def __init__(
        self,
        season_length: int = 1,
        min_segment: int = 4,
        penalty: float = 2.0,
        min_confidence: float = 0.95,
        min_shift_sigma: float = 1.0,
        outlier_z: float = 4.0,
        level: int = 80,
        max_iter: int = 4,
        max_phi: float = 0.8,
        count_scale: str = "auto",
    ) -> None:
        self.season_length = season_length
        self.min_segment = min_segment
        self.penalty = penalty
        self.min_confidence = min_confidence
        self.min_shift_sigma = min_shift_sigma
        self.outlier_z = outlier_z
        self.level = level
        self.max_iter = max_iter
        self.max_phi = max_phi
        self.count_scale = count_scale

    def _validate(self) -> None:
        for name, lo in (("season_length", 1), ("min_segment", 2), ("max_iter", 1)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < lo:
                raise InputError(f"{name} must be an integer >= {lo}, got {v!r}", field=name, value=v)
        for name in ("penalty", "outlier_z", "min_shift_sigma"):
            v = getattr(self, name)
            if not isinstance(v, int | float) or not math.isfinite(v) or v < 0:
                raise InputError(f"{name} must be a number >= 0, got {v!r}", field=name, value=v)
        if not 0 < self.min_confidence < 1:
            raise InputError(
                f"min_confidence must be in (0, 1), got {self.min_confidence!r}",
                field="min_confidence",
                value=self.min_confidence,
            )
        if self.count_scale not in ("auto", "off"):
            raise InputError(
                f"count_scale must be 'auto' or 'off', got {self.count_scale!r}",
                field="count_scale",
                value=self.count_scale,
            )
        if not 0 <= self.max_phi < 1:
            raise InputError(
                f"max_phi must be in [0, 1), got {self.max_phi!r}", field="max_phi", value=self.max_phi
            )

    # ---------------------------------------------------------------------------------------------------------

    def fit(
        self, y: Sequence[float] | np.ndarray, dates: Sequence[Any] | pd.DatetimeIndex | None = None
    ) -> ChangeDetector:
        """Fit on values on a regular grid (NaN for gaps); ``dates`` label the events (default: positions)."""
        self._validate()
        y = np.asarray(y, dtype=float)
        if y.ndim != 1:
            raise InputError("y must be one-dimensional", field="y", value=list(y.shape))
        n = len(y)
        self.dates_ = pd.DatetimeIndex(pd.to_datetime(list(dates))) if dates is not None else None
        if self.dates_ is not None and len(self.dates_) != n:
            raise InputError(f"dates and y differ in length ({len(self.dates_)} vs {n})", field="dates")
        self.notes_: list[str] = []
        self.n_ = n
        self.segment_, self.size_bar_ = per_week_bars(self.min_segment, self.min_shift_sigma, self.dates_)
        self.change_points_: list[int] = []
        self.outliers_: list[int] = []
        self.shifts_: list[dict[str, Any]] = []
        self.outlier_events_: list[dict[str, Any]] = []
        obs = np.isfinite(y)
        self.count_scale_ = self.count_scale == "auto" and sparse_counts(y)
        counts = y
        # the least noise the counts can have on that scale: their Poisson noise at their mean rate
        self.sigma_floor_ = count_scale_sd(float(np.mean(y[obs]))) if self.count_scale_ and obs.any() else 0.0
        if self.count_scale_:
            self.notes_.append("sparse counts: tested on their square-root scale (Anscombe)")
            y = np.where(obs, to_count_scale(np.where(obs, y, 0.0)), np.nan)
        ms = self.segment_
        if obs.sum() < 2 * ms + 2 or np.ptp(y[obs]) == 0:
            self.notes_.append(
                "too short or constant for change detection" if obs.sum() else "no observed value"
            )
            x = fill_gaps(y) if obs.any() else np.zeros(n)
            self.level_, self.seasonal_, self.trend_ = x, np.zeros(n), np.zeros(n)
            self.phi_, self.sigma_ = 0.0, 0.0
            return self
        x = fill_gaps(y)
        m = self.season_length
        use_season = m > 1 and n >= 2 * m
        k_harm = (LONG_SEASON_HARMONICS if m > 24 else m // 2) if use_season else 0
        basis = _fourier(n, m, k_harm) if use_season else np.zeros((n, 0))
        tc = np.arange(n, dtype=float) - (n - 1) / 2

        phi_d, sigma_d = robust_ar1(x, self.max_phi)
        phi, sigma = phi_d, max(sigma_d if sigma_d > 0 else max(float(np.std(x)), 1e-12), self.sigma_floor_)
        window = max(7, 2 * ms - 1)
        # Three starts, because with few seasonal cycles a step and a smooth season can mimic each other, and
        # an unmodelled shift makes the noise look more persistent than it is (which then hides the shift):
        # (a) seasonality and trend from one regression without changes, then changes; (b) changes first;
        # (c) changes first, with a first pass that takes the noise as white (then re-estimated as usual).
        # The alternation from each converges to a local optimum; the lowest penalised AR(1) likelihood wins.
        _, med0 = _hampel(x, window, math.inf)
        out0, _ = _hampel(x, window, self.outlier_z * sigma)
        xc0 = x.copy()
        xc0[out0] = med0[out0]
        xc0[~obs] = med0[~obs]
        zeros = (np.zeros(n), np.zeros(n))
        first = self._components(xc0, [], tc, basis, phi, sigma)
        starts = [(*zeros, False), (*zeros, True)]
        if np.any(first[0]) or np.any(first[1]):  # otherwise start (a) is start (b)
            starts.insert(0, (*first, False))
        runs = [self._alternate(x, obs, s0, t0, phi, sigma, tc, basis, white) for s0, t0, white in starts]
        # compare the runs with one noise model: the least persistent phi any run found (a run that explains a
        # shift or a season by persistence must pay for it in its innovations)
        phi_c = min(r["phi"] for r in runs)
        for r in runs:
            innov = r["resid"][1:] - phi_c * r["resid"][:-1]
            fit = n * math.log(max(float(np.mean(innov**2)), 1e-300))
            if self.count_scale_:  # the counts' own likelihood: on the square-root scale a 0 is 0 at any rate
                shape = r["seasonal"] + r["trend"]
                fit = poisson_deviance(counts, r["cps"], float(np.mean(r["xc"] - shape)) + shape)
            r["cost"] = fit + math.log(n) * r["n_par"]
        best = min(runs, key=lambda r: r["cost"])
        cps = best["cps"]
        zc = best["xc"] - best["seasonal"] - best["trend"]
        if best["raw_sigma"] <= 1e-9 * max(1.0, float(np.max(np.abs(x)))):
            # constant once its outliers are set aside (a count that is 0 in all but a handful of weeks): no noise
            # to test a shift against, and rounding differences would pass any test
            self.notes_.append("constant apart from its outliers: no shift can be tested")
            cps = []
        elif self.count_scale_ and cps:  # dated by the counts' Poisson likelihood, then tested again
            shape = float(np.mean(zc)) + best["seasonal"] + best["trend"]
            cps = self._prune(zc, poisson_refine(counts, cps, ms, shape, 3 * ms), best["phi"], best["sigma"])
        self.change_points_ = cps
        self.outliers_ = [int(i) for i in best["outliers"] if obs[i]]
        self.phi_, self.sigma_ = best["phi"], best["sigma"]
        self.seasonal_ = best["seasonal"]
        self.trend_ = best["trend"]
        self.level_ = _segment_means(zc, cps)
        self.slope_ = float(self.trend_[1] - self.trend_[0]) if n > 1 else 0.0
        self._describe(x, zc, obs)
        if self.count_scale_:
            self._as_counts(counts)
        return self

    def _alternate(
        self,
        x: np.ndarray,
        obs: np.ndarray,
        seasonal: np.ndarray,
        trend: np.ndarray,
        phi: float,
        sigma: float,
        tc: np.ndarray,
        basis: np.ndarray,
        white_start: bool = False,
    ) -> dict[str, Any]:
        """Alternate outliers -> changes (PELT + tests) -> seasonality/trend until the changes settle."""
        n = len(x)
        ms = self.segment_
        window = max(7, 2 * ms - 1)
        cps: list[int] = []
        out_idx = np.zeros(0, dtype=int)
        xc = x.copy()
        for it in range(self.max_iter):
            z = x - seasonal - trend
            if it == 0 and white_start:
                phi, sigma = 0.0, math.sqrt(_mad_var(np.diff(z)) / 2)
            elif it == 0:
                phi, sigma = robust_ar1(z, self.max_phi)
            sigma = sigma if sigma > 0 else max(float(np.std(z)), 1e-12)
            sigma = max(sigma, self.sigma_floor_)
            out_idx, med = _hampel(z, window, self.outlier_z * sigma)
            zc = z.copy()
            zc[out_idx] = med[out_idx]
            # gaps carry no information: put them at the running median so they cannot make a change
            zc[~obs] = med[~obs]
            lr_var = sigma**2 * (1 + phi) / (1 - phi)
            new_cps = self._prune(zc, pelt_l2(zc, self.penalty * lr_var * math.log(n), ms), phi, sigma)
            new_cps = self._refine(zc, new_cps, phi, sigma)
            xc = zc + seasonal + trend
            seasonal, trend = self._components(xc, new_cps, tc, basis, phi, sigma)
            resid = xc - seasonal - trend
            resid = resid - _segment_means(resid, new_cps)
            phi_r, sigma_r = residual_ar1(resid, len(new_cps) + 1, self.max_phi)
            raw_sigma = sigma_r  # the residuals' own estimate, before the floor of the counts' Poisson noise
            if sigma_r > 0:
                phi, sigma = phi_r, max(sigma_r, self.sigma_floor_)
            if it > 0 and new_cps == cps:
                cps = new_cps
                break
            cps = new_cps
        resid = xc - seasonal - trend
        resid = resid - _segment_means(resid, cps)
        # penalised AR(1) likelihood (BIC on the innovations), each run with its own phi
        innov = resid[1:] - phi * resid[:-1]
        n_par = (basis.shape[1] if np.any(seasonal) else 0) + (1 if np.any(trend) else 0)
        cost = n * math.log(max(float(np.mean(innov**2)), 1e-300)) + math.log(n) * (
            CP_PARAMS * len(cps) + n_par
        )
        return {
            "resid": resid,
            "n_par": CP_PARAMS * len(cps) + n_par,
            "cps": cps,
            "outliers": out_idx,
            "seasonal": seasonal,
            "trend": trend,
            "phi": phi,
            "sigma": sigma,
            "raw_sigma": raw_sigma,
            "xc": xc,
            "cost": cost,
        }

    def _components(
        self, xc: np.ndarray, cps: Sequence[int], tc: np.ndarray, basis: np.ndarray, phi: float, sigma: float
    ) -> tuple[np.ndarray, np.ndarray]:
        """Seasonality and trend by one regression on segment dummies + trend + Fourier terms.

        Each is kept only when its Wald test, with the long-run variance of the AR(1) noise of the regression's
        residuals, rejects at 1% (seasonality: chi-square over its harmonics; trend: |t| > 3).
        """
        n = len(xc)
        edges = [0, *cps, n]
        dummies = np.zeros((n, len(edges) - 1))
        for j, (a, b) in enumerate(zip(edges[:-1], edges[1:], strict=True)):
            dummies[a:b, j] = 1.0
        k0 = dummies.shape[1]
        design = np.column_stack([dummies, tc, basis])
        coef, *_ = np.linalg.lstsq(design, xc, rcond=None)
        # the noise for the tests comes from this regression's own residuals (as in any Wald/F test), so a
        # season or trend that is there does not inflate the noise it is tested against
        phi_f, sigma_f = residual_ar1(xc - design @ coef, k0, self.max_phi)
        if sigma_f > 0:
            phi, sigma = phi_f, max(sigma_f, self.sigma_floor_)
        try:
            cov = np.linalg.pinv(design.T @ design) * sigma**2 * (1 + phi) / (1 - phi)
        except np.linalg.LinAlgError:
            return np.zeros(n), np.zeros(n)
        trend = np.zeros(n)
        b, vb = coef[k0], cov[k0, k0]
        if vb > 0 and abs(b) / math.sqrt(vb) > 3.0:
            trend = b * tc
        seasonal = np.zeros(n)
        if basis.shape[1]:
            cs = coef[k0 + 1 :]
            vs = cov[k0 + 1 :, k0 + 1 :]
            try:
                wald = float(cs @ np.linalg.solve(vs, cs))
            except np.linalg.LinAlgError:
                wald = 0.0
            if stats.chi2.sf(wald, basis.shape[1]) < 0.01:
                seasonal = basis @ cs
        return seasonal, trend

    def _refine(self, z: np.ndarray, cps: list[int], phi: float, sigma: float, window: int = 6) -> list[int]:
        """Move each change point to the place that best fits the AR(1) noise nearby.

        PELT's L2 cost ignores the autocorrelation; under AR(1) noise the innovation at the change carries most
        of the information about where it is, so the location is refined on the prewhitened residuals (Huber
        loss at 1.5 innovation sds, so that one large value next to the change cannot pull it over).
        """
        if phi <= 0 or not cps:
            return cps
        var_e = sigma**2 * (1 - phi**2)
        c = 1.5 * math.sqrt(var_e)
        cps = list(cps)
        n, ms = len(z), self.segment_
        for i in range(len(cps)):
            a = cps[i - 1] if i > 0 else 0
            b = cps[i + 1] if i + 1 < len(cps) else n
            lo, hi = max(a + ms, cps[i] - window), min(b - ms, cps[i] + window)
            costs: dict[int, float] = {}
            for p in range(lo, hi + 1):
                mu = np.empty(b - a)
                mu[: p - a] = z[a:p].mean()
                mu[p - a :] = z[p:b].mean()
                r = z[a:b] - mu
                e = np.abs(r[1:] - phi * r[:-1])
                costs[p] = float(np.sum(np.where(e <= c, 0.5 * e**2, c * (e - 0.5 * c))))
            if not costs:
                continue
            best = min(costs, key=costs.__getitem__)
            # move only on some evidence: a log-likelihood gain of more than half a unit
            if cps[i] not in costs or costs[cps[i]] - costs[best] > 0.5 * var_e:
                cps[i] = best
        return cps

    def _test(
        self, z: np.ndarray, cps: Sequence[int], i: int, phi: float, sigma: float
    ) -> tuple[float, float]:
        """(confidence, shift) of change point ``cps[i]`` against its neighbouring segments."""
        edges = [0, *cps, len(z)]
        a, c, b = edges[i], edges[i + 1], edges[i + 2]
        left, right = z[a:c], z[c:b]
        d = float(right.mean() - left.mean())
        se = math.sqrt(ar1_mean_variance(len(left), phi, sigma) + ar1_mean_variance(len(right), phi, sigma))
        if se <= 0:
            return 1.0, d
        p = 2.0 * stats.norm.sf(abs(d) / se)
        n_tests = max(1.0, len(z) / self.segment_)
        return max(0.0, 1.0 - min(1.0, p * n_tests)), d

    def _prune(self, z: np.ndarray, cps: list[int], phi: float, sigma: float) -> list[int]:
        """Backward elimination: drop the weakest change point until all pass the test and the size bar."""
        cps = list(cps)
        bar_sd = self.sigma_floor_ if self.count_scale_ and self.sigma_floor_ > 0 else sigma
        while cps:
            scored = [self._test(z, cps, i, phi, sigma) for i in range(len(cps))]
            ok = [c >= self.min_confidence and abs(d) >= self.size_bar_ * bar_sd for c, d in scored]
            if all(ok):
                break
            worst = min(range(len(cps)), key=lambda i: (ok[i], scored[i][0], abs(scored[i][1])))
            cps.pop(worst)
        return cps

    def _describe(self, x: np.ndarray, zc: np.ndarray, obs: np.ndarray) -> None:
        sigma, phi = self.sigma_, self.phi_
        z_lvl = stats.norm.ppf(0.5 + self.level / 200)
        shifts = []
        for i, c in enumerate(self.change_points_):
            conf, d = self._test(zc, self.change_points_, i, phi, sigma)
            nxt = self.change_points_[i + 1] if i + 1 < len(self.change_points_) else len(zc)
            post = slice(c, min(nxt, c + 8))
            before = self.level_[c - 1] + self.seasonal_[post] + self.trend_[post]
            xs = x[post]
            ok = obs[post]
            if d > 0:
                outside = (xs > before + z_lvl * sigma)[ok]
            else:
                outside = (xs < before - z_lvl * sigma)[ok]
            shifts.append(
                {
                    "index": int(c),
                    "kind": "shift",
                    "direction": "increase" if d > 0 else "decrease",
                    "magnitude": d,
                    "magnitude_sigma": d / sigma if sigma > 0 else math.inf,
                    "confidence": conf,
                    "outside_interval": float(outside.mean()) if len(outside) else None,
                    "detail": f"level {self.level_[c - 1]:.4g} -> {self.level_[c]:.4g} (noise sd {sigma:.3g}, "
                    f"AR(1) phi {phi:.2f})",
                }
            )
        n = len(x)
        expected = self.level_ + self.seasonal_ + self.trend_
        outs = []
        for j in self.outliers_:
            dev = float(x[j] - expected[j])
            p = 2.0 * stats.norm.sf(abs(dev) / sigma) if sigma > 0 else 0.0
            outs.append(
                {
                    "index": int(j),
                    "kind": "outlier",
                    "direction": "increase" if dev > 0 else "decrease",
                    "magnitude": dev,
                    "magnitude_sigma": dev / sigma if sigma > 0 else math.inf,
                    "confidence": max(0.0, 1.0 - min(1.0, p * n)),
                    "outside_interval": 1.0,
                    "detail": f"isolated value {x[j]:.4g} vs expected {expected[j]:.4g}",
                }
            )
        self.shifts_ = shifts + self._trend_change(zc)
        self.outlier_events_ = outs

    def _as_counts(self, counts: np.ndarray) -> None:
        """Events found on the square-root scale, given as counts: a shift's levels and magnitude are the Poisson
        means its levels stand for, an outlier's expected value too, a trend change what it adds by the end."""
        inv = from_count_scale
        for e in self.shifts_:
            if is_trend_change(e):  # what the kink adds to the last point's mean
                at = float(self.level_[-1] + self.trend_[-1])
                e["magnitude"] = inv(at + e["magnitude"]) - inv(at)
                e["detail"] = (
                    f"trend change (on the counts' square-root scale): adds {e['magnitude']:.3g} by the end"
                )
                continue
            a, b = inv(self.level_[e["index"] - 1]), inv(self.level_[e["index"]])
            e["magnitude"] = b - a
            e["detail"] = (
                f"level {a:.4g} -> {b:.4g} (counts, tested on their square-root scale: noise sd {self.sigma_:.3g}, "
                f"AR(1) phi {self.phi_:.2f} there)"
            )
        self.shifts_ = [e for e in self.shifts_ if e["magnitude"] != 0]  # a fall past the zero counts: none
        expected = self.level_ + self.seasonal_ + self.trend_
        for e in self.outlier_events_:
            j = e["index"]
            value, want = float(counts[j]), inv(expected[j])
            e["magnitude"] = value - want
            e["detail"] = f"isolated value {value:.4g} vs expected {want:.4g}"

    def _trend_change(self, zc: np.ndarray) -> list[dict[str, Any]]:
        """A change in slope (a kink) the level shifts and the global trend leave in the residuals.

        Scans hinge regressors max(0, t - tau), centred within the level segments, over the residuals; the
        largest |t| (long-run variance of the AR(1) noise) is Bonferroni-corrected like the shifts and reported
        as a ``shift`` (detail "trend change") when the slope change adds up to at least 2 ``min_shift_sigma``
        noise sds by the end of the series.
        """
        n, ms, sigma, phi = len(zc), self.segment_, self.sigma_, self.phi_
        if sigma <= 0 or n < 6 * ms:
            return []
        best = best_hinge(zc - self.level_, self.change_points_, sigma**2 * (1 + phi) / (1 - phi), ms)
        if best is None:
            return []
        z, tau, b = best
        conf = max(0.0, 1.0 - min(1.0, 2.0 * stats.norm.sf(z) * n / ms))
        total = b * (n - tau)
        if conf < self.min_confidence or abs(total) < 2 * self.size_bar_ * sigma:
            return []
        slope = float(self.trend_[1] - self.trend_[0]) if n > 1 else 0.0
        return [
            {
                "index": int(tau),
                "kind": "shift",
                "direction": "increase" if b > 0 else "decrease",
                "magnitude": total,
                "magnitude_sigma": total / sigma,
                "confidence": conf,
                "outside_interval": None,
                "detail": f"trend change: slope {slope:.3g} -> {slope + b:.3g} per step (adds {total:.3g} by the end)",
            }
        ]

    def events(self, series_id: str = "series") -> list[dict[str, Any]]:
        """Ranked events (:data:`EVENT_FIELDS`) for ``series_id``."""
        if not hasattr(self, "shifts_"):
            raise NotFittedError("ChangeDetector is not fitted: call fit first", field="detector")
        out = []
        for e in [*self.shifts_, *self.outlier_events_]:
            i = e["index"]
            date = str(self.dates_[i].date()) if self.dates_ is not None else str(i)
            out.append({"series": series_id, "date": date, **{k: v for k, v in e.items() if k != "index"}})
        return rank_events(out)


def detect_signals(
    series_id: str, ds: Sequence[Any], y: Sequence[float | None], freq: str | None = None, **params: Any
) -> list[dict[str, Any]]:
    """Events in one series given as dates and values (gridded like the forecaster: daily or weekly)."""
    grid = to_grid(ds, y, freq)
    params.setdefault("season_length", NOMINAL_SEASON[grid.kind])
    return make_detector(params).fit(grid.y, grid.dates).events(series_id)


def make_detector(params: Mapping[str, Any]) -> ChangeDetector:
    """A :class:`ChangeDetector` from keyword parameters; unknown names are an :class:`InputError`."""
    try:
        return ChangeDetector(**params)
    except TypeError as exc:
        raise InputError(
            f"invalid signal parameters: {exc}", field="signal_params", value=dict(params)
        ) from exc
