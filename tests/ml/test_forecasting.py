from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from ml.errors import InputError, NotFittedError, NotFoundError
from ml.indicators.forecasting import (
    ForecastBundle,
    ForecastConfig,
    SeriesModel,
    coverage,
    crossing_probability,
    evaluate_selection,
    fit_many,
    fit_series,
    load_model,
    mase,
    smape,
)
from ml.indicators.grid import infer_frequency, to_grid

FAST = {"candidates": ["seasonal_naive", "auto_ets"], "signals": False}


def weekly_dates(n: int, start: str = "2024-01-01") -> list[str]:
    return [str(d.date()) for d in pd.date_range(start, periods=n, freq="W-MON")]


def noisy(n: int, seed: int = 0, level: float = 20.0, sd: float = 2.0, phi: float = 0.4) -> list[float]:
    rng = np.random.default_rng(seed)
    e = np.zeros(n)
    for i in range(1, n):
        e[i] = phi * e[i - 1] + rng.normal(0, sd)
    return (level + e).round(2).tolist()


# ---------------------------------------------------------------------------------------------------------------
# Frequency and grid
# ---------------------------------------------------------------------------------------------------------------


def test_infer_frequency_daily_weekly_and_gaps() -> None:
    assert infer_frequency(pd.date_range("2024-01-01", periods=30, freq="D")) == "D"
    assert infer_frequency(weekly_dates(20)) == "W-MON"
    assert (
        infer_frequency([str(d.date()) for d in pd.date_range("2024-01-03", periods=10, freq="W-WED")])
        == "W-WED"
    )
    gappy = [d for i, d in enumerate(weekly_dates(30)) if i not in (4, 5, 17)]
    assert infer_frequency(gappy) == "W-MON"
    # timestamps with a time of day are calendar dates
    assert (
        infer_frequency(["2024-01-01T10:00:00Z", "2024-01-08T09:00:00Z", "2024-01-15T23:00:00Z"]) == "W-MON"
    )


@pytest.mark.parametrize(
    "ds",
    [
        [str(d.date()) for d in pd.date_range("2024-01-01", periods=12, freq="MS")],  # monthly
        ["2024-01-01", "2024-01-08", "2024-01-16", "2024-01-22"],  # weekly, one date off by a day
        ["2024-01-01", "2024-01-04", "2024-01-11", "2024-01-14", "2024-01-21"],  # irregular
    ],
)
def test_irregular_dates_are_an_input_error(ds: list[str]) -> None:
    with pytest.raises(InputError) as exc:
        infer_frequency(ds)
    assert exc.value.field == "ds"
    assert "irregular" in exc.value.message


def test_grid_validation_errors() -> None:
    with pytest.raises(InputError) as exc:
        to_grid(["2024-01-01", "2024-01-01"], [1.0, 2.0])
    assert exc.value.field == "ds" and "duplicate" in exc.value.message
    with pytest.raises(InputError) as exc:
        to_grid(["2024-01-01", "2024-01-08"], [1.0, math.inf])
    assert exc.value.field == "y"
    with pytest.raises(InputError):
        to_grid(["2024-01-01"], [1.0, 2.0])
    with pytest.raises(InputError):
        to_grid(["not a date", "2024-01-08"], [1.0, 2.0])
    with pytest.raises(InputError) as exc:
        fit_series("s", weekly_dates(20), noisy(20), {"freq": "M"})
    assert exc.value.field == "freq"


# ---------------------------------------------------------------------------------------------------------------
# Edge cases handled with notes
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 2, 8])
def test_short_series_gets_the_baseline_with_a_note(n: int) -> None:
    r = fit_series("short", weekly_dates(n), noisy(n), FAST)
    assert r["status"] == "baseline"
    assert r["chosen"] == "seasonal_naive"
    assert "min_points" in r["reason"]
    assert any("short" in note for note in r["notes"])
    assert len(r["forecast"]) == 13
    assert r["forecast"][0]["yhat"] == pytest.approx(noisy(n)[-1])
    json.dumps(r)


def test_constant_series_forecasts_the_constant() -> None:
    r = fit_series("flat", weekly_dates(40), [5.0] * 40, FAST)
    assert r["status"] == "baseline"
    assert "constant" in r["reason"]
    f = pd.DataFrame(r["forecast"])
    assert np.allclose(f[["yhat", "yhat_lower", "yhat_upper"]].to_numpy(), 5.0)


def test_negative_values_are_kept_and_not_clipped() -> None:
    y = (np.array(noisy(60, seed=1, level=0.0, sd=1.0))).tolist()
    assert min(y) < 0
    r = fit_series("delta", weekly_dates(60), y, FAST)
    assert any("negative" in n for n in r["notes"])
    assert r["nonnegative"] is False
    assert min(f["yhat_lower"] for f in r["forecast"]) < 0
    # declared non-negative: the negatives become missing values, forecasts are clipped at zero
    r2 = fit_series("delta", weekly_dates(60), y, {**FAST, "nonnegative": True})
    assert any("treated as missing" in n for n in r2["notes"])
    assert min(f["yhat_lower"] for f in r2["forecast"]) >= 0


def test_counts_near_zero_are_clipped_at_zero() -> None:
    y = np.random.default_rng(2).poisson(0.7, 60).astype(float).tolist()
    r = fit_series("rare", weekly_dates(60), y, FAST)
    assert r["nonnegative"] is True
    assert min(f["yhat_lower"] for f in r["forecast"]) >= 0


def test_gaps_are_filled_for_fitting_and_left_out_of_scores() -> None:
    ds, y = weekly_dates(80), noisy(80, seed=3)
    drop = {10, 11, 40, 75}
    r = fit_series(
        "gappy",
        [d for i, d in enumerate(ds) if i not in drop],
        [v for i, v in enumerate(y) if i not in drop],
        FAST,
    )
    assert r["n_missing"] == 4 and r["n_obs"] == 76
    assert any("gaps" in n for n in r["notes"])
    bt = pd.DataFrame(r["backtest"])
    last = bt[bt.window_start == ds[67]]  # the last window (weeks 67..79) holds one gap (week 75)
    assert set(last["n_test"]) == {12}


# ---------------------------------------------------------------------------------------------------------------
# Metrics and backtest on known series
# ---------------------------------------------------------------------------------------------------------------


def test_metrics_on_known_values() -> None:
    y = np.array([1.0, 2.0, np.nan, 4.0])
    f = np.array([1.0, 3.0, 9.0, 2.0])
    assert mase(y, f, 1.5) == pytest.approx((0 + 1 + 2) / 3 / 1.5)
    assert smape(np.array([0.0, 2.0]), np.array([0.0, 2.0])) == 0.0
    assert smape(np.array([1.0]), np.array([3.0])) == pytest.approx(100.0)
    assert coverage(y, np.array([0, 2.5, 0, 3]), np.array([2, 3, 0, 5])) == pytest.approx(2 / 3)
    assert math.isnan(mase(y, f, 0.0))


def test_backtest_of_the_naive_on_a_straight_line() -> None:
    # y = t: the naive forecast is off by h at step h; the in-sample one-step naive MAE is 1
    n, h = 40, 4
    r = fit_series(
        "line", weekly_dates(n), list(map(float, range(n))), {**FAST, "horizon": h, "n_windows": 3}
    )
    bt = pd.DataFrame(r["backtest"])
    naive = bt[bt.candidate == "seasonal_naive"]
    assert len(naive) == 3
    assert naive["mase"].tolist() == pytest.approx([(h + 1) / 2] * 3)
    # the naive's sd is the one-step RMS error (1), growing with sqrt(h): only step 1 is inside +-1.28 sd
    assert naive["coverage"].tolist() == pytest.approx([0.25] * 3)
    assert naive["cutoff"].tolist() == [weekly_dates(n)[c - 1] for c in (28, 32, 36)]
    ets = bt[bt.candidate == "auto_ets"]
    assert (ets["mase"] < 0.05).all()  # a trend model nails a line
    assert r["mase"] < r["baseline_mase"]


def test_seasonal_naive_is_exact_on_a_repeating_week() -> None:
    days = [str(d.date()) for d in pd.date_range("2024-01-01", periods=70, freq="D")]
    pattern = [5.0, 7.0, 6.0, 9.0, 12.0, 3.0, 2.0]
    r = fit_series("daily", days, pattern * 10, {**FAST, "horizon": 7})
    assert r["freq"] == "D" and r["season_length"] == 7
    summ = {s["candidate"]: s for s in r["backtest_summary"]}
    assert summ["seasonal_naive"]["mase"] == pytest.approx(0.0, abs=1e-9)
    assert [f["yhat"] for f in r["forecast"]] == pytest.approx(pattern, abs=1e-6)


def test_selection_combines_the_best_candidates_and_says_why() -> None:
    cfg = {"candidates": ["seasonal_naive", "auto_ets", "auto_theta"], "signals": False}
    r = fit_series("s", weekly_dates(90), noisy(90, seed=5), cfg)
    assert r["status"] == "ok"
    assert r["chosen"].startswith("median(") and len(r["members"]) == 3
    assert "median of the 3 candidates" in r["reason"] and "backtest MASE" in r["reason"]
    best = fit_series("s", weekly_dates(90), noisy(90, seed=5), {**cfg, "selection": "best"})
    summ = {s["candidate"]: s["mase"] for s in best["backtest_summary"]}
    assert best["members"] == [min(summ, key=summ.get)]


# ---------------------------------------------------------------------------------------------------------------
# JSON round trip
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "members",
    [
        ["seasonal_naive"],
        ["auto_ets"],
        ["auto_theta"],
        ["auto_arima"],
        ["auto_ets", "auto_theta", "seasonal_naive"],
    ],
)
def test_json_round_trip_gives_the_same_forecast(members: list[str]) -> None:
    grid = to_grid(weekly_dates(70), noisy(70, seed=7))
    model = SeriesModel(members).fit(grid)
    before = model.predict(13)
    loaded = SeriesModel.from_json(json.dumps(model.to_dict()))
    after = loaded.predict(13)
    pd.testing.assert_frame_equal(before, after)
    assert np.allclose(model.sample_paths(13, 50, seed=1), loaded.sample_paths(13, 50, seed=1))


def test_saved_model_records_its_candidates_and_rejects_a_mismatch() -> None:
    grid = to_grid(weekly_dates(60), noisy(60, seed=7))
    data = SeriesModel(["auto_ets", "seasonal_naive"]).fit(grid).to_dict()
    assert data["candidates"] == [
        {"name": "auto_ets", "params": {}},
        {"name": "seasonal_naive", "params": {}},
    ]
    bad = {
        **data,
        "candidates": [{"name": "auto_theta", "params": {}}, {"name": "seasonal_naive", "params": {}}],
    }
    with pytest.raises(InputError) as exc:
        SeriesModel.from_dict(bad)
    assert exc.value.field == "model.candidates" and exc.value.value == ["auto_theta", "seasonal_naive"]
    with pytest.raises(InputError) as exc:
        SeriesModel.from_dict({**data, "states": [{}]})
    assert exc.value.field == "model.candidates"


def test_prophet_round_trips_through_model_to_json() -> None:
    grid = to_grid(weekly_dates(60), noisy(60, seed=8))
    model = SeriesModel(["prophet"]).fit(grid)
    state = model.to_dict()["states"][0]
    assert "prophet_json" in state
    loaded = SeriesModel.from_json(json.dumps(model.to_dict()))
    pd.testing.assert_frame_equal(model.predict(8), loaded.predict(8))


def test_fit_series_result_round_trips_and_reloads() -> None:
    # level 20 for 40 weeks, then 30: one upward shift, found at week 40, of about 10
    rng = np.random.default_rng(0)
    y = np.r_[20 + rng.normal(0, 1, 40), 30 + rng.normal(0, 1, 20)].round(2).tolist()
    ds = weekly_dates(60)
    r = fit_series("incidents/team=a", ds, y, {**FAST, "signals": True})
    text = json.dumps(r)
    again = json.loads(text)
    model = load_model(again)
    f = model.predict(r["horizon"])
    assert f["yhat"].tolist() == pytest.approx([row["yhat"] for row in r["forecast"]])
    assert f["yhat_upper"].tolist() == pytest.approx([row["yhat_upper"] for row in r["forecast"]])
    assert [(e["date"], e["kind"], e["direction"]) for e in r["signals"]] == [(ds[40], "shift", "increase")]
    assert r["signals"][0]["magnitude"] == pytest.approx(10.0, abs=1.0)
    assert again["signals"] == r["signals"]


@pytest.mark.parametrize(
    ("candidate", "max_error"),
    [("seasonal_naive", None), ("auto_ets", 1e-3), ("auto_arima", 1e-3), ("auto_theta", 0.05)],
)
def test_forecasts_of_a_straight_line(candidate: str, max_error: float | None) -> None:
    """A line rising 2 a week: the naive baseline repeats the last value with sigma 2 random-walk intervals;
    the trend models continue the line."""
    grid = to_grid(weekly_dates(60), [10.0 + 2 * i for i in range(60)])
    f = SeriesModel([candidate], level=80).fit(grid).predict(5)
    if max_error is None:
        assert f["yhat"].tolist() == [128.0] * 5
        z = 1.2815515655446004  # norm.ppf(0.9)
        half = [z * 2.0 * math.sqrt(k) for k in range(1, 6)]
        assert (f["yhat_upper"] - f["yhat"]).tolist() == pytest.approx(half, rel=1e-9)
        assert (f["yhat"] - f["yhat_lower"]).tolist() == pytest.approx(half, rel=1e-9)
    else:
        assert np.abs(f["yhat"].to_numpy() - [130.0, 132.0, 134.0, 136.0, 138.0]).max() < max_error


# ---------------------------------------------------------------------------------------------------------------
# Early warning
# ---------------------------------------------------------------------------------------------------------------


def test_crossing_probability_is_monotone_in_the_threshold() -> None:
    grid = to_grid(weekly_dates(70), noisy(70, seed=10))
    model = SeriesModel(["auto_ets", "seasonal_naive"]).fit(grid)
    paths = model.sample_paths(13, 2000, seed=0)
    fc = model.predict(13)
    lo, hi = fc["yhat"].min() - 60, fc["yhat"].max() + 60
    thresholds = np.linspace(lo, hi, 25)
    above = [crossing_probability(paths, t, "above") for t in thresholds]
    below = [crossing_probability(paths, t, "below") for t in thresholds]
    assert all(a >= b for a, b in zip(above, above[1:], strict=False))
    assert all(a <= b for a, b in zip(below, below[1:], strict=False))
    assert above[0] == 1.0 and above[-1] == 0.0
    # within the horizon is at least as likely as at any single step
    mid = float(fc["yhat"].iloc[-1])
    assert crossing_probability(paths, mid, "above") >= float((paths[:, -1] > mid).mean())
    assert 0.3 < crossing_probability(paths[:, -1:], mid, "above") < 0.7


def test_thresholds_in_config_give_warnings_for_matching_series() -> None:
    cfg = {
        **FAST,
        "thresholds": [
            {"value": 25, "direction": "above", "indicator": "incidents"},
            {"value": 0, "direction": "below", "series": "other"},
        ],
    }
    r = fit_series("incidents/team=a", weekly_dates(60), noisy(60, seed=11), cfg)
    assert len(r["warnings"]) == 1
    w = r["warnings"][0]
    assert w["threshold"] == 25 and w["direction"] == "above" and w["horizon"] == 13
    # the probability is the share of the stored model's own sample paths (same seed) that cross 25
    paths = load_model(r).sample_paths(13, 1000, seed=0)
    assert w["probability"] == crossing_probability(paths, 25, "above")
    assert 0.0 < w["probability"] < 1.0


def test_warnings_on_a_constant_series_are_certain() -> None:
    """A constant 5 has zero-width paths: strictly above 4 is certain, above 5 or 6 impossible, below 6 certain."""
    cfg = {
        **FAST,
        "thresholds": [{"value": 4}, {"value": 5}, {"value": 6}, {"value": 6, "direction": "below"}],
    }
    r = fit_series("flat", weekly_dates(40), [5.0] * 40, cfg)
    assert [(w["threshold"], w["direction"], w["probability"]) for w in r["warnings"]] == [
        (4, "above", 1.0),
        (5, "above", 0.0),
        (6, "above", 0.0),
        (6, "below", 1.0),
    ]


# ---------------------------------------------------------------------------------------------------------------
# Config, many series, held-out evaluation
# ---------------------------------------------------------------------------------------------------------------


def test_config_validation() -> None:
    with pytest.raises(InputError) as exc:
        ForecastConfig.from_dict({"horizont": 5})
    assert exc.value.field == "config"
    with pytest.raises(InputError) as exc:
        ForecastConfig.from_dict({"candidates": ["lstm"]})
    assert exc.value.field == "candidates"
    with pytest.raises(InputError) as exc:
        ForecastConfig.from_dict({"level": 100})
    assert exc.value.field == "level"
    with pytest.raises(InputError):
        ForecastConfig.from_dict({"thresholds": [{"value": 1, "direction": "sideways"}]})
    cfg = ForecastConfig.from_dict({"candidates": "auto_ets", "horizon": 4})
    assert ForecastConfig.from_dict(cfg.to_dict()) == cfg


def _long_frame() -> pd.DataFrame:
    rows = []
    for k, seed in (("a/team=x", 1), ("b/team=y", 2)):
        rows += [
            {"series": k, "ds": d, "y": v}
            for d, v in zip(weekly_dates(50), noisy(50, seed=seed), strict=True)
        ]
    rows += [{"series": "bad", "ds": d, "y": 1.0} for d in ["2024-01-01", "2024-01-03", "2024-01-11"]]
    return pd.DataFrame(rows)


def test_fit_many_with_builtin_map_records_bad_series() -> None:
    bundle = fit_many(_long_frame(), {**FAST, "signals": True})
    assert bundle.series == ["a/team=x", "b/team=y", "bad"]
    assert set(bundle.errors) == {"bad"}
    assert bundle["bad"]["error"]["field"] == "ds"
    assert len(bundle.forecasts()) == 26
    assert set(bundle.summary()["status"]) == {"ok", "error"}
    assert {"candidate", "mase", "smape", "coverage"} <= set(bundle.backtests().columns)
    assert list(bundle.signals().columns)[:3] == ["rank", "series", "date"]
    again = ForecastBundle.from_json(bundle.to_json())
    assert again.model("a/team=x").predict(3)["yhat"].tolist() == pytest.approx(
        [f["yhat"] for f in bundle["a/team=x"]["forecast"][:3]]
    )
    with pytest.raises(NotFoundError):
        bundle["missing"]
    with pytest.raises(InputError):
        fit_many(_long_frame(), FAST, errors="raise")


def test_evaluate_selection_scores_unseen_windows() -> None:
    rows = evaluate_selection("s", weekly_dates(104), noisy(104, seed=12), {**FAST, "horizon": 8}, n_outer=4)
    df = pd.DataFrame(rows)
    assert df["origin"].nunique() == 4
    assert set(df["method"]) == {"selector", "seasonal_naive", "auto_ets"}
    first = df[df.method == "selector"]["origin"].min()
    # the first scored window starts after the 3 windows the selector used
    assert first == weekly_dates(104)[104 - 8 * 4 - 1]


def test_not_fitted_model() -> None:
    with pytest.raises(NotFittedError):
        SeriesModel(["auto_ets"]).predict(3)


@pytest.mark.slow
def test_fit_many_through_a_dask_local_cluster() -> None:
    distributed = pytest.importorskip("dask.distributed")
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        with distributed.Client(cluster) as client:

            def dask_map(f, *its):
                return client.gather(client.map(f, *its, pure=False))

            bundle = fit_many(_long_frame(), FAST, map_fn=dask_map)
    local = fit_many(_long_frame(), FAST)
    assert bundle.series == local.series
    for k in ("a/team=x", "b/team=y"):
        assert bundle[k]["forecast"] == local[k]["forecast"]
        assert bundle[k]["chosen"] == local[k]["chosen"]
