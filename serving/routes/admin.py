from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from serving.deps import StoreDep
from serving.security import AdminScope

router = APIRouter(prefix="/v1/admin", tags=["admin"])


@router.post("/reload", summary="Load any new champion from the registry and swap it in atomically.")
def reload(store: StoreDep, request: Request, _: AdminScope) -> dict[str, Any]:
    result = store.reload()
    for name, info in result.items():
        if info["status"] == "loaded":
            request.app.state.metrics.reloads.labels(name).inc()
        request.app.state.metrics.model_version.labels(name).set(float(info.get("version") or 0))
    return {"models": result}
