"""Forecasting candidates: the baseline, statsforecast's automatic models and Prophet."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np
import pandas as pd
from scipy import stats

from ml.errors import InputError, NotFittedError, RecurError
from ml.indicators import prophet_lean
from ml.indicators.config import ForecastConfig, _check_int
from ml.indicators.grid import _freq_kind, _future_dates
from ml.indicators.prophet_lean import _quiet, _seeded
from ml.indicators.seasonality import _Prepared

logger = logging.getLogger(__name__)


@dataclass
class Prediction:
    """Point forecast and central interval, one value per step."""

    mean: np.ndarray
    lower: np.ndarray
    upper: np.ndarray


@runtime_checkable
class ForecastingCandidate(Protocol):
    """What the backtest and :class:`~ml.indicators.series_model.SeriesModel` need from a forecasting method.

    ``fit`` learns ``*_`` attributes and returns the candidate; ``to_dict``/``candidate_from_dict`` record which
    method (and which parameters) a saved model used.
    """

    name: str

    def fit(self, prep: _Prepared, cfg: ForecastConfig) -> ForecastingCandidate: ...

    def predict(self, h: int, level: int) -> Prediction: ...

    def simulate(self, h: int, n: int, seed: int) -> np.ndarray: ...

    def to_dict(self) -> dict[str, Any]: ...


class Candidate:
    """Base of the forecasting methods: validates once, then calls ``_fit``/``_predict``/``_simulate``.

    ``__init__`` stores parameters only (none for most candidates); ``fit`` returns self; ``predict``/``simulate``
    need a fitted candidate. A bad horizon, level or path count is an :class:`InputError` naming the value.
    """

    name = "candidate"

    def get_params(self) -> dict[str, Any]:
        """The constructor parameters (what :meth:`to_dict` records)."""
        return {}

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "params": self.get_params()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Candidate:
        return candidate_from_dict(data)

    def fit(self, prep: _Prepared, cfg: ForecastConfig) -> Candidate:
        if not isinstance(prep, _Prepared):
            raise InputError(
                f"{self.name}: fit needs a prepared training window, got {type(prep).__name__}",
                field="prep",
                value=type(prep).__name__,
            )
        if not isinstance(cfg, ForecastConfig):
            raise InputError(
                f"{self.name}: fit needs a ForecastConfig, got {type(cfg).__name__}",
                field="config",
                value=type(cfg).__name__,
            )
        if len(prep.y) == 0:
            raise InputError(f"{self.name}: the training window is empty", field="y", value=0)
        return self._fit(prep, cfg)

    def predict(self, h: int, level: int) -> Prediction:
        _check_int("horizon", h, 1)
        _check_int("level", level, 1, upper=99)
        return self._predict(h, level)

    def simulate(self, h: int, n: int, seed: int) -> np.ndarray:
        """Predictive sample paths, shape (n, h)."""
        _check_int("horizon", h, 1)
        _check_int("n_samples", n, 1)
        _check_int("seed", seed, 0)
        return self._simulate(h, n, seed)

    def _fit(self, prep: _Prepared, cfg: ForecastConfig) -> Candidate:
        raise NotImplementedError

    def _predict(self, h: int, level: int) -> Prediction:
        raise NotImplementedError

    def _simulate(self, h: int, n: int, seed: int) -> np.ndarray:
        raise NotImplementedError

    def state(self) -> dict[str, Any]:
        """What to store in JSON besides the history (empty: refit on the history at load time)."""
        return {}

    def structure(self) -> dict[str, Any]:
        """Constructor parameters fixing the form a fit chose, to refit it without searching (empty: none)."""
        return {}

    def _check(self) -> _Prepared:
        prep: _Prepared | None = getattr(self, "prep_", None)
        if prep is None:
            raise NotFittedError(f"candidate {self.name} is not fitted: call fit first", field="model")
        return prep


class SeasonalNaive(Candidate):
    """Last value of the same season (the last value when there is no seasonality); Gaussian intervals."""

    name = "seasonal_naive"

    def _fit(self, prep: _Prepared, cfg: ForecastConfig) -> SeasonalNaive:
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
        sd: np.ndarray = self.sigma_ * np.sqrt(k + 1.0)
        return sd

    def _predict(self, h: int, level: int) -> Prediction:
        self._check()
        mean = self.last_[np.arange(h) % self.m_]
        z = stats.norm.ppf(0.5 + level / 200)
        sd = self._sd(h)
        return Prediction(mean, mean - z * sd, mean + z * sd)

    def _simulate(self, h: int, n: int, seed: int) -> np.ndarray:
        self._check()
        rng = np.random.default_rng(seed)
        cycles = -(-h // self.m_)
        steps = rng.normal(0.0, self.sigma_, size=(n, cycles, self.m_)).cumsum(axis=1).reshape(n, -1)[:, :h]
        paths: np.ndarray = self.last_[np.arange(h) % self.m_] + steps
        return paths


class _StatsForecast(Candidate):
    """Adapter for statsforecast's automatic models (fitted on the deseasonalised series for long periods).

    ``structure()`` after a fit gives the parameters that rebuild the same model form (ARIMA orders, ETS
    components, Theta variant) without the automatic search: the backtest searches and fits once, at its oldest
    window, forecasts its later windows from that fit (``forward``: the same parameters, filtered over the longer
    history) and the final model refits that form.
    """

    def _model(self, season_length: int, n: int) -> Any:
        raise NotImplementedError

    def _fit(self, prep: _Prepared, cfg: ForecastConfig) -> _StatsForecast:
        model = self._fit_recent_form(prep, cfg)
        if model is None:
            model = self._model(prep.model_season, len(prep.y))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model.fit(prep.adjusted.astype(float))
        self.model_ = model
        self.prep_ = prep
        return self

    #: whether the form is searched on the last ``search_window`` points (ETS, Theta; ARIMA has its own search)
    recent_search = False

    def _form_of(self, model: Any) -> dict[str, Any] | None:
        """Constructor parameters fixing a fitted statsforecast model's form."""
        return None

    def _fit_recent_form(self, prep: _Prepared, cfg: ForecastConfig) -> Any:
        """The form searched on the last ``cfg.search_window`` points, fitted on the whole window; ``None`` if none,
        or if that form does not fit the whole window (multiplicative with zeros earlier on: search it all)."""
        k = cfg.search_window
        if not self.recent_search or getattr(self, "model", None) is not None or k <= 0 or len(prep.y) <= k:
            return None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            form = self._form_of(self._model(prep.model_season, k).fit(prep.adjusted[-k:].astype(float)))
        try:
            return None if form is None else type(self)(**form)._fit(prep, cfg).model_
        except ValueError as exc:
            logger.debug("Forecasting - %s: form %s does not fit the whole window (%s)", self.name, form, exc)
            return None

    def _predict(self, h: int, level: int) -> Prediction:
        prep = self._check()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = self.model_.predict(h=h, level=[level])
        return self._prediction(out, prep.future_seasonal(h), level)

    def forward(self, prep: _Prepared, h: int, level: int) -> Prediction:
        """Forecast from the end of ``prep`` with this fit's parameters, not estimated again (filtering only).

        ``prep`` must start where the fitted window started (the states' initial values belong there) and have the
        same model season; a backtest uses it on its later windows. A mismatch is a :class:`ValueError`.
        """
        own = self._check()
        if prep.model_season != own.model_season or len(prep.y) < len(own.y):
            raise ValueError(f"{self.name}: forward needs the fitted window extended, with the same season")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = self.model_.forward(y=prep.adjusted.astype(float), h=h, level=[level])
        return self._prediction(out, prep.future_seasonal(h), level)

    def _prediction(self, out: Mapping[str, Any], season: np.ndarray, level: int) -> Prediction:
        mean = np.asarray(out["mean"], dtype=float) + season
        lower = np.asarray(out[f"lo-{level}"], dtype=float) + season
        upper = np.asarray(out[f"hi-{level}"], dtype=float) + season
        if not (np.isfinite(mean).all() and np.isfinite(lower).all() and np.isfinite(upper).all()):
            raise RecurError(f"{self.name} produced a non-finite forecast")
        return Prediction(mean, lower, upper)

    def _simulate(self, h: int, n: int, seed: int) -> np.ndarray:
        prep = self._check()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                paths = np.asarray(self.model_.simulate(h=h, n_paths=n, seed=seed), dtype=float).reshape(n, h)
            except NotImplementedError:
                # some statsforecast models (e.g. a refitted fixed form) have no simulate(): draw each step
                # from the model's own 95% interval as a normal (steps independent, so path crossings are
                # approximate)
                out95 = self.model_.predict(h=h, level=[95])
                mean = np.asarray(out95["mean"], dtype=float)
                sd = (np.asarray(out95["hi-95"], dtype=float) - np.asarray(out95["lo-95"], dtype=float)) / (
                    2 * 1.959964
                )
                paths = mean + np.maximum(sd, 0.0) * np.random.default_rng(seed).standard_normal((n, h))
        out: np.ndarray = paths + prep.future_seasonal(h)
        return out


class AutoETS(_StatsForecast):
    """statsforecast's AutoETS; ``model`` (e.g. ``"AAN"``) and ``damped`` fix the form instead of searching it (on
    the last ``search_window`` points of longer windows)."""

    name = "auto_ets"
    recent_search = True

    def __init__(self, model: str | None = None, damped: bool | None = None) -> None:
        self.model = model
        self.damped = damped

    def get_params(self) -> dict[str, Any]:
        return {"model": self.model, "damped": self.damped} if self.model is not None else {}

    def _model(self, season_length: int, n: int) -> Any:
        from statsforecast.models import AutoETS as _AutoETS

        if self.model is None:
            return _AutoETS(season_length=season_length)
        if not isinstance(self.model, str) or len(self.model) != 3:
            raise InputError(
                f"auto_ets model must be 3 letters like 'AAN', got {self.model!r}",
                field="model",
                value=self.model,
            )
        return _AutoETS(season_length=season_length, model=self.model, damped=self.damped)

    def _form_of(self, model: Any) -> dict[str, Any]:
        comp = str(model.model_["components"])
        return {"model": comp[:3], "damped": comp[3] != "N"}

    def structure(self) -> dict[str, Any]:
        return self._form_of(self.model_)


class AutoTheta(_StatsForecast):
    """statsforecast's AutoTheta; ``model`` (``STM``, ``OTM``, ``DSTM`` or ``DOTM``) fixes the variant, else it is
    chosen on the last ``search_window`` points (config) of longer windows."""

    name = "auto_theta"
    recent_search = True

    def __init__(self, model: str | None = None) -> None:
        self.model = model

    def get_params(self) -> dict[str, Any]:
        return {"model": self.model} if self.model is not None else {}

    def _model(self, season_length: int, n: int) -> Any:
        from statsforecast.models import AutoTheta as _AutoTheta

        if self.model is not None and self.model not in ("STM", "OTM", "DSTM", "DOTM"):
            raise InputError(
                f"auto_theta model must be STM, OTM, DSTM or DOTM, got {self.model!r}",
                field="model",
                value=self.model,
            )
        return _AutoTheta(season_length=season_length, model=self.model)

    def _form_of(self, model: Any) -> dict[str, Any]:
        return {"model": str(model.model_["modeltype"])}

    def structure(self) -> dict[str, Any]:
        return self._form_of(self.model_)


#: Training windows longer than this search the ARIMA orders with an approximate likelihood (R's default rule).
ARIMA_APPROXIMATION_ABOVE = 150


class AutoARIMA(_StatsForecast):
    """statsforecast's AutoARIMA; ``order`` (p, d, q) with ``seasonal_order`` fixes the orders (no stepwise search).

    Non-seasonal windows over :data:`ARIMA_APPROXIMATION_ABOVE` points search with
    :func:`~ml.indicators.arima_search.fit_auto_arima` (the same stepwise CSS search, a faster optimiser) unless the
    config's ``arima_search`` is ``statsforecast``; the result is statsforecast's ``ARIMA`` fitted exactly.
    """

    name = "auto_arima"

    def __init__(
        self,
        order: Sequence[int] | None = None,
        seasonal_order: Sequence[int] | None = None,
        include_mean: bool = True,
        include_drift: bool = False,
    ) -> None:
        self.order = order
        self.seasonal_order = seasonal_order
        self.include_mean = include_mean
        self.include_drift = include_drift

    def get_params(self) -> dict[str, Any]:
        if self.order is None:
            return {}
        return {
            "order": list(self.order),
            "seasonal_order": list(self.seasonal_order or (0, 0, 0)),
            "include_mean": self.include_mean,
            "include_drift": self.include_drift,
        }

    def _model(self, season_length: int, n: int) -> Any:
        from statsforecast.models import ARIMA as _ARIMA
        from statsforecast.models import AutoARIMA as _AutoARIMA

        if self.order is None:
            # R's auto.arima approximates the likelihood during its search on long series (> 150 points): the
            # search ranks orders by the conditional sum of squares, then the chosen order is fitted exactly
            return _AutoARIMA(season_length=season_length, approximation=n > ARIMA_APPROXIMATION_ABOVE)
        order = tuple(int(v) for v in self.order)
        seasonal = tuple(int(v) for v in (self.seasonal_order or (0, 0, 0)))
        if len(order) != 3 or len(seasonal) != 3 or min(order + seasonal) < 0:
            raise InputError(
                f"auto_arima orders must be three non-negative integers, got {self.order!r} and "
                f"{self.seasonal_order!r}",
                field="order",
                value=self.order,
            )
        return _ARIMA(
            order=order,
            season_length=season_length,
            seasonal_order=seasonal,
            include_mean=bool(self.include_mean),
            include_drift=bool(self.include_drift),
        )

    def _fit(self, prep: _Prepared, cfg: ForecastConfig) -> _StatsForecast:
        long = prep.model_season == 1 and len(prep.y) > ARIMA_APPROXIMATION_ABOVE
        if self.order is not None or cfg.arima_search != "fast" or not long:
            return super()._fit(prep, cfg)
        from ml.indicators.arima_search import fit_auto_arima

        try:  # the same stepwise CSS search as statsforecast's, a faster optimiser (arima_search)
            self.model_ = fit_auto_arima(prep.adjusted.astype(float), cfg.search_window)
        except ValueError as exc:  # a constant differenced series or no admissible order
            logger.debug("Forecasting - auto_arima: fast search failed (%s), statsforecast's search", exc)
            return super()._fit(prep, cfg)
        self.prep_ = prep
        return self

    def structure(self) -> dict[str, Any]:
        p, q, sp, sq, _m, d, sd = (int(v) for v in self.model_.model_["arma"])
        coef = self.model_.model_.get("coef") or {}
        return {
            "order": [p, d, q],
            "seasonal_order": [sp, sd, sq],
            "include_mean": "intercept" in coef,
            "include_drift": "drift" in coef,
        }


class ProphetCandidate(Candidate):
    """Prophet with yearly (>= 2 years) and weekly (daily data, >= 2 weeks) seasonality and optional holidays.

    The MAP fit runs in this process (:class:`~ml.indicators.prophet_map.MapProphet`, the same model and priors as
    Prophet's Stan program). ``init`` warm-starts the optimiser (``k``, ``m``, ``sigma_obs``, ``delta``, ``beta`` of
    an earlier fit, as Prophet's documented warm start; parts whose shape differs are ignored): the backtest's later
    windows start from the oldest window's fit. ``lean`` (the backtest's windows) fits and forecasts with
    :class:`~ml.indicators.prophet_lean.LeanProphet` where it reproduces Prophet (same forecast and interval, no
    pandas layer); such a fit cannot be saved or simulated.
    """

    name = "prophet"
    uncertainty_samples = 300

    def __init__(
        self, seed: int | None = None, init: Mapping[str, Any] | None = None, lean: bool = False
    ) -> None:
        self.seed = seed
        self.init = init
        self.lean = lean

    def get_params(self) -> dict[str, Any]:
        return {"seed": self.seed} if self.init is None else {"seed": self.seed, "init": self.init}

    def structure(self) -> dict[str, Any]:
        params = self.model_.params
        return {
            "init": {
                **{k: float(np.ravel(params[k])[0]) for k in ("k", "m", "sigma_obs")},
                **{k: [float(v) for v in np.ravel(params[k])] for k in ("delta", "beta")},
            }
        }

    def _init(self) -> dict[str, Any] | None:
        if self.init is None:
            return None
        try:
            return {
                **{k: float(self.init[k]) for k in ("k", "m", "sigma_obs")},
                **{k: np.asarray(self.init[k], dtype=float).ravel() for k in ("delta", "beta")},
            }
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(
                f"prophet init needs numbers k, m, sigma_obs and lists delta, beta: {exc}",
                field="init",
                value=str(self.init)[:100],
            ) from exc

    def _fit(self, prep: _Prepared, cfg: ForecastConfig) -> ProphetCandidate:
        from ml.indicators.prophet_map import MapProphet

        if self.seed is not None:
            _check_int("seed", self.seed, 0)
        seed = cfg.seed if self.seed is None else self.seed
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
        y = np.where(np.isfinite(prep.y_raw), prep.clean, np.nan)
        if self.lean and prophet_lean.supported(y, bool(cfg.holidays or cfg.country_holidays)):
            lean: Any = prophet_lean.LeanProphet(
                span_days >= 730, daily and span_days >= 14, cfg.level / 100, 300
            )
            self.model_, self.seed_, self.prep_ = lean.fit(prep.dates, y, self._init()), seed, prep
            return self
        model: Any = MapProphet(
            yearly_seasonality=span_days >= 730,
            weekly_seasonality=daily and span_days >= 14,
            daily_seasonality=False,
            holidays=holidays,
            interval_width=cfg.level / 100,
            uncertainty_samples=self.uncertainty_samples,
        )
        if cfg.country_holidays:
            model.add_country_holidays(country_name=cfg.country_holidays)
        df = pd.DataFrame({"ds": prep.dates, "y": y})
        with _quiet("cmdstanpy", "prophet"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            init = self._init()
            model.fit(df.dropna(), **({} if init is None else {"init": init}))
        self.model_ = model
        self.seed_ = seed
        self.prep_ = prep
        return self

    def _future(self, h: int) -> pd.DataFrame:
        prep = self._check()
        return pd.DataFrame({"ds": _future_dates(prep.dates[-1], prep.freq, h)})

    def _predict(self, h: int, level: int) -> Prediction:
        future = self._future(h)
        self.model_.interval_width = level / 100
        fast = prophet_lean.as_lean(self.model_)  # the same forecast in NumPy where prophet_lean makes it
        if fast is not None:
            with _seeded(self.seed_):
                return Prediction(*fast.predict(pd.DatetimeIndex(future["ds"])))
        with _seeded(self.seed_), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = self.model_.predict(future)
        return Prediction(
            out["yhat"].to_numpy(float), out["yhat_lower"].to_numpy(float), out["yhat_upper"].to_numpy(float)
        )

    def _full(self) -> Any:
        if isinstance(self.model_, prophet_lean.LeanProphet):
            raise RecurError(
                "prophet: a backtest (lean) fit cannot be saved or simulated; fit with lean=False"
            )
        return self.model_

    def _simulate(self, h: int, n: int, seed: int) -> np.ndarray:
        future = self._future(h)
        model = self._full()
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
        return {"prophet_json": model_to_json(self._full()), "seed": self.seed_}

    def load_state(self, prep: _Prepared, state: Mapping[str, Any]) -> ProphetCandidate:
        from prophet.serialize import model_from_json

        self.model_ = model_from_json(state["prophet_json"])
        self.seed_ = int(state.get("seed", 0))
        self.prep_ = prep
        return self


_CANDIDATE_TYPES: dict[str, type[Candidate]] = {
    "seasonal_naive": SeasonalNaive,
    "auto_ets": AutoETS,
    "auto_theta": AutoTheta,
    "auto_arima": AutoARIMA,
    "prophet": ProphetCandidate,
}


def make_candidate(name: str, **params: Any) -> Candidate:
    """A new, unfitted candidate by name (see :data:`~ml.indicators.config.ALL_CANDIDATES`)."""
    try:
        kind = _CANDIDATE_TYPES[name]
    except (KeyError, TypeError):
        raise InputError(f"unknown candidate {name!r}", field="candidates", value=name) from None
    try:
        return kind(**params)
    except TypeError as exc:
        raise InputError(
            f"invalid parameters for candidate {name!r}: {exc}", field="params", value=params
        ) from exc


def candidate_from_dict(data: Mapping[str, Any]) -> Candidate:
    """The unfitted candidate a :meth:`Candidate.to_dict` entry describes."""
    if not isinstance(data, Mapping) or "name" not in data:
        raise InputError("a candidate entry needs a 'name'", field="candidate", value=data)
    params = data.get("params") or {}
    if not isinstance(params, Mapping):
        raise InputError("candidate 'params' must be a mapping", field="params", value=params)
    return make_candidate(data["name"], **params)


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
