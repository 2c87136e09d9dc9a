"""Pure ASGI middleware: the loopback/Host guard, body-size limits, model headers, Prometheus metrics.

Plain ASGI rather than ``@app.middleware("http")``: Starlette's ``BaseHTTPMiddleware`` runs every request
through an extra task and memory stream, which cost more than the similarity search itself at load.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import time
from collections.abc import Callable, Iterable
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

log = logging.getLogger(__name__)

LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})


@functools.lru_cache(maxsize=4096)  # parsing an address costs more than the rest of the guard together
def is_loopback_address(host: str | None) -> bool:
    """True for 127.0.0.0/8, ::1 and IPv4-mapped loopback (::ffff:127.0.0.1); False for names and junk."""
    if not host:
        return False
    try:
        addr = ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return addr.is_loopback


def host_name(header: str) -> str:
    """The name part of a Host header, lower-case: ``[::1]:8000`` -> ``::1``, ``Example.COM.:80`` -> ``example.com``."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1 : header.find("]")] if "]" in header else header
    if header.count(":") == 1:
        header = header.split(":", 1)[0]
    return header.rstrip(".")


class LoopbackAndHostGuard:
    """The API's own guard, whoever started it (``recur serve`` or ``uvicorn --factory``).

    - ``loopback_only`` (no API keys configured, so every caller is admin): a request from a peer that is not a
      loopback address gets 403 JSON.
    - The Host header must name a loopback host (``localhost``, ``127.x.x.x``, ``[::1]``) or one of
      ``allowed_hosts`` (``RECUR_ALLOWED_HOSTS``), else 400 JSON: a web page cannot rebind its own DNS name to
      127.0.0.1 and drive the API from a browser. Checked always in keyless mode; with keys, only when
      ``allowed_hosts`` is set (a Bearer key is not something a browser sends by itself).
    """

    def __init__(self, app: ASGIApp, loopback_only: bool, allowed_hosts: Iterable[str] = ()) -> None:
        self.app = app
        self.loopback_only = loopback_only
        self.allowed_hosts = frozenset(h.lower().rstrip(".") for h in allowed_hosts)
        self.check_host = loopback_only or bool(self.allowed_hosts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        peer = client[0] if client else None
        if self.loopback_only and not is_loopback_address(peer):
            log.warning(
                "Serving - refused %s %s from %s: no API keys configured",
                scope.get("method"),
                scope.get("path"),
                peer,
            )
            await self._refuse(
                scope,
                receive,
                send,
                403,
                "forbidden",
                "no API keys are configured: this server answers loopback callers only",
            )
            return
        if self.check_host:
            raw = next((v for k, v in scope.get("headers", []) if k == b"host"), None)
            if raw is not None:
                name = host_name(raw.decode("latin-1"))
                if not (name in LOOPBACK_NAMES or is_loopback_address(name) or name in self.allowed_hosts):
                    log.warning("Serving - refused Host %r from %s", name[:100], peer)
                    await self._refuse(
                        scope,
                        receive,
                        send,
                        400,
                        "bad_request",
                        "Host header is not a loopback name or one of RECUR_ALLOWED_HOSTS",
                    )
                    return
        await self.app(scope, receive, send)

    @staticmethod
    async def _refuse(
        scope: Scope, receive: Receive, send: Send, status: int, error: str, detail: str
    ) -> None:
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        await errors.error_response(status, error, detail)(scope, receive, send)


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
