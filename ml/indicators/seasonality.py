"""Training windows for the forecasting candidates: the seasonality test, long-season removal and outlier cleaning."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ml.indicators.changepoints import mad_sd
from ml.indicators.config import MAX_MODEL_SEASON, SEASON_HARMONICS
from ml.indicators.grid import NOMINAL_SEASON, _freq_kind, fill_gaps

logger = logging.getLogger(__name__)


def _acf(x: np.ndarray, nlags: int) -> np.ndarray:
    x = x - x.mean()
    denom = float(np.dot(x, x))
    if denom <= 0:
        return np.zeros(nlags + 1)
    return np.array([1.0] + [float(np.dot(x[:-k], x[k:])) / denom for k in range(1, nlags + 1)])


def seasonality_supported(y: np.ndarray, m: int) -> bool:
    """M4's seasonality test: at least 3 cycles and |acf(m)| above the 90% limit (Bartlett's variance)."""
    y = fill_gaps(np.asarray(y, dtype=float))
    n = len(y)
    if m < 2 or n < 3 * m or np.ptp(y) == 0:
        return False
    r = _acf(y, m)
    limit = 1.645 * math.sqrt((1 + 2 * float(np.sum(r[1:m] ** 2))) / n)
    return bool(abs(r[m]) > limit)


def _seasonal_indices(y: np.ndarray, m: int, harmonics: int | None) -> np.ndarray:
    """Additive seasonal indices (length m, mean 0; index 0 is the phase of y[0]) by classical decomposition."""
    n = len(y)
    if m % 2 == 0:
        w = np.r_[0.5, np.ones(m - 1), 0.5] / m
    else:
        w = np.ones(m) / m
    trend = np.convolve(y, w, mode="valid")
    off = (len(w) - 1) // 2
    detr = np.full(n, np.nan)
    detr[off : off + len(trend)] = y[off : off + len(trend)] - trend
    idx = np.array([np.nanmean(detr[p::m]) if np.isfinite(detr[p::m]).any() else 0.0 for p in range(m)])
    idx -= idx.mean()
    if harmonics is not None and harmonics < m // 2:
        spec = np.fft.rfft(idx)
        spec[harmonics + 1 :] = 0
        idx = np.fft.irfft(spec, n=m)
    return idx


@dataclass
class _Prepared:
    """A training window made ready for the candidates (shared by all of them)."""

    y_raw: np.ndarray  # with NaN gaps
    y: np.ndarray  # gaps filled
    dates: pd.DatetimeIndex
    freq: str
    season: int  # seasonal period the data supports (1: none)
    model_season: int  # period handed to the statistical models
    seasonal: np.ndarray | None  # additive indices removed before the statistical models (long periods)
    clean: np.ndarray  # gaps filled and isolated outliers replaced (what the models are fitted on)
    n_outliers: int = 0

    @property
    def adjusted(self) -> np.ndarray:
        if self.seasonal is None:
            return self.clean
        adjusted: np.ndarray = self.clean - self.seasonal[np.arange(len(self.clean)) % self.season]
        return adjusted

    def future_seasonal(self, h: int) -> np.ndarray:
        if self.seasonal is None:
            return np.zeros(h)
        return self.seasonal[(len(self.y) + np.arange(h)) % self.season]


def clean_outliers(y: np.ndarray, season: int = 1, z: float = 4.0, window: int = 7) -> tuple[np.ndarray, int]:
    """Replace isolated outliers (runs of up to 3 points) by the running median; return (clean, count).

    A Hampel filter on the deseasonalised series (seasonal medians by phase when ``season`` > 1): a point is an
    outlier when it is more than ``z`` robust noise sds (MAD of the differences / sqrt 2) from the centred running
    median of ``window`` points. Level shifts move the running median with them, so they are left alone.
    """
    n = len(y)
    if n < window:
        return y.copy(), 0
    prof = np.zeros(n)
    if season > 1 and n >= 2 * season:
        detr = y - pd.Series(y).rolling(season, center=True, min_periods=1).median().to_numpy()
        phase = np.arange(n) % season
        med = np.array([np.median(detr[phase == p]) for p in range(season)])
        prof = (med - np.median(med))[phase]
    r = y - prof
    run_med = pd.Series(r).rolling(window, center=True, min_periods=1).median().to_numpy()
    d = np.diff(r)
    sd = mad_sd(d) / math.sqrt(2)
    if sd <= 0:
        return y.copy(), 0
    bad = np.abs(r - run_med) > z * sd
    out = y.copy()
    out[bad] = (run_med + prof)[bad]
    return out, int(bad.sum())


def _prepare(y_raw: np.ndarray, dates: pd.DatetimeIndex, freq: str, clean: bool = False) -> _Prepared:
    y = fill_gaps(y_raw)
    nominal = NOMINAL_SEASON[_freq_kind(freq)]
    season = nominal if seasonality_supported(y, nominal) else 1
    y_clean, n_out = clean_outliers(y, season) if clean else (y, 0)
    seasonal = None
    model_season = season
    if season > MAX_MODEL_SEASON:
        seasonal = _seasonal_indices(y_clean, season, SEASON_HARMONICS)
        model_season = 1
    return _Prepared(
        y_raw=y_raw,
        y=y,
        dates=dates,
        freq=freq,
        season=season,
        model_season=model_season,
        seasonal=seasonal,
        clean=y_clean,
        n_outliers=n_out,
    )
