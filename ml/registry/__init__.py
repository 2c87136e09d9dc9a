"""What the MLflow registry holds for Recur: model names, the pyfunc runtimes the API loads, recorded experiments.

The only part of ``ml`` that may import mlflow."""

from ml._exports import lazy_exports

_NAMES = {
    "PATTERNS_MODEL": "names",
    "FORECASTER_MODEL": "names",
    "MODEL_NAMES": "names",
    "CHAMPION": "names",
    "EXPERIMENTS_EXPERIMENT": "names",
    "PatternsRuntime": "runtimes",
    "ForecasterRuntime": "forecaster_runtime",
    "write_pattern_artifacts": "runtimes",
    "write_forecaster_artifacts": "forecaster_runtime",
    "list_recorded": "runs",
    "get_recorded": "runs",
    "recorded_plot": "runs",
}

__getattr__, __all__ = lazy_exports(__name__, _NAMES)
