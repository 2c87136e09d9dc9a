"""Faults around a served model, against a real `recur serve` process and a real MLflow store: a corrupt or
incomplete promoted version, `kill -9` of a training midway, and hot swaps under 16 concurrent clients."""

from __future__ import annotations

import json
import os
import shutil
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from mlflow.tracking import MlflowClient

from ml.registry.artifacts import MANIFEST, fetch_version
from ml.registry.names import CHAMPION, PATTERNS_MODEL
from tests.faults.conftest import popen_recur, recur, sqlite_env, wait_for
from tests.serving.server import Server

pytestmark = pytest.mark.slow

#: Length of the load test; CI runs the full 60 s (RECUR_FAULT_LOAD_S shortens it for local runs).
LOAD_S = float(os.environ.get("RECUR_FAULT_LOAD_S", "60"))
TEXTS = [
    "checkout 503s right after a feature-flag config push, no canary",
    "TLS handshakes failed: the edge certificate expired overnight",
    "disk full on the database host, writes failing",
    "DNS resolution errors after a resolver change",
    "queue consumers fell behind and messages piled up",
    "deploy rolled back after error rate spike",
]


@pytest.fixture(scope="module")
def served(fault_data: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """A champion trained by `recur train patterns --promote` (a real process), served by `recur serve`."""
    root = tmp_path_factory.mktemp("served")
    env = sqlite_env(root, fault_data["cache"])
    done = recur(env, "train", "patterns", "--incidents", str(fault_data["incidents"]), "--promote", "--json")
    assert done.returncode == 0, done.stderr[-2000:]
    version = json.loads(done.stdout)["version"]
    server = Server({**env, "RECUR_RELOAD_INTERVAL_S": "0"}, log_path=root / "server.log")
    server.start(timeout=180, ready_path="/readyz")
    try:
        yield {
            "env": env,
            "root": root,
            "server": server,
            "uri": env["RECUR_MLFLOW_TRACKING_URI"],
            "v1": version,
        }
    finally:
        server.stop()


def _client(uri: str) -> MlflowClient:
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def _champion(uri: str) -> str:
    return str(_client(uri).get_model_version_by_alias(PATTERNS_MODEL, CHAMPION).version)


def _register_copy(served: dict, tmp: Path) -> str:
    """Register the current champion's artifact again as a new version (not promoted); returns its number."""
    from ml.registry.runtimes import CODE_DIR
    from training import tracking
    from training.settings import Settings

    env = served["env"]
    settings = Settings(
        mlflow_tracking_uri=env["RECUR_MLFLOW_TRACKING_URI"],
        mlflow_artifact_root=Path(env["RECUR_MLFLOW_ARTIFACT_ROOT"]),
        cache_dir=Path(env["RECUR_CACHE_DIR"]),
    )
    tracking.configure(settings)
    local = fetch_version(served["uri"], PATTERNS_MODEL, _champion(served["uri"]), tmp)
    with tracking.run("fault-tests", settings):
        mv = tracking.log_pyfunc(
            model_name=PATTERNS_MODEL, code_file=CODE_DIR / "patterns.py", artifacts={"model_dir": str(local)}
        )
    return str(mv.version)


def _stored_data_dir(uri: str, version: str) -> Path:
    location = _client(uri).get_model_version_download_uri(PATTERNS_MODEL, version)
    return next(Path(location.removeprefix("file://")).rglob(MANIFEST)).parent


def _query(url: str) -> httpx.Response:
    return httpx.post(url + "/v1/incidents/similar", json={"text": TEXTS[0], "k": 3}, timeout=60)


@pytest.mark.parametrize("fault", ["missing_file", "corrupt_index", "no_manifest"])
def test_broken_promoted_version_is_refused_and_the_old_model_keeps_serving(
    served: dict, tmp_path: Path, fault: str
) -> None:
    url, uri = served["server"].url, served["uri"]
    before = _query(url)
    assert before.status_code == 200
    old = before.headers["X-Model-Version"]
    bad = _register_copy(served, tmp_path / "copy")
    data = _stored_data_dir(uri, bad)
    if fault == "missing_file":
        (data / "index" / "embeddings.npy").unlink()
    elif fault == "corrupt_index":
        f = data / "index" / "tf_indices.npy"
        raw = bytearray(f.read_bytes())
        raw[-4:] = (2_000_000_000).to_bytes(4, "little")  # an out-of-range term index
        f.write_bytes(bytes(raw))
    else:
        (data / MANIFEST).unlink()
    _client(uri).set_registered_model_alias(PATTERNS_MODEL, CHAMPION, bad)
    try:
        r = httpx.post(url + "/v1/admin/reload", json={}, timeout=120)
        assert r.status_code == 200, r.text
        assert r.json()["models"][PATTERNS_MODEL] == {"status": "refused", "version": old}
        after = _query(url)
        assert after.status_code == 200 and after.headers["X-Model-Version"] == old
        assert after.json() == before.json()
        ready = httpx.get(url + "/readyz", timeout=10)
        assert ready.status_code == 200, ready.text
        model = ready.json()["models"][PATTERNS_MODEL]
        assert model["loaded"] and model["version"] == old
        assert model["refused"]["version"] == bad and "corrupt" in model["refused"]["reason"]
        for leak in ("/", "Error", ".npy", "Traceback", MANIFEST):
            assert leak not in json.dumps(model["refused"]), leak
        assert served["server"].proc.poll() is None  # the server did not crash
    finally:
        _client(uri).set_registered_model_alias(PATTERNS_MODEL, CHAMPION, old)


def test_kill9_of_a_training_midway_leaves_the_champion_serving_and_the_next_run_succeeds(
    served: dict, fault_data: dict[str, Path], tmp_path: Path
) -> None:
    url, uri, env = served["server"].url, served["uri"], served["env"]
    champion = _champion(uri)
    client = _client(uri)
    exp = client.get_experiment_by_name("incident-patterns")
    runs_before = {r.info.run_id for r in client.search_runs([exp.experiment_id])}
    args = ("train", "patterns", "--incidents", str(fault_data["incidents"]), "--promote", "--json")
    proc = popen_recur(env, *args, log=tmp_path / "killed.log")

    def run_started() -> bool:
        runs = client.search_runs([exp.experiment_id])
        return any(r.info.run_id not in runs_before and r.info.status == "RUNNING" for r in runs)

    try:
        # Killed as soon as its run exists: it is logging the run's artifacts and the model.
        wait_for(run_started, timeout=180, what="the training's MLflow run", every=0.1)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    assert proc.returncode == -signal.SIGKILL
    assert _champion(uri) == champion
    r = httpx.post(url + "/v1/admin/reload", json={}, timeout=120)
    assert r.json()["models"][PATTERNS_MODEL]["status"] == "unchanged"
    q = _query(url)
    assert q.status_code == 200 and q.headers["X-Model-Version"] == champion

    again = recur(env, *args, log=tmp_path / "next.log")
    assert again.returncode == 0, again.stderr[-2000:]
    result = json.loads(again.stdout)
    assert client.get_run(result["run_id"]).info.status == "FINISHED"
    now = _champion(uri)
    assert now == (result["version"] if result["promotion"]["promoted"] else champion)
    r = httpx.post(url + "/v1/admin/reload", json={}, timeout=120)
    assert r.json()["models"][PATTERNS_MODEL]["status"] in ("loaded", "unchanged")
    assert _query(url).headers["X-Model-Version"] == now


def test_16_clients_see_no_failure_across_two_hot_swaps(served: dict, tmp_path: Path) -> None:
    """16 concurrent clients for LOAD_S seconds (60 in CI); a new champion is promoted and hot-swapped in at a
    third and at two thirds: every request succeeds, and all three versions answered."""
    url, uri = served["server"].url, served["uri"]
    first = _champion(uri)
    second = _register_copy(served, tmp_path / "second")
    third = _register_copy(served, tmp_path / "third")
    ids = [m["id"] for m in _query(url).json()["matches"]]
    stop = threading.Event()
    lock = threading.Lock()
    outcomes: Counter[str] = Counter()
    versions: Counter[str] = Counter()

    def client_loop(i: int) -> None:
        n = i
        with httpx.Client(base_url=url, timeout=60) as c:
            while not stop.is_set():
                n += 1
                try:
                    if n % 3 == 0:
                        r = c.post("/v1/incidents/similar", json={"text": TEXTS[n % len(TEXTS)], "k": 5})
                    elif n % 3 == 1:
                        r = c.get("/v1/patterns")
                    else:
                        r = c.get(f"/v1/incidents/{ids[n % len(ids)]}/similar", params={"k": 3})
                    outcome = "ok" if r.status_code == 200 else f"http {r.status_code}"
                    version = r.headers.get("X-Model-Version", "?")
                except httpx.HTTPError as exc:
                    outcome, version = f"error {type(exc).__name__}", "?"
                with lock:
                    outcomes[outcome] += 1
                    versions[version] += 1

    threads = [threading.Thread(target=client_loop, args=(i,), daemon=True) for i in range(16)]
    started = time.monotonic()
    for t in threads:
        t.start()
    reloads = []
    try:
        for at, version in ((LOAD_S / 3, second), (2 * LOAD_S / 3, third)):
            time.sleep(max(0.0, started + at - time.monotonic()))
            _client(uri).set_registered_model_alias(PATTERNS_MODEL, CHAMPION, version)
            r = httpx.post(url + "/v1/admin/reload", json={}, timeout=120)
            reloads.append(r.json()["models"][PATTERNS_MODEL])
        time.sleep(max(0.0, started + LOAD_S - time.monotonic()))
    finally:
        stop.set()
        for t in threads:
            t.join(90)
    assert [r["status"] for r in reloads] == ["loaded", "loaded"], reloads
    assert set(outcomes) == {"ok"}, dict(outcomes)
    assert outcomes["ok"] >= 16 * 10, dict(outcomes)
    assert {first, second, third} <= set(versions), dict(versions)
    assert _query(url).headers["X-Model-Version"] == third
    shutil.rmtree(tmp_path, ignore_errors=True)
