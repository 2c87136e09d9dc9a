"""Every error leaves the API as JSON ``{"error": ..., "detail": ...}`` with the right status; never a stack trace.

Client errors (4xx) say what to change. Server-side failures (5xx) never carry internals: a model that failed
to load, an embedding model missing from disk or a store that is down is a generic reason for the client and
the details (paths, URIs, exception text) in the server log under a reference.
"""

from __future__ import annotations

import logging
import uuid

from fastapi import FastAPI, HTTPException, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from ml.errors import InputError, ModelUnavailableError, NotFittedError, NotFoundError, RecurError

log = logging.getLogger(__name__)

_STATUS = {
    InputError: 422,
    NotFoundError: 404,
    ModelUnavailableError: 503,
    NotFittedError: 503,
}

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    429: "too_many_requests",
    503: "unavailable",
}


class ModelNotLoaded(ModelUnavailableError):
    """A champion is not loaded: its message is generic and safe to show (see ``serving.deps.Champions``)."""


class ErrorBody(BaseModel):
    """The shape of every error response."""

    error: str
    detail: str | list[dict[str, object]]


def error_response(
    status: int, error: str, detail: object, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        status_code=status, content=jsonable_encoder({"error": error, "detail": detail}), headers=headers
    )


def install(app: FastAPI) -> None:
    @app.exception_handler(RecurError)
    async def _recur(request: Request, exc: RecurError) -> JSONResponse:
        status = next((s for cls, s in _STATUS.items() if isinstance(exc, cls)), 400)
        if status >= 500 and not isinstance(exc, ModelNotLoaded):
            ref = uuid.uuid4().hex[:12]
            log.warning(
                "Serving - %s on %s %s (ref %s): %s",
                exc.code,
                request.method,
                request.url.path,
                ref,
                exc.message,
            )
            return error_response(
                status,
                exc.code,
                f"a model this request needs is unavailable; reference {ref} in the server log",
            )
        return error_response(status, exc.code, exc.message)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        detail = [
            {
                "loc": [str(p) for p in e.get("loc", ())],
                "msg": str(e.get("msg", "")),
                "type": str(e.get("type", "")),
            }
            for e in exc.errors()
        ]
        return error_response(422, "invalid_request", detail)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        return error_response(exc.status_code, code, detail, headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        ref = uuid.uuid4().hex[:12]
        log.exception(
            "unhandled error on %s %s (ref %s)", request.method, request.url.path, ref, exc_info=exc
        )
        return error_response(500, "internal_error", f"internal error; reference {ref} in the server log")


__all__ = ["ErrorBody", "HTTPException", "ModelNotLoaded", "error_response", "install"]
