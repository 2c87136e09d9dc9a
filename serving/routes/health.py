from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from serving.deps import StoreDep

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Liveness: the process answers.")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Readiness: which champions are loaded, and what is missing.",
    responses={503: {"description": "No model is loaded yet."}},
)
def readyz(store: StoreDep) -> Any:
    status = store.status()
    ready = any(m["loaded"] for m in status.values())
    missing = [f"{name}: {m['reason']}" for name, m in status.items() if not m["loaded"]]
    body = {"status": "ready" if ready else "not_ready", "models": status, "missing": missing}
    return JSONResponse(body, status_code=200 if ready else 503)


@router.get("/metrics", summary="Prometheus metrics.", response_class=Response)
def metrics(request: Request) -> Response:
    return request.app.state.metrics.render()
