"""Forecasting settings: candidate names, :class:`ForecastConfig` and early-warning :class:`Threshold`."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from ml.errors import InputError
from ml.indicators.grid import _freq_kind
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
#: Candidates fitted on a bounded recent window of long histories (their fit time grows with the history: Theta
#: 1.5 s, ARIMA 0.9 s, ETS 0.25 s on 2,600 weekly points); the baseline and the MASE scale keep the whole history.
WINDOWED_CANDIDATES: tuple[str, ...] = ("auto_ets", "auto_theta", "auto_arima", "prophet")
#: Default ``fit_window`` per frequency kind: six years of weekly points, three years of daily points.
DEFAULT_FIT_WINDOW = {"D": 1096, "W": 313}

DEFAULT_HORIZON = {"D": 28, "W": 13}
#: Seasonal periods above this are removed by decomposition before the statistical models (AutoETS caps at 24).
MAX_MODEL_SEASON = 24
#: Fourier harmonics kept when smoothing a long seasonal profile (52 weekly phases).
SEASON_HARMONICS = 6

Selection = Literal["best", "combine"]
Combination = Literal["median", "mean"]


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
        fit_window: the model candidates (:data:`WINDOWED_CANDIDATES`) are fitted on the last ``fit_window`` points of
            a longer training history, in the backtest and for the final model; ``None`` (default) takes
            :data:`DEFAULT_FIT_WINDOW` for the frequency, ``0`` the whole history.
        prune_ratio: after the oldest backtest window, a candidate whose error there is above ``prune_ratio``
            times the ``top_k``-th best error is not fitted on the later windows (the baseline always is);
            ``0`` turns pruning off. 2.5 by default: on known series (lines, seasonal cycles, random walks, shifts,
            counts, damped trends) the eventual members scored at most 2.0 x the ``top_k``-th best there.
        reuse_structure: the automatic searches (ARIMA orders, ETS components, Theta variant) run on the oldest
            backtest window only; a later window adding at most 10% to that history is forecast from that fit
            (statsforecast's ``forward``: no estimation), a later one refits the form found there, as does the
            final model; Prophet starts from the oldest window's fit.
        search_window: the automatic searches (ETS components, Theta variant, ARIMA orders with ``arima_search``
            ``fast``) choose the model form on at most the last ``search_window`` points of a training window, then
            fit that form on the whole window (R's ``auto.arima`` offers the same as ``truncate``); ``0`` searches
            on the whole window. 104 (2 years of weeks, what a short series is searched on anyway) by default: on
            160 M4-like long series the searches took about a third of their time on 313 weekly points, and the
            selection's held-out MASE was 1.332 against 1.346 searching on all 313 points (1.336 with 156).
        arima_search: ``fast`` (default) or ``statsforecast``: how AutoARIMA searches its orders on non-seasonal
            training windows over 150 points, where the search ranks orders by the conditional sum of squares
            (CSS). ``fast`` runs statsforecast's stepwise search with the same CSS objective, each fit solved by
            Levenberg-Marquardt with the exact Jacobian (:mod:`ml.indicators.arima_search`: about a quarter of the
            time); its optimiser can stop at another local optimum, so about one long window in eight ends with
            other orders. ``statsforecast`` runs statsforecast's own search (BFGS, numerical gradients).
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
    fit_window: int | None = None
    prune_ratio: float = 2.5
    reuse_structure: bool = True
    search_window: int = 104
    arima_search: Literal["fast", "statsforecast"] = "fast"
    errors: Literal["raise", "record"] = "raise"

    def __post_init__(self) -> None:
        _check_int("fit_window", self.fit_window, 0, allow_none=True)
        _check_int("search_window", self.search_window, 0)
        if (
            isinstance(self.prune_ratio, bool)
            or not isinstance(self.prune_ratio, int | float)
            or not (self.prune_ratio == 0 or 1 <= self.prune_ratio < math.inf)
        ):
            raise InputError(
                f"prune_ratio must be 0 (off) or a number >= 1, got {self.prune_ratio!r}",
                field="prune_ratio",
                value=self.prune_ratio,
            )
        if not isinstance(self.reuse_structure, bool):
            raise InputError(
                f"reuse_structure must be true or false, got {self.reuse_structure!r}",
                field="reuse_structure",
                value=self.reuse_structure,
            )
        if self.arima_search not in ("fast", "statsforecast"):
            raise InputError(
                f"arima_search must be 'fast' or 'statsforecast', got {self.arima_search!r}",
                field="arima_search",
                value=self.arima_search,
            )
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
                f"selection must be 'best' or 'combine', got {self.selection!r}",
                field="selection",
                value=self.selection,
            )
        if self.combination not in ("median", "mean"):
            raise InputError(
                f"combination must be 'median' or 'mean', got {self.combination!r}",
                field="combination",
                value=self.combination,
            )
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

    def window_for(self, kind: str) -> int:
        """Points the windowed candidates are fitted on for frequency kind ``D``/``W`` (0: the whole history)."""
        return DEFAULT_FIT_WINDOW[kind] if self.fit_window is None else self.fit_window

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
    return Threshold(
        value=value,
        direction=t.get("direction", "above"),
        series=t.get("series"),
        indicator=t.get("indicator"),
    )


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
