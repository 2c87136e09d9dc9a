"""With an empty registry the API still starts, says what is missing, and answers 503 with JSON."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.serving.server import Server


@pytest.fixture(scope="module")
def empty_server(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("empty")
    env = {
        "RECUR_MLFLOW_TRACKING_URI": f"sqlite:///{tmp / 'mlflow.db'}",
        "RECUR_CACHE_DIR": str(tmp / "cache"),
    }
    srv = Server(env, log_path=tmp / "server.log")
    srv.start()
    yield srv
    srv.stop()


def test_starts_without_champion(empty_server: Server) -> None:
    assert httpx.get(empty_server.url + "/healthz").json() == {"status": "ok"}
    r = httpx.get(empty_server.url + "/readyz")
    assert r.status_code == 503
    body = r.json()
    assert body["status"] == "not_ready"
    assert any("incident-patterns" in m for m in body["missing"])


def test_model_endpoints_answer_503_json(empty_server: Server) -> None:
    r = httpx.post(empty_server.url + "/v1/incidents/similar", json={"text": "disk full on db host", "k": 3})
    assert r.status_code == 503
    body = r.json()
    assert body["error"] == "model_unavailable" and "recur train" in body["detail"]
    assert r.headers["X-Model-Name"] == "none"


def test_errors_are_json_without_traces(empty_server: Server) -> None:
    r = httpx.post(
        empty_server.url + "/v1/incidents/similar",
        content=b"{not json",
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 422 and r.json()["error"] == "invalid_request"
    r = httpx.post(empty_server.url + "/v1/incidents/similar", json={"text": "x", "k": 500})
    assert r.status_code == 422 and any("k" in d["loc"] for d in r.json()["detail"])
    r = httpx.post(
        empty_server.url + "/v1/incidents/similar",
        content=b"x" * 300_000,
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 413 and r.json()["error"] == "payload_too_large"
    r = httpx.get(empty_server.url + "/v1/nope")
    assert r.status_code == 404 and r.json()["error"] == "not_found"
    assert "Traceback" not in r.text


def test_metrics_exposed(empty_server: Server) -> None:
    httpx.get(empty_server.url + "/healthz")
    text = httpx.get(empty_server.url + "/metrics").text
    assert "recur_http_requests_total" in text and "recur_http_request_duration_seconds_bucket" in text
    assert 'recur_model_version{model="incident-patterns"} 0.0' in text


def test_log_says_loopback_only(empty_server: Server) -> None:
    assert "no API keys configured" in Path(empty_server.log_path).read_text()
