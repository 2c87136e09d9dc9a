"""Prophet's fit and forecast for the backtest windows, in NumPy, without Prophet's pandas layer.

A backtest window needs a Prophet fit and a 13-step forecast with its interval, nothing else (no components, no
saved model). Through Prophet's API, building the data frames, seasonal feature tables and the component table
costs about 17 ms per window on a 313-week history, more than the MAP solve itself. :class:`LeanProphet` computes
the same quantities directly for the configuration Recur uses (linear trend, additive yearly and weekly Fourier
seasonality at Prophet's default orders and prior scales, automatic changepoints, no holidays):

* scaling (``absmax``), time index, changepoint grid and linear-growth start exactly as ``Prophet.preprocess``,
  ``set_changepoints`` and ``linear_growth_init``; a warm start is taken as Prophet's ``sanitize_custom_inits``
  takes it; the MAP is :func:`ml.indicators.prophet_map.map_fit`, the solver :class:`MapProphet` uses;
* the point forecast as ``Prophet.predict`` (piecewise-linear trend plus the Fourier terms);
* the interval from the same predictive simulation as Prophet's vectorised ``predict_uncertainty``, with the same
  draws from NumPy's global generator in the same order (the caller seeds it, as for Prophet): the same interval.

Anything else (holidays, a constant history, fewer than 2 points) is not handled here (:func:`supported`).
The module also holds the two context managers Prophet's callers share (:func:`_quiet`, :func:`_seeded`).
:meth:`LeanProphet.from_prophet` forecasts a fitted (or loaded) Prophet model the same way, without a refit, when
its configuration is one this module reproduces. Tests check the forecast and interval against
:class:`MapProphet` on the same data.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import pandas as pd

#: Prophet's defaults: changepoints, their range and prior, Fourier orders and periods, seasonality prior.
N_CHANGEPOINTS = 25
CHANGEPOINT_RANGE = 0.8
CHANGEPOINT_PRIOR = 0.05
SEASONALITY_PRIOR = 10.0
YEARLY = (365.25, 10)
WEEKLY = (7.0, 3)
_DAY_NS = 86_400 * 10**9


@contextlib.contextmanager
def _quiet(*names: str) -> Iterator[None]:
    """Silence chatty third-party loggers (cmdstanpy resets its level on first use, so disable it instead)."""
    loggers = [logging.getLogger(n) for n in names]
    before = [lg.disabled for lg in loggers]
    for lg in loggers:
        lg.disabled = True
    try:
        yield
    finally:
        for lg, was in zip(loggers, before, strict=True):
            lg.disabled = was


@contextlib.contextmanager
def _seeded(seed: int) -> Iterator[None]:
    """Prophet draws its intervals from numpy's global generator: seed it here and restore it afterwards."""
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(state)


def supported(y: np.ndarray, holidays: bool) -> bool:
    """Whether :class:`LeanProphet` reproduces Prophet for this history (else use Prophet itself)."""
    ok = np.isfinite(y)
    return not holidays and int(ok.sum()) >= 2 and float(np.ptp(y[ok])) > 0


def _fourier(ns: np.ndarray, period: float, order: int) -> np.ndarray:
    """``Prophet.fourier_series`` on dates given as nanoseconds since the epoch."""
    t = ns / 1e9 / (24 * 60 * 60)
    x_t = np.pi * 2 * t
    out = np.empty((len(ns), 2 * order))
    for i in range(order):
        c = (i + 1) / period * x_t
        out[:, 2 * i] = np.sin(c)
        out[:, 2 * i + 1] = np.cos(c)
    return out


def _piecewise_linear(t: np.ndarray, deltas: np.ndarray, k: float, m: float, cps: np.ndarray) -> np.ndarray:
    """``Prophet.piecewise_linear``."""
    deltas_t = (cps[None, :] <= t[..., None]) * deltas
    k_t = deltas_t.sum(axis=1) + k
    m_t = (deltas_t * -cps).sum(axis=1) + m
    out: np.ndarray = k_t * t + m_t
    return out


class LeanProphet:
    """Prophet's linear, additive model fitted and forecast in NumPy (see the module docstring).

    ``params`` after :meth:`fit` has Prophet's shapes (``k``, ``m``, ``sigma_obs`` (1, 1); ``delta`` (1, S);
    ``beta`` (1, K)), so a warm start or a form taken from it is the same as from Prophet.
    """

    def __init__(self, yearly: bool, weekly: bool, interval_width: float, uncertainty_samples: int) -> None:
        self.yearly = yearly
        self.weekly = weekly
        self.interval_width = interval_width
        self.uncertainty_samples = uncertainty_samples
        self.seasons = ([YEARLY] if yearly else []) + ([WEEKLY] if weekly else [])

    @classmethod
    def from_prophet(cls, model: Any) -> LeanProphet | None:
        """The fitted Prophet ``model``'s forecast in NumPy (no refit); ``None`` outside what this module does."""
        seasons = model.seasonalities
        if (
            model.growth != "linear"
            or model.scaling != "absmax"
            or model.logistic_floor
            or model.train_holiday_names is not None
            or model.extra_regressors
            or model.params is None
            or np.shape(model.params["k"])[0] != 1
            or any(p["mode"] != "additive" or p["condition_name"] is not None for p in seasons.values())
        ):
            return None
        lean = cls(False, False, float(model.interval_width), int(model.uncertainty_samples))
        lean.seasons = [(float(p["period"]), int(p["fourier_order"])) for p in seasons.values()]
        lean.params = model.params
        lean.y_scale_ = float(model.y_scale)
        lean.start_ = int(pd.Timestamp(model.start).value)
        lean.t_scale_ = int(pd.Timedelta(model.t_scale).value)
        lean.changepoints_t_ = np.asarray(model.changepoints_t, dtype=float)
        lean.n_history_ = len(model.history)
        return lean

    def _features(self, ns: np.ndarray) -> np.ndarray:
        parts = [_fourier(ns, period, order) for period, order in self.seasons]
        return np.column_stack(parts) if parts else np.zeros((len(ns), 1))  # Prophet's 'zeros' column

    def fit(
        self, dates: pd.DatetimeIndex, y: np.ndarray, init: Mapping[str, Any] | None = None
    ) -> LeanProphet:
        ok = np.isfinite(y)
        ns = np.asarray(dates.asi8)[ok]
        order = np.argsort(ns, kind="mergesort")
        ns, y = ns[order], np.asarray(y, dtype=float)[ok][order]
        y_scale = float(np.abs(y).max()) or 1.0
        start, t_scale = int(ns[0]), int(ns[-1] - ns[0])
        t = (ns - start) / t_scale
        y_scaled = y / y_scale
        hist_size = int(np.floor(len(ns) * CHANGEPOINT_RANGE))
        n_cp = min(N_CHANGEPOINTS, hist_size - 1)
        if n_cp > 0:
            idx = np.linspace(0, hist_size - 1, n_cp + 1).round().astype(int)
            cps = np.sort((ns[idx][1:] - start) / t_scale)
        else:
            cps = np.array([0.0])
        x = self._features(ns)
        k = (y_scaled[-1] - y_scaled[0]) / (t[-1] - t[0])
        start_params: dict[str, Any] = {
            "k": k,
            "m": y_scaled[0] - k * t[0],
            "delta": np.zeros_like(cps),
            "beta": np.zeros(x.shape[1]),
            "sigma_obs": 1.0,
        }
        if (
            init is not None
        ):  # Prophet's sanitize_custom_inits: scalars taken, arrays when their shape matches
            for key in ("k", "m", "sigma_obs"):
                try:
                    start_params[key] = float(init[key])
                except (KeyError, TypeError, ValueError):
                    pass
            for key in ("delta", "beta"):
                value = np.asarray(init.get(key, ()), dtype=float)
                if value.shape == start_params[key].shape:
                    start_params[key] = value
        data = {
            "y": y_scaled,
            "t": t,
            "t_change": cps,
            "X": x,
            "sigmas": [SEASONALITY_PRIOR] * x.shape[1] if self.seasons else [1.0],
            "tau": CHANGEPOINT_PRIOR,
        }
        from ml.indicators.prophet_map import map_fit  # imports Prophet: only when a fit is made

        self.params = map_fit(data, start_params)
        if n_cp <= 0:  # Prophet folds the dummy changepoint's delta into k
            self.params["k"] = self.params["k"] + self.params["delta"].reshape(-1)
            self.params["delta"] = np.zeros(self.params["delta"].shape).reshape((-1, 1))
        self.y_scale_, self.start_, self.t_scale_, self.changepoints_t_ = y_scale, start, t_scale, cps
        self.n_history_ = len(ns)
        return self

    def predict(self, dates: pd.DatetimeIndex) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Point forecast, lower and upper interval bound at ``dates`` (after the history)."""
        ns = np.asarray(dates.asi8)
        t = (ns - self.start_) / self.t_scale_
        p = self.params
        k, m = float(np.nanmean(p["k"])), float(np.nanmean(p["m"]))
        deltas = np.nanmean(p["delta"], axis=0)
        cps = self.changepoints_t_
        expected = _piecewise_linear(t, deltas, k, m, cps)
        x = self._features(ns)
        beta = p["beta"][0]
        xb = np.matmul(x, beta) * self.y_scale_
        yhat = expected * self.y_scale_ + np.matmul(x, np.nanmean(p["beta"], axis=0)) * self.y_scale_
        n = self.uncertainty_samples
        if n <= 0:
            return yhat, yhat.copy(), yhat.copy()
        # Prophet's sample_model_vectorized for a MAP fit: trend shifts (uniform, then Laplace draws) on the
        # future points, then Gaussian noise
        trend = np.tile(_piecewise_linear(t, p["delta"][0], p["k"][0][0], p["m"][0][0], cps), (n, 1))
        future = t > 1
        if future.any():
            n_future = int(future.sum())
            diff = float(np.diff(t[future]).mean()) if n_future > 1 else 1.0 / max(1, self.n_history_ - 1)
            likelihood = len(cps) * diff
            mean_delta = float(np.mean(np.abs(p["delta"][0]))) + 1e-8
            shifts = np.random.uniform(size=(n, n_future)) < likelihood
            values = np.random.laplace(0, mean_delta, size=shifts.shape) * shifts
            values = (np.hstack([np.zeros((n, 1)), values])[:, :-1] + values) / 2
            unc = values.cumsum(axis=1).cumsum(axis=1) * diff
            trend[:, future] += unc
        trends = trend * self.y_scale_
        noise = np.random.normal(0, p["sigma_obs"][0], trends.shape) * self.y_scale_
        sims = (trends + xb + noise).T
        lower = np.percentile(sims, 100 * (1.0 - self.interval_width) / 2, axis=1)
        upper = np.percentile(sims, 100 * (1.0 + self.interval_width) / 2, axis=1)
        return yhat, lower, upper


def as_lean(model: Any) -> LeanProphet | None:
    """``model`` itself if lean, else :meth:`LeanProphet.from_prophet` (with the model's current interval)."""
    return model if isinstance(model, LeanProphet) else LeanProphet.from_prophet(model)
