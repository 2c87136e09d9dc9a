"""Rolling-origin backtest of the candidates and the selection rule (one candidate or a combination)."""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ml.errors import InputError
from ml.indicators.candidates import Prediction, _clip, _combine, make_candidate
from ml.indicators.config import BASELINE, DEFAULT_HORIZON, ForecastConfig, _check_int, _jsonable
from ml.indicators.grid import Grid, to_grid
from ml.indicators.metrics import coverage, mase, mase_scale, smape
from ml.indicators.seasonality import _prepare

logger = logging.getLogger(__name__)


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
