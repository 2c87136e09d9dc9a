"""Pure ASGI middleware: body-size limits, model headers, Prometheus metrics.

Plain ASGI rather than ``@app.middleware("http")``: Starlette's ``BaseHTTPMiddleware`` runs every request
through an extra task and memory stream, which cost more than the similarity search itself at load.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from serving import errors
from serving.metrics import Metrics
from serving.models import ModelStore

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Any]
Send = Callable[[Message], Any]
ASGIApp = Callable[[Scope, Receive, Send], Any]

_WITH_BODY = frozenset({"POST", "PUT", "PATCH"})


class LimitsAndModelHeaders:
    """413 for a body over ``max_body_bytes`` (declared or, when chunked, counted), 400 for a bad
    Content-Length; every response gets ``X-Recur-Models`` (all loaded champions) and ``X-Model-Name`` /
    ``X-Model-Version``: the model the route used (``request.state.recur_model``, set by
    :class:`serving.deps.Champions`), else all loaded champions."""

    def __init__(self, app: ASGIApp, store: ModelStore, max_body_bytes: int) -> None:
        self.app = app
        self.store = store
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        send = self._with_headers(scope, send)
        length = next((v for k, v in scope["headers"] if k == b"content-length"), None)
        if length is not None:
            try:
                too_big = int(length) > self.max_body_bytes
            except ValueError:
                await errors.error_response(400, "bad_request", "invalid Content-Length header")(
                    scope, receive, send
                )
                return
            if too_big:
                await self._too_big(scope, receive, send)
                return
        elif scope["method"] in _WITH_BODY:  # chunked upload: read it here, counting, then replay it
            chunks: list[bytes] = []
            size, more = 0, True
            while more:
                message = await receive()
                if message["type"] != "http.request":
                    break
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > self.max_body_bytes:
                    await self._too_big(scope, receive, send)
                    return
                chunks.append(chunk)
                more = message.get("more_body", False)
            receive = _replay(b"".join(chunks), receive)
        await self.app(scope, receive, send)

    async def _too_big(self, scope: Scope, receive: Receive, send: Send) -> None:
        await errors.error_response(
            413, "payload_too_large", f"request body is over {self.max_body_bytes} bytes"
        )(scope, receive, send)

    def _with_headers(self, scope: Scope, send: Send) -> Send:
        store = self.store

        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                loaded = sorted(store.loaded().items())
                used = scope.get("state", {}).get("recur_model")
                if used is not None:
                    name, version = used
                else:
                    name = ",".join(n for n, _ in loaded) or "none"
                    version = ",".join(m.version for _, m in loaded) or "none"
                drop = {b"x-recur-models", b"x-model-name", b"x-model-version"}
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() not in drop]
                headers += [
                    (b"x-recur-models", (",".join(f"{n}@{m.version}" for n, m in loaded) or "none").encode()),
                    (b"x-model-name", name.encode()),
                    (b"x-model-version", version.encode()),
                ]
                message = {**message, "headers": headers}
            await send(message)

        return wrapped


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # then the client's disconnect

    return replay


class PrometheusMiddleware:
    """Counts requests by method, route template and status, and observes their latency."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def wrapped(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, wrapped)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", None) or "unmatched"
            method = scope["method"]
            self.metrics.requests.labels(method, path, str(status)).inc()
            self.metrics.latency.labels(method, path).observe(time.perf_counter() - start)
