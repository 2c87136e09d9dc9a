"""Calibration harness for experiment impact scoring (``ml.experiments.impact``).

Measures, for our counterfactual method and for two naive baselines (Welch t-test and Mann-Whitney U on the
pre- vs post-period values, both treating weeks as independent):

* A/A false-positive rate at alpha 0.05 (target 0.03-0.07) on simulated experiments with no effect. Noise is in
  units of its own SD: AR(1) with phi ~ U(0, 0.8); random-walk level drift (weekly SD ~ U(0.05, 0.25));
  linear trend (slope ~ U(-0.02, 0.02) per week) and yearly seasonality (amplitude ~ U(0, 0.7), random phase);
  and a family where treated and 2-3 control series share trend, seasonality and drift (each with its own
  AR(1) noise). 20-60 pre weeks, 6-12 post weeks.
* Coverage of the true average effect by the 95% interval (target >= 0.93), same simulations with an effect
  added to the post-period (a step or a 3-week ramp, size ~ U(-3, 3) SDs). A step moves the estimate (the
  step's coefficient, fitted on both periods) and its interval by exactly its size, so for steps coverage equals
  1 - FPR on the same draws; a ramp is scored again with the effect in the data.
* Power on AR(1) phi = 0.5 noise, 8 post weeks, level shifts of 0.5, 1, 2 and 3 SDs (target >= 0.80 at 2 SDs),
  for 30 and 52 pre weeks.
* Placebo interventions (no effect) in real data: 200 windows of 30 pre + 8 post weeks spread evenly over
  ``../shared/data/github-status/weekly_counts.csv`` (column ``total``), and windows with 104 weeks of history
  (fitted on the last 52, older weeks used for placebo calibration). Skipped when the file is absent.
* The sample data (``data/sample/indicators.csv``) when present: placebo windows free of known shifts (30 pre +
  8 post weeks, controls = other teams of the same indicator), and the 12 sample experiments scored end to end
  against ``truth/experiments.csv``.

Every window here is scored alone (no other series of its indicator, little or no older history), so the
interval is calibrated by the prior learned on real series (``ml.experiments.calibration``; for the step
estimator its factors are close to 1); ``bench/bench_calibration.py`` measures the calibration that pools
placebo windows across real series.

    python bench/bench_impact.py [--quick] [--seed 7]
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ml.experiments.impact import EffectEstimate, ImpactScorer, estimate_effect  # noqa: E402
from ml.io.schemas import Experiment  # noqa: E402

GITHUB = ROOT.parent / "shared" / "data" / "github-status" / "weekly_counts.csv"
SAMPLE = ROOT / "data" / "sample"
ALPHA = 0.05


# ---------------------------------------------------------------------------------------------------------------
# Simulation
# ---------------------------------------------------------------------------------------------------------------


def ar1(rng: np.random.Generator, m: int, phi: float) -> np.ndarray:
    """Stationary AR(1) with unit marginal SD."""
    e = rng.normal(size=m) * np.sqrt(1 - phi**2)
    x = np.empty(m)
    x[0] = rng.normal()
    for i in range(1, m):
        x[i] = phi * x[i - 1] + e[i]
    return x


@dataclass
class Sim:
    y: np.ndarray
    n: int
    X: np.ndarray | None = None


def simulate(rng: np.random.Generator, family: str, n: int, h: int) -> Sim:
    """One experiment with no effect: `n` pre and `h` post weeks of a series in noise-SD units."""
    m = n + h
    t = np.arange(m, dtype=float)
    common = np.zeros(m)
    if family in ("drift", "all", "controls"):
        common += np.cumsum(rng.normal(size=m)) * rng.uniform(0.05, 0.25)
    if family in ("trend+season", "all", "controls"):
        common += rng.uniform(-0.02, 0.02) * t
        common += rng.uniform(0, 0.7) * np.sin(2 * np.pi * t / 52 + rng.uniform(0, 2 * np.pi))
    y = 10.0 + common + ar1(rng, m, rng.uniform(0, 0.8))
    X = None
    if family == "controls":
        k = int(rng.integers(2, 4))
        X = np.column_stack(
            [
                rng.uniform(5, 15) + rng.uniform(0.7, 1.3) * common + ar1(rng, m, rng.uniform(0, 0.8))
                for _ in range(k)
            ]
        )
    return Sim(y=y, n=n, X=X)


def fit_sim(sim: Sim, **kw: object) -> EffectEstimate:
    n = sim.n
    Xp = None if sim.X is None else sim.X[:n]
    Xo = None if sim.X is None else sim.X[n:]
    return estimate_effect(sim.y[:n], sim.y[n:], Xp, Xo, alpha=ALPHA, **kw)


def rejects_at(est: EffectEstimate, shift: float) -> bool:
    """Would the test reject if `shift` were added to every post week? (The step's coefficient would move by
    exactly `shift`, its distribution otherwise unchanged; the forecast comparison's fit is pre-period only.)"""
    mix = est.mixture
    F = float(mix.cdf(est.observed_mean + shift))
    return 2 * min(F, 1 - F) < ALPHA


def baselines(pre: np.ndarray, post: np.ndarray) -> tuple[float, float]:
    """p-values of the Welch t-test and the Mann-Whitney U test (independent weeks assumed)."""
    if np.ptp(np.concatenate([pre, post])) == 0:
        return 1.0, 1.0
    welch = float(stats.ttest_ind(pre, post, equal_var=False).pvalue)
    mw = float(stats.mannwhitneyu(pre, post, alternative="two-sided").pvalue)
    return (1.0 if np.isnan(welch) else welch), mw


# ---------------------------------------------------------------------------------------------------------------
# Report table
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class Row:
    check: str
    setting: str
    n: int
    ours: float
    welch: float | None = None
    mw: float | None = None
    target: str = ""
    ok: bool | None = None
    extra: dict[str, float] = field(default_factory=dict)


def fmt(v: float | None) -> str:
    return "" if v is None else f"{v:.3f}"


def print_table(rows: list[Row]) -> None:
    head = ("check", "setting", "n", "ours", "Welch", "Mann-Whitney", "target", "pass")
    body = [
        (
            r.check,
            r.setting,
            str(r.n),
            fmt(r.ours),
            fmt(r.welch),
            fmt(r.mw),
            r.target,
            "" if r.ok is None else ("yes" if r.ok else "NO"),
        )
        for r in rows
    ]
    widths = [max(len(x) for x in col) for col in zip(head, *body, strict=True)]
    line = "  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True))
    print(line)
    print("-" * len(line))
    for b in body:
        print("  ".join(x.ljust(w) for x, w in zip(b, widths, strict=True)))


def fpr_row(check: str, setting: str, p_ours: list[float], p_w: list[float], p_mw: list[float]) -> Row:
    ours = float(np.mean(np.asarray(p_ours) < ALPHA))
    return Row(
        check,
        setting,
        len(p_ours),
        ours,
        float(np.mean(np.asarray(p_w) < ALPHA)),
        float(np.mean(np.asarray(p_mw) < ALPHA)),
        "0.03-0.07",
        0.03 <= ours <= 0.07,
    )


# ---------------------------------------------------------------------------------------------------------------
# Sections
# ---------------------------------------------------------------------------------------------------------------

FAMILIES = {
    "AR(1)": "ar",
    "AR(1) + level drift": "drift",
    "AR(1) + trend + season": "trend+season",
    "AR(1) + drift + trend + season": "all",
    "same, with 2-3 controls": "controls",
}


def section_simulated(rng: np.random.Generator, n_sims: int) -> list[Row]:
    rows: list[Row] = []
    cover_rows: list[Row] = []
    pooled: dict[str, list[float]] = {"ours": [], "welch": [], "mw": [], "cover": []}
    for label, family in FAMILIES.items():
        p_ours, p_w, p_mw, covered = [], [], [], []
        for _ in range(n_sims):
            n, h = int(rng.integers(20, 61)), int(rng.integers(6, 13))
            sim = simulate(rng, family, n, h)
            est = fit_sim(sim)
            p_ours.append(est.p_value)
            w, mw = baselines(sim.y[: sim.n], sim.y[sim.n :])
            p_w.append(w)
            p_mw.append(mw)
            # coverage of a true effect added to the post-period (step or 3-week ramp)
            size = rng.uniform(-3, 3)
            profile = np.ones(h) if rng.random() < 0.5 else np.minimum(np.arange(1, h + 1) / 3.0, 1.0)
            effect = size * profile
            if profile[0] == 1.0:  # a step moves the estimate and its interval by exactly its size
                lo, hi = est.ci_low + size, est.ci_high + size
            else:  # a ramp: scored again with the effect in the data
                y = sim.y.copy()
                y[sim.n :] += effect
                ramped = fit_sim(Sim(y=y, n=sim.n, X=sim.X))
                lo, hi = ramped.ci_low, ramped.ci_high
            covered.append(lo <= float(np.mean(effect)) <= hi)
        rows.append(fpr_row("A/A FPR", label, p_ours, p_w, p_mw))
        cov = float(np.mean(covered))
        cover_rows.append(Row("95% CI coverage", label, n_sims, cov, target=">= 0.93", ok=cov >= 0.93))
        pooled["ours"] += p_ours
        pooled["welch"] += p_w
        pooled["mw"] += p_mw
        pooled["cover"] += covered
    rows.append(fpr_row("A/A FPR", "all simulated (pooled)", pooled["ours"], pooled["welch"], pooled["mw"]))
    cov = float(np.mean(pooled["cover"]))
    cover_rows.append(
        Row(
            "95% CI coverage",
            "all simulated (pooled)",
            len(pooled["cover"]),
            cov,
            target=">= 0.93",
            ok=cov >= 0.93,
        )
    )
    return rows + cover_rows


def section_power(rng: np.random.Generator, n_sims: int) -> list[Row]:
    rows: list[Row] = []
    for n in (30, 52):
        ests = []
        for _ in range(n_sims):
            ests.append(fit_sim(Sim(y=ar1(rng, n + 8, 0.5), n=n)))
        for shift in (0.5, 1.0, 2.0, 3.0):
            power = float(np.mean([rejects_at(e, shift) for e in ests]))
            target, ok = (">= 0.80", power >= 0.80) if shift == 2.0 else ("", None)
            rows.append(
                Row(
                    f"power, {shift:g} SD shift",
                    f"AR(1) phi=0.5, {n} pre / 8 post",
                    n_sims,
                    power,
                    None,
                    None,
                    target,
                    ok,
                )
            )
    return rows


def placebo_rows(
    label: str, windows: list[tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]]
) -> Row:
    p_ours, p_w, p_mw = [], [], []
    for pre, post, Xp, Xo in windows:
        p_ours.append(estimate_effect(pre, post, Xp, Xo, alpha=ALPHA).p_value)
        w, mw = baselines(pre[-30:], post)
        p_w.append(w)
        p_mw.append(mw)
    return fpr_row("placebo FPR", label, p_ours, p_w, p_mw)


def section_github(n_windows: int) -> list[Row]:
    """Placebo dates spread evenly over the series (random starts clump; evenly spread ones vary less)."""
    if not GITHUB.exists():
        print(f"(skipping real GitHub placebos: {GITHUB} not found)")
        return []
    y = pd.read_csv(GITHUB)["total"].to_numpy(dtype=float)
    rows = []
    for pre_len, label in (
        (30, "GitHub weekly total, 30 pre / 8 post"),
        (104, "GitHub total, 104 weeks history / 8 post"),
    ):
        starts = np.unique(np.linspace(0, len(y) - pre_len - 8, n_windows).round().astype(int))
        windows = []
        for s in starts:
            pre, post = y[s : s + pre_len], y[s + pre_len : s + pre_len + 8]
            if np.ptp(pre[-30:]) > 0:
                windows.append((pre, post, None, None))
        rows.append(placebo_rows(label, windows))
    return rows


def load_sample() -> tuple[pd.DataFrame, pd.DataFrame] | None:
    path = SAMPLE / "indicators.csv"
    shifts_path = SAMPLE / "truth" / "shifts.csv"
    if not path.exists() or not shifts_path.exists():
        print(f"(skipping the sample data: {path} not found)")
        return None
    return pd.read_csv(path, parse_dates=["ds"]), pd.read_csv(shifts_path, parse_dates=["date"])


def section_sample_placebos(
    rng: np.random.Generator, n_windows: int, data: pd.DataFrame, shifts: pd.DataFrame
) -> list[Row]:
    data = data.assign(series=data["indicator"] + "/team=" + data["team"])
    wide = data.pivot(index="ds", columns="series", values="y").sort_index()
    dates = wide.index
    pre_len, h = 30, 8
    candidates = []
    for sid in wide.columns:
        indicator = sid.split("/")[0]
        others = [c for c in wide.columns if c.startswith(indicator + "/") and c != sid]
        for s in range(0, len(dates) - pre_len - h + 1, 4):
            lo, hi = dates[s], dates[s + pre_len + h - 1]
            touched = set(shifts.loc[(shifts["date"] > lo) & (shifts["date"] <= hi), "series"])
            if sid in touched:
                continue
            controls = [c for c in others if c not in touched][:3]
            candidates.append((sid, s, controls))
    pick = rng.choice(len(candidates), size=min(n_windows, len(candidates)), replace=False)
    with_c, without_c = [], []
    for i in pick:
        sid, s, controls = candidates[int(i)]
        y = wide[sid].to_numpy()
        pre, post = y[s : s + pre_len], y[s + pre_len : s + pre_len + h]
        X = wide[controls].to_numpy() if controls else None
        Xp = None if X is None else X[s : s + pre_len]
        Xo = None if X is None else X[s + pre_len : s + pre_len + h]
        with_c.append((pre, post, Xp, Xo))
        without_c.append((pre, post, None, None))
    return [
        placebo_rows("sample indicators, 30/8, with controls", with_c),
        placebo_rows("sample indicators, 30/8, no controls", without_c),
    ]


def section_sample_experiments(data: pd.DataFrame) -> list[Row]:
    import yaml

    exp_path, truth_path = SAMPLE / "experiments.yaml", SAMPLE / "truth" / "experiments.csv"
    if not exp_path.exists() or not truth_path.exists():
        print("(skipping the sample experiments: experiments.yaml or truth/experiments.csv not found)")
        return []
    experiments = [Experiment.model_validate(e) for e in yaml.safe_load(exp_path.read_text())]
    truth = pd.read_csv(truth_path).set_index("id")
    covered, correct, lines = [], [], []
    for ex in experiments:
        r = ImpactScorer(alpha=ALPHA).score(ex, data)
        true = float(truth.loc[ex.id, "true_effect"])
        is_null = str(truth.loc[ex.id, "is_null"]).lower() == "true"
        want = (
            "inconclusive"
            if is_null
            else ("improved" if (true < 0) == (ex.desired_direction == "decrease") else "worsened")
        )
        covered.append(r.ci_low <= true <= r.ci_high)
        correct.append(r.verdict == want)
        did = r.diagnostics.did.estimate if r.diagnostics.did else float("nan")
        lines.append(
            f"  {ex.id}  true {true:+8.3f}  est {r.effect:+8.3f}  CI [{r.ci_low:+8.3f}, {r.ci_high:+8.3f}]"
            f"  p {r.p_value:.3f}  DiD {did:+8.3f}  {r.verdict:12s} (want {want})"
        )
    print("Sample experiments scored end to end:")
    print("\n".join(lines))
    print()
    return [
        Row("sample experiments: CI covers truth", "12 experiments", len(covered), float(np.mean(covered))),
        Row("sample experiments: verdict right", "12 experiments", len(correct), float(np.mean(correct))),
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer simulations (about 1/5)")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    scale = 0.2 if args.quick else 1.0
    n_sims, n_power, n_windows = int(300 * scale), int(400 * scale), int(200 * scale)
    rng = np.random.default_rng(args.seed)
    t0 = time.perf_counter()
    rows: list[Row] = []
    sections: list[tuple[str, Callable[[], list[Row]]]] = [
        ("simulated", lambda: section_simulated(rng, n_sims)),
        ("power", lambda: section_power(rng, n_power)),
        ("github", lambda: section_github(n_windows)),
    ]
    sample = load_sample()
    if sample is not None:
        sections.append(("sample placebos", lambda: section_sample_placebos(rng, n_windows, *sample)))
        sections.append(("sample experiments", lambda: section_sample_experiments(sample[0])))
    for name, run in sections:
        t = time.perf_counter()
        rows += run()
        print(f"[{name}: {time.perf_counter() - t:.1f} s]", file=sys.stderr)
    print_table(rows)
    print(
        f"\nalpha = {ALPHA}; 'ours' = ml.impact.estimate_effect (p-value, or coverage / power as the check says)."
    )
    print(f"total time {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
