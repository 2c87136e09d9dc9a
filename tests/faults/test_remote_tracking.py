"""The API against a real `mlflow server` process (remote tracking URI): started while the tracking server is
down it answers not-ready, then a champion is trained and promoted through the server, and the API becomes ready
by itself (polling) and serves it; restarted, it is ready from the local copy it kept, which the registry then
confirms."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from mlflow.tracking import MlflowClient

from ml.registry.names import CHAMPION, PATTERNS_MODEL
from tests.conftest import ROOT
from tests.faults.conftest import recur, wait_for
from tests.serving.server import Server, free_port

pytestmark = pytest.mark.slow


@pytest.fixture()
def tracking_port(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    port = free_port()
    yield port, tmp_path


def _start_mlflow_server(port: int, root: Path) -> subprocess.Popen[bytes]:
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "RECUR_"))}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--backend-store-uri",
            f"sqlite:///{root / 'server.db'}",
            "--artifacts-destination",
            str(root / "server-artifacts"),
            "--workers",
            "1",
        ],
        cwd=ROOT,
        env=inherited,
        stdout=(root / "mlflow-server.log").open("wb"),
        stderr=subprocess.STDOUT,
    )
    wait_for(
        lambda: httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200,
        timeout=120,
        what="mlflow server",
    )
    return proc


def test_api_starts_not_ready_without_tracking_server_then_serves_a_champion_promoted_through_it(
    fault_data: dict[str, Path], tracking_port: tuple[int, Path]
) -> None:
    port, root = tracking_port
    uri = f"http://127.0.0.1:{port}"
    env = {"RECUR_MLFLOW_TRACKING_URI": uri, "RECUR_CACHE_DIR": str(fault_data["cache"])}
    # an empty local model cache of its own: no copy from an earlier run to start from
    api = Server(
        {**env, "RECUR_RELOAD_INTERVAL_S": "0", "RECUR_MODEL_CACHE_DIR": str(root / "model-cache")},
        log_path=root / "api.log",
    )
    api.start(timeout=180, ready_path="/healthz")
    mlflow_server = None
    try:
        r = httpx.get(api.url + "/readyz", timeout=10)
        assert r.status_code == 503
        model = r.json()["models"][PATTERNS_MODEL]
        assert not model["loaded"] and "unreachable" in model["detail"]
        assert str(port) not in r.text  # no URI in the probe

        mlflow_server = _start_mlflow_server(port, root)
        done = recur(
            env, "train", "patterns", "--incidents", str(fault_data["incidents"]), "--promote", "--json"
        )
        assert done.returncode == 0, done.stderr[-3000:]
        version = json.loads(done.stdout)["version"]
        client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        assert str(client.get_model_version_by_alias(PATTERNS_MODEL, CHAMPION).version) == version
        # The artifacts went through the tracking server, not a local path.
        assert client.get_model_version_download_uri(PATTERNS_MODEL, version).startswith("mlflow-artifacts:")

        wait_for(
            lambda: httpx.get(api.url + "/readyz", timeout=10).status_code == 200,
            timeout=120,
            what="the API becoming ready by itself",
            every=1.0,
        )
        q = httpx.post(
            api.url + "/v1/incidents/similar", json={"text": "disk full on the db host", "k": 3}, timeout=60
        )
        assert q.status_code == 200 and q.headers["X-Model-Version"] == version
        assert len(q.json()["matches"]) == 3

        # A restart is ready from the local copy it kept, and the registry check (the manifest fetched alone
        # through the tracking server) confirms it.
        api.stop()
        api.start(timeout=180, ready_path="/readyz")
        model = httpx.get(api.url + "/readyz", timeout=10).json()["models"][PATTERNS_MODEL]
        assert model["source"] == "local copy" and model["version"] == version
        wait_for(
            lambda: (
                "(checked)"
                in httpx.get(api.url + "/readyz", timeout=10).json()["models"][PATTERNS_MODEL]["detail"]
            ),
            timeout=120,
            what="the registry confirming the local copy",
            every=0.5,
        )
        assert "could not be fetched" not in (root / "api.log").read_text()
    finally:
        api.stop()
        if mlflow_server is not None:
            mlflow_server.terminate()
            try:
                mlflow_server.wait(20)
            except subprocess.TimeoutExpired:
                mlflow_server.kill()
