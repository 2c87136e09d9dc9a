"""The web page in a real headless Chromium (Debian's, via Playwright; no browser is downloaded) against a real
`recur serve` on 127.0.0.1: search, a heat-map cell, JavaScript off, and the login when keys are set."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser import chromium, chromium_env
from tests.serving.server import Server

pytestmark = pytest.mark.slow

READ_KEY = "ui-read-key-0123456789abcdef"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    try:
        from playwright import sync_api
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail("playwright is not installed: `make install` installs the test extra")
        pytest.skip("playwright is not installed (pip install -e '.[test]')")
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(
            executable_path=chromium(),
            env=chromium_env(),
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-quic"],
        )
        yield b
        b.close()


class Page:
    """A fresh context and page that records console errors and uncaught page errors."""

    def __init__(self, browser: Any, **context: Any) -> None:
        self.context = browser.new_context(viewport={"width": 1280, "height": 900}, **context)
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Page]:
    p = Page(browser)
    yield p
    p.close()


def test_type_a_query_submit_see_results(server: Server, page: Page) -> None:
    p = page.page
    p.goto(server.url + "/ui")
    p.get_by_label("What is happening?").fill("database connection pool exhausted, requests time out")
    p.get_by_role("button", name="Find similar incidents").click()
    p.wait_for_url(re.compile(r"/ui/search\?q="))
    results = p.locator("li.result")
    assert results.count() >= 5
    said = " ".join(
        p.locator(".suggestion").all_inner_texts()
    )  # the pattern line, and the fix when there is one
    assert "Pool" in said or "pattern" in said
    first = results.first.locator("h3 a")
    title = first.inner_text()
    first.click()
    p.wait_for_url(re.compile(r"/ui/incidents/"))
    assert p.locator("h1").inner_text() == title
    assert p.locator("li.result").count() >= 1  # its own similar incidents
    assert page.errors == [], page.errors


def test_click_a_heat_map_cell_see_its_incidents(server: Server, page: Page) -> None:
    p = page.page
    p.goto(server.url + "/ui/patterns")
    cell = p.locator("#by-service").locator("xpath=..").locator("td a").first
    label = cell.get_attribute("aria-label") or ""
    count = int(label.split()[0])
    cell.click()
    p.wait_for_url(re.compile(r"/ui/patterns/\d+\?service="))
    rows = p.locator("table.incidents tbody tr")
    assert rows.count() == count
    service = p.locator("#f-service").input_value()
    assert all(rows.nth(i).locator("td").nth(2).inner_text() == service for i in range(rows.count()))
    assert page.errors == [], page.errors


def test_search_and_keyboard_work_without_javascript(server: Server, browser: Any) -> None:
    page = Page(browser, java_script_enabled=False)
    try:
        p = page.page
        p.goto(server.url + "/ui")
        p.keyboard.press("Tab")  # the first stop is the skip link
        assert p.locator("a.skip:focus").count() == 1
        p.get_by_label("What is happening?").focus()
        p.keyboard.type("certificate expired on the load balancer")
        p.keyboard.press("Tab")  # to the service filter
        p.keyboard.press("Tab")  # to the button
        p.keyboard.press("Enter")
        p.wait_for_url(re.compile(r"/ui/search\?q=certificate"))
        assert p.locator("li.result").count() >= 5
    finally:
        page.close()


@pytest.fixture(scope="module")
def keyed_server(store: dict[str, object]) -> Iterator[Server]:
    env = {**store["env"], "RECUR_API_KEYS": f"{READ_KEY}:read"}  # type: ignore[dict-item]
    srv = Server(env, log_path=Path(store["root"]) / "server-keys.log")  # type: ignore[arg-type]
    srv.start(ready_path="/readyz")
    yield srv
    srv.stop()


def test_login_with_a_key_when_keys_are_set(keyed_server: Server, page: Page) -> None:
    p = page.page
    p.goto(keyed_server.url + "/ui/patterns")
    p.wait_for_url(re.compile(r"/ui/login\?next="))
    p.get_by_label("API key").fill("not-the-key-0123456789")
    p.get_by_role("button", name="Log in").click()
    assert "not valid" in p.locator("[role=alert]").inner_text()
    assert page.errors == [
        "Failed to load resource: the server responded with a status of 401 (Unauthorized)"
    ]
    page.errors.clear()  # the wrong key's page is a 401, as it should be; nothing else may fail
    p.get_by_label("API key").fill(READ_KEY)
    p.get_by_role("button", name="Log in").click()
    p.wait_for_url(re.compile(r"/ui/patterns$"))
    assert p.locator("h1").inner_text() == "Failure patterns"
    cookie = next(c for c in page.context.cookies() if c["name"] == "recur_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and READ_KEY not in cookie["value"]
    assert p.evaluate("document.cookie") == ""  # HttpOnly: no script can read it
    p.get_by_role("button", name="Log out").click()
    p.wait_for_url(re.compile(r"/ui/login"))
    assert page.errors == [], page.errors
