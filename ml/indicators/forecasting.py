"""Leading-indicator forecasting: one model per series, chosen by a rolling-origin backtest.

Method, per series (``fit_series`` does all of it on plain, JSON-able inputs):

1. The dates are put on a regular grid. The frequency is inferred (daily or weekly; anything else is an
   :class:`~ml.errors.InputError`); dates missing from the grid are gaps: filled by linear interpolation for the
   models, left out of every score. Duplicated dates and non-finite values are input errors.
2. Seasonality "as the data supports": the nominal period (7 for daily, 52 for weekly) is used only when the
   training data holds at least three cycles and the lag-m autocorrelation passes the M4 90% test. Periods up to
   24 are handed to the statistical models; longer ones (yearly on weekly data) are removed first by a classical
   additive decomposition smoothed to a few Fourier harmonics, and added back to the forecasts.
3. Candidates (configurable): ``seasonal_naive`` (the baseline), statsforecast's ``auto_ets``, ``auto_theta``,
   ``auto_arima``, and ``prophet``. Each is scored on a rolling-origin backtest (``n_windows`` cut-offs, ``horizon``
   steps each): MASE (scaled by the in-sample one-step naive MAE, as M4 does for weekly and daily data), sMAPE
   and the coverage of the central ``level``% interval.
4. Selection (``selection``): ``combine`` (default) takes the median of the ``top_k`` (3) candidates with the
   lowest backtest MASE, step by step, for the point forecast and for each interval bound; ``best`` takes the
   single candidate with the lowest backtest MASE. A few backtest windows rank candidates noisily, so picking the
   single best often picks a lucky one; the median of the best few is robust to one of them going astray. The
   rule was chosen on GitHub's real weekly incident counts, origins 2014-2019 (selection on the 3 windows before
   each origin, scoring on the next 13 weeks); on the later origins 2019-2023, never used for that choice, it had
   mean MASE 1.29 against 1.35 for the best candidate used alone (AutoARIMA), where picking the single best
   scored 1.37 (bench/bench_forecast.py). The reason is written down per series in words with the figures.
5. Short series (fewer than ``min_points`` observed values), constant series and series too short for any
   backtest window get the baseline and a note instead of an error.
6. The chosen model is refitted on the whole history and forecasts ``horizon`` steps; predictive sample paths
   (statsforecast's simulators, Prophet's predictive samples) give early-warning probabilities of crossing a
   threshold within the horizon. Series that never go below zero get forecasts clipped at zero.

Nothing is pickled: :class:`SeriesModel` round-trips through JSON (Prophet through
``prophet.serialize.model_to_json``; statsforecast models are refitted on the stored history at load time, which
is deterministic and takes milliseconds).

Parallelism: :func:`fit_series` is a pure top-level function of JSON-able arguments, so :func:`fit_many` can map it
with the builtin ``map``, ``ProcessPoolExecutor.map`` or a Dask ``Client.map`` wrapper. Each call caps BLAS/numba
threads at one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import logging
import math
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import stats

from ml.errors import InputError, NotFittedError, NotFoundError, RecurError
from ml.indicators.grid import (
    NOMINAL_SEASON,
    Grid,
    _freq_kind,
    _future_dates,
    fill_gaps,
    to_grid,
)
from ml.indicators.signals import EVENT_FIELDS, make_detector, rank_events
from ml.io.schemas import parse_series_key

logger = logging.getLogger(__name__)

#: Every candidate this module knows, in the order they are reported.
ALL_CANDIDATES: tuple[str, ...] = ("seasonal_naive", "auto_ets", "auto_theta", "auto_arima", "prophet")
#: The default candidate set (Prophet included: it is one candidate among several).
DEFAULT_CANDIDATES: tuple[str, ...] = ALL_CANDIDATES
#: Candidates for large batches: Prophet (~1 s per fit) and AutoARIMA (~0.3-0.8 s per fit on 100 weekly points)
#: left out; with 4 fits per series (3 backtest windows + the final fit) they dominate the time.
FAST_CANDIDATES: tuple[str, ...] = ("seasonal_naive", "auto_ets", "auto_theta")
BASELINE = "seasonal_naive"

DEFAULT_HORIZON = {"D": 28, "W": 13}
#: Seasonal periods above this are removed by decomposition before the statistical models (AutoETS caps at 24).
MAX_MODEL_SEASON = 24
#: Fourier harmonics kept when smoothing a long seasonal profile (52 weekly phases).
SEASON_HARMONICS = 6

Selection = Literal["best", "combine"]
Combination = Literal["median", "mean"]


# --------------------------------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Threshold:
    """An early-warning threshold: probability that the indicator goes ``direction`` ``value`` within the horizon.

    ``series`` or ``indicator`` restrict it to one series (exact key) or to every series of one indicator.
    """

    value: float
    direction: Literal["above", "below"] = "above"
    series: str | None = None
    indicator: str | None = None

    def applies_to(self, series_id: str) -> bool:
        if self.series is not None and self.series != series_id:
            return False
        if self.indicator is not None and parse_series_key(series_id)["indicator"] != self.indicator:
            return False
        return True


@dataclass(frozen=True)
class ForecastConfig:
    """Settings for one series fit. Build from a plain dict with :meth:`from_dict` (unknown keys are errors).

    Attributes:
        horizon: steps to forecast and per backtest window (default 13 weekly, 28 daily).
        n_windows: rolling-origin backtest cut-offs.
        step: distance between cut-offs (default: ``horizon``, i.e. non-overlapping windows).
        candidates: models to try (see :data:`ALL_CANDIDATES`); the baseline is always added.
        level: central prediction interval in percent.
        selection: ``combine`` or ``best`` (see the module docstring).
        top_k: candidates combined by ``combine``.
        combination: ``median`` (default) or ``mean`` of the combined candidates.
        clean_outliers: fit the models (not the baseline) on the history with isolated outliers replaced by the
            running median (:func:`clean_outliers`), as R's ``tsclean`` does; scores always use the raw values.
            Off by default: on the sample data it made AutoETS and AutoTheta slightly worse (MASE 1.04 -> 1.06).
        min_points: fewer observed values than this get the baseline without a backtest.
        freq: force ``"D"`` or ``"W-MON"``-style weekly frequency instead of inferring it.
        nonnegative: clip forecasts at zero; ``None`` infers it (no negative value in the history).
        holidays: Prophet holidays, dicts with ``holiday``, ``ds`` and optional ``lower_window``/``upper_window``.
        country_holidays: Prophet built-in country holidays, e.g. ``"US"``.
        thresholds: early-warning thresholds (:class:`Threshold` or dicts of its fields).
        n_samples: predictive sample paths for early warnings.
        seed: seed for every random draw (sample paths, Prophet's interval sampling).
        signals: run the signal-vs-noise detector on the history.
        signal_params: keyword arguments for :class:`ml.signals.ChangeDetector`.
        errors: ``raise`` (default) or ``record``: with ``record`` a bad series gives a result with status
            ``error`` instead of an exception (what :func:`fit_many` uses so one bad series does not stop a batch).
    """

    horizon: int | None = None
    n_windows: int = 3
    step: int | None = None
    candidates: tuple[str, ...] = DEFAULT_CANDIDATES
    level: int = 80
    selection: Selection = "combine"
    top_k: int = 3
    combination: Combination = "median"
    clean_outliers: bool = False
    min_points: int = 12
    freq: str | None = None
    nonnegative: bool | None = None
    holidays: tuple[dict[str, Any], ...] = ()
    country_holidays: str | None = None
    thresholds: tuple[Threshold, ...] = ()
    n_samples: int = 1000
    seed: int = 0
    signals: bool = True
    signal_params: dict[str, Any] = field(default_factory=dict)
    errors: Literal["raise", "record"] = "raise"

    def __post_init__(self) -> None:
        _check_int("horizon", self.horizon, 1, allow_none=True)
        _check_int("n_windows", self.n_windows, 0)
        _check_int("step", self.step, 1, allow_none=True)
        _check_int("level", self.level, 1, upper=99)
        _check_int("top_k", self.top_k, 1)
        _check_int("min_points", self.min_points, 2)
        _check_int("n_samples", self.n_samples, 10)
        _check_int("seed", self.seed, 0)
        if not self.candidates:
            raise InputError("candidates is empty", field="candidates", value=list(self.candidates))
        for name in self.candidates:
            if name not in ALL_CANDIDATES:
                raise InputError(
                    f"unknown candidate {name!r}; known: {', '.join(ALL_CANDIDATES)}",
                    field="candidates",
                    value=name,
                )
        if self.selection not in ("best", "combine"):
            raise InputError(
                f"selection must be 'best' or 'combine', got {self.selection!r}", field="selection",
                value=self.selection,
            )  # fmt: skip
        if self.combination not in ("median", "mean"):
            raise InputError(
                f"combination must be 'median' or 'mean', got {self.combination!r}", field="combination",
                value=self.combination,
            )  # fmt: skip
        if self.errors not in ("raise", "record"):
            raise InputError(
                f"errors must be 'raise' or 'record', got {self.errors!r}", field="errors", value=self.errors
            )
        if self.freq is not None:
            _freq_kind(self.freq)
        for t in self.thresholds:
            if t.direction not in ("above", "below"):
                raise InputError(
                    f"threshold direction must be 'above' or 'below', got {t.direction!r}",
                    field="thresholds.direction",
                    value=t.direction,
                )
            if not math.isfinite(t.value):
                raise InputError("threshold value is not finite", field="thresholds.value", value=t.value)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | ForecastConfig | None) -> ForecastConfig:
        """Build from a JSON-able mapping; unknown keys raise :class:`InputError` naming them."""
        if data is None:
            return cls()
        if isinstance(data, ForecastConfig):
            return data
        if not isinstance(data, Mapping):
            raise InputError(
                f"config must be a mapping, got {type(data).__name__}", field="config", value=data
            )
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InputError(f"unknown config keys: {', '.join(unknown)}", field="config", value=unknown)
        kw = dict(data)
        if "candidates" in kw:
            cands = kw["candidates"]
            kw["candidates"] = (cands,) if isinstance(cands, str) else tuple(cands)
        if "holidays" in kw:
            kw["holidays"] = tuple(dict(h) for h in kw["holidays"] or ())
        if "thresholds" in kw:
            kw["thresholds"] = tuple(_threshold(t) for t in kw["thresholds"] or ())
        if "signal_params" in kw:
            kw["signal_params"] = dict(kw["signal_params"] or {})
        try:
            return cls(**kw)
        except TypeError as exc:  # a wrongly typed value (e.g. a list for an int)
            raise InputError(f"invalid config: {exc}", field="config", value=data) from exc

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["candidates"] = list(self.candidates)
        out["holidays"] = [dict(h) for h in self.holidays]
        out["thresholds"] = [dataclasses.asdict(t) for t in self.thresholds]
        return out


def _threshold(t: Any) -> Threshold:
    if isinstance(t, Threshold):
        return t
    if not isinstance(t, Mapping) or "value" not in t:
        raise InputError("a threshold needs at least a 'value'", field="thresholds", value=t)
    unknown = sorted(set(t) - {"value", "direction", "series", "indicator"})
    if unknown:
        raise InputError(f"unknown threshold keys: {', '.join(unknown)}", field="thresholds", value=t)
    try:
        value = float(t["value"])
    except (TypeError, ValueError) as exc:
        raise InputError(f"threshold value {t['value']!r} is not a number", field="thresholds.value") from exc
    return Threshold(value=value, direction=t.get("direction", "above"), series=t.get("series"),
                     indicator=t.get("indicator"))  # fmt: skip


def _check_int(
    name: str, value: Any, lower: int, *, upper: int | None = None, allow_none: bool = False
) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise InputError(f"{name} must be an integer, got {value!r}", field=name, value=value)
    if value < lower or (upper is not None and value > upper):
        bound = f">= {lower}" if upper is None else f"in [{lower}, {upper}]"
        raise InputError(f"{name} must be {bound}, got {value}", field=name, value=value)


# --------------------------------------------------------------------------------------------------------------
# Time grid
# --------------------------------------------------------------------------------------------------------------

# --------------------------------------------------------------------------------------------------------------
# Seasonality
# --------------------------------------------------------------------------------------------------------------


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
        return self.clean - self.seasonal[np.arange(len(self.clean)) % self.season]

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
    sd = 1.4826 * float(np.median(np.abs(d - np.median(d)))) / math.sqrt(2)
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
    return _Prepared(y_raw=y_raw, y=y, dates=dates, freq=freq, season=season, model_season=model_season,
                     seasonal=seasonal, clean=y_clean, n_outliers=n_out)  # fmt: skip


# --------------------------------------------------------------------------------------------------------------
# Candidates
# --------------------------------------------------------------------------------------------------------------


@dataclass
class Prediction:
    """Point forecast and central interval, one value per step."""

    mean: np.ndarray
    lower: np.ndarray
    upper: np.ndarray


class Candidate:
    """One forecasting method. ``fit`` returns self; ``predict``/``simulate`` need a fitted candidate."""

    name = "candidate"

    def fit(self, prep: _Prepared, cfg: ForecastConfig) -> Candidate:
        raise NotImplementedError

    def predict(self, h: int, level: int) -> Prediction:
        raise NotImplementedError

    def simulate(self, h: int, n: int, seed: int) -> np.ndarray:
        """Predictive sample paths, shape (n, h)."""
        raise NotImplementedError

    def state(self) -> dict[str, Any]:
        """What to store in JSON besides the history (empty: refit on the history at load time)."""
        return {}

    def _check(self) -> _Prepared:
        prep = getattr(self, "prep_", None)
        if prep is None:
            raise NotFittedError(f"candidate {self.name} is not fitted: call fit first", field="model")
        return prep


class SeasonalNaive(Candidate):
    """Last value of the same season (the last value when there is no seasonality); Gaussian intervals."""

    name = "seasonal_naive"

    def fit(self, prep: _Prepared, cfg: ForecastConfig) -> SeasonalNaive:
        m = prep.season if len(prep.y) > prep.season else 1
        y = prep.y
        resid = y[m:] - y[:-m] if len(y) > m else np.zeros(0)
        self.m_ = m
        self.sigma_ = float(np.sqrt(np.mean(resid**2))) if len(resid) else 0.0
        self.last_ = y[-m:].copy()
        self.prep_ = prep
        return self

    def _sd(self, h: int) -> np.ndarray:
        k = np.arange(h) // self.m_
        return self.sigma_ * np.sqrt(k + 1.0)

    def predict(self, h: int, level: int) -> Prediction:
        self._check()
        mean = self.last_[np.arange(h) % self.m_]
        z = stats.norm.ppf(0.5 + level / 200)
        sd = self._sd(h)
        return Prediction(mean, mean - z * sd, mean + z * sd)

    def simulate(self, h: int, n: int, seed: int) -> np.ndarray:
        self._check()
        rng = np.random.default_rng(seed)
        cycles = -(-h // self.m_)
        steps = rng.normal(0.0, self.sigma_, size=(n, cycles, self.m_)).cumsum(axis=1).reshape(n, -1)[:, :h]
        return self.last_[np.arange(h) % self.m_] + steps


class _StatsForecast(Candidate):
    """Adapter for statsforecast's automatic models (fitted on the deseasonalised series for long periods)."""

    def _model(self, season_length: int) -> Any:
        raise NotImplementedError

    def fit(self, prep: _Prepared, cfg: ForecastConfig) -> _StatsForecast:
        model = self._model(prep.model_season)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(prep.adjusted.astype(float))
        self.model_ = model
        self.prep_ = prep
        return self

    def predict(self, h: int, level: int) -> Prediction:
        prep = self._check()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = self.model_.predict(h=h, level=[level])
        season = prep.future_seasonal(h)
        mean = np.asarray(out["mean"], dtype=float) + season
        lower = np.asarray(out[f"lo-{level}"], dtype=float) + season
        upper = np.asarray(out[f"hi-{level}"], dtype=float) + season
        if not (np.isfinite(mean).all() and np.isfinite(lower).all() and np.isfinite(upper).all()):
            raise RecurError(f"{self.name} produced a non-finite forecast")
        return Prediction(mean, lower, upper)

    def simulate(self, h: int, n: int, seed: int) -> np.ndarray:
        prep = self._check()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            paths = np.asarray(self.model_.simulate(h=h, n_paths=n, seed=seed), dtype=float)
        return paths.reshape(n, h) + prep.future_seasonal(h)


class AutoETS(_StatsForecast):
    name = "auto_ets"

    def _model(self, season_length: int) -> Any:
        from statsforecast.models import AutoETS as _AutoETS

        return _AutoETS(season_length=season_length)


class AutoTheta(_StatsForecast):
    name = "auto_theta"

    def _model(self, season_length: int) -> Any:
        from statsforecast.models import AutoTheta as _AutoTheta

        return _AutoTheta(season_length=season_length)


class AutoARIMA(_StatsForecast):
    name = "auto_arima"

    def _model(self, season_length: int) -> Any:
        from statsforecast.models import AutoARIMA as _AutoARIMA

        return _AutoARIMA(season_length=season_length)


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


class ProphetCandidate(Candidate):
    """Prophet with yearly (>= 2 years) and weekly (daily data, >= 2 weeks) seasonality and optional holidays."""

    name = "prophet"
    uncertainty_samples = 300

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def fit(self, prep: _Prepared, cfg: ForecastConfig) -> ProphetCandidate:
        from prophet import Prophet

        self.seed = cfg.seed
        span_days = (prep.dates[-1] - prep.dates[0]).days
        daily = _freq_kind(prep.freq) == "D"
        holidays = None
        if cfg.holidays:
            holidays = pd.DataFrame([dict(h) for h in cfg.holidays])
            if not {"holiday", "ds"} <= set(holidays.columns):
                raise InputError(
                    "holidays need 'holiday' and 'ds' keys", field="holidays", value=cfg.holidays[0]
                )
            holidays["ds"] = pd.to_datetime(holidays["ds"])
        model = Prophet(
            yearly_seasonality=span_days >= 730,
            weekly_seasonality=daily and span_days >= 14,
            daily_seasonality=False,
            holidays=holidays,
            interval_width=cfg.level / 100,
            uncertainty_samples=self.uncertainty_samples,
        )
        if cfg.country_holidays:
            model.add_country_holidays(country_name=cfg.country_holidays)
        df = pd.DataFrame({"ds": prep.dates, "y": np.where(np.isfinite(prep.y_raw), prep.clean, np.nan)})
        with _quiet("cmdstanpy", "prophet"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(df.dropna())
        self.model_ = model
        self.prep_ = prep
        return self

    def _future(self, h: int) -> pd.DataFrame:
        prep = self._check()
        return pd.DataFrame({"ds": _future_dates(prep.dates[-1], prep.freq, h)})

    def predict(self, h: int, level: int) -> Prediction:
        future = self._future(h)
        self.model_.interval_width = level / 100
        with _seeded(self.seed), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = self.model_.predict(future)
        return Prediction(out["yhat"].to_numpy(float), out["yhat_lower"].to_numpy(float),
                          out["yhat_upper"].to_numpy(float))  # fmt: skip

    def simulate(self, h: int, n: int, seed: int) -> np.ndarray:
        future = self._future(h)
        model = self.model_
        keep = model.uncertainty_samples
        model.uncertainty_samples = n
        try:
            with _seeded(seed), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                samples = model.predictive_samples(model.setup_dataframe(future.copy()))["yhat"]
        finally:
            model.uncertainty_samples = keep
        return np.asarray(samples, dtype=float).T.reshape(n, h)

    def state(self) -> dict[str, Any]:
        from prophet.serialize import model_to_json

        self._check()
        return {"prophet_json": model_to_json(self.model_), "seed": self.seed}

    def load_state(self, prep: _Prepared, state: Mapping[str, Any]) -> ProphetCandidate:
        from prophet.serialize import model_from_json

        self.model_ = model_from_json(state["prophet_json"])
        self.seed = int(state.get("seed", 0))
        self.prep_ = prep
        return self


_CANDIDATE_TYPES: dict[str, type[Candidate]] = {
    "seasonal_naive": SeasonalNaive,
    "auto_ets": AutoETS,
    "auto_theta": AutoTheta,
    "auto_arima": AutoARIMA,
    "prophet": ProphetCandidate,
}


def make_candidate(name: str) -> Candidate:
    try:
        return _CANDIDATE_TYPES[name]()
    except KeyError:
        raise InputError(f"unknown candidate {name!r}", field="candidates", value=name) from None


# --------------------------------------------------------------------------------------------------------------
# Metrics
# --------------------------------------------------------------------------------------------------------------


def mase_scale(y_train: np.ndarray) -> float:
    """In-sample MAE of the one-step naive forecast (observed consecutive pairs only); 0 when constant."""
    d = np.abs(np.diff(np.asarray(y_train, dtype=float)))
    d = d[np.isfinite(d)]
    return float(d.mean()) if len(d) else 0.0


def mase(y: np.ndarray, yhat: np.ndarray, scale: float) -> float:
    """Mean absolute scaled error over the observed points of y (NaN if nothing observed or no scale)."""
    ok = np.isfinite(y)
    if not ok.any() or scale <= 0:
        return float("nan")
    return float(np.mean(np.abs(y[ok] - yhat[ok])) / scale)


def smape(y: np.ndarray, yhat: np.ndarray) -> float:
    """Symmetric MAPE in percent (0..200); a step where both are 0 counts as 0."""
    ok = np.isfinite(y)
    if not ok.any():
        return float("nan")
    num = np.abs(y[ok] - yhat[ok])
    den = np.abs(y[ok]) + np.abs(yhat[ok])
    frac = np.divide(num, den, out=np.zeros_like(num), where=den > 0)
    return float(200.0 * frac.mean())


def coverage(y: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> float:
    ok = np.isfinite(y)
    if not ok.any():
        return float("nan")
    return float(np.mean((y[ok] >= lower[ok]) & (y[ok] <= upper[ok])))


def _clip(pred: Prediction, nonneg: bool) -> Prediction:
    if not nonneg:
        return pred
    return Prediction(np.maximum(pred.mean, 0), np.maximum(pred.lower, 0), np.maximum(pred.upper, 0))


def _combine(preds: Sequence[Prediction], how: str = "median") -> Prediction:
    """Step-wise median (or mean) of the members' point forecasts and of each interval bound."""
    if len(preds) == 1:
        return preds[0]
    f = np.median if how == "median" else np.mean
    return Prediction(
        f([p.mean for p in preds], axis=0),
        f([p.lower for p in preds], axis=0),
        f([p.upper for p in preds], axis=0),
    )


# --------------------------------------------------------------------------------------------------------------
# Backtest and selection
# --------------------------------------------------------------------------------------------------------------


def _min_train(cfg: ForecastConfig, horizon: int) -> int:
    """Shortest training window of a backtest: ``min_points`` and at least one horizon."""
    return max(cfg.min_points, horizon)


def backtest_cutoffs(n: int, horizon: int, n_windows: int, step: int, min_train: int) -> list[int]:
    """Training lengths of the rolling origins, oldest first: the last window ends at the last point."""
    cuts = [n - horizon - i * step for i in range(n_windows)]
    return sorted(c for c in cuts if c >= min_train)


@dataclass
class _WindowForecasts:
    cutoff: int
    scale: float
    actual: np.ndarray
    preds: dict[str, Prediction]


def _run_backtest(
    grid: Grid, cfg: ForecastConfig, names: Sequence[str], horizon: int, nonneg: bool, notes: list[str]
) -> list[_WindowForecasts]:
    n = len(grid.y)
    step = cfg.step or horizon
    cuts = backtest_cutoffs(n, horizon, cfg.n_windows, step, _min_train(cfg, horizon))
    windows: list[_WindowForecasts] = []
    failures: dict[str, str] = {}
    for c in cuts:
        prep = _prepare(grid.y[:c], grid.dates[:c], grid.freq, cfg.clean_outliers)
        actual = grid.y[c : c + horizon]
        preds: dict[str, Prediction] = {}
        for name in names:
            if name in failures:
                continue
            try:
                preds[name] = _clip(make_candidate(name).fit(prep, cfg).predict(horizon, cfg.level), nonneg)
            except InputError:
                raise
            except Exception as exc:  # a third-party fit failing on this window: the candidate drops out
                failures[name] = f"{type(exc).__name__}: {exc}"[:200]
                logger.debug("Forecasting - %s failed at cutoff %d: %s", name, c, exc)
        windows.append(_WindowForecasts(c, mase_scale(grid.y[:c]), actual, preds))
    for name, why in failures.items():
        notes.append(f"{name} failed in a backtest window and was dropped ({why})")
        for w in windows:
            w.preds.pop(name, None)
    if any(w.scale <= 0 for w in windows):
        notes.append(
            "a backtest window has a constant training history: MASE is undefined there and left out"
        )
    return windows


def _score(w: _WindowForecasts, pred: Prediction) -> dict[str, float]:
    ok = np.isfinite(w.actual)
    return {
        "mase": mase(w.actual, pred.mean, w.scale),
        "smape": smape(w.actual, pred.mean),
        "coverage": coverage(w.actual, pred.lower, pred.upper),
        "mae": float(np.mean(np.abs(w.actual[ok] - pred.mean[ok]))) if ok.any() else float("nan"),
    }


def _nanmean(values: Iterable[float]) -> float:
    arr = np.array([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    return float(arr.mean()) if len(arr) else float("nan")


def combo_name(members: Sequence[str], how: str = "median") -> str:
    """``auto_ets`` for one member, ``median(auto_ets+auto_theta+...)`` for a combination."""
    return f"{how}(" + "+".join(members) + ")" if len(members) > 1 else members[0]


_METRICS = ("mase", "smape", "coverage", "mae")


def _select(
    windows: list[_WindowForecasts], names: Sequence[str], cfg: ForecastConfig, dates: pd.DatetimeIndex
) -> tuple[list[str], str, list[dict[str, Any]], list[dict[str, Any]]]:
    """Choose the model (one candidate or a combination) by backtest MASE; return members, reason, rows, summary.

    Candidates are ranked by mean MASE over the windows (then mean MAE, for windows where MASE is undefined,
    then the configured order, so that ties go to the simpler baseline first).
    """
    rows: list[dict[str, Any]] = []
    available = [n for n in names if all(n in w.preds for w in windows)]
    per: dict[str, list[dict[str, float]]] = {
        name: [_score(w, w.preds[name]) for w in windows] for name in available
    }

    def summarise(scores: list[dict[str, float]]) -> dict[str, float]:
        return {m: _nanmean(s[m] for s in scores) for m in _METRICS}

    summ = {k: summarise(v) for k, v in per.items()}

    def key(name: str) -> tuple[float, float, int]:
        m, a = summ[name]["mase"], summ[name]["mae"]
        return (
            m if math.isfinite(m) else math.inf,
            a if math.isfinite(a) else math.inf,
            available.index(name),
        )

    ranked = sorted(available, key=key)
    how = cfg.combination
    top = ranked[: min(cfg.top_k, len(ranked))] if cfg.selection == "combine" else ranked[:1]
    combo = combo_name(top, how)
    if len(top) > 1:
        per[combo] = [_score(w, _combine([w.preds[t] for t in top], how)) for w in windows]
        summ[combo] = summarise(per[combo])
    for name, scores in per.items():
        for w, sc in zip(windows, scores, strict=True):
            rows.append({"candidate": name, "cutoff": str(dates[w.cutoff - 1].date()), "window_start":
                         str(dates[w.cutoff].date()), "n_test": int(np.isfinite(w.actual).sum()), **sc})  # fmt: skip
    summary = [{"candidate": k, "windows": len(windows), **v} for k, v in summ.items()]

    def fmt(name: str) -> str:
        m = summ[name]["mase"]
        return f"{name} {m:.3f}" if math.isfinite(m) else f"{name} MAE {summ[name]['mae']:.3g}"

    n_w = len(windows)
    base = f"; baseline {fmt(BASELINE)}" if BASELINE in summ and BASELINE not in top else ""
    if len(top) == 1:
        others = [fmt(n) for n in ranked[1:3]]
        tail = f", ahead of {', '.join(others)}" if others else ""
        reason = f"lowest mean backtest MASE over {n_w} windows: {fmt(top[0])}{tail}{base}"
    else:
        reason = (f"{how} of the {len(top)} candidates with the lowest mean backtest MASE over {n_w} windows "
                  f"({', '.join(fmt(t) for t in top)}); the combination scored {fmt(combo).split(' ', 1)[1]} on the "
                  f"same windows{base}. A {how} of the best few is steadier on new data than the single best of a "
                  "few windows")  # fmt: skip
    return top, reason, rows, summary


# --------------------------------------------------------------------------------------------------------------
# The fitted model of one series (JSON round trip)
# --------------------------------------------------------------------------------------------------------------


class SeriesModel:
    """The chosen model (one candidate or a median/mean combination) fitted on the whole history.

    ``predict`` gives point forecasts and the central interval; ``sample_paths`` predictive paths (a combination
    pools its members' paths, each shifted to the combined point forecast); ``crossing_probability`` the early
    warning. ``to_dict``/``from_dict`` round-trip through JSON without pickle.
    """

    def __init__(
        self, members: Sequence[str], level: int = 80, nonnegative: bool = False, seed: int = 0,
        combination: Combination = "median", clean: bool = False,
    ) -> None:  # fmt: skip
        self.members = list(members)
        self.level = level
        self.nonnegative = nonnegative
        self.seed = seed
        self.combination = combination
        self.clean = clean

    def fit(self, grid: Grid, cfg: ForecastConfig | None = None) -> SeriesModel:
        cfg = cfg or ForecastConfig(level=self.level, seed=self.seed)
        self.grid_ = grid
        self.prep_ = _prepare(grid.y, grid.dates, grid.freq, self.clean)
        self.fitted_ = [make_candidate(m).fit(self.prep_, cfg) for m in self.members]
        return self

    def _check(self) -> list[Candidate]:
        fitted = getattr(self, "fitted_", None)
        if fitted is None:
            raise NotFittedError("SeriesModel is not fitted: call fit or from_dict first", field="model")
        return fitted

    @property
    def name(self) -> str:
        return combo_name(self.members, self.combination)

    def predict(self, h: int, level: int | None = None) -> pd.DataFrame:
        """Forecast rows: ``ds, yhat, yhat_lower, yhat_upper``."""
        _check_int("horizon", h, 1)
        fitted = self._check()
        level = self.level if level is None else level
        _check_int("level", level, 1, upper=99)
        pred = _clip(_combine([c.predict(h, level) for c in fitted], self.combination), self.nonnegative)
        return pd.DataFrame({
            "ds": _future_dates(self.grid_.dates[-1], self.grid_.freq, h),
            "yhat": pred.mean, "yhat_lower": pred.lower, "yhat_upper": pred.upper,
        })  # fmt: skip

    def sample_paths(self, h: int, n: int = 1000, seed: int | None = None) -> np.ndarray:
        """Predictive sample paths, shape (n, h)."""
        _check_int("horizon", h, 1)
        _check_int("n_samples", n, 1)
        fitted = self._check()
        seed = self.seed if seed is None else seed
        if len(fitted) == 1:
            paths = fitted[0].simulate(h, n, seed)
        else:
            preds = [c.predict(h, self.level) for c in fitted]
            center = _combine(preds, self.combination).mean
            counts = np.diff(np.linspace(0, n, len(fitted) + 1).round().astype(int))
            parts = [
                c.simulate(h, int(k), seed + i) - p.mean + center
                for i, (c, p, k) in enumerate(zip(fitted, preds, counts, strict=True))
                if k > 0
            ]
            paths = np.concatenate(parts, axis=0)
        if self.nonnegative:
            paths = np.maximum(paths, 0)
        return paths

    def crossing_probability(
        self, threshold: float, direction: Literal["above", "below"] = "above", horizon: int | None = None,
        n: int = 1000, seed: int | None = None,
    ) -> float:  # fmt: skip
        """Probability that the indicator goes above (below) ``threshold`` at least once within ``horizon``."""
        self._check()
        h = horizon if horizon is not None else DEFAULT_HORIZON[self.grid_.kind]
        return crossing_probability(self.sample_paths(h, n, seed), threshold, direction)

    def to_dict(self) -> dict[str, Any]:
        fitted = self._check()
        g = self.grid_
        return {
            "format": "recur.forecasting.SeriesModel/1",
            "members": self.members,
            "combination": self.combination,
            "clean_outliers": self.clean,
            "level": self.level,
            "nonnegative": self.nonnegative,
            "seed": self.seed,
            "freq": g.freq,
            "history": {
                "ds": [str(d.date()) for d in g.dates],
                "y": [None if not math.isfinite(v) else float(v) for v in g.y],
            },
            "states": [c.state() for c in fitted],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SeriesModel:
        try:
            members = list(data["members"])
            hist = data["history"]
            grid = Grid(
                dates=pd.DatetimeIndex(pd.to_datetime(hist["ds"])),
                y=np.array([np.nan if v is None else float(v) for v in hist["y"]], dtype=float),
                freq=str(data["freq"]),
                notes=[],
            )
            states = list(data.get("states") or [{} for _ in members])
            model = cls(members, int(data.get("level", 80)), bool(data.get("nonnegative", False)),
                        int(data.get("seed", 0)), data.get("combination", "median"),
                        bool(data.get("clean_outliers", False)))  # fmt: skip
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"not a serialised SeriesModel: {exc}", field="model") from exc
        cfg = ForecastConfig(level=model.level, seed=model.seed)
        model.grid_ = grid
        model.prep_ = _prepare(grid.y, grid.dates, grid.freq, model.clean)
        fitted: list[Candidate] = []
        for name, state in zip(members, states, strict=True):
            cand = make_candidate(name)
            if isinstance(cand, ProphetCandidate) and state.get("prophet_json"):
                fitted.append(cand.load_state(model.prep_, state))
            else:
                fitted.append(cand.fit(model.prep_, cfg))
        model.fitted_ = fitted
        return model

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> SeriesModel:
        return cls.from_dict(json.loads(text))


def crossing_probability(
    paths: np.ndarray, threshold: float, direction: Literal["above", "below"] = "above"
) -> float:
    """Share of sample paths (n, h) that go strictly above (below) ``threshold`` at least once."""
    if direction not in ("above", "below"):
        raise InputError(f"direction must be 'above' or 'below', got {direction!r}", field="direction",
                         value=direction)  # fmt: skip
    paths = np.asarray(paths, dtype=float)
    if paths.ndim != 2 or paths.shape[0] == 0:
        raise InputError("paths must be a non-empty (n, h) array", field="paths", value=list(paths.shape))
    hit = (paths > threshold).any(axis=1) if direction == "above" else (paths < threshold).any(axis=1)
    return float(hit.mean())


# --------------------------------------------------------------------------------------------------------------
# One series, end to end
# --------------------------------------------------------------------------------------------------------------


class SeriesForecaster:
    """Fit one series: grid, backtest, selection, final model, forecast, signals and early warnings.

    Learned attributes (after ``fit``): ``grid_``, ``horizon_``, ``status_`` (``ok`` or ``baseline``),
    ``members_``, ``reason_``, ``backtest_`` (rows per candidate and window), ``backtest_summary_``,
    ``model_`` (:class:`SeriesModel`), ``forecast_`` (DataFrame), ``notes_``, ``signals_``, ``warnings_``.
    """

    def __init__(self, config: ForecastConfig | Mapping[str, Any] | None = None) -> None:
        self.config = config

    def fit(
        self, ds: Sequence[Any], y: Sequence[float | None], series_id: str = "series"
    ) -> SeriesForecaster:
        cfg = ForecastConfig.from_dict(self.config)
        grid = to_grid(ds, y, cfg.freq)
        notes = list(grid.notes)
        obs = grid.y[grid.observed]
        if cfg.nonnegative is None:
            nonneg = bool(len(obs)) and bool((obs >= 0).all())
            n_neg = int((obs < 0).sum())
            if n_neg:
                notes.append(
                    f"{n_neg} negative values kept as valid values; forecasts are not clipped at zero"
                )
            elif nonneg:
                notes.append("no negative value in the history: forecasts and intervals are clipped at zero")
        else:
            nonneg = cfg.nonnegative
            if nonneg and (obs < 0).any():
                n_neg = int((obs < 0).sum())
                grid.y[grid.y < 0] = np.nan
                notes.append(f"{n_neg} negative values in a series declared non-negative: treated as missing")
                obs = grid.y[grid.observed]
        horizon = cfg.horizon or DEFAULT_HORIZON[grid.kind]
        names = list(dict.fromkeys([BASELINE, *cfg.candidates]))
        windows: list[_WindowForecasts] = []
        status = "ok"
        if len(obs) < cfg.min_points:
            status = "baseline"
            members = [BASELINE]
            reason = (f"only {len(obs)} observed values (< min_points={cfg.min_points}): the baseline "
                      f"{BASELINE} is used without a backtest")  # fmt: skip
            notes.append("short or sparse series: baseline forecast, no model selection")
        elif np.ptp(obs) == 0:
            status = "baseline"
            members = [BASELINE]
            reason = f"the series is constant ({obs[0]:g}): the forecast is that constant, no model selection"
            notes.append("constant series: zero-width interval, MASE undefined")
        else:
            windows = _run_backtest(grid, cfg, names, horizon, nonneg, notes)
            if not windows:
                status = "baseline"
                members = [BASELINE]
                reason = (f"{len(grid.y)} grid points are too few for a backtest window of {horizon} steps "
                          f"(need {_min_train(cfg, horizon) + horizon}): baseline used")  # fmt: skip
                notes.append("too short to backtest: baseline forecast")
        rows: list[dict[str, Any]] = []
        summary: list[dict[str, Any]] = []
        if windows:
            members, reason, rows, summary = _select(windows, names, cfg, grid.dates)
        model = SeriesModel(members, cfg.level, nonneg, cfg.seed, cfg.combination, cfg.clean_outliers)
        try:
            model.fit(grid, cfg)
            forecast = model.predict(horizon)
        except InputError:
            raise
        except Exception as exc:  # a third-party fit failing on the full history: fall back to the baseline
            notes.append(
                f"{model.name} failed on the full history ({type(exc).__name__}: {exc}); baseline used"
            )
            status, members = "baseline", [BASELINE]
            reason = f"{reason}; but {model.name} failed on the full history, so the baseline is used"
            model = SeriesModel(members, cfg.level, nonneg, cfg.seed, cfg.combination, cfg.clean_outliers)
            model.fit(grid, cfg)
            forecast = model.predict(horizon)
        if model.prep_.n_outliers and members != [BASELINE]:
            notes.append(
                f"{model.prep_.n_outliers} isolated outliers replaced by the running median for fitting"
            )
        self.grid_ = grid
        self.horizon_ = horizon
        self.status_ = status
        self.members_ = members
        self.reason_ = reason
        self.backtest_ = rows
        self.backtest_summary_ = summary
        self.model_ = model
        self.forecast_ = forecast
        self.season_length_ = model.prep_.season
        self.nonnegative_ = nonneg
        self.warnings_ = self._warnings(cfg, series_id, horizon)
        self.signals_ = self._signals(cfg, series_id) if cfg.signals else []
        self.notes_ = notes
        self.series_id_ = series_id
        logger.debug("Forecasting - %s: %s (%s)", series_id, model.name, reason)
        return self

    def _warnings(self, cfg: ForecastConfig, series_id: str, horizon: int) -> list[dict[str, Any]]:
        todo = [t for t in cfg.thresholds if t.applies_to(series_id)]
        if not todo:
            return []
        paths = self.model_.sample_paths(horizon, cfg.n_samples, cfg.seed)
        return [
            {"threshold": t.value, "direction": t.direction, "horizon": horizon,
             "probability": crossing_probability(paths, t.value, t.direction)}
            for t in todo
        ]  # fmt: skip

    def _signals(self, cfg: ForecastConfig, series_id: str) -> list[dict[str, Any]]:
        params = dict(cfg.signal_params)
        params.setdefault("season_length", NOMINAL_SEASON[self.grid_.kind])
        det = make_detector(params).fit(self.grid_.y, self.grid_.dates)
        return det.events(series_id)

    def _check(self) -> None:
        if not hasattr(self, "model_"):
            raise NotFittedError("SeriesForecaster is not fitted: call fit first", field="model")

    def to_result(self) -> dict[str, Any]:
        """The JSON-able result of :func:`fit_series`."""
        self._check()
        g = self.grid_
        fc = self.forecast_
        chosen = combo_name(self.members_, self.model_.combination)
        chosen_row = next((r for r in self.backtest_summary_ if r["candidate"] == chosen), None)
        base_row = next((r for r in self.backtest_summary_ if r["candidate"] == BASELINE), None)
        return _jsonable({
            "series": self.series_id_,
            "status": self.status_,
            "freq": g.freq,
            "season_length": self.season_length_,
            "start": str(g.dates[0].date()),
            "end": str(g.dates[-1].date()),
            "n_obs": int(g.observed.sum()),
            "n_missing": int((~g.observed).sum()),
            "horizon": self.horizon_,
            "level": self.model_.level,
            "nonnegative": self.nonnegative_,
            "chosen": chosen,
            "members": self.members_,
            "reason": self.reason_,
            "mase": chosen_row["mase"] if chosen_row else None,
            "baseline_mase": base_row["mase"] if base_row else None,
            "backtest": self.backtest_,
            "backtest_summary": self.backtest_summary_,
            "forecast": [
                {"ds": str(d.date()), "yhat": a, "yhat_lower": b, "yhat_upper": c}
                for d, a, b, c in zip(fc["ds"], fc["yhat"], fc["yhat_lower"], fc["yhat_upper"], strict=True)
            ],
            "model": self.model_.to_dict(),
            "notes": self.notes_,
            "signals": self.signals_,
            "warnings": self.warnings_,
        })  # fmt: skip


def _jsonable(obj: Any) -> Any:
    """Plain JSON types; non-finite floats become None."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dt.date | pd.Timestamp):
        return obj.isoformat()
    return obj


_THREADPOOLS: list[Any] = []


@contextlib.contextmanager
def _single_thread() -> Iterator[None]:
    """One BLAS/OpenMP thread and one numba thread inside a task (the caller parallelises across series)."""
    if not _THREADPOOLS:  # inspecting the loaded libraries is slow-ish: once per process
        from threadpoolctl import ThreadpoolController

        _THREADPOOLS.append(ThreadpoolController())
    try:
        import numba

        before = numba.get_num_threads()
        numba.set_num_threads(1)
    except (ImportError, ValueError):
        numba, before = None, None
    try:
        with _THREADPOOLS[0].limit(limits=1):
            yield
    finally:
        if numba is not None and before is not None:
            numba.set_num_threads(before)


def fit_series(
    series_id: str, ds: list[str], y: list[float | None], config: dict[str, Any] | None = None
) -> dict:
    """Fit, backtest, select and forecast one series; return a JSON-able result (see ``SeriesForecaster``).

    Pure and top-level so it can be mapped over a process pool or a Dask cluster.
    With ``config["errors"] == "record"`` a :class:`~ml.errors.RecurError` gives ``{"status": "error", ...}``.
    """
    cfg = ForecastConfig.from_dict(config)
    with _single_thread():
        try:
            return SeriesForecaster(cfg).fit(ds, y, series_id).to_result()
        except RecurError as exc:
            if cfg.errors == "raise":
                raise
            logger.warning("Forecasting - %s: %s", series_id, exc.message)
            return {"series": series_id, "status": "error", "error": exc.to_dict(), "notes": [exc.message]}


def load_model(result: Mapping[str, Any]) -> SeriesModel:
    """The fitted :class:`SeriesModel` of a :func:`fit_series` result (or of its ``model`` entry)."""
    data = result.get("model", result)
    if not isinstance(data, Mapping) or "members" not in data:
        raise InputError("result has no serialised model", field="model", value=result.get("status"))
    return SeriesModel.from_dict(data)


def evaluate_selection(
    series_id: str,
    ds: list[str],
    y: list[float | None],
    config: dict[str, Any] | None = None,
    n_outer: int = 8,
) -> list[dict[str, Any]]:
    """Honest held-out evaluation of the selector against every candidate used alone.

    One rolling backtest with ``n_windows + n_outer`` cut-offs ``step`` apart. For each of the last ``n_outer``
    windows the selector chooses (exactly as :func:`fit_series` would at that origin) from the ``n_windows``
    windows before it, and is scored on that window, which it never saw; each single candidate is scored on the
    same window. Returns one row per (origin, method): ``series, origin, method, chosen, mase, smape, coverage``.
    """
    cfg = ForecastConfig.from_dict(config)
    _check_int("n_outer", n_outer, 1)
    grid = to_grid(ds, y, cfg.freq)
    horizon = cfg.horizon or DEFAULT_HORIZON[grid.kind]
    obs = grid.y[grid.observed]
    nonneg = bool((obs >= 0).all()) if cfg.nonnegative is None else cfg.nonnegative
    names = list(dict.fromkeys([BASELINE, *cfg.candidates]))
    wide = dataclasses.replace(cfg, n_windows=cfg.n_windows + n_outer)
    windows = _run_backtest(grid, wide, names, horizon, nonneg, [])
    rows: list[dict[str, Any]] = []
    for k in range(cfg.n_windows, len(windows)):
        inner, w = windows[k - cfg.n_windows : k], windows[k]
        members, _, _, _ = _select(inner, [n for n in names if n in w.preds], cfg, grid.dates)
        origin = str(grid.dates[w.cutoff - 1].date())
        chosen = _combine([w.preds[m] for m in members], cfg.combination)
        rows.append({"series": series_id, "origin": origin, "method": "selector",
                     "chosen": combo_name(members, cfg.combination),
                     **_score(w, chosen)})  # fmt: skip
        for name in names:
            if name in w.preds:
                rows.append({"series": series_id, "origin": origin, "method": name, "chosen": name,
                             **_score(w, w.preds[name])})  # fmt: skip
    return _jsonable(rows)


# --------------------------------------------------------------------------------------------------------------
# Many series
# --------------------------------------------------------------------------------------------------------------


def split_series(df: pd.DataFrame) -> tuple[list[str], list[list[str]], list[list[float | None]]]:
    """Split a long DataFrame (``series, ds, y``) into plain lists, one entry per series (sorted by id)."""
    missing = [c for c in ("series", "ds", "y") if c not in df.columns]
    if missing:
        raise InputError(f"missing columns: {', '.join(missing)}", field="columns", value=list(df.columns))
    ids: list[str] = []
    dss: list[list[str]] = []
    ys: list[list[float | None]] = []
    for key, part in df.groupby("series", sort=True):
        ids.append(str(key))
        dss.append([str(pd.Timestamp(d).date()) for d in part["ds"]])
        ys.append([None if pd.isna(v) else float(v) for v in part["y"]])
    return ids, dss, ys


@dataclass
class ForecastBundle:
    """Results of :func:`fit_many`, one JSON-able dict per series, with tabular views."""

    results: dict[str, dict[str, Any]]
    config: dict[str, Any] = field(default_factory=dict)

    def __getitem__(self, series_id: str) -> dict[str, Any]:
        try:
            return self.results[series_id]
        except KeyError:
            raise NotFoundError(
                f"no forecast for series {series_id!r}", field="series", value=series_id
            ) from None

    def __len__(self) -> int:
        return len(self.results)

    @property
    def series(self) -> list[str]:
        return sorted(self.results)

    @property
    def errors(self) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.results.items() if v.get("status") == "error"}

    def _ok(self) -> Iterator[tuple[str, dict[str, Any]]]:
        for k in self.series:
            if self.results[k].get("status") != "error":
                yield k, self.results[k]

    def model(self, series_id: str) -> SeriesModel:
        return load_model(self[series_id])

    def summary(self) -> pd.DataFrame:
        cols = ["series", "status", "freq", "n_obs", "chosen", "mase", "baseline_mase", "reason", "notes"]
        rows = [{c: r.get(c) for c in cols} for _, r in sorted(self.results.items())]
        return pd.DataFrame(rows, columns=cols)

    def forecasts(self) -> pd.DataFrame:
        rows = [{"series": k, "model": r["chosen"], **f} for k, r in self._ok() for f in r["forecast"]]
        return pd.DataFrame(rows, columns=["series", "model", "ds", "yhat", "yhat_lower", "yhat_upper"])

    def backtests(self) -> pd.DataFrame:
        rows = [{"series": k, **b} for k, r in self._ok() for b in r["backtest"]]
        cols = ["series", "candidate", "cutoff", "window_start", "n_test", "mase", "smape", "coverage"]
        return pd.DataFrame(rows, columns=cols)

    def signals(self) -> pd.DataFrame:
        events = rank_events([e for _, r in self._ok() for e in r.get("signals", [])])
        return pd.DataFrame(events, columns=list(EVENT_FIELDS))

    def warnings(self) -> pd.DataFrame:
        rows = [{"series": k, **w} for k, r in self._ok() for w in r.get("warnings", [])]
        return pd.DataFrame(rows, columns=["series", "threshold", "direction", "horizon", "probability"])

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": "recur.forecasting.ForecastBundle/1",
            "config": self.config,
            "results": self.results,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ForecastBundle:
        if "results" not in data:
            raise InputError("not a serialised ForecastBundle (no 'results')", field="bundle")
        return cls(results=dict(data["results"]), config=dict(data.get("config") or {}))

    @classmethod
    def from_json(cls, text: str) -> ForecastBundle:
        return cls.from_dict(json.loads(text))


MapFn = Callable[..., Iterable[dict[str, Any]]]


def fit_many(
    df: pd.DataFrame, config: Mapping[str, Any] | ForecastConfig | None = None, map_fn: MapFn = map,
    errors: Literal["raise", "record"] = "record",
) -> ForecastBundle:  # fmt: skip
    """Fit every series of a long DataFrame (``series, ds, y``) with ``map_fn(fit_series, ids, dss, ys, cfgs)``.

    ``map_fn`` is the builtin ``map`` by default; pass ``ProcessPoolExecutor(...).map`` or a Dask wrapper such as
    ``lambda f, *its: client.gather(client.map(f, *its, pure=False))``. With ``errors="record"`` (default) a bad
    series is recorded with status ``error`` and the others go on.
    """
    cfg = ForecastConfig.from_dict(config)
    cfg_dict = {**cfg.to_dict(), "errors": errors}
    ForecastConfig.from_dict(cfg_dict)  # validate before shipping to workers
    ids, dss, ys = split_series(df)
    logger.info("Forecasting - %d series, candidates %s", len(ids), ", ".join(cfg.candidates))
    results = list(map_fn(fit_series, ids, dss, ys, [cfg_dict] * len(ids)))
    return ForecastBundle(results={r["series"]: r for r in results}, config=cfg_dict)
