"""The MLflow pyfunc wrappers of the registered models, for MLflow's own tools (the API does not load them: it
builds the runtimes from the artifact's data files with the installed code, see :func:`open_runtime`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ml.registry.forecaster_runtime import ForecasterRuntime
from ml.registry.runtimes import PatternsRuntime

try:  # the pyfunc wrappers need MLflow; the library itself does not
    import warnings

    from mlflow.pyfunc.model import PythonModel  # where it is defined: mlflow.pyfunc is a lazy module to mypy

    # predict() is left untyped on purpose: MLflow would read its hints as an input schema.
    warnings.filterwarnings("ignore", message=".*type hint.*predict", category=UserWarning)
    warnings.filterwarnings(
        "ignore", message=".*Add type hints to the `predict` method.*", category=UserWarning
    )

    class PatternsPyfunc(PythonModel):
        """pyfunc: input DataFrame with a ``text`` column (and params ``k``); output one row per text with the
        pattern, its confidence and the ids of the nearest past incidents (JSON list)."""

        runtime: PatternsRuntime | None = None

        def load_context(self, context: Any) -> None:
            self.runtime = PatternsRuntime(Path(context.artifacts["model_dir"]))

        def predict(self, context, model_input, params=None):  # noqa: ANN001 - untyped: MLflow reads hints as a schema
            if self.runtime is None:
                self.load_context(context)
            k = int((params or {}).get("k", 5))
            return self.runtime.predict_frame(model_input, k=k)  # type: ignore[union-attr]

    class ForecasterPyfunc(PythonModel):
        """pyfunc: input DataFrame with ``series`` (and optional ``horizon``); output forecast rows with the
        interval bounds and the model chosen for the series."""

        runtime: ForecasterRuntime | None = None

        def load_context(self, context: Any) -> None:
            self.runtime = ForecasterRuntime(Path(context.artifacts["model_dir"]))

        def predict(self, context, model_input, params=None):  # noqa: ANN001 - untyped: MLflow reads hints as a schema
            if self.runtime is None:
                self.load_context(context)
            return self.runtime.predict_frame(model_input)  # type: ignore[union-attr]

except ImportError:  # pragma: no cover
    pass
