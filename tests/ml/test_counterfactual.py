"""The effect estimators: the step (intervention analysis) against the forecast comparison, and their placebos."""

from __future__ import annotations

import numpy as np
import pytest

from ml.errors import InputError
from ml.experiments.calibration import PlaceboWindow, calibrated_factor, normal_score
from ml.experiments.counterfactual import CounterfactualModel
from ml.experiments.effect import boundary_outlier, estimate_effect, fit_step, placebo_scores, se_by_horizon

WHITE_NOISE = CounterfactualModel(phi_grid=(0.0,), q_grid=(0.0,), r_grid=(0.0,), cycle_grid=(0.0,))


def random_walk(rng: np.random.Generator, m: int) -> np.ndarray:
    """A wandering level (unit weekly steps) seen through a little noise."""
    return np.cumsum(rng.normal(size=m)) + 0.3 * rng.normal(size=m)


def test_the_step_finds_a_jump_on_a_random_walk_that_the_forecast_comparison_misses() -> None:
    """30 pre + 8 post weeks of a random walk with a jump of 4 weekly steps at the start: the forecast's 8-week
    band has grown past the jump, while the step's coefficient sees the level on both sides of it."""
    rng = np.random.default_rng(15)
    found = {"step": 0, "forecast": 0}
    covered = 0
    for _ in range(30):
        y = random_walk(rng, 38)
        post = y[30:] + 4.0
        for estimator in found:
            est = estimate_effect(y[:30], post, calibrate=False, estimator=estimator)  # type: ignore[arg-type]
            found[estimator] += est.p_value < 0.05
            if estimator == "step":
                covered += est.ci_low <= 4.0 <= est.ci_high
                assert est.effect == pytest.approx(est.observed_mean - est.counterfactual_mean)
    assert found["step"] >= 27, found  # 29 of 30
    assert found["forecast"] <= 23, found  # 20 of 30
    assert covered >= 26, covered


def test_a_shift_of_the_post_period_moves_the_step_by_exactly_that_much() -> None:
    """The step column absorbs a constant added to the post-period: the effect moves by it, the interval's width
    and the grid weights stay (the bench reads power from one fit per window on this property)."""
    rng = np.random.default_rng(3)
    y = np.cumsum(rng.normal(size=40)) * 0.5 + rng.normal(size=40)
    base = estimate_effect(y[:32], y[32:], calibrate=False)
    moved = estimate_effect(y[:32], y[32:] + 2.5, calibrate=False)
    assert moved.effect == pytest.approx(base.effect + 2.5, abs=1e-6)
    assert moved.ci_high - moved.ci_low == pytest.approx(base.ci_high - base.ci_low, rel=1e-6)
    assert moved.counterfactual_mean == pytest.approx(base.counterfactual_mean, abs=1e-6)
    assert base.joint is not None and moved.joint is not None
    np.testing.assert_allclose(moved.joint.weights_, base.joint.weights_, atol=1e-9)


def test_under_a_stable_level_the_step_is_the_forecast_comparisons_estimate() -> None:
    """White noise: both estimate the post mean minus the pre mean; only the noise variance's estimate differs."""
    rng = np.random.default_rng(4)
    y = 10.0 + rng.normal(size=38)
    step = estimate_effect(y[:30], y[30:], model=WHITE_NOISE, calibrate=False)
    forecast = estimate_effect(y[:30], y[30:], model=WHITE_NOISE, calibrate=False, estimator="forecast")
    assert step.effect == pytest.approx(y[30:].mean() - y[:30].mean(), abs=1e-9)
    assert forecast.effect == pytest.approx(step.effect, abs=1e-9)
    assert step.se == pytest.approx(forecast.se, rel=0.25)


def test_placebos_are_scored_by_the_same_estimator() -> None:
    rng = np.random.default_rng(5)
    t = np.arange(60.0)
    windows = [
        PlaceboWindow("a", random_walk(rng, 60), None, t),
        PlaceboWindow("b", random_walk(rng, 60), None, t),
    ]
    scores, n_series = placebo_scores(
        windows, train=30, horizon=8, model=CounterfactualModel(), max_placebos=6
    )
    assert n_series == 2 and len(scores) == 6
    # the first placebo: the last 8 weeks of series a after its 30 before, read as a step
    a = windows[0].y
    _, mix = fit_step(CounterfactualModel(), a[22:52], a[52:60], None, None, t[22:52], t[52:60])
    assert scores[0] == pytest.approx(normal_score(float(mix.cdf(float(a[52:60].mean())))))
    old, _ = placebo_scores(
        windows, train=30, horizon=8, model=CounterfactualModel(), max_placebos=6, estimator="forecast"
    )
    assert not np.allclose(old, scores)
    # and the experiment's interval is widened by the factor those scores give
    y = random_walk(rng, 38)
    est = estimate_effect(
        y[:30], y[30:], pool=windows, prior=1.3, max_placebos=6, t_pre=np.arange(60.0, 90.0)
    )
    pooled, _ = placebo_scores(
        [PlaceboWindow("treated", y[:30], None, np.arange(60.0, 90.0)), *windows],
        train=30,
        horizon=8,
        model=CounterfactualModel(),
        max_placebos=6,
    )
    assert est.calibration.n_placebos == 6
    assert est.inflation == pytest.approx(calibrated_factor(pooled, alpha=0.05, prior=1.3))


def test_the_design_based_se_matches_the_interval_and_shrinks_with_more_weeks() -> None:
    rng = np.random.default_rng(6)
    y = 5.0 + rng.normal(size=60)
    est = estimate_effect(y[:40], y[40:48], model=WHITE_NOISE, calibrate=False)
    t_more = np.arange(40.0, 60.0)
    se = se_by_horizon(est, t_more, None, 0.05)
    assert se.shape == (20,) and np.all(np.diff(se) < 0)
    # white noise: se = sigma sqrt(1/h + 1/n), sigma from the pre-period fit
    sigma = float(np.sqrt(est.model.s2_[0]))
    expected = sigma * np.sqrt(1.0 / np.arange(1, 21) + 1.0 / 40)
    np.testing.assert_allclose(se, expected, rtol=0.08)  # Student-t quantiles over normal ones
    assert se[7] == pytest.approx(est.se, rel=0.25)  # the interval's se reads sigma from both periods
    with pytest.raises(InputError) as err:
        estimate_effect(y[:40], y[40:48], estimator="both")  # type: ignore[arg-type]
    assert err.value.field == "estimator"


def test_controls_on_a_large_scale_are_not_mistaken_for_collinear_ones() -> None:
    """The collinearity check looks at the angle between (whitened) columns, not their scale: GDP-sized controls
    beside a 0/1 step fit, and a control that repeats another is still refused."""
    rng = np.random.default_rng(8)
    X = 1e4 * (50.0 + np.cumsum(rng.normal(size=(38, 2)), axis=0))
    y = 1e-4 * X[:, 0] + rng.normal(size=38)
    est = estimate_effect(y[:30], y[30:], X[:30], X[30:], calibrate=False)
    assert est.joint is not None and np.isfinite(est.effect)
    twin = np.column_stack([X[:, 0], 2.0 * X[:, 0]])
    with pytest.raises(InputError) as err:
        estimate_effect(y[:30], y[30:], twin[:30], twin[30:], calibrate=False)
    assert err.value.field == "X"


def test_a_control_far_from_zero_is_centred_not_refused_and_gives_the_same_effect() -> None:
    """A control on a large offset (1e9 + unit noise) is nearly parallel to the intercept in raw units; the fit
    centres and scales the regressors, so it is accepted and gives the effect of the same control shifted to 0
    (the model is invariant under affine changes of a control), as does a control of 1 + 1e-9 noise."""
    rng = np.random.default_rng(21)
    x = rng.normal(size=38)
    y = 10.0 + 0.8 * x + rng.normal(size=38)
    y[30:] -= 2.0
    ref = estimate_effect(y[:30], y[30:], x[:30], x[30:], calibrate=False)
    for shifted in (1e9 + x, 1.0 + 1e-9 * x):
        est = estimate_effect(y[:30], y[30:], shifted[:30], shifted[30:], calibrate=False)
        assert est.effect == pytest.approx(ref.effect, rel=1e-6)
        assert (est.ci_low, est.ci_high) == pytest.approx((ref.ci_low, ref.ci_high), rel=1e-6)
        se = se_by_horizon(
            est, np.arange(30.0, 50.0), np.r_[shifted[30:], np.full(12, shifted[30:].mean())], 0.05
        )
        se_ref = se_by_horizon(ref, np.arange(30.0, 50.0), np.r_[x[30:], np.full(12, x[30:].mean())], 0.05)
        np.testing.assert_allclose(se, se_ref, rtol=1e-6)
        fc = estimate_effect(
            y[:30], y[30:], shifted[:30], shifted[30:], calibrate=False, estimator="forecast"
        )
        fc_ref = estimate_effect(y[:30], y[30:], x[:30], x[30:], calibrate=False, estimator="forecast")
        assert fc.effect == pytest.approx(fc_ref.effect, rel=1e-6)


def test_a_huge_jump_has_a_p_value_of_zero_not_below_it() -> None:
    """The mixture's CDF far in its tail may round past 1 (the weights' sum does): the p-value stays in [0, 1]."""
    rng = np.random.default_rng(22)
    for k in range(2, 10):
        y = rng.normal(size=40)
        est = estimate_effect(y[:32], y[32:] + 10.0**k, calibrate=False)
        assert 0.0 <= est.p_value < 1e-6
        assert est.ci_low > 0


def test_an_unusual_week_just_before_the_start_is_not_read_as_a_change() -> None:
    """Sparse counts with a burst in the last pre-period week, nothing changed after: with autocorrelated noise the
    step leaned on that week and called 11 of 60 "improved" (regression to the mean; the forecast comparison
    none). The boundary week, far from the other pre-period weeks, is left out of the step's fit."""
    rng = np.random.default_rng(7)
    calls = 0
    for _ in range(60):
        y = rng.poisson(0.5, 48).astype(float)
        y[39] += rng.uniform(5, 20)
        calls += estimate_effect(y[:40], y[40:]).p_value < 0.05
    assert calls <= 3, calls
    # an ordinary last week is kept: the same estimate as without the guard's check
    y = 5.0 + rng.normal(size=48)
    assert not boundary_outlier(y[:40])
    joint, _ = fit_step(
        CounterfactualModel(), y[:40], y[40:], None, None, np.arange(40.0), np.arange(40.0, 48.0)
    )
    assert joint.n_ == 48
    y[39] += 10.0
    assert boundary_outlier(y[:40])
    joint, _ = fit_step(
        CounterfactualModel(), y[:40], y[40:], None, None, np.arange(40.0), np.arange(40.0, 48.0)
    )
    assert joint.n_ == 47 and 39.0 not in joint.t_
