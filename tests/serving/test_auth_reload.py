"""API keys and scopes; hot reload of a new champion while requests are in flight; schemathesis fuzzing."""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from mlflow.tracking import MlflowClient

from tests.serving.server import Server

pytestmark = pytest.mark.slow

READ_KEY = "read-key-0123456789abcdef"
ADMIN_KEY = "admin-key-0123456789abcdef"


@pytest.fixture(scope="module")
def keyed_server(store: dict, tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("keys")
    keys_file = tmp / "keys.json"
    keys_file.write_text(json.dumps({hashlib.sha256(ADMIN_KEY.encode()).hexdigest(): "admin"}))
    env = {**store["env"], "RECUR_API_KEYS": f"{READ_KEY}:read", "RECUR_API_KEYS_FILE": str(keys_file)}
    srv = Server(env, log_path=tmp / "server.log")
    srv.start(ready_path="/readyz")
    yield srv
    srv.stop()


def test_keys_and_scopes(keyed_server: Server) -> None:
    url = keyed_server.url
    assert httpx.get(url + "/v1/patterns").status_code == 401
    assert (
        httpx.get(
            url + "/v1/patterns", headers={"Authorization": "Bearer wrong-key-xxxxxxxxxxxx"}
        ).status_code
        == 401
    )
    read = {"Authorization": f"Bearer {READ_KEY}"}
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    assert httpx.get(url + "/v1/patterns", headers=read).status_code == 200
    r = httpx.post(url + "/v1/admin/reload", headers=read, json={})
    assert r.status_code == 403 and r.json()["error"] == "forbidden"
    assert httpx.post(url + "/v1/admin/reload", headers=admin, json={}).status_code == 200
    assert httpx.get(url + "/healthz").status_code == 200  # probes need no key


def test_reload_under_load(server: Server, store: dict) -> None:
    """Register a second version, move `champion`, reload while 4 clients hammer the API: no request fails and
    the new version is served afterwards."""
    from tests.conftest import SAMPLE
    from training.patterns import train_patterns

    settings = store["settings"]
    second = train_patterns(
        settings, [SAMPLE / "incidents.jsonl"], promote=False, seed=7, show_progress=False
    )
    client = MlflowClient(tracking_uri=settings.tracking_uri, registry_uri=settings.tracking_uri)
    client.set_registered_model_alias("incident-patterns", "champion", second["version"])

    stop = threading.Event()
    statuses: list[int] = []
    versions: set[str] = set()

    def hammer() -> None:
        with httpx.Client(base_url=server.url, timeout=30) as c:
            while not stop.is_set():
                r = c.post(
                    "/v1/incidents/similar", json={"text": "certificate expired on the load balancer", "k": 5}
                )
                statuses.append(r.status_code)
                versions.add(r.headers.get("X-Model-Version", "?"))

    with cf.ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(hammer) for _ in range(4)]
        time.sleep(1.0)
        r = httpx.post(server.url + "/v1/admin/reload", json={}, timeout=120)
        time.sleep(1.0)
        stop.set()
        for f in futures:
            f.result()
    assert r.status_code == 200 and r.json()["models"]["incident-patterns"]["status"] == "loaded"
    assert statuses and all(s == 200 for s in statuses), set(statuses)
    assert second["version"] in versions
    after = httpx.post(server.url + "/v1/incidents/similar", json={"text": "disk full", "k": 1})
    assert after.headers["X-Model-Version"] == second["version"]
    metrics = httpx.get(server.url + "/metrics").text
    assert 'recur_model_reloads_total{model="incident-patterns"} 1.0' in metrics


def test_schemathesis_finds_no_server_errors(live: Server, tmp_path: Path) -> None:
    """Fuzz every operation of the live OpenAPI document with every model loaded: no 5xx, and every response
    conforms to the schema (status codes, content types, bodies)."""
    cmd = [
        str(Path(sys.executable).parent / "schemathesis"),
        "run",
        live.url + "/openapi.json",
        "--checks",
        "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
        "--max-examples",
        "25",
        "--request-timeout",
        "30",
        "--exclude-path",
        "/v1/admin/reload",
        "--suppress-health-check",
        "all",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-6000:]
