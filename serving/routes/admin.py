from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field

from serving.deps import StoreDep
from serving.routes.incidents import ERRORS
from serving.security import AdminScope

router = APIRouter(prefix="/v1/admin", tags=["admin"])

_REPORTED = ("status", "version", "previous")


class ReloadRequest(BaseModel):
    """The body of a reload: ``{}`` to load whatever champion changed, ``{"force": true}`` to reload all."""

    model_config = ConfigDict(extra="forbid")

    force: bool = Field(False, description="Reload every champion even if its version did not change.")


async def require_json(request: Request) -> None:
    """Only ``Content-Type: application/json``: a cross-site HTML form or a "simple" fetch (text/plain, no type)
    cannot send it without a CORS preflight, which this API never grants."""
    ctype = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if ctype != "application/json":
        raise HTTPException(
            415, 'send a JSON body ({} or {"force": true}) with Content-Type: application/json'
        )


@router.post(
    "/reload",
    summary="Load any new champion from the registry and swap it in atomically.",
    responses={**ERRORS, 415: ERRORS[422] | {"description": "The body is not application/json."}},
)
def reload(
    body: ReloadRequest,
    store: StoreDep,
    request: Request,
    _: AdminScope,
    _json: Annotated[None, Depends(require_json)],
) -> dict[str, Any]:
    result = store.reload(force=body.force)
    for name, info in result.items():
        if info["status"] == "loaded":
            request.app.state.metrics.reloads.labels(name).inc()
        request.app.state.metrics.model_version.labels(name).set(float(info.get("version") or 0))
    # Status and versions only: why a load failed (paths, URIs) is in the server log.
    return {
        "models": {name: {k: info.get(k) for k in _REPORTED if k in info} for name, info in result.items()}
    }
