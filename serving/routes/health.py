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
    summary="Readiness: which champions are loaded, and which are not.",
    responses={503: {"description": "No model is loaded yet."}},
)
def readyz(store: StoreDep) -> Any:
    # No key is needed here, so nothing internal goes out: why a model is not loaded (a path, a URI, an
    # exception) is in the server log; the probe says only which one.
    models: dict[str, dict[str, Any]] = {}
    missing: list[str] = []
    for name, m in store.status().items():
        if m.get("loaded"):
            models[name] = {
                "loaded": True,
                "version": m.get("version"),
                "run_id": m.get("run_id"),
                "source": m.get("source"),  # registry, or local copy (served before the registry answered)
            }
            if m.get("detail"):  # e.g. "served from the local copy of v3; registry unreachable"
                models[name]["detail"] = m["detail"]
            if m.get(
                "refused"
            ):  # a newer champion refused: the store words it generically (no path, no class)
                models[name]["refused"] = {
                    "version": m["refused"]["version"],
                    "reason": m["refused"]["reason"],
                }
        else:
            reason = f"model {name} is not loaded"
            models[name] = {"loaded": False, "reason": reason}
            if m.get("reason"):  # generic words from the store: no registry, refused, unreachable
                models[name]["detail"] = m["reason"]
            missing.append(reason)
    ready = any(m["loaded"] for m in models.values())
    body = {"status": "ready" if ready else "not_ready", "models": models, "missing": missing}
    return JSONResponse(body, status_code=200 if ready else 503)


@router.get("/metrics", summary="Prometheus metrics.", response_class=Response)
def metrics(request: Request) -> Response:
    return request.app.state.metrics.render()
