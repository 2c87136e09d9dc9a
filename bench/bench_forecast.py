"""Forecasting: backtest accuracy against the baseline, honest held-out selection on real data, and speed.

    python bench/bench_forecast.py [--quick] [--series 1000] [--executor local|dask|both] [--parts ...]

Parts (``--parts``, default all):

* ``sample``: data/sample/indicators.csv (when present), every series through ``fit_many``: mean backtest MASE
  per candidate and of the selected model, against the seasonal-naive baseline (overall and share of series),
  then the same on held-out windows (selection on earlier windows only, ``evaluate_selection``).
* ``real``: GitHub status weekly incident counts (``total`` + ``impact_*``), when present. Rolling origins every
  13 weeks; at each origin the selector chooses from the 3 windows before it and is scored on the next 13 weeks,
  never seen by the selection; every candidate alone is scored on the same windows. The last 17 origins
  (mid-2019 to 2023) are reported: the combination rule was chosen on the origins before them (2014-2019).
* ``long``: M4-like long weekly series (``--long-series``, default 320, 500-2,600 weeks each, seeded simulation with
  trend changes, drifting seasonality, AR noise, shifts and outliers). The last 13 weeks are held out; MASE (scaled
  by the in-sample one-step naive MAE, as M4 Weekly) and sMAPE of: the old default selection (whole histories, no
  pruning, every search on every window and on all of it, statsforecast's own ARIMA search: ``fit_window=0,
  prune_ratio=0, reuse_structure=False, search_window=0, arima_search="statsforecast"``), the new
  default, AutoETS alone (one fit on the whole history, and through the same backtest pipeline) and the seasonal
  naive; wall seconds of each on the same 2 local processes in the same run. The old default is slow (about 4x
  the new one), so ``--old-every K`` runs it on every K-th series; the old/new comparison is on those series.
  Per-candidate seconds and how often each candidate is selected or pruned.
* ``speed``: N synthetic weekly series (2 years each) fitted, backtested and forecast with the default candidate set
  (``--speed-candidates fast`` for the fast set) on 2 local processes (and a Dask LocalCluster(n_workers=2,
  threads_per_worker=1) with ``--executor dask|both``); wall time of each.
"""

from __future__ import annotations

import argparse
import math
import multiprocessing as mp
import os
import resource
import sys
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ml.indicators.forecasting import (  # noqa: E402
    ALL_CANDIDATES,
    BASELINE,
    FAST_CANDIDATES,
    evaluate_selection,
    fit_many,
    split_series,
)
from ml.io.schemas import series_key  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "sample" / "indicators.csv"
GITHUB = ROOT.parent / "shared" / "data" / "github-status" / "weekly_counts.csv"
SPEED_CANDIDATES = list(FAST_CANDIDATES)
#: The selection before issue #15: whole histories, no pruning, every automatic search on every window.
OLD_DEFAULT = {
    "fit_window": 0,
    "prune_ratio": 0,
    "reuse_structure": False,
    "search_window": 0,
    "arima_search": "statsforecast",
}


def _pool_map(workers: int):
    ex = ProcessPoolExecutor(max_workers=workers)

    def map_fn(f, *its):
        return ex.map(f, *its, chunksize=4)

    return ex, map_fn


def _eval_one(args: tuple) -> list[dict]:
    key, ds, y, cfg, n_outer = args
    return evaluate_selection(key, ds, y, cfg, n_outer=n_outer)


def _load_sample() -> pd.DataFrame:
    df = pd.read_csv(SAMPLE)
    teams = df["team"] if "team" in df else [None] * len(df)
    services = df["service"] if "service" in df else [None] * len(df)
    df["series"] = [
        series_key(i, team=t if isinstance(t, str) else None, service=s if isinstance(s, str) else None)
        for i, t, s in zip(df["indicator"], teams, services, strict=True)
    ]
    return df[["series", "ds", "y"]]


def run_sample(candidates: list[str], workers: int) -> None:
    if not SAMPLE.exists():
        print("\n## Sample data: data/sample/indicators.csv absent, skipped")
        return
    df = _load_sample()
    cfg = {"candidates": candidates, "signals": False}
    ex, map_fn = _pool_map(workers)
    t0 = time.perf_counter()
    with ex:
        bundle = fit_many(df, cfg, map_fn=map_fn)
        groups = [(k, g["ds"].tolist(), g["y"].tolist(), cfg, 3) for k, g in df.groupby("series")]
        held = [r for rows in ex.map(_eval_one, groups) for r in rows]
    wall = time.perf_counter() - t0
    summ = bundle.summary()
    bt = bundle.backtests()
    print(f"\n## Sample data: {len(summ)} series, candidates {', '.join(candidates)} ({wall:.0f} s)")
    print("target: MASE of the selected model <= seasonal-naive baseline, overall and on >= 80% of series")
    sel = summ.dropna(subset=["mase", "baseline_mase"])
    per_cand = bt[bt.candidate.isin(candidates)].groupby("candidate")["mase"].mean()
    print("\nbacktest windows used for selection (3 per series):")
    print(f"  {'method':<22}{'mean MASE':>10}")
    for c in candidates:
        if c in per_cand:
            print(f"  {c:<22}{per_cand[c]:>10.3f}")
    print(f"  {'selected':<22}{sel['mase'].mean():>10.3f}")
    share = float((sel["mase"] <= sel["baseline_mase"]).mean())
    n_better = int((sel["mase"] <= sel["baseline_mase"]).sum())
    print(f"  selected <= baseline on {share:.0%} of series ({n_better}/{len(sel)})")
    members = pd.Series([m for r in bundle.results.values() for m in r.get("members", [])]).value_counts()
    print(f"  series whose combination includes each candidate: {members.to_dict()}")
    h = pd.DataFrame(held)
    print("\nheld-out windows (selection on the 3 windows before each; 3 origins per series):")
    hm = h.groupby("method")["mase"].mean()
    for m in [*candidates, "selector"]:
        if m in hm:
            print(f"  {m:<22}{hm[m]:>10.3f}")
    piv = h.pivot_table(index="series", columns="method", values="mase", aggfunc="mean")
    n_ok = int((piv["selector"] <= piv[BASELINE]).sum())
    print(f"  selector <= baseline on {n_ok / len(piv):.0%} of series ({n_ok}/{len(piv)})")


def run_real(candidates: list[str], n_outer: int, workers: int) -> None:
    if not GITHUB.exists():
        print("\n## GitHub status data absent, skipped")
        return
    d = pd.read_csv(GITHUB)
    cols = ["total", "impact_minor", "impact_major", "impact_none", "impact_critical"]
    cfg = {"candidates": candidates, "signals": False}
    t0 = time.perf_counter()
    with ProcessPoolExecutor(max_workers=workers) as ex:
        args = [(c, d["week_start"].tolist(), d[c].tolist(), cfg, n_outer) for c in cols]
        rows = [r for rs in ex.map(_eval_one, args) for r in rs]
    wall = time.perf_counter() - t0
    r = pd.DataFrame(rows)
    origins = sorted(r["origin"].unique())
    print(
        f"\n## GitHub status weekly incidents: held-out MASE, {len(origins)} origins {origins[0]} .. "
        f"{origins[-1]}, horizon 13 ({wall:.0f} s)"
    )
    print(
        "selector: median of the 3 best candidates on the 3 windows before each origin; target mean MASE <= 2.34"
    )
    methods = [*candidates, "selector"]
    piv = r.pivot_table(index="series", columns="method", values="mase", aggfunc="mean")[methods]
    piv.loc["mean (5 series)"] = r.groupby("method")["mase"].mean()[methods]
    regular = r[r.series.isin(["total", "impact_minor", "impact_major"])]
    piv.loc["mean (total, minor, major)"] = regular.groupby("method")["mase"].mean()[methods]
    print(piv.round(3).to_string())
    for label in ("mean (5 series)", "mean (total, minor, major)"):
        row = piv.loc[label]
        best_single = row[candidates].min()
        verdict = "beats" if row["selector"] < best_single else "does NOT beat"
        print(
            f"{label}: selector {row['selector']:.3f} {verdict} every single candidate (best "
            f"{row[candidates].idxmin()} {best_single:.3f})"
        )
    print(
        "(impact_none and impact_critical are mostly zeros: the MASE scale, the in-sample naive MAE, is tiny there)"
    )


def synthetic(n_series: int, seed: int = 0, n_weeks: int = 104) -> pd.DataFrame:
    """Weekly series: level, trend, yearly seasonality, AR(1) noise, counts or continuous, some level shifts."""
    rng = np.random.default_rng(seed)
    dates = pd.date_range("2023-01-02", periods=n_weeks, freq="W-MON")
    t = np.arange(n_weeks)
    frames = []
    for i in range(n_series):
        level = rng.uniform(5, 50)
        phi = rng.uniform(0, 0.6)
        sd = rng.uniform(0.05, 0.2) * level
        e = np.zeros(n_weeks)
        for k in range(1, n_weeks):
            e[k] = phi * e[k - 1] + rng.normal(0, sd * math.sqrt(1 - phi**2))
        mean = level * (1 + rng.uniform(-0.2, 0.2) * t / n_weeks) + rng.uniform(0, 0.2) * level * np.sin(
            2 * np.pi * t / 52.18 + rng.uniform(0, 6.3)
        )
        if rng.random() < 0.3:
            mean[int(rng.integers(20, n_weeks - 10)) :] += rng.choice([-1, 1]) * rng.uniform(2, 4) * sd
        y = mean + e
        y = rng.poisson(np.maximum(y, 0.1)).astype(float) if i % 2 == 0 else np.round(y, 2)
        frames.append(pd.DataFrame({"series": f"synthetic/team=t{i:04d}", "ds": dates, "y": y}))
    return pd.concat(frames, ignore_index=True)


def long_series(n_series: int, seed: int = 7, min_weeks: int = 500, max_weeks: int = 2600) -> pd.DataFrame:
    """M4-like long weekly series: 500-2,600 weeks, trend changes, drifting yearly seasonality, AR noise, shifts.

    Each series has 1-5 trend segments (piecewise-linear slope changes), a yearly seasonal profile of 1-3
    harmonics whose amplitude drifts, AR(1) noise with a slowly changing scale, occasional level shifts and
    outliers; a third are multiplicative (built on the log scale). Levels span 1e2-1e5 like M4 Weekly's.
    """
    rng = np.random.default_rng(seed)
    frames = []
    for i in range(n_series):
        n = int(rng.integers(min_weeks, max_weeks + 1))
        t = np.arange(n)
        knots = np.sort(rng.choice(np.arange(52, n - 26), size=int(rng.integers(0, 5)), replace=False))
        slopes = rng.normal(0, 0.0006, size=len(knots) + 1)
        trend = np.zeros(n)
        for k, s0 in zip(np.r_[0, knots], slopes, strict=True):
            trend[k:] += s0 * (t[k:] - k)
        season = np.zeros(n)
        amp = rng.uniform(0, 0.15) * (1 + 0.5 * np.sin(2 * np.pi * t / n * rng.uniform(0.5, 2)))
        for harm in range(1, int(rng.integers(1, 4)) + 1):
            season += amp / harm * np.sin(2 * np.pi * harm * t / 52.18 + rng.uniform(0, 2 * np.pi))
        phi = rng.uniform(0.2, 0.9)
        sd = rng.uniform(0.01, 0.06) * (1 + 0.5 * np.sin(2 * np.pi * t / n * rng.uniform(0.5, 3)))
        e = np.zeros(n)
        for k in range(1, n):
            e[k] = phi * e[k - 1] + rng.normal(0, sd[k])
        shifts = np.zeros(n)
        for _ in range(int(rng.poisson(1.0))):
            shifts[int(rng.integers(26, n)) :] += rng.normal(0, 0.08)
        z = trend + season + e + shifts
        spikes = rng.random(n) < 0.003
        z[spikes] += rng.normal(0, 0.3, size=int(spikes.sum()))
        level = 10 ** rng.uniform(2, 5)
        y = level * np.exp(z) if i % 3 == 0 else level * np.maximum(2 + z, 0.05)
        y = y.round(1)
        dates = pd.date_range(end="2024-12-30", periods=n, freq="W-MON")
        frames.append(pd.DataFrame({"series": f"long/team=t{i:04d}", "ds": dates, "y": y}))
    return pd.concat(frames, ignore_index=True)


def _single_fit_batch(
    ids: list[str], dss: list[list[str]], ys: list[list[float]], name: str, h: int
) -> list[dict]:
    """One candidate fitted once on each whole history (what a user running it alone does); forecasts h steps."""
    from ml.indicators.candidates import _clip, make_candidate
    from ml.indicators.config import ForecastConfig
    from ml.indicators.forecasting import _single_thread
    from ml.indicators.grid import to_grid
    from ml.indicators.seasonality import _prepare

    cfg = ForecastConfig(search_window=0)  # statsforecast's own search on the whole history
    out = []
    with _single_thread():
        for sid, ds, y in zip(ids, dss, ys, strict=True):
            grid = to_grid(ds, y)
            prep = _prepare(grid.y, grid.dates, grid.freq)
            pred = _clip(make_candidate(name).fit(prep, cfg).predict(h, 80), bool(np.nanmin(grid.y) >= 0))
            out.append({"series": sid, "yhat": pred.mean.tolist()})
    return out


def _scores(train: pd.DataFrame, test: pd.DataFrame, yhat: dict[str, list[float]]) -> pd.DataFrame:
    from ml.indicators.metrics import mase, mase_scale, smape

    rows = []
    for sid, g in train.groupby("series"):
        actual = test.loc[test.series == sid, "y"].to_numpy(float)
        f = np.asarray(yhat[sid], dtype=float)
        scale = mase_scale(g["y"].to_numpy(float))
        rows.append({"series": sid, "mase": mase(actual, f, scale), "smape": smape(actual, f)})
    return pd.DataFrame(rows).set_index("series")


def _cpu() -> float:
    """CPU seconds of this process and of its finished children (the pools' workers), user + system."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def _timed_fit_many(df: pd.DataFrame, cfg: dict, workers: int):
    """``fit_many`` on ``workers`` local processes: the bundle, wall seconds and CPU seconds of all processes."""
    t0, c0 = time.perf_counter(), _cpu()
    bundle = fit_many(df, cfg, n_jobs=workers)
    return bundle, time.perf_counter() - t0, _cpu() - c0


def _timed_single(
    df: pd.DataFrame, name: str, h: int, workers: int
) -> tuple[dict[str, list[float]], float, float]:
    ids, dss, ys = split_series(df)
    size = max(1, -(-len(ids) // (8 * workers)))
    parts = [slice(i, i + size) for i in range(0, len(ids), size)]
    t0, c0 = time.perf_counter(), _cpu()
    with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn")) as ex:
        done = ex.map(
            _single_fit_batch,
            [ids[p] for p in parts],
            [dss[p] for p in parts],
            [ys[p] for p in parts],
            [name] * len(parts),
            [h] * len(parts),
        )
        out = {r["series"]: r["yhat"] for batch in done for r in batch}
    return out, time.perf_counter() - t0, _cpu() - c0


def _usage(bundle) -> str:
    u = bundle.candidate_usage()
    n = len(bundle.results)
    return "\n".join(
        f"    {r.candidate:<16}{r.seconds:>10.1f} s{r.selected / n:>10.0%} of models{r.selected_alone:>6} alone"
        f"{r.pruned / n:>9.0%} pruned"
        for r in u.itertuples()
    )


def _by_length(bundle, lengths: pd.Series) -> str:
    """How often each candidate is in the chosen model, by series length (quartiles)."""
    rows = [
        {"series": k, "weeks": int(lengths[k]), **{c: c in (r.get("members") or []) for c in ALL_CANDIDATES}}
        for k, r in bundle.results.items()
        if r.get("status") != "error"
    ]
    if not rows:
        return ""
    frame = pd.DataFrame(rows)
    frame["length"] = pd.qcut(frame["weeks"], 4, precision=0) if len(frame) >= 8 else "all"
    table = frame.groupby("length", observed=True)[list(ALL_CANDIDATES)].mean().round(2)
    table.insert(0, "series", frame.groupby("length", observed=True).size())
    return "\n  share of series whose chosen model includes each candidate, by length (weeks):\n" + "\n".join(
        "    " + line for line in table.to_string().splitlines()
    )


def run_long(n_series: int, old_every: int, workers: int, h: int = 13) -> None:
    df = long_series(n_series)
    df["ds"] = df["ds"].dt.strftime("%Y-%m-%d")
    last = df.groupby("series").cumcount(ascending=False) < h
    train, test = df[~last], df[last]
    lengths = train.groupby("series").size()
    old_ids = sorted(train.series.unique())[::old_every]
    load = os.getloadavg()
    print(
        f"\n## Long weekly series (M4-like): {n_series} seeded simulated series, {lengths.min() + h}-"
        f"{lengths.max() + h} weeks (median {int(lengths.median()) + h}), trend changes, seasonality, AR noise, "
        f"shifts; last {h} weeks held out; {workers} local processes; load average at start "
        f"{load[0]:.1f}/{load[1]:.1f}/{load[2]:.1f} on {os.cpu_count()} cores"
    )
    print("targets: new default MASE <= 1.01 x old default on the same series; time <= 2x AutoETS alone")
    new, t_new, c_new = _timed_fit_many(train, {"signals": False}, workers)
    ets_pipe, t_ets_pipe, c_ets_pipe = _timed_fit_many(
        train, {"candidates": ["auto_ets"], "signals": False}, workers
    )
    ets, t_ets, c_ets = _timed_single(train, "auto_ets", h, workers)
    naive, t_naive, c_naive = _timed_single(train, "seasonal_naive", h, workers)
    old, t_old, c_old = _timed_fit_many(
        train[train.series.isin(old_ids)], {**OLD_DEFAULT, "signals": False}, workers
    )
    new_yhat = {k: [f["yhat"] for f in r["forecast"]] for k, r in new.results.items()}
    res = {
        "new default": (_scores(train, test, new_yhat), t_new, c_new),
        "AutoETS alone (1 fit)": (_scores(train, test, ets), t_ets, c_ets),
        "AutoETS alone (backtest pipeline)": (
            _scores(
                train, test, {k: [f["yhat"] for f in r["forecast"]] for k, r in ets_pipe.results.items()}
            ),
            t_ets_pipe,
            c_ets_pipe,
        ),
        "seasonal naive": (_scores(train, test, naive), t_naive, c_naive),
    }
    old_sc = _scores(
        train[train.series.isin(old_ids)],
        test,
        {k: [f["yhat"] for f in r["forecast"]] for k, r in old.results.items()},
    )
    end = os.getloadavg()
    print(f"\n  all {n_series} series (load average at the end {end[0]:.1f}/{end[1]:.1f}/{end[2]:.1f}):")
    print(
        f"  {'method':<36}{'MASE':>8}{'sMAPE':>8}{'wall s':>9}{'CPU s':>9}{'CPU x AutoETS 1 fit':>21}"
        f"{'wall x AutoETS 1 fit':>22}"
    )
    for name, (sc, sec, cpu) in res.items():
        print(
            f"  {name:<36}{sc['mase'].mean():>8.3f}{sc['smape'].mean():>8.2f}{sec:>9.1f}{cpu:>9.1f}"
            f"{cpu / c_ets:>21.2f}{sec / t_ets:>22.2f}"
        )
    sub = res["new default"][0].loc[old_sc.index]
    share = len(old_ids) / n_series
    print(f"\n  the {len(old_ids)} series the old default ran on (every {old_every}th):")
    print(f"  {'method':<36}{'MASE':>8}{'sMAPE':>8}{'CPU s':>9}{'CPU s per series':>20}")
    print(
        f"  {'old default':<36}{old_sc['mase'].mean():>8.3f}{old_sc['smape'].mean():>8.2f}{c_old:>9.1f}"
        f"{c_old / len(old_ids):>20.3f}"
    )
    print(
        f"  {'new default':<36}{sub['mase'].mean():>8.3f}{sub['smape'].mean():>8.2f}{c_new * share:>9.1f}"
        f"{c_new / n_series:>20.3f}   (CPU s: its all-series time x {share:.3f})"
    )
    ratio = sub["mase"].mean() / old_sc["mase"].mean()
    print(
        f"  new/old MASE {ratio:.3f} ({'within' if ratio <= 1.01 else 'NOT within'} 1%); new better on "
        f"{(sub['mase'] < old_sc['mase'] - 1e-9).mean():.0%}, equal on "
        f"{(abs(sub['mase'] - old_sc['mase']) <= 1e-9).mean():.0%}"
        f" of these series; old default per series {c_old / len(old_ids) / (c_new / n_series):.1f}x the CPU"
    )
    print(
        f"  new default {c_new / c_ets:.2f}x AutoETS alone (1 fit) in CPU seconds ({t_new / t_ets:.2f}x in wall "
        f"seconds) and {c_new / c_ets_pipe:.2f}x AutoETS through the same backtest pipeline (target <= 2x)"
    )
    print(_by_length(new, lengths + h))
    print(
        "\n  new default, per candidate: wall seconds (backtest + final fit, summed over series and workers; "
        "under load they include waiting, so read them as shares), share of series whose model includes it, "
        "models that are it alone, share pruned:"
    )
    print(_usage(new))
    print(f"  old default ({len(old_ids)} series):")
    print(_usage(old))


def run_speed(n_series: int, executors: list[str], candidates: list[str]) -> None:
    df = synthetic(n_series)
    cfg = {"candidates": candidates}
    print(
        f"\n## Speed: {n_series} weekly series x 104 weeks; candidates {', '.join(candidates)}; 3 backtest "
        "windows of 13 weeks + final fit + 13-week forecast + signals per series; 2 workers x 1 thread"
    )
    print("target: <= 120 s on 2 cores")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"(machine load average at start: {load:.1f} on {os.cpu_count()} cores)")
    print(
        f"  {'executor':<10}{'startup s':>10}{'fit s':>10}{'total s':>10}{'series/s':>10}{'errors':>8}"
        f"{'CPU s':>10}{'CPU s / 2':>11}"
    )
    for name in executors:
        t0 = time.perf_counter()
        cpu = float("nan")
        if name == "local":
            before = _cpu()
            t1 = time.perf_counter()  # fit_many starts its own 2 processes: their start-up is in the fit time
            bundle = fit_many(df, cfg, n_jobs=2)
            t2 = time.perf_counter()
            cpu = _cpu() - before
        else:
            from dask.distributed import Client, LocalCluster

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                cluster = LocalCluster(
                    n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
                )
                client = Client(cluster)
            t1 = time.perf_counter()

            def map_fn(f, *its, _client=client):
                return _client.gather(_client.map(f, *its, pure=False))

            bundle = fit_many(df, cfg, map_fn=map_fn)
            t2 = time.perf_counter()
            client.close()
            cluster.close()
        fit_s = t2 - t1
        print(
            f"  {name:<10}{t1 - t0:>10.1f}{fit_s:>10.1f}{t2 - t0:>10.1f}{n_series / fit_s:>10.1f}"
            f"{len(bundle.errors):>8}{cpu:>10.1f}{cpu / 2:>11.1f}"
        )
        print(_usage(bundle))
    print(
        "CPU s: CPU time of this process and its two local workers together (process start-up and imports "
        "included); on 2 otherwise idle cores the wall time is about CPU s / 2 (the machine here is shared, so "
        "wall times above include waiting for other jobs); the load average at the end: "
        + "/".join(f"{v:.1f}" for v in os.getloadavg())
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer origins/series, no Prophet or AutoARIMA")
    ap.add_argument(
        "--series", type=int, default=None, help="series for the speed part (default 1000; 200 quick)"
    )
    ap.add_argument("--executor", choices=["local", "dask", "both"], default="both")
    ap.add_argument(
        "--parts",
        nargs="+",
        choices=["sample", "real", "long", "speed"],
        default=["sample", "real", "long", "speed"],
    )
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--long-series", type=int, default=None, help="long series (default 320; 40 quick)")
    ap.add_argument("--old-every", type=int, default=4, help="old default on every K-th long series")
    ap.add_argument("--speed-candidates", choices=["default", "fast"], default="default")
    args = ap.parse_args()
    cands = SPEED_CANDIDATES if args.quick else list(ALL_CANDIDATES)
    if "sample" in args.parts:
        run_sample(cands, args.workers)
    if "real" in args.parts:
        run_real(cands, 8 if args.quick else 17, args.workers)
    if "long" in args.parts:
        run_long(args.long_series or (40 if args.quick else 320), args.old_every, args.workers)
    if "speed" in args.parts:
        execs = ["local", "dask"] if args.executor == "both" else [args.executor]
        speed_cands = SPEED_CANDIDATES if args.speed_candidates == "fast" else list(ALL_CANDIDATES)
        run_speed(args.series or (200 if args.quick else 1000), execs, speed_cands)


if __name__ == "__main__":
    main()
