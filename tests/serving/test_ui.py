"""The web page in process (TestClient / ASGI transport): every route, escaping, no raw PII, the login with its
session cookie and CSRF token, and the guard covering /ui.

Tests without a model run fast on an empty store; the ones over a trained champion use the session's
``store`` / ``indicators_store`` (trained once) and are marked slow like every test that trains.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from mlflow.tracking import MlflowClient

from serving.app import create_app
from serving.settings import ServingSettings
from serving.ui import session

FOREIGN = ("203.0.113.9", 1234)  # TEST-NET-3: never routed
LOCAL = ("127.0.0.1", 50000)
BASE = "http://127.0.0.1:8000"
READ_KEY = "read-key-0123456789abcdef"
ADMIN_KEY = "admin-key-0123456789abcdef"
EMAIL = re.compile(r"[\w.+-]{1,64}@[\w-]{1,63}\.[\w.-]{2,63}")
IPV4 = re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}\b")
PLANTED = '<script>alert("x")</script> checkout timeouts, mail jane.doe@example.com from 10.1.2.3'


@pytest.fixture(scope="module")
def empty_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    uri = f"sqlite:///{tmp_path_factory.mktemp('ui-empty') / 'mlflow.db'}"
    MlflowClient(tracking_uri=uri, registry_uri=uri).search_registered_models()
    return uri


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    for k in list(os.environ):
        if k.startswith("RECUR_"):
            monkeypatch.delenv(k)
    monkeypatch.chdir(tmp_path)
    yield


def _app(uri: str, **settings: Any) -> FastAPI:
    return create_app(ServingSettings(mlflow_tracking_uri=uri, **settings), load_models=False)


def _call(app: FastAPI, path: str, client: tuple[str, int] = LOCAL) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, client=client)
        async with httpx.AsyncClient(transport=transport, base_url=BASE) as c:
            return await c.get(path)

    return asyncio.run(go())


def _client(app: FastAPI, client: tuple[str, int] = LOCAL) -> TestClient:
    return TestClient(app, base_url=BASE, client=client, follow_redirects=False)


# ---------------------------------------------------------------------------------------------- without a model


def test_keyless_ui_answers_loopback_only(empty_uri: str, clean_env: None) -> None:
    app = _app(empty_uri)
    for path in ("/ui", "/ui/search?q=x", "/ui/patterns", "/ui/static/ui.css", "/ui/login"):
        r = _call(app, path, client=FOREIGN)
        assert r.status_code == 403 and r.json()["error"] == "forbidden", path
    r = _call(app, "/ui")
    assert r.status_code == 200 and "text/html" in r.headers["content-type"]
    assert '<label for="q">What is happening?</label>' in r.text
    assert "No pattern model is loaded yet" in r.text
    assert _call(app, "/ui/static/ui.css").headers["content-type"].startswith("text/css")


def test_without_a_model_each_page_is_a_plain_503_page(empty_uri: str, clean_env: None) -> None:
    app = _app(empty_uri)
    for path in (
        "/ui/search?q=disk+full",
        "/ui/patterns",
        "/ui/patterns/3",
        "/ui/incidents/INC-1",
        "/ui/indicators",
    ):
        r = _call(app, path)
        assert r.status_code == 503, path
        assert "text/html" in r.headers["content-type"] and "No model loaded" in r.text
        assert "sqlite" not in r.text and empty_uri not in r.text and "Traceback" not in r.text
    r = _call(app, "/ui/experiments")  # the experiment registry is readable: an empty list, said plainly
    assert r.status_code == 200 and "No experiment recorded yet" in r.text


def test_with_keys_the_page_asks_for_a_login(empty_uri: str, clean_env: None) -> None:
    app = _app(empty_uri, api_keys=f"{READ_KEY}:read,{ADMIN_KEY}:admin")
    with _client(app, FOREIGN) as c:
        r = c.get("/ui/patterns?x=1")
        assert r.status_code == 303
        assert r.headers["location"] == "/ui/login?next=%2Fui%2Fpatterns%3Fx%3D1"
        r = c.get("/ui/login", params={"next": "/ui/patterns"})
        assert r.status_code == 200 and 'type="password"' in r.text
        csrf = c.cookies.get(session.CSRF_COOKIE)
        assert csrf and f'value="{csrf}"' in r.text
        set_cookie = r.headers["set-cookie"].lower()
        assert "httponly" in set_cookie and "samesite=strict" in set_cookie and "path=/ui" in set_cookie
        r = c.post("/ui/login", data={"key": "wrong-key-0123456789", "csrf": csrf, "next": "/ui/patterns"})
        assert r.status_code == 401 and "not valid" in r.text
        csrf = c.cookies.get(session.CSRF_COOKIE)
        r = c.post("/ui/login", data={"key": READ_KEY, "csrf": csrf, "next": "/ui/patterns"})
        assert r.status_code == 303 and r.headers["location"] == "/ui/patterns"
        cookie = r.headers["set-cookie"]
        assert cookie.startswith(f"{session.SESSION_COOKIE}=") and READ_KEY not in cookie
        assert "httponly" in cookie.lower() and "samesite=strict" in cookie.lower()
        r = c.get("/ui/patterns")
        assert r.status_code == 503 and "No model loaded" in r.text  # logged in; no model in this store
        assert c.get("/v1/patterns").status_code == 401  # the cookie is for the page only, not the API
        assert c.post("/ui/logout").status_code == 303
        assert c.get("/ui/patterns").status_code == 303  # logged out


def test_failed_logins_are_throttled_per_address(empty_uri: str, clean_env: None) -> None:
    app = _app(empty_uri, api_keys=f"{READ_KEY}:read")

    def attempt(c: TestClient, key: str) -> httpx.Response:
        c.get("/ui/login")
        return c.post(
            "/ui/login", data={"key": key, "csrf": c.cookies.get(session.CSRF_COOKIE), "next": "/ui"}
        )

    with _client(app, FOREIGN) as c:
        for _ in range(session.LOGIN_FAILURES):
            assert attempt(c, "wrong-key-0123456789").status_code == 401
        r = attempt(c, READ_KEY)  # even the right key waits: guessing must not be cheaper than waiting
        assert r.status_code == 429 and "Too many" in r.text
        assert 1 <= int(r.headers["retry-after"]) <= session.LOGIN_WINDOW_S
    with _client(app, ("198.51.100.7", 4321)) as other:  # another address is not blocked
        assert attempt(other, READ_KEY).status_code == 303


def test_login_throttle_window_and_bound() -> None:
    t = session.LoginThrottle(limit=3, window_s=60, max_clients=2)
    for s in (0.0, 1.0, 2.0):
        assert t.retry_after("a", now=s) == 0
        t.failed("a", now=s)
    assert t.retry_after("a", now=3.0) == 57  # the oldest failure leaves the window at 60 s
    assert t.retry_after("a", now=60.5) == 0
    t.failed("b", now=61.0)
    t.failed("c", now=61.0)  # bounded: "a", the least recently seen, is dropped
    assert "a" not in t._failures and t.retry_after("a", now=61.0) == 0
    t.succeeded("b")
    assert "b" not in t._failures


def test_login_needs_the_same_origin_token(empty_uri: str, clean_env: None) -> None:
    app = _app(empty_uri, api_keys=f"{READ_KEY}:read")
    with _client(app) as c:
        # A cross-site form post carries no SameSite=Strict token cookie: refused, no session.
        r = c.post("/ui/login", data={"key": READ_KEY, "csrf": "guess", "next": "/ui"})
        assert r.status_code == 403 and session.SESSION_COOKIE not in r.headers.get("set-cookie", "")
        c.get("/ui/login")
        token = c.cookies.get(session.CSRF_COOKIE)
        r = c.post("/ui/login", data={"key": READ_KEY, "csrf": token + "x"})
        assert r.status_code == 403
        r = c.post(
            "/ui/login", data={"key": READ_KEY, "csrf": token}, headers={"Origin": "https://attacker.example"}
        )
        assert r.status_code == 403
        r = c.post("/ui/login", data={"key": READ_KEY, "csrf": token, "next": "//attacker.example/x"})
        assert r.status_code == 303 and r.headers["location"] == "/ui"  # never off-site


def test_a_forged_or_foreign_session_cookie_is_refused(empty_uri: str, clean_env: None) -> None:
    app = _app(empty_uri, api_keys=f"{READ_KEY}:read")
    other = _app(empty_uri, api_keys=f"{READ_KEY}:read")  # another process: another secret
    with _client(other) as c:
        c.get("/ui/login")
        c.post("/ui/login", data={"key": READ_KEY, "csrf": c.cookies.get(session.CSRF_COOKIE)})
        foreign = c.cookies.get(session.SESSION_COOKIE)
    assert foreign
    with _client(app) as c:
        c.cookies.set(session.SESSION_COOKIE, foreign, domain="127.0.0.1", path="/ui")
        assert c.get("/ui/patterns").status_code == 303
        payload, _, mac = foreign.rpartition(".")
        expires, tag, nonce = payload.split(".")
        c.cookies.set(
            session.SESSION_COOKIE, f"9999999999.{tag}.{nonce}.{mac}", domain="127.0.0.1", path="/ui"
        )
        assert c.get("/ui/patterns").status_code == 303
        # A Bearer key still works for tools.
        r = c.get("/ui/patterns", headers={"Authorization": f"Bearer {READ_KEY}"})
        assert r.status_code == 503


# ---------------------------------------------------------------------------------------------- over the champions


@pytest.fixture(scope="module")
def ui(indicators_store: dict) -> Iterator[TestClient]:
    env = indicators_store["env"]
    settings = ServingSettings(mlflow_tracking_uri=env["RECUR_MLFLOW_TRACKING_URI"])
    with _client(create_app(settings)) as c:
        # Started from a local copy, a champion missing from it is loaded by the background registry check.
        deadline = time.time() + 120
        while c.get("/readyz").json()["missing"] and time.time() < deadline:
            time.sleep(0.2)
        yield c


def _assert_clean(text: str) -> None:
    assert "Traceback" not in text
    assert not EMAIL.search(text), EMAIL.search(text)
    assert not [ip for ip in IPV4.findall(text) if not ip.startswith("127.")], IPV4.findall(text)


@pytest.mark.slow
def test_every_page_over_the_champions(ui: TestClient, indicators_store: dict) -> None:
    pages = {
        "/ui": "What is happening?",
        "/ui/search?q=database+connection+pool+exhausted": "closest incidents",
        "/ui/patterns": "Where they hit",
        "/ui/indicators": "Early warnings",
        "/ui/experiments": "Experiments",
    }
    for path, text in pages.items():
        r = ui.get(path)
        assert r.status_code == 200, (path, r.text[:300])
        assert text in r.text, path
        assert r.headers["x-model-name"]
        _assert_clean(r.text)
        assert "sqlite" not in r.text and str(indicators_store["root"]) not in r.text
    assert ui.get("/ui/incidents/NO-SUCH").status_code == 404
    assert ui.get("/ui/patterns/999999").status_code == 404
    r = ui.get("/ui/indicators")
    shifts = r.text.split('id="shift-h"', 1)[1].split("</section>", 1)[0]
    assert "Why it moved" in shifts and "Not analysed" not in shifts  # every listed shift has its explanation
    assert "No convincing cause" in shifts or "(confidence" in shifts
    assert re.search(r"between \d{4}-\d\d-\d\d and \d{4}-\d\d-\d\d", shifts)  # the dates it may lie between
    plot = re.search(r'src="(/ui/indicators/[^"]+/plot\.png)"', r.text)
    assert plot and ui.get(plot.group(1).replace("&amp;", "&")).headers["content-type"] == "image/png"


@pytest.mark.slow
def test_search_escapes_and_redacts_the_query(ui: TestClient) -> None:
    r = ui.get("/ui/search", params={"q": PLANTED})
    assert r.status_code == 200
    assert "<script>alert" not in r.text and "&lt;script&gt;" in r.text
    heading = r.text.split("Searched for:", 1)[1].split("</p>", 1)[0]
    assert "jane.doe@example.com" not in heading and "10.1.2.3" not in heading  # shown redacted
    assert "jane.doe@example.com" not in r.text and "10.1.2.3" not in r.text  # the search box's refill too
    results = r.text.split("closest incidents", 1)[1]
    _assert_clean(results)
    links = re.findall(r'href="/ui/incidents/([^"]+)"', results)
    assert len(links) >= 5
    detail = ui.get(f"/ui/incidents/{links[0]}")
    assert detail.status_code == 200 and "Closest past incidents" in detail.text
    _assert_clean(detail.text)


@pytest.mark.slow
def test_heat_map_cells_link_to_exactly_their_incidents(ui: TestClient) -> None:
    page = ui.get("/ui/patterns").text
    cells = re.findall(
        r'<a href="(/ui/patterns/(\d+)\?(service|month)=([^"]+))" aria-label="(\d+) incidents', page
    )
    assert len(cells) > 20
    services = [c for c in cells if c[2] == "service"][:4]
    months = [c for c in cells if c[2] == "month"][:4]
    assert len(services) == len(months) == 4
    for href, _pid, what, _value, count in services + months:
        r = ui.get(href.replace("&amp;", "&"))
        assert r.status_code == 200
        rows = re.findall(
            r"<tr><td>(\d{4}-\d{2}-\d{2})</td><td><a [^>]+>[^<]*</a></td><td>([^<]*)</td>", r.text
        )
        assert len(rows) == int(count), href
        query = parse_qs(urlsplit(href).query)
        if what == "service":
            assert {service for _d, service in rows} == set(query["service"])
        else:
            assert {d[:7] for d, _s in rows} == set(query["month"])
