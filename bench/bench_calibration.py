"""Real-series calibration of experiment verdicts: placebo windows cut from real weekly(-like) series.

Series (all real, none copied into the repository):

* GitHub status-page incidents per week, ``../shared/data/github-status/weekly_counts.csv`` (2010-2023): total
  and by impact (none, minor, major); one indicator, four series. Skipped cleanly when the file is absent.
* Public-domain series shipped with statsmodels, read as if weekly: Mauna Loa CO2 (weekly, 1958-2001), El Nino
  sea-surface temperatures (monthly, 1950-2010), yearly sunspots (1700-2008), Nile flow (yearly), and the US
  macro data (quarterly, 1959-2009) in three indicators: real activity (GDP, consumption, investment,
  government, disposable income), nominal (CPI, M1), rates (T-bill, unemployment, inflation, real interest).

Each window is a placebo experiment: `pre` weeks (30 or 52) fitted, 8 post weeks, no effect added. "With
controls" uses two other series of the same indicator as controls (indicators with at least three series).
Power adds a shift of 1 or 2 standard deviations of the raw pre-period values (ddof 1) to every post week; the
last column uses the stricter sd of the pre-period values after removing their linear trend.

Calibration pool, as ``ImpactScorer`` builds it: placebo windows of the same indicator's series (the treated one
included) whose post-period ends before the window's start, the most recent first, at most
``ml.experiments.calibration.MAX_PLACEBOS``. "cold start" is the same method with no pool (the prior alone).

No tuning on reported windows: each series is split in time at its middle. The prior factors (the only
hyper-parameters fitted here) are learned on windows whose post-period ends in the first half
(``--fit-prior`` prints them; ``ml/experiments/calibration.py`` holds the values learned so), and every figure
is reported on windows whose post-period starts in the second half.

"ours" is the scorer's estimator: the step's coefficient in the model fitted on pre and post weeks together
(intervention analysis, ``ml.experiments.effect``), calibrated by pooled placebos scored the same way and the
prior factors in ``ml/experiments/calibration.py``. One fit per window serves the null and the shifts: a
constant added to the post weeks moves the step's coefficient by exactly that much and leaves its spread as it
is. "forecast comparison (before)" is the method before, on the same windows: the pre-period fit's forecast of
the post-period mean, its own placebos and its own prior factors (``FORECAST_PRIOR_FACTORS``).

Baselines on the same windows: Welch t-test and Mann-Whitney U (pre vs post, weeks independent) and "today's
scorer", the one before any calibration (the random-walk + AR(1) model without trend, forecast comparison, the
window alone). "with cycle (opt-in)" is ours with the model's stochastic cycle switched on and its own prior
factor learned here on the tuning split (where a cycle fit fails, on a few windows with controls, that row uses
ours).

    python bench/bench_calibration.py [--quick] [--fit-prior] [--max-windows 60]
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ml.experiments.calibration import (  # noqa: E402
    FORECAST_PRIOR_FACTORS,
    MAX_PLACEBOS,
    PRIOR_FACTORS,
    calibrated_factor,
    is_nonstationary,
    normal_score,
    prior_factor,
)
from ml.experiments.counterfactual import CYCLE_GRID_ON, CounterfactualModel, TMixture  # noqa: E402
from ml.experiments.effect import fit_step  # noqa: E402

GITHUB = ROOT.parent / "shared" / "data" / "github-status" / "weekly_counts.csv"
ALPHA = 0.05
HORIZON = 8
STEP = 4  # weeks between window starts (half the horizon, as the scorer steps back)
SHIFTS = (1.0, 2.0)
PRIOR_STRENGTHS = (2.5, 5.0, 10.0, 20.0)  # candidates for ml.experiments.calibration.PRIOR_STRENGTH
TODAY = CounterfactualModel(r_grid=(0.0,), cycle_grid=(0.0,))  # before local trends and pooled calibration
OURS = CounterfactualModel()
#: The same model with the opt-in stochastic cycle; its prior factor is learned here on the tuning split.
CYCLE = CounterfactualModel(cycle_grid=CYCLE_GRID_ON)

log = logging.getLogger("bench_calibration")


# ---------------------------------------------------------------------------------------------------------------
# Real series
# ---------------------------------------------------------------------------------------------------------------


def load_series() -> dict[str, dict[str, np.ndarray]]:
    """Indicator -> series name -> values (real data only)."""
    import statsmodels.datasets as sd

    groups: dict[str, dict[str, np.ndarray]] = {}
    if GITHUB.exists():
        g = pd.read_csv(GITHUB)
        groups["github incidents"] = {
            c: g[c].to_numpy(dtype=float) for c in ("total", "impact_none", "impact_minor", "impact_major")
        }
    else:
        print(f"(no GitHub series: {GITHUB} not found)")
    co2 = sd.co2.load_pandas().data["co2"].interpolate().bfill()
    groups["co2 weekly"] = {"co2": co2.to_numpy(dtype=float)}
    groups["elnino monthly"] = {"sst": sd.elnino.load_pandas().data.iloc[:, 1:].to_numpy(dtype=float).ravel()}
    groups["sunspots yearly"] = {"sunspots": sd.sunspots.load_pandas().data["SUNACTIVITY"].to_numpy(float)}
    groups["nile yearly"] = {"nile": sd.nile.load_pandas().data["volume"].to_numpy(dtype=float)}
    m = sd.macrodata.load_pandas().data
    for name, cols in (
        ("macro real", ("realgdp", "realcons", "realinv", "realgovt", "realdpi")),
        ("macro nominal", ("cpi", "m1")),
        ("macro rates", ("tbilrate", "unemp", "infl", "realint")),
    ):
        groups[name] = {c: m[c].to_numpy(dtype=float) for c in cols}
    return groups


# ---------------------------------------------------------------------------------------------------------------
# Windows
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class Window:
    group: str
    series: str
    end: int  # index of the first post week
    tune: bool  # post-period ends in the first half of the series (tuning split)
    report: bool  # post-period starts in the second half (reporting split)
    pre: np.ndarray
    post: np.ndarray
    sd: float
    z: float
    nonstationary: bool
    mix: TMixture  # the step estimator's counterfactual mean (ours)
    fc: TMixture  # the forecast comparison's (before)
    fc_z: float
    today: TMixture
    cyc: TMixture
    cyc_z: float
    cyc_nonstationary: bool
    sd_detrended: float
    f0: float = 1.0
    fc_f0: float = 1.0


def window_ends(n: int, pre: int, max_windows: int) -> np.ndarray:
    ends = np.arange(pre, n - HORIZON + 1, STEP)
    if ends.size > max_windows:
        ends = ends[np.unique(np.linspace(0, ends.size - 1, max_windows).round().astype(int))]
    return ends


def cut_windows(
    groups: dict[str, dict[str, np.ndarray]], pre: int, controls: bool, max_windows: int
) -> Iterator[Window]:
    for group, members in groups.items():
        names = list(members)
        if controls and len(names) < 3:
            continue
        for i, name in enumerate(names):
            y = members[name]
            X = None
            if controls:
                X = np.column_stack([members[names[(i + k) % len(names)]] for k in (1, 2)])
            n = y.shape[0]
            for e in window_ends(n, pre, max_windows):
                a, b = y[e - pre : e], y[e : e + HORIZON]
                if np.ptp(a) == 0:
                    continue
                Xa = None if X is None else X[e - pre : e]
                Xb = None if X is None else X[e : e + HORIZON]
                t = np.arange(e - pre, e + HORIZON, dtype=float)
                try:
                    fc_fit = OURS.clone().fit(a, Xa, t[:pre])
                    old = TODAY.clone().fit(a, Xa, t[:pre])
                    _, mix = fit_step(OURS.clone(), a, b, Xa, Xb, t[:pre], t[pre:])
                except Exception as exc:  # a control constant over the window: no placebo here
                    log.debug("skip %s/%s at %d: %s", group, name, e, exc)
                    continue
                fc = fc_fit.predict_mean(t[pre:], Xb)
                try:  # the opt-in cycle can find a grid point's whitened controls collinear: its row uses ours
                    cyc = CYCLE.clone().fit(a, Xa, t[:pre])
                    _, cyc_mix = fit_step(CYCLE.clone(), a, b, Xa, Xb, t[:pre], t[pre:])
                except Exception as exc:
                    log.debug("cycle falls back at %s/%s %d: %s", group, name, e, exc)
                    cyc, cyc_mix = fc_fit, mix
                trend = np.polyval(np.polyfit(np.arange(pre), a, 1), np.arange(pre))
                yield Window(
                    group=group,
                    series=name,
                    end=int(e),
                    tune=e + HORIZON <= n // 2,
                    report=e >= n // 2,
                    pre=a,
                    post=b,
                    sd=float(np.std(a, ddof=1)),
                    z=normal_score(float(mix.cdf(float(b.mean())))),
                    nonstationary=is_nonstationary(fc_fit.noise_summary()),  # pre-period alone, as the scorer
                    mix=mix,
                    fc=fc,
                    fc_z=normal_score(float(fc.cdf(float(b.mean())))),
                    today=old.predict_mean(t[pre:], Xb),
                    cyc=cyc_mix,
                    cyc_z=normal_score(float(cyc_mix.cdf(float(b.mean())))),
                    cyc_nonstationary=is_nonstationary(cyc.noise_summary()),
                    sd_detrended=float(np.std(a - trend, ddof=2)),
                )


def score_of(w: Window, kind: str) -> float:
    return {"ours": w.z, "cycle": w.cyc_z, "forecast": w.fc_z}[kind]


def pools(windows: list[Window], kind: str = "ours") -> list[list[float]]:
    """For each window, the placebo scores the scorer would pool: same indicator, post ending before start."""
    by_group: dict[str, list[Window]] = defaultdict(list)
    for w in windows:
        by_group[w.group].append(w)
    out = []
    for w in windows:
        ranked: list[tuple[int, float]] = []
        for s in {v.series for v in by_group[w.group]}:
            earlier = sorted(
                (v for v in by_group[w.group] if v.series == s and v.end + HORIZON <= w.end),
                key=lambda v: -v.end,
            )
            ranked += [(rank, score_of(v, kind)) for rank, v in enumerate(earlier)]
        ranked.sort(key=lambda r: r[0])
        out.append([z for _, z in ranked[:MAX_PLACEBOS]])
    return out


# ---------------------------------------------------------------------------------------------------------------
# Figures
# ---------------------------------------------------------------------------------------------------------------


def p_value(mix: TMixture, x: float) -> float:
    F = float(mix.cdf(x))
    return 2.0 * min(F, 1.0 - F)


def baseline_p(pre: np.ndarray, post: np.ndarray) -> tuple[float, float]:
    if np.ptp(np.concatenate([pre, post])) == 0:
        return 1.0, 1.0
    welch = float(stats.ttest_ind(pre, post, equal_var=False).pvalue)
    mw = float(stats.mannwhitneyu(pre, post, alternative="two-sided").pvalue)
    return (1.0 if np.isnan(welch) else welch), mw


def figures(windows: list[Window], factors: dict[str, list[float]]) -> dict[str, dict[str, float]]:
    """Per method: false-call rate, coverage of 0 by the 95% interval, power at +1 / +2 sd."""
    out: dict[str, dict[str, float]] = {}
    calls: dict[str, dict[float, list[bool]]] = defaultdict(lambda: defaultdict(list))
    for i, w in enumerate(windows):
        obs = float(w.post.mean())
        # -2: a shift of 2 sd of the pre-period after removing its linear trend (a stricter reading of "2 sd")
        for shift, delta in ((0.0, 0.0), *((s, s * w.sd) for s in SHIFTS), (-2.0, 2.0 * w.sd_detrended)):
            x = obs + delta
            for name, fs in factors.items():
                mix = w.cyc if "cycle" in name else w.fc if "forecast" in name else w.mix
                calls[name][shift].append(p_value(mix.inflate(fs[i]), x) < ALPHA)
            calls["today's scorer"][shift].append(p_value(w.today, x) < ALPHA)
            welch, mw = baseline_p(w.pre, w.post + delta)
            calls["Welch t-test"][shift].append(welch < ALPHA)
            calls["Mann-Whitney"][shift].append(mw < ALPHA)
    for name, by_shift in calls.items():
        fpr = float(np.mean(by_shift[0.0]))
        out[name] = {"fpr": fpr, "coverage": 1.0 - fpr, "power2dt": float(np.mean(by_shift[-2.0]))}
        for s in SHIFTS:
            out[name][f"power{s:g}"] = float(np.mean(by_shift[s]))
    return out


def fit_priors(windows: list[Window], kind: str = "ours") -> dict[bool, float]:
    """f0 by non-stationarity on tuning windows: the weighted (1 - alpha) quantile of |z| over z_crit.

    Each indicator weighs the same, whatever its number of windows.
    """
    z_crit = float(stats.norm.ppf(1 - ALPHA / 2))
    out = {}
    for ns in (False, True):
        flag = {"ours": "nonstationary", "cycle": "cyc_nonstationary", "forecast": "nonstationary"}[kind]
        ws = [w for w in windows if w.tune and getattr(w, flag) == ns]
        if not ws:
            out[ns] = 1.0
            continue
        counts: dict[str, int] = defaultdict(int)
        for w in ws:
            counts[w.group] += 1
        z = np.array([abs(score_of(w, kind)) for w in ws])
        wt = np.array([1.0 / counts[w.group] for w in ws])
        order = np.argsort(z)
        cum = np.cumsum(wt[order]) / wt.sum()
        q = float(z[order][np.searchsorted(cum, 1 - ALPHA)])
        out[ns] = max(1.0, q / z_crit)
    return out


def run_config(
    groups: dict[str, dict[str, np.ndarray]], pre: int, controls: bool, max_windows: int, fit_prior: bool
) -> tuple[list[str], dict[str, float]]:
    t = time.perf_counter()
    windows = list(cut_windows(groups, pre, controls, max_windows))
    learned, learned_cyc, learned_fc = (fit_priors(windows, k) for k in ("ours", "cycle", "forecast"))
    for w in windows:
        w.f0 = prior_factor(pre, controls=controls, nonstationary=w.nonstationary)
        w.fc_f0 = prior_factor(pre, controls=controls, nonstationary=w.nonstationary, estimator="forecast")
    pool, cyc_pool, fc_pool = pools(windows), pools(windows, "cycle"), pools(windows, "forecast")
    rep = [i for i, w in enumerate(windows) if w.report]
    rw = [windows[i] for i in rep]
    factors = {
        "ours (pooled placebos + prior)": [
            calibrated_factor(pool[i], alpha=ALPHA, prior=windows[i].f0) for i in rep
        ],
        "ours, cold start (prior only)": [calibrated_factor([], alpha=ALPHA, prior=w.f0) for w in rw],
        "ours, model interval (no calibration)": [1.0] * len(rw),
        "forecast comparison (before)": [
            calibrated_factor(fc_pool[i], alpha=ALPHA, prior=windows[i].fc_f0) for i in rep
        ],
        "with cycle (opt-in): pooled + its prior": [
            calibrated_factor(cyc_pool[i], alpha=ALPHA, prior=learned_cyc[windows[i].cyc_nonstationary])
            for i in rep
        ],
    }
    label = f"{'with 2 controls' if controls else 'no controls'}, {pre} pre / {HORIZON} post"
    lines = [
        f"== {label}: {len(rw)} reported windows ({len({w.group for w in rw})} indicators,"
        f" {len({(w.group, w.series) for w in rw})} series), {sum(w.tune for w in windows)} tuning windows;"
        f" {time.perf_counter() - t:.0f} s"
    ]
    lines.append(
        f"   prior f0 learned on the tuning split: stationary {learned[False]:.2f}, non-stationary"
        f" {learned[True]:.2f} (forecast comparison {learned_fc[False]:.2f}, {learned_fc[True]:.2f});"
        f" in ml/experiments/calibration.py at {pre} weeks:"
        f" {prior_factor(pre, controls=controls, nonstationary=False):.2f},"
        f" {prior_factor(pre, controls=controls, nonstationary=True):.2f}; with the cycle (learned, used here)"
        f" {learned_cyc[False]:.2f}, {learned_cyc[True]:.2f}"
    )
    summary: dict[str, float] = {}
    for scope, idx in (
        ("all real series", list(range(len(rw)))),
        ("GitHub only", [i for i, w in enumerate(rw) if w.group == "github incidents"]),
    ):
        if not idx:
            continue
        fig = figures([rw[i] for i in idx], {k: [v[i] for i in idx] for k, v in factors.items()})
        lines.append(f"   {scope} ({len(idx)} windows)")
        lines.append(
            f"     {'method':40s} {'false calls':>11s} {'95% cover':>9s} {'power +1sd':>10s} {'power +2sd':>10s}"
            f" {'+2 detrended sd':>15s}"
        )
        for name, f in fig.items():
            lines.append(
                f"     {name:40s} {f['fpr']:11.3f} {f['coverage']:9.3f} {f['power1']:10.3f} {f['power2']:10.3f}"
                f" {f['power2dt']:15.3f}"
            )
            if scope == "all real series" and name.startswith("ours (pooled"):
                summary = f
    by_group: dict[str, list[int]] = defaultdict(list)
    for i, w in enumerate(rw):
        by_group[w.group].append(i)
    for label, key in (
        ("ours", "ours (pooled placebos + prior)"),
        ("before", "forecast comparison (before)"),
    ):
        fs = factors[key]
        parts = []
        for g, idx in by_group.items():
            mixes = [(rw[i].mix if label == "ours" else rw[i].fc).inflate(fs[i]) for i in idx]
            obs = [float(rw[i].post.mean()) for i in idx]
            fpr = np.mean([p_value(m, o) < ALPHA for m, o in zip(mixes, obs, strict=True)])
            pw2 = np.mean(
                [p_value(m, o + 2 * rw[i].sd) < ALPHA for m, o, i in zip(mixes, obs, idx, strict=True)]
            )
            parts.append(f"{g} {fpr:.2f} / {pw2:.2f} (n={len(idx)})")
        lines.append(f"   {label}, false calls / power +2sd by indicator: " + "; ".join(parts))
    if fit_prior:
        lines.append(f"   --fit-prior: PRIOR_FACTORS[({controls}, ns)] at {pre} weeks = {learned}")
        tune = [i for i, w in enumerate(windows) if w.tune and pool[i]]
        tw = [windows[i] for i in tune]
        for k0 in PRIOR_STRENGTHS:
            fs = [
                calibrated_factor(pool[i], alpha=ALPHA, prior=windows[i].f0, prior_strength=k0) for i in tune
            ]
            f = figures(tw, {"ours": fs})["ours"]
            lines.append(
                f"   --fit-prior: prior strength {k0:g} on {len(tw)} tuning windows with placebos: false calls"
                f" {f['fpr']:.3f}, power +1sd {f['power1']:.3f}, +2sd {f['power2']:.3f}"
            )
    return lines, summary


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="at most 15 windows per series")
    parser.add_argument("--max-windows", type=int, default=60, help="most windows per series (default 60)")
    parser.add_argument("--fit-prior", action="store_true", help="print the prior factors learned on tuning")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    max_windows = 15 if args.quick else args.max_windows
    t0 = time.perf_counter()
    groups = load_series()
    print(f"prior factors in use (30 w, 52 w) by (controls, non-stationary): {PRIOR_FACTORS}")
    print(f"forecast comparison (before): {FORECAST_PRIOR_FACTORS}")
    targets = None
    calibrated = []
    for controls in (False, True):
        for pre in (30, 52):
            lines, summary = run_config(groups, pre, controls, max_windows, args.fit_prior)
            print("\n".join(lines), flush=True)
            calibrated.append(0.03 <= summary["fpr"] <= 0.07 and summary["coverage"] >= 0.93)
            if not controls and pre == 30:
                targets = summary
    print(
        f"\nours: false calls in [0.03, 0.07] and coverage >= 0.93 in {sum(calibrated)} of {len(calibrated)}"
        " settings (all real series)"
    )
    if targets:
        ok = 0.03 <= targets["fpr"] <= 0.07 and targets["coverage"] >= 0.93 and targets["power2"] >= 0.80
        print(
            f"\ntargets (no controls, 30 pre-weeks, all real series): false calls {targets['fpr']:.3f} in"
            f" [0.03, 0.07], coverage {targets['coverage']:.3f} >= 0.93, power +2sd {targets['power2']:.3f}"
            f" >= 0.80: {'met' if ok else 'NOT met'}"
        )
    print(f"alpha = {ALPHA}; total time {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
