"""Reading recorded process experiments back from MLflow (the runs of the ``process-experiments`` experiment).

Takes the tracking URI as an argument: used by the CLI (`recur experiment list`), the report and the API.
"""

from __future__ import annotations

import datetime as dt
import json
import tempfile
from pathlib import Path
from typing import Any

from ml.errors import NotFoundError
from ml.registry.names import EXPERIMENTS_EXPERIMENT as EXPERIMENT


def _client(tracking_uri: str) -> Any:
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


def latest_runs(client: Any, experiment_id: str) -> dict[str, Any]:
    """The newest run per ``recur.experiment_id`` tag."""
    runs = client.search_runs([experiment_id], order_by=["attributes.start_time DESC"], max_results=5000)
    latest: dict[str, Any] = {}
    for r in runs:
        eid = r.data.tags.get("recur.experiment_id")
        if eid and eid not in latest:
            latest[eid] = r
    return latest


def _utc_iso(ms: int) -> str:
    """A run's start time (milliseconds since the epoch) in ISO 8601, UTC, as pandas' Timestamp wrote it."""
    return (
        dt.datetime.fromtimestamp(ms // 1000, tz=dt.UTC).replace(microsecond=(ms % 1000) * 1000).isoformat()
    )


def _summary(eid: str, run: Any) -> dict[str, Any]:
    m, t = run.data.metrics, run.data.tags
    return {
        "id": eid,
        "name": (run.info.run_name or "").removeprefix(f"{eid} "),
        "indicator": t.get("indicator"),
        "treated": t.get("treated"),
        "dimension": run.data.params.get("dimension"),
        "controls": run.data.params.get("controls"),
        "start": run.data.params.get("start"),
        "end": run.data.params.get("end"),
        "desired_direction": run.data.params.get("desired_direction"),
        "owner": t.get("owner") or None,
        "verdict": t.get("verdict"),
        "effect": m.get("effect"),
        "ci_low": m.get("ci_low"),
        "ci_high": m.get("ci_high"),
        "relative_effect": m.get("relative_effect"),
        "p_value": m.get("p_value"),
        "mde": m.get("mde"),
        "scored_at": _utc_iso(int(run.info.start_time)),
        "run_id": run.info.run_id,
        "previous_run_id": t.get("recur.previous_run_id"),
        "hypothesis": {
            "problem": t.get("hypothesis.problem"),
            "solution": t.get("hypothesis.solution"),
            "metric": t.get("hypothesis.metric"),
        },
    }


def list_recorded(tracking_uri: str) -> list[dict[str, Any]]:
    """The latest scoring of every recorded experiment, sorted by id."""
    client = _client(tracking_uri)
    exp = client.get_experiment_by_name(EXPERIMENT)
    if exp is None:
        return []
    return [_summary(eid, run) for eid, run in sorted(latest_runs(client, exp.experiment_id).items())]


def _latest(tracking_uri: str, experiment_id: str) -> Any:
    client = _client(tracking_uri)
    exp = client.get_experiment_by_name(EXPERIMENT)
    run = latest_runs(client, exp.experiment_id).get(experiment_id) if exp is not None else None
    if run is None:
        raise NotFoundError(
            f"no recorded experiment {experiment_id!r}", field="experiment_id", value=experiment_id
        )
    return run


def get_recorded(tracking_uri: str, experiment_id: str) -> dict[str, Any]:
    """The latest scoring of one experiment with its full result."""
    import mlflow

    run = _latest(tracking_uri, experiment_id)
    with tempfile.TemporaryDirectory() as tmp:
        path = mlflow.artifacts.download_artifacts(
            run_id=run.info.run_id, artifact_path="result.json", dst_path=tmp, tracking_uri=tracking_uri
        )
        detail = json.loads(Path(path).read_text(encoding="utf-8"))
    return {**_summary(experiment_id, run), **detail}


def recorded_plot(tracking_uri: str, experiment_id: str) -> bytes:
    import mlflow

    run = _latest(tracking_uri, experiment_id)
    with tempfile.TemporaryDirectory() as tmp:
        path = mlflow.artifacts.download_artifacts(
            run_id=run.info.run_id, artifact_path="impact.png", dst_path=tmp, tracking_uri=tracking_uri
        )
        return Path(path).read_bytes()
