"""API keys (Bearer) with scopes ``read`` and ``admin``. Keys are compared by their SHA-256 digest."""

from __future__ import annotations

import hashlib
import hmac
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

_bearer = HTTPBearer(auto_error=False, description="API key, sent as `Authorization: Bearer <key>`.")


def _scope_for(request: Request, creds: HTTPAuthorizationCredentials | None) -> str:
    keys: dict[str, str] = request.app.state.key_scopes
    if not keys:
        return "admin"  # no keys configured: LoopbackAndHostGuard lets only loopback callers this far
    if creds is None or creds.scheme.lower() != "bearer" or not creds.credentials:
        raise HTTPException(
            401, "missing API key: send Authorization: Bearer <key>", {"WWW-Authenticate": "Bearer"}
        )
    digest = hashlib.sha256(creds.credentials.encode()).hexdigest()
    for known, scope in keys.items():
        if hmac.compare_digest(known, digest):
            return scope
    raise HTTPException(401, "invalid API key", {"WWW-Authenticate": "Bearer"})


async def require_read(
    request: Request, creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> str:
    return _scope_for(request, creds)


async def require_admin(
    request: Request, creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> str:
    scope = _scope_for(request, creds)
    if scope != "admin":
        raise HTTPException(403, "this endpoint needs an API key with the admin scope")
    return scope


ReadScope = Annotated[str, Depends(require_read)]
AdminScope = Annotated[str, Depends(require_admin)]
