"""`recur train indicators` and `recur experiment score` on the sample, into a real MLflow store."""

from __future__ import annotations

import csv

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import SAMPLE
from training.experiments import score_experiments

pytestmark = pytest.mark.slow


def test_outputs_and_registry(indicators_store: dict) -> None:
    out = indicators_store["out"]
    res = indicators_store["indicators"]
    f = pd.read_csv(out / "forecasts.csv")
    assert list(f.columns) == ["series", "model", "ds", "yhat", "yhat_lower", "yhat_upper"]
    assert (f["yhat_lower"] <= f["yhat"]).all() and (f["yhat"] <= f["yhat_upper"]).all()
    b = pd.read_csv(out / "backtest.csv")
    assert {"series", "model", "mase", "smape", "coverage"} <= set(b.columns)
    s = pd.read_csv(out / "signals.csv")
    assert {"series", "date", "direction", "magnitude", "confidence", "kind"} <= set(s.columns)
    assert f["series"].nunique() == 36
    m = res["metrics"]
    assert m["mean_mase_selected"] <= m["mean_mase_baseline"]
    assert res["promotion"]["promoted"]
    uri = indicators_store["settings"].tracking_uri
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    assert (
        str(client.get_model_version_by_alias("indicator-forecaster", "champion").version) == res["version"]
    )
    names = {a.path for a in client.list_artifacts(res["run_id"], "outputs/plots")}
    assert "outputs/plots/reopens.png" in names


def test_experiment_verdicts_match_the_truth(indicators_store: dict) -> None:
    truth = {r["id"]: r for r in csv.DictReader((SAMPLE / "truth" / "experiments.csv").open())}
    results = {r["id"]: r for r in indicators_store["experiments"]["results"]}
    assert set(results) == set(truth)
    nulls = [i for i, t in truth.items() if t["is_null"] == "true"]
    real = [i for i, t in truth.items() if t["is_null"] != "true"]
    false_calls = [i for i in nulls if results[i]["verdict"] != "inconclusive"]
    missed = [i for i in real if results[i]["verdict"] == "inconclusive"]
    assert len(false_calls) <= 1, false_calls
    assert missed == [], {i: (results[i]["effect"], results[i]["p_value"]) for i in missed}
    for i in real:  # the interval covers the injected effect
        r, t = results[i], float(truth[i]["true_effect"])
        assert r["ci_low"] <= t <= r["ci_high"] or abs(r["effect"] - t) < 0.25 * abs(t), (i, r["effect"], t)


def test_rescoring_links_the_previous_run(indicators_store: dict) -> None:
    settings = indicators_store["settings"]
    first = {r["id"]: r["run_id"] for r in indicators_store["experiments"]["results"]}
    again = score_experiments(settings, [SAMPLE / "indicators.csv"], [SAMPLE / "experiments.yaml"])
    client = MlflowClient(tracking_uri=settings.tracking_uri)
    for r in again["results"][:3]:
        run = client.get_run(r["run_id"])
        assert run.data.tags["recur.experiment_id"] == r["id"]
        assert run.data.tags["recur.previous_run_id"] == first[r["id"]]
        assert {a.path for a in client.list_artifacts(r["run_id"])} >= {"impact.png", "result.json"}


def test_dask_executor_gives_the_same_forecasts(tmp_path) -> None:
    """The same job on a Dask LocalCluster (2 workers) as on local processes: identical selections/forecasts."""
    from ml.errors import InputError
    from training.indicators import executor_map, train_indicators
    from training.settings import Settings

    data = pd.read_csv(SAMPLE / "indicators.csv")
    subset = tmp_path / "subset.csv"
    data[
        (data["team"] == "payments") & data["indicator"].isin(["reopens", "mttr_hours", "incidents"])
    ].to_csv(subset, index=False)
    settings = Settings(
        mlflow_tracking_uri=f"sqlite:///{tmp_path / 'm.db'}",
        mlflow_artifact_root=tmp_path / "a",
        cache_dir=tmp_path,
    )
    common = {"candidates": ["auto_ets", "auto_theta"], "horizon": 8}
    local = train_indicators(settings, [subset], executor="local", out=tmp_path / "local", **common)
    dask = train_indicators(settings, [subset], executor="dask://local", out=tmp_path / "dask", **common)
    assert [r["chosen"] for r in local["series"]] == [r["chosen"] for r in dask["series"]]
    a = pd.read_csv(tmp_path / "local" / "forecasts.csv")
    b = pd.read_csv(tmp_path / "dask" / "forecasts.csv")
    pd.testing.assert_frame_equal(a, b)
    with pytest.raises(InputError, match="executor"):
        with executor_map("spark://x"):
            pass


def test_a_sparse_export_of_counts_trains_as_the_full_one(tmp_path) -> None:
    """Only the weeks with an incident have a row: the forecaster sees the absent weeks as zeros (one note), so
    its series, signals and explanations are those of the full file."""
    import numpy as np

    from training.indicators import train_indicators
    from training.settings import Settings

    rng = np.random.default_rng(2)
    rows = []
    for k, team in enumerate(("payments", "search")):
        y = rng.poisson(0.5 + 0.5 * k, 70)
        if team == "payments":
            y[45:] += rng.poisson(4.0, 25)
        y[0], y[-1] = max(y[0], 1), max(y[-1], 1)
        days = pd.date_range("2024-01-01", periods=70, freq="7D")
        rows += [
            {"indicator": "incidents", "ds": d.date(), "y": int(v), "team": team}
            for d, v in zip(days, y, strict=True)
        ]
    full = pd.DataFrame(rows)
    paths = {"full": tmp_path / "full.csv", "sparse": tmp_path / "sparse.csv"}
    full.to_csv(paths["full"], index=False)
    full[full.y != 0].to_csv(paths["sparse"], index=False)
    settings = Settings(
        mlflow_tracking_uri=f"sqlite:///{tmp_path / 'm.db'}",
        mlflow_artifact_root=tmp_path / "a",
        cache_dir=tmp_path,
    )
    res = {
        k: train_indicators(settings, [p], executor="serial", candidates=["seasonal_naive"], horizon=4)
        for k, p in paths.items()
    }
    assert res["sparse"]["series"] == res["full"]["series"]
    assert res["sparse"]["signals"] == res["full"]["signals"]
    assert res["sparse"]["explanations"] == res["full"]["explanations"]
    shifts = [
        s for s in res["full"]["signals"] if s["series"] == "incidents/team=payments" and s["kind"] == "shift"
    ]
    assert shifts, res["full"]["signals"]
    assert res["full"]["notes"] == []
    absent = int((full.y == 0).sum())
    assert res["sparse"]["notes"] == [
        f"incidents: {absent} absent dates of 2 of its 2 series counted as 0 (whole-number counts summed over "
        "their parts: a date without a row had none)"
    ]
