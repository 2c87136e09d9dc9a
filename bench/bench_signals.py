"""Signal vs noise: recall of planted level shifts and false alarms per series-year.

    python bench/bench_signals.py [--quick] [--seed 0]

1. Sample data (data/sample/indicators.csv with truth/shifts.csv and truth/outliers.csv), when present: a shift
   is found when a "shift" event lies within 14 days of its true date; a false alarm is any event (shift or
   outlier) not within 14 days of a true shift or a marked outlier.
2. Simulation (our own generator, independent of the sample's): weekly series of 2-3 years and daily series of
   1 year with AR(1) noise (phi 0 to 0.6), yearly (weekly data) or weekly (daily data) seasonality, a trend,
   Gaussian or Poisson noise, 0-2 level shifts of 1.5-4 noise sds and isolated outliers; recall by shift size and
   phi, and false alarms per series-year, also on pure noise (no shift, no outlier).
3. GitHub status weekly incident counts (real), when present: the detected shifts, for a look.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ml.indicators.signals import detect_signals  # noqa: E402
from ml.io.schemas import series_key  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "sample"
GITHUB = ROOT.parent / "shared" / "data" / "github-status" / "weekly_counts.csv"
TOL = pd.Timedelta(days=14)


def score(events: pd.DataFrame, shifts: pd.DataFrame, outliers: pd.DataFrame, series_years: float) -> dict:
    """Recall of true shifts (within 14 days) and false alarms per series-year."""
    ev = events.copy()
    ev["date"] = pd.to_datetime(ev["date"])
    found = 0
    for _, s in shifts.iterrows():
        e = ev[(ev.series == s.series) & (ev.kind == "shift") & ((ev.date - s.date).abs() <= TOL)]
        found += int(len(e) > 0)
    false = 0
    for _, e in ev.iterrows():
        near_shift = ((shifts.series == e.series) & ((shifts.date - e.date).abs() <= TOL)).any()
        near_out = ((outliers.series == e.series) & ((outliers.date - e.date).abs() <= TOL)).any()
        false += int(not (near_shift or near_out))
    return {
        "shifts": len(shifts),
        "found": found,
        "recall": found / len(shifts) if len(shifts) else float("nan"),
        "false_alarms": false,
        "series_years": series_years,
        "fa_per_series_year": false / series_years,
    }


def run_sample() -> None:
    path = SAMPLE / "indicators.csv"
    if not path.exists():
        print("sample data: data/sample/indicators.csv absent, skipped")
        return
    df = pd.read_csv(path)
    df["series"] = [
        series_key(i, team=t if isinstance(t, str) else None, service=s if isinstance(s, str) else None)
        for i, t, s in zip(
            df["indicator"],
            df.get("team", [None] * len(df)),
            df.get("service", [None] * len(df)),
            strict=True,
        )
    ]
    shifts = pd.read_csv(SAMPLE / "truth" / "shifts.csv", parse_dates=["date"])
    out_path = SAMPLE / "truth" / "outliers.csv"
    outliers = (
        pd.read_csv(out_path, parse_dates=["date"])
        if out_path.exists()
        else pd.DataFrame({"series": [], "date": pd.to_datetime([])})
    )
    t0 = time.perf_counter()
    events = []
    years = 0.0
    for key, g in df.groupby("series"):
        g = g.sort_values("ds")
        events += detect_signals(str(key), g["ds"].tolist(), g["y"].tolist())
        years += (
            pd.Timestamp(g["ds"].iloc[-1]) - pd.Timestamp(g["ds"].iloc[0]) + pd.Timedelta(days=7)
        ).days / 365.25
    wall = time.perf_counter() - t0
    ev = pd.DataFrame(events)
    res = score(ev, shifts, outliers, years)
    print(f"\n## Sample data ({df['series'].nunique()} series, {years:.0f} series-years, {wall:.1f} s)")
    print("target: recall >= 0.9 within 14 days; <= 1 false alarm per series-year")
    print(f"shifts found       {res['found']}/{res['shifts']}  recall {res['recall']:.3f}")
    print(f"false alarms       {res['false_alarms']}  per series-year {res['fa_per_series_year']:.3f}")
    print(
        f"events             {int((ev.kind == 'shift').sum())} shifts, {int((ev.kind == 'outlier').sum())} outliers"
    )
    for kind in ("shift", "experiment"):
        sub = shifts[shifts["kind"] == kind] if "kind" in shifts else shifts.iloc[0:0]
        if len(sub):
            r = score(ev, sub, outliers, years)
            print(f"  truth kind {kind:<10} recall {r['found']}/{r['shifts']}")


# ---------------------------------------------------------------------------------------------------------------
# Simulation
# ---------------------------------------------------------------------------------------------------------------


def simulate(rng: np.random.Generator, freq: str, n: int, phi: float, with_events: bool, poisson: bool):
    """One series: level + trend + seasonality + AR(1) (+ Poisson) + shifts + outliers, marginal noise sd 1."""
    t = np.arange(n)
    if freq == "D":
        dates = pd.date_range("2023-01-02", periods=n, freq="D")
        season = rng.uniform(0, 1.0) * np.sin(2 * np.pi * t / 7 + rng.uniform(0, 6.3))
    else:
        dates = pd.date_range("2022-01-03", periods=n, freq="W-MON")
        season = rng.uniform(0, 1.0) * np.sin(2 * np.pi * t / 52.18 + rng.uniform(0, 6.3))
    trend = rng.uniform(-1, 1) * (t - n / 2) / n
    level = 30.0 if poisson else 10.0
    if poisson:  # Poisson sd sqrt(30) ~ 5.5 plus an AR part; normalise the total to sd 1 afterwards
        ar_sd = rng.uniform(0.3, 0.8)
    else:
        ar_sd = 1.0
    e = np.empty(n)
    e[0] = rng.normal(0, ar_sd)
    innov = ar_sd * math.sqrt(1 - phi**2)
    for i in range(1, n):
        e[i] = phi * e[i - 1] + rng.normal(0, innov)
    sd_unit = math.sqrt(level + (ar_sd * math.sqrt(level)) ** 2) if poisson else 1.0
    mean = level + sd_unit * (trend + season) + (e * math.sqrt(level) if poisson else e)
    shifts: list[tuple[int, float]] = []
    outs: list[int] = []
    if with_events:
        k = rng.choice([0, 1, 1, 2])
        margin = 12 if freq == "W-MON" else 30
        for _ in range(k):
            for _try in range(50):
                i = int(rng.integers(margin, n - margin))
                if all(abs(i - j) >= 2 * margin for j, _ in shifts):
                    break
            else:
                continue
            size = rng.uniform(1.5, 4.0) * rng.choice([-1, 1])
            shifts.append((i, size))
            mean[i:] += size * sd_unit
    y = rng.poisson(np.maximum(mean, 0.1)).astype(float) if poisson else mean
    if with_events:
        blocked = {j + d for j, _ in shifts for d in range(-3, 4)}
        for _ in range(min(int(rng.poisson(1.0)), 3)):
            cands = [i for i in range(3, n - 3) if i not in blocked]
            i = int(rng.choice(cands))
            y[i] += rng.uniform(4.0, 7.0) * sd_unit * (1 if poisson or rng.random() < 0.7 else -1)
            outs.append(i)
            blocked |= {i + d for d in range(-4, 5)}
    return dates, y, shifts, outs


def run_simulation(n_series: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    rows = []
    ev_all, sh_all, out_all = [], [], []
    noise_ev, noise_years = [], 0.0
    years = 0.0
    t0 = time.perf_counter()
    for s in range(n_series):
        freq = "D" if s % 4 == 3 else "W-MON"
        n = 365 if freq == "D" else int(rng.choice([104, 156]))
        phi = float(rng.choice([0.0, 0.3, 0.45, 0.6]))
        poisson = bool(s % 3 == 0)
        key = f"sim/{s}"
        dates, y, shifts, outs = simulate(rng, freq, n, phi, True, poisson)
        ev = detect_signals(key, [str(d.date()) for d in dates], y.tolist())
        span = n / (365.25 if freq == "D" else 52.18)
        years += span
        ev_all += ev
        sh_all += [
            {"series": key, "date": dates[i], "size": abs(m), "phi": phi, "freq": freq} for i, m in shifts
        ]
        out_all += [{"series": key, "date": dates[i]} for i in outs]
        # the same conditions without any shift or outlier
        dates, y, _, _ = simulate(rng, freq, n, phi, False, poisson)
        ev0 = detect_signals(key, [str(d.date()) for d in dates], y.tolist())
        noise_ev += [{**e, "phi": phi, "freq": freq} for e in ev0]
        noise_years += span
        rows.append({"phi": phi, "freq": freq, "years": span})
    wall = time.perf_counter() - t0
    ev = pd.DataFrame(ev_all, columns=["series", "date", "kind", "magnitude_sigma", "confidence"])
    sh = pd.DataFrame(sh_all, columns=["series", "date", "size", "phi", "freq"])
    ou = pd.DataFrame(out_all, columns=["series", "date"])
    res = score(ev, sh, ou, years)
    meta = pd.DataFrame(rows)
    print(
        f"\n## Simulation ({n_series} series with events + {n_series} pure-noise twins, {2 * years:.0f} "
        f"series-years, {wall:.1f} s)"
    )
    print(f"shifts found       {res['found']}/{res['shifts']}  recall {res['recall']:.3f}")
    print(f"false alarms       {res['false_alarms']}  per series-year {res['fa_per_series_year']:.3f}")
    print("\nrecall by shift size (noise sds) and phi")
    sh["tier"] = pd.cut(sh["size"], [1.5, 2.0, 3.0, 4.0], include_lowest=True).astype(str)
    table = []
    for (tier, phi), g in sh.groupby(["tier", "phi"]):
        r = score(ev, g, ou, years)
        table.append({"size": tier, "phi": phi, "shifts": r["shifts"], "recall": round(r["recall"], 3)})
    print(pd.DataFrame(table).pivot(index="size", columns="phi", values="recall").to_string())
    print("\nfalse alarms per series-year on pure noise (no shift, no outlier), by phi and frequency")
    ne = pd.DataFrame(noise_ev, columns=["series", "kind", "phi", "freq"])
    fa_rows = []
    for (phi, freq), g in meta.groupby(["phi", "freq"]):
        k = ne[(ne.phi == phi) & (ne.freq == freq)]
        fa_rows.append(
            {
                "phi": phi,
                "freq": freq,
                "series_years": round(g.years.sum(), 1),
                "shift_fa": round((k.kind == "shift").sum() / g.years.sum(), 3),
                "outlier_fa": round((k.kind == "outlier").sum() / g.years.sum(), 3),
            }
        )
    print(pd.DataFrame(fa_rows).to_string(index=False))


def run_github() -> None:
    if not GITHUB.exists():
        print("\nGitHub status data absent, skipped")
        return
    d = pd.read_csv(GITHUB)
    ev = detect_signals("github/total", d["week_start"].tolist(), d["total"].tolist())
    shifts = [e for e in ev if e["kind"] == "shift"]
    print(
        f"\n## GitHub status weekly incidents (total, {len(d)} weeks): {len(shifts)} shifts, "
        f"{len(ev) - len(shifts)} outliers; shifts by date:"
    )
    for e in sorted(shifts, key=lambda e: e["date"]):
        print(
            f"  {e['date']}  {e['direction']:<8} {e['magnitude']:+6.2f}/week  confidence {e['confidence']:.3f}"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer simulated series")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--series", type=int, default=None, help="simulated series (default 400, 100 with --quick)"
    )
    args = ap.parse_args()
    run_sample()
    run_simulation(args.series or (100 if args.quick else 400), args.seed)
    run_github()


if __name__ == "__main__":
    main()
