"""Calibration of experiment verdicts: pooled placebo windows, the learned prior, what the result records."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from ml.errors import InputError
from ml.experiments.calibration import (
    PlaceboWindow,
    calibrated_factor,
    is_nonstationary,
    prior_factor,
)
from ml.experiments.counterfactual import CounterfactualModel
from ml.experiments.effect import estimate_effect
from ml.experiments.impact import ImpactResult, ImpactScorer
from ml.io.schemas import Experiment, series_key

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "data" / "sample"
START = dt.date(2025, 1, 6)  # a Monday
# a model that ignores autocorrelation: badly over-confident on AR(1) noise, so calibration has work to do
WHITE_NOISE = CounterfactualModel(phi_grid=(0.0,), q_grid=(0.0,), r_grid=(0.0,), cycle_grid=(0.0,))


def ar1(rng: np.random.Generator, m: int, phi: float) -> np.ndarray:
    e = rng.normal(size=m) * np.sqrt(1 - phi**2)
    x = np.empty(m)
    x[0] = rng.normal()
    for i in range(1, m):
        x[i] = phi * x[i - 1] + e[i]
    return x


# ---------------------------------------------------------------------------------------------------------------
# The factor
# ---------------------------------------------------------------------------------------------------------------


def test_factor_is_the_prior_without_placebos_and_never_narrows() -> None:
    assert calibrated_factor([], alpha=0.05, prior=1.7) == pytest.approx(1.7)
    assert calibrated_factor([], alpha=0.05, prior=0.6) == 1.0
    rng = np.random.default_rng(0)
    calm = rng.normal(0.0, 0.5, size=200)  # placebos say the model is too wide: kept as it is, not narrowed
    assert calibrated_factor(calm, alpha=0.05, prior=1.0) == 1.0


def test_factor_tracks_the_placebo_spread_and_the_prior_weighs_less_with_more_placebos() -> None:
    rng = np.random.default_rng(1)
    wide = rng.normal(0.0, 2.0, size=400)
    assert calibrated_factor(wide, alpha=0.05, prior=1.0) == pytest.approx(2.0, abs=0.25)
    few, many = wide[:10], wide
    f_few = calibrated_factor(few, alpha=0.05, prior=1.0)
    f_many = calibrated_factor(many, alpha=0.05, prior=1.0)
    assert 1.0 <= f_few < f_many  # ten placebos cannot outweigh ten pseudo-placebos of the prior
    with pytest.raises(InputError) as err:
        calibrated_factor(wide, alpha=0.0, prior=1.0)
    assert err.value.field == "alpha"


def test_prior_widens_short_windows_and_nonstationary_series() -> None:
    for controls in (False, True):
        for ns in (False, True):
            assert prior_factor(30, controls=controls, nonstationary=ns) >= prior_factor(
                104, controls=controls, nonstationary=ns
            )
            assert prior_factor(12, controls=controls, nonstationary=ns) >= 1.0
    assert prior_factor(30, controls=False, nonstationary=True) > prior_factor(
        30, controls=False, nonstationary=False
    )
    assert not is_nonstationary({"p_nonstationary": 0.7, "prior_nonstationary": 0.675})
    assert is_nonstationary({"p_nonstationary": 0.95, "prior_nonstationary": 0.675})


# ---------------------------------------------------------------------------------------------------------------
# Calibration on simulated null series
# ---------------------------------------------------------------------------------------------------------------


def null_false_calls(rng: np.random.Generator, n_exp: int, pooled: bool, max_placebos: int = 30) -> float:
    """Share of no-effect experiments (30 pre, 8 post weeks of AR(1) phi 0.7) called significant at 0.05.

    With `pooled`, each experiment borrows placebo windows from three untreated series of the same indicator
    (120 weeks each, before the start); the prior is switched off (factor 1) to isolate the placebos.
    """
    calls = 0
    for _ in range(n_exp):
        y = ar1(rng, 38, 0.7)
        pool = []
        if pooled:
            t = np.arange(-120.0, 0.0)
            pool = [PlaceboWindow(f"s{k}", ar1(rng, 120, 0.7), None, t) for k in range(3)]
        est = estimate_effect(
            y[:30],
            y[30:],
            model=WHITE_NOISE,
            pool=pool,
            prior=1.0,
            max_placebos=max_placebos,
            t_pre=np.arange(0.0, 30.0),
        )
        assert est.calibration.n_placebos <= max_placebos
        calls += est.p_value < 0.05
    return calls / n_exp


def test_pooled_placebos_bring_false_calls_near_nominal_with_a_bounded_number_of_placebos() -> None:
    alone = null_false_calls(np.random.default_rng(2), 200, pooled=False)
    pooled = null_false_calls(np.random.default_rng(2), 200, pooled=True)
    assert alone >= 0.25, alone  # the over-confident model alone: about 0.4
    # nominal 0.05; ten pseudo-placebos of a prior at 1 hold the factor back a little: 0.08-0.11 over seeds, for
    # the step estimator and the forecast comparison alike
    assert 0.01 <= pooled <= 0.11, pooled


# ---------------------------------------------------------------------------------------------------------------
# The scorer records the calibration it used
# ---------------------------------------------------------------------------------------------------------------


def org_frame(rng: np.random.Generator, n_pre: int, n_post: int, teams: tuple[str, ...]) -> pd.DataFrame:
    ds = pd.date_range(START - dt.timedelta(weeks=n_pre), periods=n_pre + n_post, freq="7D")
    parts = [
        pd.DataFrame({"series": series_key("reopens", team=t), "ds": ds, "y": 20.0 + ar1(rng, len(ds), 0.4)})
        for t in teams
    ]
    return pd.concat(parts, ignore_index=True)


def experiment(**kw: object) -> Experiment:
    base: dict[str, object] = {
        "id": "EXP-C",
        "name": "calibration",
        "hypothesis": {"problem": "p", "solution": "s", "metric": "m"},
        "indicator": "reopens",
        "treated": "payments",
        "controls": [],
        "start": START,
        "desired_direction": "decrease",
    }
    base.update(kw)
    return Experiment.model_validate(base)


def test_result_says_which_calibration_was_used_and_why() -> None:
    rng = np.random.default_rng(3)
    org = org_frame(rng, 80, 8, ("payments", "identity", "storage"))
    # the treated series starts 30 weeks before the change; its siblings have 80 weeks of history
    short = org[
        ~(
            (org["series"] == series_key("reopens", team="payments"))
            & (org["ds"] < pd.Timestamp(START) - pd.Timedelta(weeks=30))
        )
    ]
    pooled = ImpactScorer().score(experiment(), short)
    cal = pooled.calibration
    assert cal.method == "pooled placebos"
    assert cal.n_series == 2 and 4 <= cal.n_placebos <= 40
    assert cal.factor >= 1.0 and cal.prior_factor >= 1.0
    assert "placebo window(s) from 2 series" in cal.reason and "30 fitted weeks" in cal.reason
    assert "pooled placebo" in pooled.method
    assert any(n.startswith("calibration: ") for n in pooled.diagnostics.notes)
    assert ImpactResult.model_validate_json(pooled.model_dump_json()) == pooled

    alone = short[short["series"] == series_key("reopens", team="payments")]
    prior = ImpactScorer().score(experiment(), alone).calibration
    assert prior.method == "prior" and prior.n_placebos == 0
    assert prior.factor == pytest.approx(prior_factor(30, controls=False, nonstationary=prior.nonstationary))
    assert "no placebo window" in prior.reason

    off = ImpactScorer(calibrate=False).score(experiment(), alone)
    assert off.calibration.method == "model" and off.calibration.factor == 1.0
    assert (
        off.ci_high - off.ci_low
        <= ImpactScorer().score(experiment(), alone).ci_high
        - ImpactScorer().score(experiment(), alone).ci_low
    )


def test_placebos_end_before_the_start() -> None:
    """A sibling's change after the start (or the treated series' own post weeks) never widens the interval."""
    rng = np.random.default_rng(4)
    org = org_frame(rng, 80, 8, ("payments", "identity"))
    base = ImpactScorer().score(experiment(), org).calibration
    late = org.copy()
    after = (late["series"] == series_key("reopens", team="identity")) & (late["ds"] >= pd.Timestamp(START))
    late.loc[after, "y"] += 50.0
    assert ImpactScorer().score(experiment(), late).calibration == base


# ---------------------------------------------------------------------------------------------------------------
# The sample's verdicts
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_sample_verdicts_are_unchanged() -> None:
    exp_path, truth_path = SAMPLE / "experiments.yaml", SAMPLE / "truth" / "experiments.csv"
    ind_path = SAMPLE / "indicators.csv"
    if not (exp_path.exists() and truth_path.exists() and ind_path.exists()):
        pytest.skip("the sample data is not generated")
    data = pd.read_csv(ind_path)
    data = data.assign(series=data["indicator"] + "/team=" + data["team"])[["series", "ds", "y"]]
    truth = pd.read_csv(truth_path).set_index("id")
    for raw in yaml.safe_load(exp_path.read_text()):
        ex = Experiment.model_validate(raw)
        result = ImpactScorer().score(ex, data)
        true = float(truth.loc[ex.id, "true_effect"])
        if str(truth.loc[ex.id, "is_null"]).lower() == "true":
            want = "inconclusive"
        else:
            want = "improved" if (true < 0) == (ex.desired_direction == "decrease") else "worsened"
        assert result.verdict == want, (ex.id, result.verdict, result.calibration.reason)
        assert result.ci_low <= true <= result.ci_high, ex.id


# ---------------------------------------------------------------------------------------------------------------
# Real series: GitHub status-page incidents per week (read from ../shared, never copied into the repository)
# ---------------------------------------------------------------------------------------------------------------

GITHUB = ROOT.parent / "shared" / "data" / "github-status" / "weekly_counts.csv"


@pytest.mark.slow
def test_github_placebos_borrow_from_the_other_impact_series() -> None:
    """No-effect experiments on the real weekly totals, 30 fitted weeks, no controls, scored end to end."""
    if not GITHUB.exists():
        pytest.skip(f"{GITHUB} not found")
    counts = pd.read_csv(GITHUB, parse_dates=["week_start"])
    data = pd.concat(
        [
            pd.DataFrame(
                {"series": series_key("incidents", team=c), "ds": counts["week_start"], "y": counts[c]}
            )
            for c in ("total", "impact_none", "impact_minor", "impact_major")
        ],
        ignore_index=True,
    )
    n = len(counts)
    starts = np.linspace(n // 2, n - 8, 16).round().astype(int)
    calibrated, model_only, detected = 0, 0, 0
    for s in starts:
        ex = experiment(
            indicator="incidents",
            treated="total",
            start=counts["week_start"].iloc[s].date(),
            end=counts["week_start"].iloc[s + 8].date() if s + 8 < n else None,
        )
        scorer = ImpactScorer(max_pre_weeks=30).fit(ex, data)
        result = scorer.result_
        assert result.calibration.method == "pooled placebos"
        assert result.calibration.n_series >= 3 and result.calibration.n_placebos == 40
        calibrated += result.verdict != "inconclusive"
        # the same window with 2 pre-period standard deviations added to every post week (the fit is pre-only)
        shift = 2.0 * float(np.std(counts["total"].to_numpy()[s - 30 : s], ddof=1))
        F = float(scorer.estimate_.mixture.cdf(result.observed_mean + shift))
        detected += 2.0 * min(F, 1.0 - F) < 0.05
        model_only += (
            ImpactScorer(max_pre_weeks=30, calibrate=False).score(ex, data).verdict != "inconclusive"
        )
    assert calibrated <= 1, calibrated  # 16 placebos at alpha 0.05: expected 0.8 false calls
    assert calibrated <= model_only, (calibrated, model_only, detected)
    assert detected >= 12, detected  # about 0.88 of shifts of 2 sd are found (bench/bench_calibration.py)
