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

Speed without losing accuracy (``fit_window``, ``search_window``, ``prune_ratio``, ``reuse_structure``,
``arima_search``): on long histories the model candidates (ETS, Theta, ARIMA, Prophet; not the baseline) are fitted
on the last six years of weekly points (three years of daily points), in the backtest and for the final model (the
final model's history is that bounded window too); after the oldest backtest window, candidates whose error there
is far above the ``top_k``-th best are not fitted again (the baseline always is); the automatic searches (ARIMA
orders, ETS components, Theta variant) run once, on the oldest window, choosing the form on its last two years
(``search_window``, 104 points) and fitting it on the whole window, and the later windows forecast from that fit
(statsforecast's ``forward``, when they add at most 10% to its history) or refit that form; ARIMA searches its
orders with an approximate likelihood on windows over 150 points (R's ``auto.arima`` rule), each conditional sum
of squares solved with its exact Jacobian (:mod:`ml.indicators.arima_search`). Prophet's MAP is solved in this
process (:mod:`ml.indicators.prophet_map`: the same model and priors, no CmdStan process per fit), and the
backtest's Prophet fits and every Prophet forecast skip Prophet's pandas layer (:mod:`ml.indicators.prophet_lean`:
the same numbers). Each result records the wall seconds per candidate (``seconds``) and the pruned candidates
(``pruned``).

Parallelism: :func:`fit_series` is a pure top-level function of JSON-able arguments; :func:`fit_many` runs it over
batches of series (:func:`fit_batch`) on local processes by default, or through any ``map``-like callable such as
a Dask ``Client.map`` wrapper. Each call caps BLAS/numba threads at one (the parallelism is across series), so the
results do not depend on the number of workers.
"""

from __future__ import annotations

import contextlib
import json
import logging
import multiprocessing as mp
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from ml.errors import InputError, NotFittedError, NotFoundError, RecurError
from ml.indicators.backtest import (
    BacktestLog,
    _min_train,
    _run_backtest,
    _select,
    _WindowForecasts,
    backtest_cutoffs,
    combo_name,
    evaluate_selection,
)
from ml.indicators.candidates import (
    Candidate,
    ForecastingCandidate,
    Prediction,
    ProphetCandidate,
    SeasonalNaive,
    make_candidate,
)
from ml.indicators.config import (
    ALL_CANDIDATES,
    BASELINE,
    DEFAULT_CANDIDATES,
    DEFAULT_HORIZON,
    FAST_CANDIDATES,
    ForecastConfig,
    Threshold,
    _check_int,
    _jsonable,
)
from ml.indicators.events import EVENT_FIELDS, rank_events
from ml.indicators.grid import NOMINAL_SEASON, to_grid
from ml.indicators.metrics import coverage, crossing_probability, mase, mase_scale, smape
from ml.indicators.seasonality import clean_outliers, seasonality_supported
from ml.indicators.series_model import SeriesModel
from ml.indicators.signals import make_detector

__all__ = [
    "ALL_CANDIDATES",
    "BASELINE",
    "DEFAULT_CANDIDATES",
    "DEFAULT_HORIZON",
    "FAST_CANDIDATES",
    "Candidate",
    "ForecastBundle",
    "ForecastConfig",
    "ForecastingCandidate",
    "Prediction",
    "ProphetCandidate",
    "SeasonalNaive",
    "SeriesForecaster",
    "SeriesModel",
    "Threshold",
    "backtest_cutoffs",
    "clean_outliers",
    "combo_name",
    "coverage",
    "crossing_probability",
    "evaluate_selection",
    "fit_batch",
    "fit_many",
    "fit_series",
    "load_model",
    "make_candidate",
    "mase",
    "mase_scale",
    "seasonality_supported",
    "smape",
    "split_series",
]

logger = logging.getLogger(__name__)


class SeriesForecaster:
    """Fit one series: grid, backtest, selection, final model, forecast, signals and early warnings.

    Learned attributes (after ``fit``): ``grid_``, ``horizon_``, ``status_`` (``ok`` or ``baseline``),
    ``members_``, ``reason_``, ``backtest_`` (rows per candidate and window), ``backtest_summary_``,
    ``model_`` (:class:`SeriesModel`), ``forecast_`` (DataFrame), ``notes_``, ``signals_``, ``warnings_``,
    ``seconds_`` (wall seconds per candidate, backtest and final fit) and ``pruned_`` (candidates pruned early).
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
        log = BacktestLog()
        window = cfg.window_for(grid.kind)
        status = "ok"
        if len(obs) < cfg.min_points:
            status = "baseline"
            members = [BASELINE]
            reason = (
                f"only {len(obs)} observed values (< min_points={cfg.min_points}): the baseline "
                f"{BASELINE} is used without a backtest"
            )
            notes.append("short or sparse series: baseline forecast, no model selection")
        elif np.ptp(obs) == 0:
            status = "baseline"
            members = [BASELINE]
            reason = f"the series is constant ({obs[0]:g}): the forecast is that constant, no model selection"
            notes.append("constant series: zero-width interval, MASE undefined")
        else:
            windows = _run_backtest(grid, cfg, names, horizon, nonneg, notes, log)
            if not windows:
                status = "baseline"
                members = [BASELINE]
                reason = (
                    f"{len(grid.y)} grid points are too few for a backtest window of {horizon} steps "
                    f"(need {_min_train(cfg, horizon) + horizon}): baseline used"
                )
                notes.append("too short to backtest: baseline forecast")
        rows: list[dict[str, Any]] = []
        summary: list[dict[str, Any]] = []
        if windows:
            members, reason, rows, summary = _select(windows, names, cfg, grid.dates)
        model = SeriesModel(
            members, cfg.level, nonneg, cfg.seed, cfg.combination, cfg.clean_outliers, window, log.forms
        )
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
            model = SeriesModel(
                members, cfg.level, nonneg, cfg.seed, cfg.combination, cfg.clean_outliers, window
            )
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
        for name, sec in getattr(model, "seconds_", {}).items():
            log.add(name, sec)
        self.seconds_ = log.seconds
        self.pruned_ = log.pruned
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
            {
                "threshold": t.value,
                "direction": t.direction,
                "horizon": horizon,
                "probability": crossing_probability(paths, t.value, t.direction),
            }
            for t in todo
        ]

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
        result: dict[str, Any] = _jsonable(
            {
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
                "pruned": self.pruned_,
                "seconds": self.seconds_,
                "mase": chosen_row["mase"] if chosen_row else None,
                "baseline_mase": base_row["mase"] if base_row else None,
                "backtest": self.backtest_,
                "backtest_summary": self.backtest_summary_,
                "forecast": [
                    {"ds": str(d.date()), "yhat": a, "yhat_lower": b, "yhat_upper": c}
                    for d, a, b, c in zip(
                        fc["ds"], fc["yhat"], fc["yhat_lower"], fc["yhat_upper"], strict=True
                    )
                ],
                "model": self.model_.to_dict(),
                "notes": self.notes_,
                "signals": self.signals_,
                "warnings": self.warnings_,
            }
        )
        return result


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
        numba, before = None, None  # type: ignore[assignment]  # no numba: nothing to restore
    try:
        with _THREADPOOLS[0].limit(limits=1):
            yield
    finally:
        if numba is not None and before is not None:
            numba.set_num_threads(before)


def fit_series(
    series_id: str, ds: list[str], y: list[float | None], config: dict[str, Any] | None = None
) -> dict[str, Any]:
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

    def candidate_usage(self) -> pd.DataFrame:
        """Per candidate: wall seconds summed over the series (backtest + final fit), how many series' models
        include it (``selected``), are it alone (``selected_alone``), and how many series pruned it early."""
        rows = []
        results = [r for _, r in self._ok()]
        for name in ALL_CANDIDATES:
            rows.append(
                {
                    "candidate": name,
                    "seconds": float(sum((r.get("seconds") or {}).get(name, 0.0) for r in results)),
                    "selected": sum(name in (r.get("members") or []) for r in results),
                    "selected_alone": sum((r.get("members") or []) == [name] for r in results),
                    "pruned": sum(name in (r.get("pruned") or []) for r in results),
                }
            )
        return pd.DataFrame(rows, columns=["candidate", "seconds", "selected", "selected_alone", "pruned"])

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


MapFn = Callable[..., Iterable[Any]]


def fit_batch(
    ids: list[str], dss: list[list[str]], ys: list[list[float | None]], config: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """:func:`fit_series` over a batch of series in one task (one pickling round trip, thread limits set once)."""
    return [fit_series(i, d, y, config) for i, d, y in zip(ids, dss, ys, strict=True)]


def _batches(n: int, batch_size: int | None, n_jobs: int) -> list[slice]:
    """Contiguous batches: about 8 per worker (load balance) of at most 32 series, unless ``batch_size`` is set."""
    size = batch_size or max(1, min(32, -(-n // (8 * max(1, n_jobs)))))
    return [slice(i, min(n, i + size)) for i in range(0, n, size)]


def _available_cpus() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def fit_many(
    df: pd.DataFrame,
    config: Mapping[str, Any] | ForecastConfig | None = None,
    map_fn: MapFn | None = None,
    errors: Literal["raise", "record"] = "record",
    n_jobs: int | None = None,
    batch_size: int | None = None,
) -> ForecastBundle:
    """Fit every series of a long DataFrame (``series, ds, y``), in batches of series, in parallel.

    By default the batches run on local processes (``n_jobs``, default: the CPUs this process may use; ``1`` runs
    in this process). ``map_fn`` replaces the local pool, e.g. for Dask:
    ``lambda f, *its: client.gather(client.map(f, *its, pure=False))``; it is called as
    ``map_fn(fit_batch, batch_ids, batch_ds, batch_ys, batch_configs)``. Results do not depend on the pool or on
    the batching. With ``errors="record"`` (default) a bad series is recorded with status ``error`` and the others
    go on.
    """
    cfg = ForecastConfig.from_dict(config)
    cfg_dict = {**cfg.to_dict(), "errors": errors}
    ForecastConfig.from_dict(cfg_dict)  # validate before shipping to workers
    if n_jobs is not None:
        _check_int("n_jobs", n_jobs, 1)
    if batch_size is not None:
        _check_int("batch_size", batch_size, 1)
    ids, dss, ys = split_series(df)
    jobs = n_jobs or (1 if map_fn is not None else _available_cpus())
    parts = _batches(len(ids), batch_size, jobs)
    logger.info(
        "Forecasting - %d series in %d batches, candidates %s",
        len(ids),
        len(parts),
        ", ".join(cfg.candidates),
    )
    args = ([ids[p] for p in parts], [dss[p] for p in parts], [ys[p] for p in parts], [cfg_dict] * len(parts))
    if map_fn is not None:
        batches = list(map_fn(fit_batch, *args))
    elif jobs == 1 or len(parts) == 1:
        batches = list(map(fit_batch, *args))
    else:
        with ProcessPoolExecutor(
            max_workers=min(jobs, len(parts)), mp_context=mp.get_context("spawn")
        ) as pool:
            batches = list(pool.map(fit_batch, *args))
    results = [r for batch in batches for r in batch]
    return ForecastBundle(results={r["series"]: r for r in results}, config=cfg_dict)
