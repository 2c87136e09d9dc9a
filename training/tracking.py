"""MLflow plumbing shared by the training jobs: store set-up, runs, registry and alias-based promotion."""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import mlflow
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from ml.registry.artifacts import ArtifactError, check_artifacts, fetch_version, read_manifest
from ml.registry.names import CHAMPION
from training.settings import Settings

log = logging.getLogger(__name__)

CANDIDATE = "candidate"

# Requirements written into each registered model: the project package provides the code it loads.
PIP_REQUIREMENTS = ["recur", f"mlflow=={mlflow.__version__}"]


T = TypeVar("T")


def _retry(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Call `fn`, retrying with back-off while an embedded SQLite store answers "database is locked" (another
    training writes at the same moment)."""
    for attempt in range(8):
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            if "database is locked" not in str(exc) or attempt == 7:
                raise
            log.info("Tracking - store busy (database is locked), retrying")
            time.sleep(0.1 * 2**attempt)
    raise AssertionError("unreachable")  # pragma: no cover


def configure(settings: Settings) -> MlflowClient:
    """Point MLflow at the configured store (a local SQLite store by default) and return a client.

    A new SQLite store is created and migrated under a file lock, so trainings started at the same moment do
    not race on the schema (MLflow's migrations are not safe to run twice at once)."""
    uri = settings.tracking_uri
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    # A remote store makes MLflow print run links on stdout, which would corrupt `recur ... --json`.
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    if not uri.startswith("sqlite:///"):
        return MlflowClient(tracking_uri=uri, registry_uri=uri)
    db = Path(uri.removeprefix("sqlite:///"))
    db.parent.mkdir(parents=True, exist_ok=True)
    with open(db.with_name(db.name + ".lock"), "w") as lock:  # noqa: PTH123
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:  # the first client creates and migrates the tracking and registry schemas (cached per process)
            client = _retry(MlflowClient, tracking_uri=uri, registry_uri=uri)
            _retry(client.search_experiments, max_results=1)
            _retry(client.search_registered_models, max_results=1)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return client


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
    try:
        return _retry(client.create_experiment, name, artifact_location=location)
    except MlflowException as exc:  # another training created it a moment ago
        exp = client.get_experiment_by_name(name)
        if exp is None:
            raise
        log.info("Tracking - experiment %s was created concurrently (%s)", name, exc.error_code)
        return exp.experiment_id


@contextmanager
def run(
    experiment: str, settings: Settings, run_name: str | None = None, tags: dict[str, str] | None = None
) -> Iterator[Any]:
    """Start an MLflow run in `experiment` and yield it."""
    exp_id = ensure_experiment(experiment, settings)
    with _retry(mlflow.start_run, experiment_id=exp_id, run_name=run_name, tags=tags or {}) as active:
        yield active


def log_pyfunc(
    *,
    model_name: str,
    code_file: Path,
    artifacts: dict[str, str],
    signature: Any = None,
    metadata: dict[str, Any] | None = None,
) -> ModelVersion:
    """Log the model in the active run, register it as a new version of `model_name`, and check that the
    registered files are complete before any alias points at it.

    ``artifacts["model_dir"]`` is the data artifact (with its manifest) the API builds its runtime from; the
    pyfunc flavour built from `code_file` is there for MLflow's own tools only (the API never runs it)."""
    info = mlflow.pyfunc.log_model(
        name=model_name,
        python_model=str(code_file),
        artifacts=artifacts,
        pip_requirements=PIP_REQUIREMENTS,
        signature=signature,
        metadata=metadata,
    )
    version = _retry(mlflow.register_model, info.model_uri, model_name)
    verify_registered(model_name, str(version.version), Path(artifacts["model_dir"]))
    _retry(MlflowClient().set_registered_model_alias, model_name, CANDIDATE, version.version)
    log.info("Registry - %s version %s registered as %s", model_name, version.version, CANDIDATE)
    return version


def verify_registered(model_name: str, version: str, local_dir: Path) -> None:
    """Download registered `version` and check it as the API will (manifest, every file, every array), and
    that its manifest is the one written locally: an upload cut short is refused here, before promotion."""
    kind = read_manifest(local_dir)["kind"]
    tmp = Path(tempfile.mkdtemp(prefix="recur-verify-"))
    try:
        root = fetch_version(mlflow.get_tracking_uri(), model_name, version, dest=tmp)
        if read_manifest(root) != read_manifest(local_dir):
            raise ArtifactError(
                f"registered {model_name} v{version} does not hold the files this run wrote",
                field="artifact",
                value=version,
            )
        check_artifacts(root, kind)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log.info("Registry - %s v%s: uploaded artifact verified", model_name, version)


def alias_version(model_name: str, alias: str = CHAMPION) -> ModelVersion | None:
    """The version behind `alias`, or None when the model or the alias does not exist."""
    try:
        return _retry(MlflowClient().get_model_version_by_alias, model_name, alias)
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
    _retry(MlflowClient().set_registered_model_alias, model_name, CHAMPION, version)
    log.info("Registry - %s v%s is now %s (%s)", model_name, version, CHAMPION, reason)
    return Promotion(True, reason, version, prev)


def download_model_artifacts(model_uri: str) -> Path:
    """Download a registered model's files to a fresh local folder and return it."""
    dest = Path(tempfile.mkdtemp(prefix="recur-model-"))
    return Path(mlflow.artifacts.download_artifacts(artifact_uri=model_uri, dst_path=str(dest)))
