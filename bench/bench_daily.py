"""The same change exported by day and by week: does the shift detector find it in both?

    python bench/bench_daily.py [--series 30]

Simulated (seeded) daily series of 730 days with one change at day 500, each also summed (counts) or averaged
(a level) over Monday weeks; a shift is found when the detector reports one within 14 days of the change:

- Poisson counts from 0.3 to 0.6 a day, and from 3 to 3.9 a day;
- a level of 50 with Gaussian AR(1) noise (phi 0.5, innovation sd 2), +1.5 from the change (0.65 noise sds).

Baseline: the weekly sums (or means) of the same days, the export a team would otherwise be told to give. Also:
shifts reported on noise alone (the same series without the change, 730 days each), and rare counts (644 days from
0.02 a day, rising at day 400 to 0.1, 0.3 or 1.0 a day; 10 series each; "other" shifts are those more than 14 days
from the rise).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ml.indicators.signals import detect_signals  # noqa: E402

DAYS = pd.date_range("2024-01-01", periods=730, freq="D")
AT = 500
TOL_DAYS = 14


def shifts(index: pd.DatetimeIndex, y: np.ndarray) -> list[pd.Timestamp]:
    return [
        pd.Timestamp(e["date"]) for e in detect_signals("x", list(index), y.tolist()) if e["kind"] == "shift"
    ]


def weekly(y: np.ndarray, how: str) -> tuple[pd.DatetimeIndex, np.ndarray]:
    g = pd.Series(y, index=DAYS).resample("W-MON", label="left", closed="left")
    w = g.sum() if how == "sum" else g.mean()
    return pd.DatetimeIndex(w.index), w.to_numpy(dtype=float)


def ar_level(rng: np.random.Generator, step: float) -> np.ndarray:
    e = np.zeros(len(DAYS))
    for i in range(1, len(DAYS)):
        e[i] = 0.5 * e[i - 1] + rng.normal(0, 2)
    return 50 + e + np.where(np.arange(len(DAYS)) >= AT, step, 0.0)


def poisson(lo: float, hi: float) -> Callable[[np.random.Generator, bool], np.ndarray]:
    def make(rng: np.random.Generator, changed: bool) -> np.ndarray:
        lam = np.where(np.arange(len(DAYS)) >= AT, hi if changed else lo, lo)
        return rng.poisson(lam).astype(float)

    return make


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--series", type=int, default=30, help="series per case (default 30)")
    args = ap.parse_args()
    t0 = time.process_time()
    cases: list[tuple[str, str, Callable[[np.random.Generator, bool], np.ndarray]]] = [
        ("counts 0.3 -> 0.6 a day", "sum", poisson(0.3, 0.6)),
        ("counts 3 -> 3.9 a day", "sum", poisson(3.0, 3.9)),
        ("AR(1) level +0.65 sd", "mean", lambda rng, changed: ar_level(rng, 1.5 if changed else 0.0)),
    ]
    print(
        f"## One change at day {AT} of {len(DAYS)}, {args.series} series per case: found within {TOL_DAYS} days"
    )
    print(f"{'case':<26} {'daily':>7} {'weekly':>7}   shifts on noise alone (daily / weekly)")
    at = DAYS[AT]
    for name, how, make in cases:
        hit_d = hit_w = null_d = null_w = 0
        for seed in range(args.series):
            y = make(np.random.default_rng(100 + seed), True)
            hit_d += any(abs(d - at).days <= TOL_DAYS for d in shifts(DAYS, y))
            hit_w += any(abs(d - at).days <= TOL_DAYS for d in shifts(*weekly(y, how)))
            y0 = make(np.random.default_rng(100 + seed), False)
            null_d += len(shifts(DAYS, y0))
            null_w += len(shifts(*weekly(y0, how)))
        print(f"{name:<26} {hit_d:>3}/{args.series:<3} {hit_w:>3}/{args.series:<3}   {null_d} / {null_w}")
    days = pd.date_range("2024-01-01", periods=644, freq="D")
    print(f"\n## Rare counts: {len(days)} days from 0.02 a day, a rise at day 400; 10 series each")
    for hi in (0.1, 0.3, 1.0):
        found = other = 0
        for seed in range(10):
            lam = np.where(np.arange(len(days)) >= 400, hi, 0.02)
            got = shifts(days, np.random.default_rng(seed).poisson(lam).astype(float))
            ok = [d for d in got if abs(d - days[400]).days <= TOL_DAYS]
            found += bool(ok)
            other += len(got) - len(ok)
        print(f"to {hi:g} a day: found in {found}/10, {other} other shifts")
    null = sum(
        len(shifts(days, np.random.default_rng(50 + s).poisson(0.02, len(days)).astype(float)))
        for s in range(20)
    )
    print(f"noise alone at 0.02 a day, 20 series: {null} shifts")
    print(f"\n{time.process_time() - t0:.1f} CPU s")


if __name__ == "__main__":
    main()
