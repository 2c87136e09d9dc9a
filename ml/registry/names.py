"""Names in the MLflow registry and tracking store, defined once for training, serving and the benchmarks."""

from __future__ import annotations

from pathlib import Path

#: Registered model of the failure patterns and the similar-incident index.
PATTERNS_MODEL = "incident-patterns"
#: Registered model of the indicator forecasts and shift detection.
FORECASTER_MODEL = "indicator-forecaster"
#: Every registered model the API serves.
MODEL_NAMES = (PATTERNS_MODEL, FORECASTER_MODEL)
#: The alias the API serves; promotion moves it.
CHAMPION = "champion"
#: MLflow experiment that records process experiments (one run per scored experiment).
EXPERIMENTS_EXPERIMENT = "process-experiments"


def default_tracking_uri(project_root: Path) -> str:
    """The tracking store used when neither ``RECUR_MLFLOW_TRACKING_URI`` nor ``MLFLOW_TRACKING_URI`` is set:
    a SQLite file under ``<project_root>/mlruns`` (training and serving both build their settings on it)."""
    return f"sqlite:///{Path(project_root) / 'mlruns' / 'mlflow.db'}"
