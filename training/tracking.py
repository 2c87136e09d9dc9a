"""MLflow plumbing shared by the training jobs: store set-up, runs, registry and alias-based promotion."""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from ml.registry.names import CHAMPION
from training.settings import Settings

log = logging.getLogger(__name__)

CANDIDATE = "candidate"

# Requirements written into each registered model: the project package provides the code it loads.
PIP_REQUIREMENTS = ["recur", f"mlflow=={mlflow.__version__}"]


def configure(settings: Settings) -> MlflowClient:
    """Point MLflow at the configured store (a local SQLite store by default) and return a client."""
    uri = settings.tracking_uri
    if uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def _is_local(uri: str) -> bool:
    return uri.startswith(("sqlite:", "file:", "/", "postgresql", "mysql"))


def ensure_experiment(name: str, settings: Settings) -> str:
    """Id of the MLflow experiment `name`, created on first use (artifacts under the project for local stores)."""
    client = MlflowClient()
    exp = client.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    location = None
    if _is_local(settings.tracking_uri):
        root = settings.mlflow_artifact_root
        root.mkdir(parents=True, exist_ok=True)
        location = (root / name).resolve().as_uri()
    return client.create_experiment(name, artifact_location=location)


@contextmanager
def run(
    experiment: str, settings: Settings, run_name: str | None = None, tags: dict[str, str] | None = None
) -> Iterator[Any]:
    """Start an MLflow run in `experiment` and yield it."""
    exp_id = ensure_experiment(experiment, settings)
    with mlflow.start_run(experiment_id=exp_id, run_name=run_name, tags=tags or {}) as active:
        yield active


def log_pyfunc(
    *,
    model_name: str,
    code_file: Path,
    artifacts: dict[str, str],
    signature: Any = None,
    metadata: dict[str, Any] | None = None,
) -> ModelVersion:
    """Log a models-from-code pyfunc in the active run and register it as a new version of `model_name`."""
    info = mlflow.pyfunc.log_model(
        name=model_name,
        python_model=str(code_file),
        artifacts=artifacts,
        registered_model_name=model_name,
        pip_requirements=PIP_REQUIREMENTS,
        signature=signature,
        metadata=metadata,
    )
    client = MlflowClient()
    versions = client.search_model_versions(f"name='{model_name}' and run_id='{info.run_id}'")
    if not versions:
        raise RuntimeError(f"model {model_name} was logged but no registered version was found")
    version = max(versions, key=lambda v: int(v.version))
    client.set_registered_model_alias(model_name, CANDIDATE, version.version)
    log.info("Registry - %s version %s registered as %s", model_name, version.version, CANDIDATE)
    return version


def alias_version(model_name: str, alias: str = CHAMPION) -> ModelVersion | None:
    """The version behind `alias`, or None when the model or the alias does not exist."""
    try:
        return MlflowClient().get_model_version_by_alias(model_name, alias)
    except MlflowException:
        return None


@dataclass
class Promotion:
    promoted: bool
    reason: str
    version: str
    previous: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "promoted": self.promoted,
            "reason": self.reason,
            "version": self.version,
            "previous": self.previous,
        }


def promote(
    model_name: str,
    version: str,
    *,
    metric: str,
    new_value: float | None,
    champion_value: float | None,
    higher_is_better: bool = True,
    tolerance: float = 0.0,
    reference: str | None = None,
) -> Promotion:
    """Move `champion` to `version` when the quality gate passes, and say why either way.

    The gate compares the candidate's `metric` with `champion_value`, measured by the caller on the same
    evaluation: the current champion's figure (default), or, with `reference`, a named yardstick such as the
    seasonal-naive baseline, which then applies even to the first model."""
    current = alias_version(model_name, CHAMPION)
    prev = str(current.version) if current is not None else None
    against = reference or (f"champion v{prev}" if prev else None)
    word = "higher" if higher_is_better else "lower"
    if against is None:
        reason = "no champion yet: first model promoted"
    elif new_value is None:
        return Promotion(
            False, f"gate metric {metric} could not be computed for the candidate", version, prev
        )
    elif champion_value is None:
        reason = f"{against} has no {metric} on this evaluation: candidate promoted"
    else:
        delta = new_value - champion_value if higher_is_better else champion_value - new_value
        if delta < -tolerance:
            return Promotion(
                False,
                f"quality gate failed: {metric} {new_value:.4f} vs {against} {champion_value:.4f} "
                f"({word} is better, tolerance {tolerance})",
                version,
                prev,
            )
        reason = f"quality gate passed: {metric} {new_value:.4f} vs {against} {champion_value:.4f} ({word} is better)"
    MlflowClient().set_registered_model_alias(model_name, CHAMPION, version)
    log.info("Registry - %s v%s is now %s (%s)", model_name, version, CHAMPION, reason)
    return Promotion(True, reason, version, prev)


def download_model_artifacts(model_uri: str) -> Path:
    """Download a registered model's files to a fresh local folder and return it."""
    dest = Path(tempfile.mkdtemp(prefix="recur-model-"))
    return Path(mlflow.artifacts.download_artifacts(artifact_uri=model_uri, dst_path=str(dest)))
