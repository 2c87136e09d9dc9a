"""Load a registered champion's runtime in this process (for the CLI and the report), from its data files."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from ml.errors import ModelUnavailableError
from ml.registry.artifacts import MODEL_KINDS, fetch_version
from ml.registry.runtimes import open_runtime
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
    # Built by the installed code from the version's data files; code stored in the registry is never run.
    kind = MODEL_KINDS.get(model_name)
    tmp = Path(tempfile.mkdtemp(prefix="recur-champion-"))
    try:
        runtime = open_runtime(
            fetch_version(settings.tracking_uri, model_name, str(mv.version), dest=tmp), kind
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return runtime, str(mv.version)
