"""Load a registered champion's runtime in this process (for the CLI and the report)."""

from __future__ import annotations

from typing import Any

import mlflow

from ml.errors import ModelUnavailableError
from training import tracking
from training.settings import Settings


def load_runtime(settings: Settings, model_name: str, alias: str = tracking.CHAMPION) -> tuple[Any, str]:
    """The runtime object of `model_name@alias` and its version; ModelUnavailableError when there is none."""
    tracking.configure(settings)
    mv = tracking.alias_version(model_name, alias)
    if mv is None:
        raise ModelUnavailableError(
            f"no '{alias}' version of model '{model_name}' in {settings.tracking_uri}: "
            "train and promote one first (`recur train ... --promote`)",
            field="model",
            value=model_name,
        )
    model = mlflow.pyfunc.load_model(f"models:/{model_name}/{mv.version}")
    wrapper = model.unwrap_python_model()
    return getattr(wrapper, "runtime", None) or wrapper, str(mv.version)
