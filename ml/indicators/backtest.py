"""Rolling-origin backtest of the candidates and the selection rule (one candidate or a combination)."""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ml.errors import InputError
from ml.indicators.candidates import Candidate, Prediction, _clip, _combine, _StatsForecast, make_candidate
from ml.indicators.config import (
    BASELINE,
    DEFAULT_HORIZON,
    WINDOWED_CANDIDATES,
    ForecastConfig,
    _check_int,
    _jsonable,
)
from ml.indicators.grid import Grid, to_grid
from ml.indicators.metrics import coverage, mase, mase_scale, smape
from ml.indicators.seasonality import _prepare, _Prepared

logger = logging.getLogger(__name__)


#: Constructor parameters of the backtest's own fits: Prophet's windows are fitted and forecast without Prophet's
#: pandas layer (:mod:`ml.indicators.prophet_lean`: the same forecast and interval, about a third of the time).
BACKTEST_PARAMS: dict[str, dict[str, Any]] = {"prophet": {"lean": True}}

#: A later backtest window is forecast from the oldest window's fit (``forward``) only while it adds at most this
#: share to the fitted history (long histories: 13 and 26 weeks on 313); on short series the parameters of the
#: oldest window are too uncertain to carry over (on the sample's 2-year series carrying them 13 and 26 weeks
#: raised the held-out MASE of the selection from 1.18 to 1.24), so those windows are refitted.
FORWARD_MAX_GROWTH = 0.1


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


@dataclass
class BacktestLog:
    """What a backtest spent, dropped and found: seconds per candidate (fit + predict), the pruned candidates and
    the model forms the automatic searches chose on the oldest window (constructor parameters, for reuse)."""

    seconds: dict[str, float] = field(default_factory=dict)
    pruned: list[str] = field(default_factory=list)
    forms: dict[str, dict[str, Any]] = field(default_factory=dict)

    def add(self, name: str, seconds: float) -> None:
        self.seconds[name] = self.seconds.get(name, 0.0) + seconds


def _fit_predict(
    name: str,
    params: dict[str, Any],
    prep: _Prepared,
    cfg: ForecastConfig,
    horizon: int,
    nonneg: bool,
    log: BacktestLog,
) -> tuple[Prediction, Candidate]:
    """One candidate fitted on one training window: its clipped forecast and the fitted candidate."""
    t0 = time.perf_counter()
    try:
        cand = make_candidate(name, **params, **BACKTEST_PARAMS.get(name, {})).fit(prep, cfg)
        return _clip(cand.predict(horizon, cfg.level), nonneg), cand
    finally:
        log.add(name, time.perf_counter() - t0)


def _forward(
    cand: _StatsForecast, prep: _Prepared, cfg: ForecastConfig, horizon: int, nonneg: bool, log: BacktestLog
) -> Prediction | None:
    """The oldest window's fit forecasting a later window (no estimation); ``None`` when it does not apply."""
    t0 = time.perf_counter()
    try:
        return _clip(cand.forward(prep, horizon, cfg.level), nonneg)
    except Exception as exc:  # a season that changed, or a filter failing: the caller refits instead
        logger.debug("Forecasting - %s: forward failed (%s), refitting", cand.name, exc)
        return None
    finally:
        log.add(cand.name, time.perf_counter() - t0)


def windowed(
    prep_full: _Prepared, y: np.ndarray, dates: pd.DatetimeIndex, freq: str, window: int, clean: bool
) -> _Prepared:
    """The training window the model candidates see: the last ``window`` points of a longer history."""
    if window <= 0 or len(y) <= window:
        return prep_full
    return _prepare(y[-window:], dates[-window:], freq, clean)


def _prune(w: _WindowForecasts, names: Sequence[str], cfg: ForecastConfig) -> list[str]:
    """Candidates that cannot win judged on the oldest window: error above ``prune_ratio`` x the k-th best.

    k is ``top_k`` for ``combine`` (1 for ``best``); the window's MASE scale is shared by every candidate, so the
    mean absolute error ranks them the same way. The baseline is never pruned.
    """
    ok = np.isfinite(w.actual)
    if cfg.prune_ratio <= 0 or not ok.any():
        return []
    err = {n: float(np.mean(np.abs(w.actual[ok] - w.preds[n].mean[ok]))) for n in names if n in w.preds}
    k = cfg.top_k if cfg.selection == "combine" else 1
    if len(err) <= k + 1:
        return []
    kth = sorted(err.values())[k - 1]
    return [n for n, e in err.items() if n != BASELINE and e > cfg.prune_ratio * kth]


def _run_backtest(
    grid: Grid,
    cfg: ForecastConfig,
    names: Sequence[str],
    horizon: int,
    nonneg: bool,
    notes: list[str],
    log: BacktestLog | None = None,
    prune: bool = True,
) -> list[_WindowForecasts]:
    """Fit every candidate on each rolling origin, oldest first.

    Long histories: the model candidates (not the baseline) see only the last ``fit_window`` points of each
    training window. After the oldest window, candidates that cannot win are pruned (``prune``). With
    ``reuse_structure`` the statsforecast candidates are searched and fitted on the oldest window only and forecast
    the later windows from that fit while they add at most :data:`FORWARD_MAX_GROWTH` to its history
    (``forward``: the same parameters filtered over the history from the same start up to the later cut-off; a
    refit of the same form otherwise or if that fails), and Prophet starts from the oldest window's fit.
    """
    log = log if log is not None else BacktestLog()
    n = len(grid.y)
    step = cfg.step or horizon
    cuts = backtest_cutoffs(n, horizon, cfg.n_windows, step, _min_train(cfg, horizon))
    window = cfg.window_for(grid.kind)
    windows: list[_WindowForecasts] = []
    failures: dict[str, str] = {}
    forms = log.forms
    active = list(names)
    anchors: dict[str, _StatsForecast] = {}  # the oldest window's statsforecast fits, reused by ``forward``
    start = 0  # where the oldest window's model candidates started
    for i, c in enumerate(cuts):
        prep = _prepare(grid.y[:c], grid.dates[:c], grid.freq, cfg.clean_outliers)
        slow_prep = prep
        if any(name in WINDOWED_CANDIDATES for name in active):
            slow_prep = windowed(prep, grid.y[:c], grid.dates[:c], grid.freq, window, cfg.clean_outliers)
        if i == 0:
            start = c - len(slow_prep.y)
        fwd_prep: _Prepared | None = None
        actual = grid.y[c : c + horizon]
        preds: dict[str, Prediction] = {}
        for name in active:
            if name in failures:
                continue
            if name in anchors and c - cuts[0] <= FORWARD_MAX_GROWTH * len(anchors[name].prep_.y):
                if fwd_prep is None:
                    fwd_prep = _prepare(grid.y[start:c], grid.dates[start:c], grid.freq, cfg.clean_outliers)
                pred = _forward(anchors[name], fwd_prep, cfg, horizon, nonneg, log)
                if pred is not None:
                    preds[name] = pred
                    continue
            try:
                preds[name], cand = _fit_predict(
                    name,
                    forms.get(name, {}),
                    slow_prep if name in WINDOWED_CANDIDATES else prep,
                    cfg,
                    horizon,
                    nonneg,
                    log,
                )
            except InputError:
                raise
            except Exception as exc:  # a third-party fit failing on this window: the candidate drops out
                failures[name] = f"{type(exc).__name__}: {exc}"[:200]
                logger.debug("Forecasting - %s failed at cutoff %d: %s", name, c, exc)
                continue
            if cfg.reuse_structure and i == 0:
                forms[name] = cand.structure()
                if isinstance(cand, _StatsForecast):
                    anchors[name] = cand
        windows.append(_WindowForecasts(c, mase_scale(grid.y[:c]), actual, preds))
        if i == 0 and prune and len(cuts) > 1:
            dropped = _prune(windows[0], [a for a in active if a not in failures], cfg)
            if dropped:
                log.pruned.extend(dropped)
                active = [a for a in active if a not in dropped]
    for name, why in failures.items():
        notes.append(f"{name} failed in a backtest window and was dropped ({why})")
        for w in windows:
            w.preds.pop(name, None)
    if log.pruned:
        notes.append(
            f"pruned after the oldest backtest window (error above {cfg.prune_ratio:g} x the "
            f"{cfg.top_k if cfg.selection == 'combine' else 1}-th best): {', '.join(log.pruned)}"
        )
        for w in windows:
            for name in log.pruned:
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
            rows.append(
                {
                    "candidate": name,
                    "cutoff": str(dates[w.cutoff - 1].date()),
                    "window_start": str(dates[w.cutoff].date()),
                    "n_test": int(np.isfinite(w.actual).sum()),
                    **sc,
                }
            )
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
        reason = (
            f"{how} of the {len(top)} candidates with the lowest mean backtest MASE over {n_w} windows "
            f"({', '.join(fmt(t) for t in top)}); the combination scored {fmt(combo).split(' ', 1)[1]} on the "
            f"same windows{base}. A {how} of the best few is steadier on new data than the single best of a "
            "few windows"
        )
    return top, reason, rows, summary


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
    windows = _run_backtest(grid, wide, names, horizon, nonneg, [], prune=False)
    rows: list[dict[str, Any]] = []
    for k in range(cfg.n_windows, len(windows)):
        inner, w = windows[k - cfg.n_windows : k], windows[k]
        members, _, _, _ = _select(inner, [n for n in names if n in w.preds], cfg, grid.dates)
        origin = str(grid.dates[w.cutoff - 1].date())
        chosen = _combine([w.preds[m] for m in members], cfg.combination)
        rows.append(
            {
                "series": series_id,
                "origin": origin,
                "method": "selector",
                "chosen": combo_name(members, cfg.combination),
                **_score(w, chosen),
            }
        )
        for name in names:
            if name in w.preds:
                rows.append(
                    {
                        "series": series_id,
                        "origin": origin,
                        "method": name,
                        "chosen": name,
                        **_score(w, w.preds[name]),
                    }
                )
    scored: list[dict[str, Any]] = _jsonable(rows)
    return scored
