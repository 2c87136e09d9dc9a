"""Experiment impact scoring: calibration under autocorrelation, effect recovery, verdicts, errors, power."""

from __future__ import annotations

import datetime as dt
import io

import numpy as np
import pandas as pd
import pytest

from ml.errors import InputError, NotFittedError, NotFoundError
from ml.experiments.counterfactual import CYCLE_GRID_ON
from ml.experiments.impact import (
    CounterfactualModel,
    ImpactResult,
    ImpactScorer,
    estimate_effect,
    plot_impact,
    verdict_for,
)
from ml.io.schemas import Experiment, series_key

START = dt.date(2025, 1, 6)  # a Monday


def ar1(rng: np.random.Generator, m: int, phi: float) -> np.ndarray:
    """Stationary AR(1) with unit marginal SD."""
    e = rng.normal(size=m) * np.sqrt(1 - phi**2)
    x = np.empty(m)
    x[0] = rng.normal()
    for i in range(1, m):
        x[i] = phi * x[i - 1] + e[i]
    return x


def long_frame(series: dict[str, np.ndarray], first: dt.date) -> pd.DataFrame:
    ds = pd.date_range(first, periods=len(next(iter(series.values()))), freq="7D")
    return pd.concat(
        [pd.DataFrame({"series": sid, "ds": ds, "y": y}) for sid, y in series.items()], ignore_index=True
    )


def experiment(**kw: object) -> Experiment:
    base: dict[str, object] = {
        "id": "EXP-T",
        "name": "test",
        "hypothesis": {"problem": "p", "solution": "s", "metric": "m"},
        "indicator": "reopens",
        "treated": "payments",
        "controls": [],
        "start": START,
        "desired_direction": "decrease",
    }
    base.update(kw)
    return Experiment.model_validate(base)


def frame_for(
    rng: np.random.Generator,
    n_pre: int,
    n_post: int,
    effect: float = 0.0,
    teams: tuple[str, ...] = ("payments",),
    phi: float = 0.5,
    common: np.ndarray | None = None,
) -> pd.DataFrame:
    m = n_pre + n_post
    shared = np.zeros(m) if common is None else common
    out = {}
    for team in teams:
        y = 20.0 + shared + ar1(rng, m, phi)
        if team == "payments":
            y[n_pre:] += effect
        out[series_key("reopens", team=team)] = y
    return long_frame(out, START - dt.timedelta(weeks=n_pre))


# ---------------------------------------------------------------------------------------------------------------
# Calibration: the test must fail for a method that ignores autocorrelation
# ---------------------------------------------------------------------------------------------------------------


def placebo_rejections(rng: np.random.Generator, method: str, n_sims: int = 60, phi: float = 0.7) -> float:
    """Share of A/A placebos (30 pre, 8 post weeks of AR(1) noise, no effect) called significant at 0.05."""
    from scipy import stats

    white_noise = CounterfactualModel(phi_grid=(0.0,), q_grid=(0.0,), r_grid=(0.0,), cycle_grid=(0.0,))
    hits = 0
    for _ in range(n_sims):
        y = ar1(rng, 38, phi)
        pre, post = y[:30], y[30:]
        if method == "welch":
            p = stats.ttest_ind(pre, post, equal_var=False).pvalue
        elif method == "white-noise model":
            p = estimate_effect(pre, post, model=white_noise, calibrate=False).p_value
        else:
            p = estimate_effect(pre, post).p_value
        hits += p < 0.05
    return hits / n_sims


def test_false_positive_rate_stays_low_under_autocorrelation_where_naive_methods_fail() -> None:
    welch = placebo_rejections(np.random.default_rng(1), "welch")
    naive_model = placebo_rejections(np.random.default_rng(1), "white-noise model")
    ours = placebo_rejections(np.random.default_rng(1), "ours")
    assert welch >= 0.25, welch  # independent-weeks t-test: expected about 0.45 at phi = 0.7
    assert naive_model >= 0.2, naive_model  # our own regression with the autocorrelation switched off
    assert ours <= 0.12, ours  # expected about 0.05


def test_interval_covers_a_ramped_effect_and_p_value_matches_interval() -> None:
    rng = np.random.default_rng(4)
    covered, agree = 0, 0
    for _ in range(30):
        y = ar1(rng, 48, 0.5)
        effect = -1.5 * np.minimum(np.arange(1, 11) / 3.0, 1.0)
        est = estimate_effect(y[:38], y[38:] + effect)
        true = float(effect.mean())
        covered += est.ci_low <= true <= est.ci_high
        agree += (est.p_value < 0.05) == (est.ci_high < 0 or est.ci_low > 0)
    assert covered >= 26
    assert agree == 30


# ---------------------------------------------------------------------------------------------------------------
# Scoring an experiment
# ---------------------------------------------------------------------------------------------------------------


def test_recovers_a_known_drop_with_interval_covering_it() -> None:
    rng = np.random.default_rng(7)
    data = frame_for(rng, n_pre=52, n_post=12, effect=-3.0)
    result = ImpactScorer().score(experiment(min_effect=1.0), data)
    assert isinstance(result, ImpactResult)
    assert result.ci_low <= -3.0 <= result.ci_high
    assert result.ci_high < 0 and result.p_value < 0.05
    assert result.verdict == "improved"
    assert result.effect == pytest.approx(result.observed_mean - result.counterfactual_mean)
    assert result.cumulative_effect == pytest.approx(12 * result.effect)
    assert result.cumulative_ci_low == pytest.approx(12 * result.ci_low)
    assert result.relative_effect == pytest.approx(result.effect / result.counterfactual_mean)
    assert result.relative_ci_low < result.relative_effect < result.relative_ci_high
    assert result.n_pre == 52 and result.n_post == 12
    assert result.diagnostics.did is None
    assert result.diagnostics.mann_whitney.p_value < 0.05
    assert result.diagnostics.mann_whitney.hodges_lehmann_shift < 0
    assert "control" not in result.method
    # plot series: pre weeks without counterfactual, post weeks with a band around it
    s = result.series
    assert len(s.ds) == 64 and s.ds[52] == START
    assert s.counterfactual[:52] == [None] * 52
    post = slice(52, None)
    assert all(
        lo < cf < hi for lo, cf, hi in zip(s.lower[post], s.counterfactual[post], s.upper[post], strict=True)
    )
    assert s.to_frame().shape == (64, 5)
    assert ImpactResult.model_validate_json(result.model_dump_json()) == result


def test_verdict_follows_desired_direction() -> None:
    assert verdict_for(-2.0, 0.01, 0.05, "decrease") == "improved"
    assert verdict_for(-2.0, 0.01, 0.05, "increase") == "worsened"
    assert verdict_for(2.0, 0.01, 0.05, "increase") == "improved"
    assert verdict_for(2.0, 0.01, 0.05, "decrease") == "worsened"
    assert verdict_for(2.0, 0.2, 0.05, "decrease") == "inconclusive"
    rng = np.random.default_rng(8)
    data = frame_for(rng, n_pre=40, n_post=10, effect=4.0)
    assert ImpactScorer().score(experiment(desired_direction="increase"), data).verdict == "improved"
    assert ImpactScorer().score(experiment(desired_direction="decrease"), data).verdict == "worsened"


def test_no_effect_is_inconclusive() -> None:
    rng = np.random.default_rng(9)
    data = frame_for(rng, n_pre=40, n_post=10, effect=0.0)
    result = ImpactScorer().score(experiment(), data)
    assert result.verdict == "inconclusive"
    assert result.ci_low < 0 < result.ci_high


def test_controls_explain_a_shared_shock() -> None:
    """A jump that hits every team at `start` is not the experiment's effect; only the controls can tell."""
    rng = np.random.default_rng(10)
    m = 50
    common = np.cumsum(rng.normal(0, 1.0, m))  # shared wander well above each series' own noise
    common[40:] += 5.0
    teams = ("payments", "identity", "storage")
    data = frame_for(rng, n_pre=40, n_post=10, teams=teams, common=common, phi=0.3)
    with_controls = ImpactScorer().score(experiment(controls=["identity", "storage"]), data)
    # the model alone, without controls, takes the shared jump for a harmful effect (with calibration on, the
    # siblings' wander seen in placebo windows may widen it to inconclusive: the controls are what explain it)
    without = ImpactScorer(calibrate=False).score(experiment(), data)
    assert without.verdict == "worsened"
    assert with_controls.verdict == "inconclusive"
    assert with_controls.ci_low < 0 < with_controls.ci_high
    assert abs(with_controls.effect) < 2.0
    did = with_controls.diagnostics.did
    assert did is not None and did.ci_low < 0 < did.ci_high
    assert with_controls.diagnostics.controls_used == [
        series_key("reopens", team="identity"),
        series_key("reopens", team="storage"),
    ]
    assert "2 control(s)" in with_controls.method


def test_accepts_indicator_team_columns_and_end_date() -> None:
    # seed 12: at seed 11 the 6 post weeks' noise is 2.3 sd high, so no estimator's interval held the -3
    rng = np.random.default_rng(12)
    teams = ("payments", "identity", "storage", "growth")
    data = frame_for(rng, n_pre=30, n_post=12, effect=-3.0, teams=teams)
    parts = data["series"].str.split("/team=", expand=True)
    sample_style = pd.DataFrame(
        {"indicator": parts[0], "ds": data["ds"].dt.date, "y": data["y"], "team": parts[1]}
    )
    ex = experiment(controls=["identity", "storage", "growth"], end=START + dt.timedelta(weeks=6))
    result = ImpactScorer().score(ex, sample_style)
    assert result.n_post == 6  # end is exclusive
    assert result.diagnostics.control_mode == "mean"  # 30 pre weeks are too few for 3 controls + intercept
    assert "mean of the controls" in result.method
    assert result.ci_low <= -3.0 <= result.ci_high


def test_placebo_calibration_runs_with_long_history() -> None:
    rng = np.random.default_rng(12)
    data = frame_for(rng, n_pre=100, n_post=8)
    scorer = ImpactScorer().fit(experiment(), data)
    result = scorer.result_
    assert result.n_pre == 52
    assert result.diagnostics.n_placebos >= 4
    assert result.diagnostics.inflation >= 1.0
    assert result.calibration.method == "pooled placebos" and result.calibration.n_series == 1
    assert "pooled placebo" in result.method
    short = ImpactScorer().score(experiment(), frame_for(rng, n_pre=30, n_post=8))
    assert short.diagnostics.n_placebos == 0 and short.calibration.method == "prior"
    assert "prior learned on real series" in short.method


# ---------------------------------------------------------------------------------------------------------------
# Power figures
# ---------------------------------------------------------------------------------------------------------------


def test_mde_and_weeks_needed_are_consistent() -> None:
    rng = np.random.default_rng(13)
    data = frame_for(rng, n_pre=52, n_post=6, phi=0.3)
    base = ImpactScorer().score(experiment(), data)
    # 80% power at alpha 0.05: MDE = (1.96 + 0.84) x the standard error behind the interval; the step estimator
    # reads it from the pre-period fit (a plan made before the start finds the same), its interval from both periods
    half_width = (base.ci_high - base.ci_low) / 2
    assert base.mde == pytest.approx(2.8016 / 1.96 * half_width, rel=0.05)
    forecast = ImpactScorer(estimator="forecast").score(experiment(), data)
    assert forecast.mde == pytest.approx(2.8016 / 1.96 * (forecast.ci_high - forecast.ci_low) / 2, rel=1e-3)
    assert base.weeks_needed is None and base.min_effect is None
    assert base.mde_relative == pytest.approx(base.mde / abs(base.counterfactual_mean))
    easy = ImpactScorer().score(experiment(min_effect=2 * base.mde), data)
    assert easy.weeks_needed == 0
    harder = ImpactScorer().score(experiment(min_effect=0.8 * base.mde), data)
    hardest = ImpactScorer().score(experiment(min_effect=0.6 * base.mde), data)
    assert harder.weeks_needed is not None and harder.weeks_needed >= 1
    assert hardest.weeks_needed is None or hardest.weeks_needed > harder.weeks_needed
    impossible = ImpactScorer(max_extra_weeks=4).score(experiment(min_effect=0.01 * base.mde), data)
    assert impossible.weeks_needed is None


def test_more_post_weeks_give_a_smaller_mde_on_stable_noise() -> None:
    rng = np.random.default_rng(14)
    y = ar1(rng, 52 + 26, 0.3)
    mdes = [estimate_effect(y[:52], y[52 : 52 + h]).se for h in (4, 12, 26)]
    assert mdes[0] > mdes[1] > mdes[2]


def test_a_season_in_the_pre_period_is_carried_forward_and_narrows_the_interval() -> None:
    """A 12-week season over 30 fitted weeks: the (opt-in) cycle term forecasts it, so the interval is much
    narrower than the same model's without a cycle, still covers the truth, and a 2 sd shift is found."""
    rng = np.random.default_rng(21)
    t = np.arange(38.0)
    cyclic = CounterfactualModel(cycle_grid=CYCLE_GRID_ON)
    covered, shifted, ratios, p_cycle = 0, 0, [], []
    for _ in range(20):
        y = 10.0 + 3.0 * np.sin(2 * np.pi * t / 12 + rng.uniform(0, 2 * np.pi)) + 0.7 * ar1(rng, 38, 0.3)
        est = estimate_effect(y[:30], y[30:], calibrate=False, model=cyclic)
        flat = estimate_effect(y[:30], y[30:], calibrate=False)
        ratios.append(est.se / flat.se)
        p_cycle.append(est.model.noise_summary()["p_cycle"])
        covered += est.ci_low <= 0.0 <= est.ci_high
        bump = np.r_[y[:30], y[30:] + 2.0 * np.std(y[:30], ddof=1)]
        shifted += estimate_effect(bump[:30], bump[30:], calibrate=False, model=cyclic).p_value < 0.05
    assert float(np.median(ratios)) < 0.6, ratios
    assert min(p_cycle) > 0.9, p_cycle
    assert covered >= 18 and shifted >= 18, (covered, shifted)


def test_a_cycle_is_offered_only_when_the_window_holds_two_periods() -> None:
    y = ar1(np.random.default_rng(22), 12, 0.3)
    m = CounterfactualModel(cycle_periods=(4, 6, 12), cycle_grid=CYCLE_GRID_ON).fit(y)
    offered = {round(2 * np.pi / w) for w in m.cyc_w_[m.cyc_c_ > 0]}
    assert offered == {4, 6}
    with pytest.raises(InputError) as err:
        CounterfactualModel(cycle_periods=(1.0,)).fit(y)
    assert err.value.field == "cycle_periods"


# ---------------------------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------------------------


def test_short_pre_period_names_start() -> None:
    data = frame_for(np.random.default_rng(15), n_pre=8, n_post=8)
    with pytest.raises(InputError) as err:
        ImpactScorer().score(experiment(), data)
    assert err.value.field == "start"
    assert "8 weeks before start" in err.value.message


def test_no_post_period_names_start() -> None:
    data = frame_for(np.random.default_rng(16), n_pre=30, n_post=1)
    data = data[data["ds"] < pd.Timestamp(START)]
    with pytest.raises(InputError) as err:
        ImpactScorer().score(experiment(), data)
    assert err.value.field == "start"


def test_missing_series_are_not_found() -> None:
    data = frame_for(np.random.default_rng(17), n_pre=30, n_post=8)
    with pytest.raises(NotFoundError) as err:
        ImpactScorer().score(experiment(treated="growth"), data)
    assert err.value.field == "treated" and err.value.value == "reopens/team=growth"
    with pytest.raises(NotFoundError) as err:
        ImpactScorer().score(experiment(controls=["nobody"]), data)
    assert err.value.field == "controls" and err.value.value == "reopens/team=nobody"
    with pytest.raises(NotFoundError) as err:  # no series of the indicator at all: the indicator is at fault
        ImpactScorer().score(experiment(indicator="deploy_frequency"), data)
    assert err.value.field == "indicator" and err.value.value == "deploy_frequency"


def test_bad_input_is_named() -> None:
    data = frame_for(np.random.default_rng(18), n_pre=30, n_post=8)
    with pytest.raises(InputError) as err:
        ImpactScorer().score(experiment(), data.drop(columns="y"))
    assert err.value.field == "data"
    with pytest.raises(InputError) as err:
        ImpactScorer().score(experiment(), pd.concat([data, data.iloc[:1]]))
    assert err.value.field == "ds"
    constant = data.assign(y=3.0)
    with pytest.raises(InputError) as err:
        ImpactScorer().score(experiment(), constant)
    assert err.value.field == "treated"
    with pytest.raises(InputError) as err:
        ImpactScorer(alpha=1.5).score(experiment(), data)
    assert err.value.field == "alpha"


def test_not_fitted_errors() -> None:
    with pytest.raises(NotFittedError):
        CounterfactualModel().predict_mean([1.0, 2.0])
    with pytest.raises(NotFittedError):
        ImpactScorer().get_result()


# ---------------------------------------------------------------------------------------------------------------
# Plot
# ---------------------------------------------------------------------------------------------------------------


def test_plot_impact_draws_a_labelled_figure() -> None:
    data = frame_for(np.random.default_rng(19), n_pre=30, n_post=8, effect=-3.0)
    result = ImpactScorer().score(experiment(), data)
    fig = plot_impact(result, units="reopens per week")
    top, bottom = fig.axes
    assert "EXP-T" in fig._suptitle.get_text() and result.verdict in fig._suptitle.get_text()
    assert top.get_ylabel() == "reopens per week"
    assert bottom.get_xlabel() == "week" and "effect" in bottom.get_ylabel()
    labels = {t.get_text() for t in top.get_legend().get_texts()}
    assert {"observed", "counterfactual (no change)", "95% interval"} <= labels
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    assert buf.getvalue()[:4] == b"\x89PNG"


def test_a_control_that_changes_at_the_start_is_named() -> None:
    """A control that itself steps at the start is collinear with the step the effect is read from; two controls
    that repeat each other are collinear together: one error naming the controls, not the fit's internals."""
    rng = np.random.default_rng(31)
    data = frame_for(rng, n_pre=30, n_post=8, teams=("payments", "identity"))
    jump = long_frame(
        {series_key("reopens", team="storage"): np.r_[1e-9 * rng.normal(size=30), np.ones(8)]},
        START - dt.timedelta(weeks=30),
    )
    with pytest.raises(InputError) as err:
        ImpactScorer().score(experiment(controls=["storage"]), pd.concat([data, jump]))
    assert err.value.field == "controls" and "'reopens/team=storage'" in err.value.message
    assert "change exactly at the start" in err.value.message
    ident = data[data["series"] == series_key("reopens", team="identity")]
    twin = ident.assign(series=series_key("reopens", team="growth"), y=2.0 * ident["y"] + 1.0)
    with pytest.raises(InputError) as err:
        ImpactScorer(control_mode="each").score(
            experiment(controls=["identity", "growth"]), pd.concat([data, twin])
        )
    assert err.value.field == "controls" and "move together" in err.value.message
    assert "'reopens/team=identity'" in err.value.message and "'reopens/team=growth'" in err.value.message


def _edge_frames() -> dict[str, tuple[pd.DataFrame, Experiment]]:
    """Inputs a user can give: a 1-week post-period, a constant post-period, zeros with one spike, values near
    1e9 and 1e-9, a control constant after the start only, a control far from zero, an end after the data."""
    rng = np.random.default_rng(32)
    key, ctl = series_key("reopens", team="payments"), series_key("reopens", team="identity")
    first = START - dt.timedelta(weeks=40)
    noise = rng.normal(size=(4, 48))
    spike = np.zeros(48)
    spike[[12, 39]] = (30.0, 50.0)
    ctl_flat_post = 5.0 + noise[1]
    ctl_flat_post[40:] = 5.0
    cases = {
        "one post week": ({key: 10.0 + noise[0, :41]}, experiment()),
        "constant post": ({key: np.r_[10.0 + noise[0, :40], np.full(8, 7.0)]}, experiment()),
        "zeros and spikes": ({key: spike}, experiment()),
        "near 1e9": ({key: 1e9 + 1e7 * noise[0]}, experiment()),
        "near 1e-9": ({key: 1e-9 * (1.0 + 0.1 * noise[0])}, experiment()),
        "control flat after start": (
            {key: 10.0 + noise[0], ctl: ctl_flat_post},
            experiment(controls=["identity"]),
        ),
        "control far from 0": (
            {key: 10.0 + noise[0], ctl: 1e9 + noise[2]},
            experiment(controls=["identity"]),
        ),
        "end after the data": ({key: 10.0 + noise[0]}, experiment(end=START + dt.timedelta(weeks=20))),
    }
    return {name: (long_frame(s, first), ex) for name, (s, ex) in cases.items()}


@pytest.mark.parametrize("case", list(_edge_frames()))
def test_edge_inputs_give_a_consistent_finite_result(case: str) -> None:
    import json

    data, ex = _edge_frames()[case]
    r = ImpactScorer().score(ex, data)
    json.dumps(r.model_dump(mode="json"), allow_nan=False)  # no NaN / inf reaches the JSON
    assert r.ci_low <= r.effect <= r.ci_high
    assert r.counterfactual_mean == pytest.approx(
        r.observed_mean - r.effect, rel=1e-9, abs=1e-12 * abs(r.observed_mean)
    )
    assert (r.p_value < 0.05) == (r.ci_low > 0 or r.ci_high < 0)
    assert r.cumulative_effect == pytest.approx(r.effect * r.n_post)
    if r.relative_effect is not None:
        assert r.relative_effect == pytest.approx(r.effect / r.counterfactual_mean)
        assert r.relative_ci_low is not None and r.relative_ci_high is not None
        assert r.relative_ci_low <= r.relative_effect <= r.relative_ci_high
    band = r.series.to_frame().dropna()
    assert np.all(band["lower"] <= band["upper"])
    np.testing.assert_allclose(
        band["observed"] - band["counterfactual"], r.effect, atol=1e-9 * abs(r.observed_mean) + 1e-15
    )
    if case == "end after the data":
        assert r.n_post == 8 and any(
            "scored on the 8 week(s) observed so far" in n for n in r.diagnostics.notes
        )
    if case == "one post week":
        assert r.n_post == 1
