"""The fitted model of one series (one candidate or a combination), with a JSON round trip."""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd

from ml.errors import InputError, NotFittedError
from ml.indicators.backtest import combo_name, windowed
from ml.indicators.candidates import (
    Candidate,
    ProphetCandidate,
    _clip,
    _combine,
    candidate_from_dict,
    make_candidate,
)
from ml.indicators.config import DEFAULT_HORIZON, WINDOWED_CANDIDATES, Combination, ForecastConfig, _check_int
from ml.indicators.grid import Grid, _future_dates
from ml.indicators.metrics import crossing_probability
from ml.indicators.seasonality import _prepare, _Prepared

logger = logging.getLogger(__name__)


class SeriesModel:
    """The chosen model (one candidate or a median/mean combination) fitted on the whole history.

    ``predict`` gives point forecasts and the central interval; ``sample_paths`` predictive paths (a combination
    pools its members' paths, each shifted to the combined point forecast); ``crossing_probability`` the early
    warning. ``to_dict``/``from_dict`` round-trip through JSON without pickle. ``fit_window`` bounds the history of
    the model candidates (0: all of it); ``forms`` maps a member to constructor parameters fixing its model form
    (e.g. the ARIMA orders the backtest found), recorded with each candidate in ``to_dict``.
    """

    def __init__(
        self,
        members: Sequence[str],
        level: int = 80,
        nonnegative: bool = False,
        seed: int = 0,
        combination: Combination = "median",
        clean: bool = False,
        fit_window: int = 0,
        forms: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        self.members = list(members)
        self.fit_window = fit_window
        self.forms = forms
        self.level = level
        self.nonnegative = nonnegative
        self.seed = seed
        self.combination = combination
        self.clean = clean

    def fit(self, grid: Grid, cfg: ForecastConfig | None = None) -> SeriesModel:
        cfg = cfg or ForecastConfig(level=self.level, seed=self.seed)
        self.grid_ = grid
        self.prep_ = _prepare(grid.y, grid.dates, grid.freq, self.clean)
        slow = self._slow_prep()
        self.seconds_: dict[str, float] = {}
        fitted: list[Candidate] = []
        for m in self.members:
            t0 = time.perf_counter()
            params = dict((self.forms or {}).get(m) or {})
            prep = slow if m in WINDOWED_CANDIDATES else self.prep_
            try:
                fitted.append(make_candidate(m, **params).fit(prep, cfg))
            except Exception as exc:  # the reused form does not fit the whole history: search it again
                if not params:
                    raise
                logger.debug(
                    "Forecasting - %s with form %s failed on the full history (%s): searching", m, params, exc
                )
                fitted.append(make_candidate(m).fit(prep, cfg))
            self.seconds_[m] = time.perf_counter() - t0
        self.fitted_ = fitted
        return self

    def _slow_prep(self) -> _Prepared:
        """The training window of the model candidates: the last ``fit_window`` points (0: the whole history)."""
        g = self.grid_
        return windowed(self.prep_, g.y, g.dates, g.freq, self.fit_window, self.clean)

    def _check(self) -> list[Candidate]:
        fitted: list[Candidate] | None = getattr(self, "fitted_", None)
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
        return pd.DataFrame(
            {
                "ds": _future_dates(self.grid_.dates[-1], self.grid_.freq, h),
                "yhat": pred.mean,
                "yhat_lower": pred.lower,
                "yhat_upper": pred.upper,
            }
        )

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
        self,
        threshold: float,
        direction: Literal["above", "below"] = "above",
        horizon: int | None = None,
        n: int = 1000,
        seed: int | None = None,
    ) -> float:
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
            "fit_window": self.fit_window,
            "level": self.level,
            "nonnegative": self.nonnegative,
            "seed": self.seed,
            "freq": g.freq,
            "history": {
                "ds": [str(d.date()) for d in g.dates],
                "y": [None if not math.isfinite(v) else float(v) for v in g.y],
            },
            "candidates": [c.to_dict() for c in fitted],
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
            entries = list(data.get("candidates") or [{"name": m} for m in members])
            names = [e.get("name") if isinstance(e, Mapping) else e for e in entries]
            if names != members or len(states) != len(members):
                raise InputError(
                    f"model candidates {names} and {len(states)} states do not match its members {members}",
                    field="model.candidates",
                    value=names,
                )
            model = cls(
                members,
                int(data.get("level", 80)),
                bool(data.get("nonnegative", False)),
                int(data.get("seed", 0)),
                data.get("combination", "median"),
                bool(data.get("clean_outliers", False)),
                int(data.get("fit_window") or 0),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"not a serialised SeriesModel: {exc}", field="model") from exc
        cfg = ForecastConfig(level=model.level, seed=model.seed)
        model.grid_ = grid
        model.prep_ = _prepare(grid.y, grid.dates, grid.freq, model.clean)
        slow = model._slow_prep()
        fitted: list[Candidate] = []
        for entry, state in zip(entries, states, strict=True):
            cand = candidate_from_dict(entry)
            prep = slow if cand.name in WINDOWED_CANDIDATES else model.prep_
            if isinstance(cand, ProphetCandidate) and state.get("prophet_json"):
                fitted.append(cand.load_state(prep, state))
            else:
                fitted.append(cand.fit(prep, cfg))
        model.fitted_ = fitted
        return model

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> SeriesModel:
        return cls.from_dict(json.loads(text))
