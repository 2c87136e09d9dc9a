"""The latest leadership report (written by `recur report` and logged to MLflow), as JSON and as HTML."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from ml.errors import NotFoundError
from serving.deps import SettingsDep
from serving.routes.incidents import ERRORS
from serving.security import ReadScope

router = APIRouter(prefix="/v1", tags=["report"])

REPORT_EXPERIMENT = "leadership-report"


def _latest_artifact(tracking_uri: str, name: str) -> tuple[str, str]:
    import mlflow.artifacts  # imported on use: a start from the local model copies never needs it
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    exp = client.get_experiment_by_name(REPORT_EXPERIMENT)
    runs = (
        client.search_runs([exp.experiment_id], order_by=["attributes.start_time DESC"], max_results=1)
        if exp is not None
        else []
    )
    if not runs:
        raise NotFoundError("no report yet: run `recur report` (make run does)", field="report")
    run = runs[0]
    with tempfile.TemporaryDirectory() as tmp:
        path = mlflow.artifacts.download_artifacts(
            run_id=run.info.run_id, artifact_path=name, dst_path=tmp, tracking_uri=tracking_uri
        )
        return Path(path).read_text(encoding="utf-8"), run.info.run_id


@router.get("/report", responses=ERRORS, summary="The latest leadership report's sections as JSON.")
async def report(settings: SettingsDep, _: ReadScope) -> dict[str, Any]:
    text, run_id = await run_in_threadpool(_latest_artifact, settings.tracking_uri, "report.json")
    return {"run_id": run_id, **json.loads(text)}


@router.get(
    "/report.html",
    responses={
        **ERRORS,
        200: {"content": {"text/html": {}}, "description": "The self-contained report page."},
    },
    summary="The latest leadership report as a self-contained HTML page.",
)
async def report_html(settings: SettingsDep, _: ReadScope) -> HTMLResponse:
    text, _run = await run_in_threadpool(_latest_artifact, settings.tracking_uri, "index.html")
    return HTMLResponse(text)
