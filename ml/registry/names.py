"""Names in the MLflow registry and tracking store, defined once for training, serving and the benchmarks."""

from __future__ import annotations

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
