"""Who may read the web page: the API's rules, with a signed session cookie instead of a Bearer header.

- No API keys configured: the app's ``LoopbackAndHostGuard`` already answers loopback callers only, so every
  caller that gets here may read.
- With keys: a read (or admin) key entered once on ``/ui/login`` sets ``recur_session``: HttpOnly,
  SameSite=Strict, Path=/ui, signed with HMAC-SHA256 under a random secret made per process. The cookie holds
  an expiry and a keyed digest of the key (never the key), so a key removed from the settings ends its
  sessions, and a restart ends them all.
- The login form is protected against cross-site posts by a double-submit token: a random value in a
  SameSite=Strict cookie and in the form; the POST must carry both, equal, and its ``Origin`` (when sent) must be
  this host.
- Failed logins are throttled per client address: after ``LOGIN_FAILURES`` wrong keys within ``LOGIN_WINDOW_S``
  seconds the form answers 429 with ``Retry-After`` until the oldest failure leaves the window; a good key clears
  the count. The table is bounded (least recently seen addresses are dropped first).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections import OrderedDict, deque
from typing import Any

from fastapi import Request

SESSION_COOKIE = "recur_session"
CSRF_COOKIE = "recur_csrf"
SESSION_TTL_S = 12 * 3600
COOKIE_PATH = "/ui"
LOGIN_FAILURES = 5
LOGIN_WINDOW_S = 300.0


class LoginThrottle:
    """Failed logins per client address in a sliding window, for at most ``max_clients`` addresses."""

    def __init__(
        self, limit: int = LOGIN_FAILURES, window_s: float = LOGIN_WINDOW_S, max_clients: int = 10_000
    ) -> None:
        self.limit = limit
        self.window_s = window_s
        self.max_clients = max_clients
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def _recent(self, client: str, now: float) -> deque[float]:
        times = self._failures.get(client)
        if times is None:
            return deque()
        while times and times[0] <= now - self.window_s:
            times.popleft()
        if not times:
            del self._failures[client]
        return times

    def retry_after(self, client: str, now: float | None = None) -> int:
        """Seconds this client must wait before the next try (0: it may try now)."""
        now = time.monotonic() if now is None else now
        times = self._recent(client, now)
        if len(times) < self.limit:
            return 0
        return max(1, int(times[0] + self.window_s - now + 0.999))

    def failed(self, client: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        times = self._recent(client, now)
        times.append(now)
        while len(times) > self.limit:
            times.popleft()
        self._failures[client] = times
        self._failures.move_to_end(client)
        while len(self._failures) > self.max_clients:
            self._failures.popitem(last=False)

    def succeeded(self, client: str) -> None:
        self._failures.pop(client, None)


def login_throttle(request: Request) -> LoginThrottle:
    state = request.app.state
    throttle = getattr(state, "login_throttle", None)
    if throttle is None:
        throttle = LoginThrottle()
        state.login_throttle = throttle
    return throttle


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _secret(request: Request) -> bytes:
    state = request.app.state
    secret = getattr(state, "ui_secret", None)
    if secret is None:
        secret = secrets.token_bytes(32)
        state.ui_secret = secret
    return secret


def _sign(secret: bytes, payload: str) -> str:
    mac = hmac.new(secret, payload.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


def _key_tag(secret: bytes, digest: str) -> str:
    """Which key a session came from, without the key: HMAC of its SHA-256 digest, shortened."""
    return _sign(secret, "key:" + digest)[:22]


def keys_configured(request: Request) -> bool:
    return bool(request.app.state.key_scopes)


def scope_of_key(request: Request, key: str) -> tuple[str, str] | None:
    """(sha256 digest, scope) of a known key, else ``None``; compared in constant time like the API."""
    digest = hashlib.sha256(key.encode()).hexdigest()
    found = None
    for known, scope in request.app.state.key_scopes.items():
        if hmac.compare_digest(known, digest):
            found = (known, scope)
    return found


def new_session(request: Request, digest: str, now: float | None = None) -> str:
    secret = _secret(request)
    expires = int((now if now is not None else time.time()) + SESSION_TTL_S)
    payload = f"{expires}.{_key_tag(secret, digest)}.{secrets.token_urlsafe(12)}"
    return f"{payload}.{_sign(secret, payload)}"


def session_scope(request: Request) -> str | None:
    """The scope of a valid session cookie: signed by this process, not expired, its key still configured."""
    value = request.cookies.get(SESSION_COOKIE)
    if not value or len(value) > 300 or value.count(".") != 3:
        return None
    payload, _, mac = value.rpartition(".")
    secret = _secret(request)
    if not hmac.compare_digest(_sign(secret, payload), mac):
        return None
    expires, tag, _nonce = payload.split(".")
    if not expires.isdigit() or int(expires) < time.time():
        return None
    for digest, scope in request.app.state.key_scopes.items():
        if hmac.compare_digest(_key_tag(secret, digest), tag):
            return str(scope)
    return None


def bearer_scope(request: Request) -> str | None:
    """A tool may still send ``Authorization: Bearer <key>`` to the page."""
    header = request.headers.get("authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        return None
    found = scope_of_key(request, key.strip())
    return found[1] if found else None


def reader_scope(request: Request) -> str | None:
    """The caller's scope on the page, or ``None`` when it must log in first."""
    if not keys_configured(request):
        return "admin"  # keyless: the guard lets loopback callers only this far
    return session_scope(request) or bearer_scope(request)


def new_csrf_token() -> str:
    return secrets.token_urlsafe(24)


def csrf_ok(request: Request, form_token: str) -> bool:
    """Double submit: the form's token equals the SameSite=Strict cookie's, and the Origin (if any) is us."""
    cookie = request.cookies.get(CSRF_COOKIE, "")
    if not cookie or not form_token or not hmac.compare_digest(cookie, form_token):
        return False
    origin = request.headers.get("origin")
    if origin and origin != "null":
        host = request.headers.get("host", "")
        if origin.split("://", 1)[-1].rstrip("/") != host:
            return False
    elif origin == "null":
        return False
    return True


def cookie_options(request: Request) -> dict[str, Any]:
    return {
        "httponly": True,
        "samesite": "strict",
        "path": COOKIE_PATH,
        "secure": request.url.scheme == "https",
    }
