"""`recur train indicators`: forecast every indicator series with the model its backtest chooses, detect shifts,
log per-series and aggregate metrics and plots to MLflow, and register `indicator-forecaster`.

Series are fitted in parallel: local processes by default, or a Dask distributed cluster with
``--executor dask://HOST:PORT`` (``dask://local`` starts a 2-worker LocalCluster on this machine).
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mlflow
import numpy as np
import pandas as pd
import yaml
from mlflow.models import ModelSignature
from mlflow.types import ColSpec, Schema

from ml.errors import InputError
from ml.registry.forecaster_runtime import write_forecaster_artifacts
from ml.registry.names import FORECASTER_MODEL
from ml.registry.runtimes import CODE_DIR
from training import tracking
from training.ingest import indicator_history, load_indicators
from training.settings import Settings

if TYPE_CHECKING:
    from training.explain import ExplainInputs

log = logging.getLogger(__name__)

EXPERIMENT = "indicator-forecasts"
SIGNATURE = ModelSignature(
    inputs=Schema([ColSpec("string", "series"), ColSpec("long", "horizon", required=False)]),
    outputs=Schema(
        [
            ColSpec("string", "series"),
            ColSpec("string", "model"),
            ColSpec("string", "ds"),
            ColSpec("double", "yhat"),
            ColSpec("double", "yhat_lower"),
            ColSpec("double", "yhat_upper"),
        ]
    ),
)


def _metric_key(text: str) -> str:
    """MLflow metric names allow letters, digits, _ - . / and spaces."""
    return re.sub(r"[^A-Za-z0-9_\-./ ]", "_", text)


@contextmanager
def executor_map(executor: str, n_workers: int | None = None) -> Iterator[Callable[..., Iterable[Any]]]:
    """A ``map``-like callable running work on local processes or on a Dask cluster."""
    if executor == "serial":
        yield map
    elif executor == "local":
        import concurrent.futures as cf
        import multiprocessing as mp

        workers = n_workers or max(1, len(os.sched_getaffinity(0)))
        with cf.ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn")) as pool:
            yield lambda fn, *its: pool.map(fn, *its, chunksize=4)
    elif executor.startswith("dask://"):
        from dask.distributed import Client, LocalCluster

        address = executor.removeprefix("dask://")
        cluster = None
        if address in ("", "local"):
            cluster = LocalCluster(
                n_workers=n_workers or 2, threads_per_worker=1, processes=True, dashboard_address=None
            )
            client = Client(cluster)
        else:
            client = Client(f"tcp://{address}", timeout="30s")
        try:
            yield lambda fn, *its: client.gather(client.map(fn, *its, pure=False))
        finally:
            client.close()
            if cluster is not None:
                cluster.close()
    else:
        raise InputError(
            f"executor must be local, serial, dask://local or dask://HOST:PORT, got {executor!r}",
            field="executor",
            value=executor,
        )


def read_thresholds(path: Path | None) -> list[dict[str, Any]]:
    """Early-warning thresholds from YAML: a list of {indicator|series, value, direction: above|below}."""
    if path is None or not path.exists():
        return []
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or []
    if isinstance(data, dict):
        data = data.get("thresholds", [])
    if not isinstance(data, list):
        raise InputError(f"{path}: expected a list of thresholds", field="thresholds", value=str(path))
    out = []
    for i, t in enumerate(data):
        if not isinstance(t, dict) or "value" not in t:
            raise InputError(f"{path}: threshold {i + 1} needs a 'value'", field="thresholds.value", value=t)
        out.append({k: t[k] for k in ("value", "direction", "series", "indicator") if k in t})
    return out


def _plots(bundle: Any, history: pd.DataFrame, out: Path) -> list[Path]:
    from ml.io.schemas import parse_series_key
    from ml.reporting.plots import small_multiples_png, unit_of

    out.mkdir(parents=True, exist_ok=True)
    signals = bundle.signals()
    by_indicator: dict[str, list[str]] = {}
    for sid in bundle.series:
        if bundle.results[sid].get("status") == "error":
            continue
        by_indicator.setdefault(str(parse_series_key(sid)["indicator"]), []).append(sid)
    paths = []
    for indicator, sids in sorted(by_indicator.items()):
        panels = []
        for sid in sids:
            r = bundle.results[sid]
            dims = sid.split("/", 1)[1] if "/" in sid else "all"
            hist = history[history["series"] == sid]
            sig = signals[signals["series"] == sid].to_dict(orient="records")
            panels.append((f"{dims} ({r.get('chosen')})", hist, r.get("forecast") or [], sig))
        png = small_multiples_png(
            panels, f"{indicator}: history, forecast and 80% interval", unit_of(indicator)
        )
        path = out / f"{indicator}.png"
        path.write_bytes(png)
        paths.append(path)
    return paths


def aggregate_metrics(bundle: Any) -> dict[str, float]:
    summary = bundle.summary()
    ok = summary[summary["status"] != "error"]
    scored = ok.dropna(subset=["mase", "baseline_mase"])
    bt = bundle.backtests()
    out = {
        "n_series": float(len(summary)),
        "n_errors": float((summary["status"] == "error").sum()),
        "n_baseline_only": float((ok["status"] == "baseline").sum()),
        "n_signals": float(len(bundle.signals())),
    }
    if len(scored):
        out["mean_mase_selected"] = float(scored["mase"].mean())
        out["mean_mase_baseline"] = float(scored["baseline_mase"].mean())
        out["share_series_selected_le_baseline"] = float(
            (scored["mase"] <= scored["baseline_mase"] + 1e-12).mean()
        )
    if len(bt):
        per_candidate = bt.groupby("candidate")["mase"].mean()
        for cand, value in per_candidate.items():
            if np.isfinite(value):
                out[_metric_key(f"mean_mase_candidate.{cand}")] = float(value)
        cov = bt["coverage"].dropna()
        if len(cov):
            out["mean_coverage80_backtest"] = float(cov.mean())
    for row in bundle.candidate_usage().itertuples():
        out[_metric_key(f"seconds_candidate.{row.candidate}")] = float(row.seconds)
        out[_metric_key(f"n_selected_candidate.{row.candidate}")] = float(row.selected)
        out[_metric_key(f"n_pruned_candidate.{row.candidate}")] = float(row.pruned)
    return out


def train_indicators(
    settings: Settings,
    indicators_paths: Sequence[Path],
    *,
    horizon: int | None = None,
    out: Path | None = None,
    executor: str = "local",
    promote: bool = False,
    strict: bool = False,
    candidates: Sequence[str] | None = None,
    thresholds_path: Path | None = None,
    explain_inputs: ExplainInputs | None = None,
) -> dict[str, Any]:
    """Fit, detect, explain every shift (``explain_inputs``: incidents with patterns, experiments, change log;
    without them the causes are the slices alone), log and register the forecaster with its explanations."""
    from ml.indicators.forecasting import fit_many
    from training.explain import explain_history, summary_counts

    read = load_indicators(indicators_paths, strict=strict)
    history, completed = indicator_history(read)
    thresholds = read_thresholds(thresholds_path)
    config: dict[str, Any] = {"thresholds": thresholds}
    if horizon is not None:
        config["horizon"] = horizon
    if candidates:
        config["candidates"] = list(candidates)
    with executor_map(executor) as map_fn:
        bundle = fit_many(history[["series", "ds", "y"]], config, map_fn=map_fn)
    explanations = explain_history(history, explain_inputs)
    why = summary_counts(explanations)
    metrics = aggregate_metrics(bundle)
    metrics["records_quarantined"] = float(read.quarantined)
    metrics["n_shifts_explained"] = float(why["explained"])
    metrics["n_shifts_no_convincing_cause"] = float(why["no_convincing_cause"])
    per_series = {}
    for row in bundle.summary().itertuples():
        if row.mase is not None and np.isfinite(row.mase):
            per_series[_metric_key(f"mase.{row.series}")] = float(row.mase)
    tracking.configure(settings)
    with tempfile.TemporaryDirectory(prefix="recur-indicators-") as tmp:
        tmp_path = Path(tmp)
        outputs = tmp_path / "outputs"
        outputs.mkdir()
        bundle.forecasts().to_csv(outputs / "forecasts.csv", index=False)
        bt = bundle.backtests()
        bt.groupby(["series", "candidate"], as_index=False)[["mase", "smape", "coverage"]].mean().rename(
            columns={"candidate": "model"}
        ).to_csv(outputs / "backtest.csv", index=False)
        bt.to_csv(outputs / "backtest_windows.csv", index=False)
        bundle.signals().to_csv(outputs / "signals.csv", index=False)
        (outputs / "causes.json").write_text(
            json.dumps({"signals": explanations}, indent=1), encoding="utf-8"
        )
        bundle.warnings().to_csv(outputs / "warnings.csv", index=False)
        bundle.summary().to_csv(outputs / "selection.csv", index=False)
        plots = _plots(bundle, history, outputs / "plots")
        model_dir = write_forecaster_artifacts(
            tmp_path / "model",
            bundle=bundle,
            history=history,
            config={"metrics": metrics, "config": bundle.config},
            explanations=explanations,
        )
        with tracking.run(
            EXPERIMENT, settings, run_name="indicators", tags={"recur.job": "train indicators"}
        ) as run:
            mlflow.log_params(
                {
                    "indicators": ",".join(str(p) for p in indicators_paths),
                    "executor": executor,
                    "horizon": str(bundle.config.get("horizon")),
                    "candidates": ",".join(bundle.config.get("candidates", [])),
                    "selection": str(bundle.config.get("selection")),
                    "n_windows": str(bundle.config.get("n_windows")),
                    "thresholds": str(len(thresholds)),
                }
            )
            mlflow.log_metrics(metrics)
            if per_series:
                mlflow.log_metrics(per_series)
            mlflow.log_artifacts(str(outputs), artifact_path="outputs")
            version = tracking.log_pyfunc(
                model_name=FORECASTER_MODEL,
                code_file=CODE_DIR / "forecaster.py",
                artifacts={"model_dir": str(model_dir)},
                signature=SIGNATURE,
            )
            promotion = None
            if promote:
                promotion = tracking.promote(
                    FORECASTER_MODEL,
                    str(version.version),
                    metric="mean backtest MASE",
                    new_value=metrics.get("mean_mase_selected"),
                    champion_value=metrics.get("mean_mase_baseline"),
                    higher_is_better=False,
                    reference="the seasonal-naive baseline",
                )
                mlflow.set_tag("recur.promotion", promotion.reason)
            run_id = run.info.run_id
        if out is not None:
            import shutil

            out.mkdir(parents=True, exist_ok=True)
            for f in outputs.rglob("*"):
                if f.is_file():
                    dest = out / f.relative_to(outputs)
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(f, dest)
    summary = bundle.summary()
    return {
        "run_id": run_id,
        "model": FORECASTER_MODEL,
        "version": str(version.version),
        "metrics": metrics,
        "series": json_records(summary[["series", "status", "chosen", "mase", "baseline_mase", "reason"]]),
        "signals": json_records(bundle.signals().head(20)),
        "explanations": why,
        "plots": [p.name for p in plots],
        "quarantined": read.quarantined,
        "notes": completed,
        "promotion": promotion.to_dict() if promotion else None,
    }


def json_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return json.loads(frame.to_json(orient="records", date_format="iso"))
