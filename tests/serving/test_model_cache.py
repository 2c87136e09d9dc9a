"""The local copy of the champions (serving.model_cache): a restart is ready from it without the registry, the
registry then confirms, replaces or (when down) leaves it, and a bad copy is never served. Real models trained
into a real MLflow store; the start-ups go through the app's lifespan or a real `recur serve` process."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from ml.registry.artifacts import MANIFEST, fetch_version, file_sha256, verify_files, write_manifest
from ml.registry.names import CHAMPION, PATTERNS_MODEL
from serving.model_cache import CURRENT, ENTRY, ModelCache
from serving.settings import ServingSettings
from tests.conftest import ROOT, SAMPLE
from tests.serving.server import Server, free_port
from training.settings import Settings

pytestmark = pytest.mark.slow  # trains a model into a real MLflow store

NAMES = (PATTERNS_MODEL,)


@pytest.fixture(scope="module")
def small_store(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """A pattern model trained on 60 sample incidents into a fresh SQLite store, promoted to champion."""
    from training.patterns import train_patterns

    root = tmp_path_factory.mktemp("model-cache-store")
    incidents = root / "incidents.jsonl"
    lines = (SAMPLE / "incidents.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
    incidents.write_text("".join(lines[:60]), encoding="utf-8")
    settings = Settings(
        mlflow_tracking_uri=f"sqlite:///{root / 'mlflow.db'}",
        mlflow_artifact_root=root / "artifacts",
        cache_dir=Path(os.environ.get("RECUR_TEST_CACHE", root / "cache")),
    )
    result = train_patterns(settings, [incidents], promote=True, show_progress=False)
    return {
        "settings": settings,
        "uri": settings.tracking_uri,
        "version": str(result["version"]),
        "root": root,
    }


def _store(uri: str, cache: Path) -> object:
    from serving.models import ModelStore

    return ModelStore(uri, names=NAMES, cache_dir=cache)


def _entry_dir(cache: Path, uri: str) -> Path:
    folder = ModelCache(cache, uri).base / PATTERNS_MODEL
    return folder / json.loads((folder / CURRENT).read_text())["dir"]


@pytest.fixture()
def warm(small_store: dict, tmp_path: Path) -> Path:
    """A cache folder holding the champion's local copy, written by a store that loaded it from the registry."""
    cache = tmp_path / "model-cache"
    store = _store(str(small_store["uri"]), cache)
    assert store.reload()[PATTERNS_MODEL]["status"] == "loaded"  # type: ignore[attr-defined]
    return cache


def test_a_loaded_champion_is_kept_and_a_restart_serves_it_before_the_registry(
    small_store: dict, warm: Path
) -> None:
    uri, version = str(small_store["uri"]), small_store["version"]
    folder = ModelCache(warm, uri).base / PATTERNS_MODEL
    assert [p.name for p in folder.iterdir() if p.name.startswith(".tmp-")] == []  # nothing half written
    entry = json.loads((_entry_dir(warm, uri) / ENTRY).read_text())
    assert entry["version"] == version and uri not in json.dumps(entry)  # the URI is never written
    assert entry["manifest_path"] == ModelCache(warm, uri).current(PATTERNS_MODEL).manifest_path != ""

    store = _store(uri, warm)
    assert store.open_cached()[PATTERNS_MODEL] == {  # type: ignore[attr-defined]
        "status": "loaded",
        "version": version,
        "source": "local copy",
    }
    status = store.status()[PATTERNS_MODEL]  # type: ignore[attr-defined]
    assert status["source"] == "local copy" and status["version"] == version
    assert status["detail"] == f"served from the local copy of v{version}; checking the registry"
    runtime = store.get(PATTERNS_MODEL).runtime  # type: ignore[attr-defined]
    first = runtime.incidents[0].id
    assert runtime.similar_to(first, k=2)[0]
    assert store.needs_registry()  # type: ignore[attr-defined]

    assert store.reload(only_missing=True)[PATTERNS_MODEL]["status"] == "unchanged"  # type: ignore[attr-defined]
    status = store.status()[PATTERNS_MODEL]  # type: ignore[attr-defined]
    assert status["detail"] == f"served from the local copy of v{version}; the registry's champion (checked)"
    assert not store.needs_registry()  # type: ignore[attr-defined]


def test_a_corrupt_local_copy_is_refused_and_the_registry_copy_served(
    small_store: dict, warm: Path, caplog: pytest.LogCaptureFixture
) -> None:
    uri, version = str(small_store["uri"]), small_store["version"]
    embeddings = _entry_dir(warm, uri) / "model" / "index" / "embeddings.npy"
    data = bytearray(embeddings.read_bytes())
    data[-3] ^= 0xFF  # same size, one byte of the data changed: only the checksum can tell
    embeddings.write_bytes(bytes(data))

    store = _store(uri, warm)
    with caplog.at_level(logging.ERROR, logger="serving.models"):
        assert store.open_cached()[PATTERNS_MODEL]["status"] == "refused"  # type: ignore[attr-defined]
    refusals = [r for r in caplog.records if "refused the local copy" in r.getMessage()]
    assert len(refusals) == 1 and "\n" not in refusals[0].getMessage()
    assert "SHA-256" in refusals[0].getMessage()
    assert store.status()[PATTERNS_MODEL]["loaded"] is False  # type: ignore[attr-defined]
    assert not (ModelCache(warm, uri).base / PATTERNS_MODEL / CURRENT).exists()  # forgotten

    assert store.reload(only_missing=True)[PATTERNS_MODEL]["status"] == "loaded"  # type: ignore[attr-defined]
    status = store.status()[PATTERNS_MODEL]  # type: ignore[attr-defined]
    assert status["source"] == "registry" and status["version"] == version and "detail" not in status
    fresh = ModelCache(warm, uri).current(PATTERNS_MODEL)  # a good copy again
    assert fresh.version == version and verify_files(fresh.root, "patterns")


def test_a_cache_folder_that_cannot_be_written_never_refuses_a_good_version(
    small_store: dict, warm: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A local disk problem (full, read-only) costs only the local copy: the registry's version is downloaded to
    a temporary folder and served, and the check of a local copy still runs."""
    uri, version = str(small_store["uri"]), small_store["version"]
    checked = _store(uri, warm)
    assert checked.open_cached()[PATTERNS_MODEL]["status"] == "loaded"  # type: ignore[attr-defined]

    def full(self: ModelCache, name: str) -> Path:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ModelCache, "staging", full)
    with caplog.at_level(logging.WARNING, logger="serving.models"):
        fresh = _store(uri, warm.parent / "other-cache")
        assert fresh.reload()[PATTERNS_MODEL] == {  # type: ignore[attr-defined]
            "status": "loaded",
            "version": version,
            "previous": None,
        }
        assert checked.reload(only_missing=True)[PATTERNS_MODEL]["status"] == "unchanged"  # type: ignore[attr-defined]
    assert fresh.status()[PATTERNS_MODEL]["source"] == "registry"  # type: ignore[attr-defined]
    assert "the registry's champion (checked)" in checked.status()[PATTERNS_MODEL]["detail"]  # type: ignore[attr-defined]
    assert any("No space left on device" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("manifest_path", ["kept", "unknown"])
def test_a_consistently_rewritten_local_copy_is_replaced_once_the_registry_answers(
    small_store: dict, warm: Path, manifest_path: str
) -> None:
    """A copy whose files, manifest and entry were all rewritten passes its own checks; the registry check
    compares its manifest with the registry's (fetched alone, or with the version's files when its place is
    unknown) and loads the registry's copy."""
    uri = str(small_store["uri"])
    entry_dir = _entry_dir(warm, uri)
    config = entry_dir / "model" / "config.json"
    config.write_text(json.dumps({**json.loads(config.read_text()), "tampered": True}))
    write_manifest(entry_dir / "model", "patterns")
    entry = json.loads((entry_dir / ENTRY).read_text())
    entry["manifest_sha256"] = file_sha256(entry_dir / "model" / MANIFEST)
    if manifest_path == "unknown":
        entry["manifest_path"] = ""
    (entry_dir / ENTRY).write_text(json.dumps(entry))

    store = _store(uri, warm)
    assert store.open_cached()[PATTERNS_MODEL]["status"] == "loaded"  # type: ignore[attr-defined]
    assert store.get(PATTERNS_MODEL).runtime.config.get("tampered") is True  # type: ignore[attr-defined]
    assert store.reload(only_missing=True)[PATTERNS_MODEL]["status"] == "loaded"  # type: ignore[attr-defined]
    loaded = store.get(PATTERNS_MODEL)  # type: ignore[attr-defined]
    assert loaded.source == "registry" and "tampered" not in loaded.runtime.config


def _register_copy_as_champion(small_store: dict, tmp: Path) -> str:
    """Register the champion's artifact again as a new version and move the alias to it; returns its number."""
    from mlflow.tracking import MlflowClient

    from ml.registry.runtimes import CODE_DIR
    from training import tracking

    uri, old = str(small_store["uri"]), small_store["version"]
    local = fetch_version(uri, PATTERNS_MODEL, old, tmp / "copy")
    tracking.configure(small_store["settings"])
    with tracking.run("model-cache-tests", small_store["settings"]):
        new = str(
            tracking.log_pyfunc(
                model_name=PATTERNS_MODEL,
                code_file=CODE_DIR / "patterns.py",
                artifacts={"model_dir": str(local)},
            ).version
        )
    MlflowClient(tracking_uri=uri, registry_uri=uri).set_registered_model_alias(PATTERNS_MODEL, CHAMPION, new)
    return new


def test_a_new_champion_replaces_the_local_copy_after_the_start_up_check(
    small_store: dict, warm: Path, tmp_path: Path
) -> None:
    """The app starts from the local copy of v1 (ready at once), and its background check loads the new
    champion from the registry, swaps it in and keeps it as the new local copy (the old one removed)."""
    from mlflow.tracking import MlflowClient

    from serving.app import create_app

    uri, old = str(small_store["uri"]), small_store["version"]
    old_entry = _entry_dir(warm, uri)
    new = _register_copy_as_champion(small_store, tmp_path)
    try:
        settings = ServingSettings(mlflow_tracking_uri=uri, model_cache_dir=warm)
        app = create_app(settings)
        with TestClient(app, base_url="http://127.0.0.1", client=("127.0.0.1", 50000)) as client:
            first = client.get("/readyz").json()["models"][PATTERNS_MODEL]
            assert first["version"] == old and first["source"] == "local copy"
            deadline = time.time() + 120
            while time.time() < deadline:
                now = client.get("/readyz").json()["models"][PATTERNS_MODEL]
                if now["version"] == new:
                    break
                time.sleep(0.2)
            assert now == {"loaded": True, "version": new, "run_id": now["run_id"], "source": "registry"}
            r = client.post("/v1/incidents/similar", json={"text": "disk full on the database host", "k": 2})
            assert r.status_code == 200 and r.headers["X-Model-Version"] == new
        assert ModelCache(warm, uri).current(PATTERNS_MODEL).version == new
        assert not old_entry.exists()  # only the current copy is kept
    finally:
        MlflowClient(tracking_uri=uri, registry_uri=uri).set_registered_model_alias(
            PATTERNS_MODEL, CHAMPION, old
        )


def test_server_serves_the_local_copy_while_the_registry_is_down(small_store: dict, tmp_path: Path) -> None:
    """`recur serve` against a tracking server that does not answer (a dead 127.0.0.1 port): ready from the
    local copy a previous run kept for that registry, answering with it, and saying so without naming the URI."""
    port = free_port()
    dead = f"http://127.0.0.1:{port}"
    cache = tmp_path / "model-cache"
    version = small_store["version"]
    staging = ModelCache(cache, dead).staging(PATTERNS_MODEL)
    root = fetch_version(str(small_store["uri"]), PATTERNS_MODEL, version, dest=staging)
    ModelCache(cache, dead).save(PATTERNS_MODEL, version, None, root, "artifacts/model")
    env = {
        "RECUR_MLFLOW_TRACKING_URI": dead,
        "RECUR_MODEL_CACHE_DIR": str(cache),
        "RECUR_CACHE_DIR": str(small_store["settings"].cache_dir),
        "RECUR_RELOAD_INTERVAL_S": "0",
    }
    srv = Server(env, log_path=tmp_path / "server.log")
    srv.start(timeout=120, ready_path="/readyz")
    try:
        r = httpx.get(srv.url + "/readyz", timeout=10)
        model = r.json()["models"][PATTERNS_MODEL]
        assert r.status_code == 200 and model["version"] == version and model["source"] == "local copy"
        q = httpx.post(
            srv.url + "/v1/incidents/similar", json={"text": "TLS certificate expired", "k": 3}, timeout=60
        )
        assert (
            q.status_code == 200 and q.headers["X-Model-Version"] == version and len(q.json()["matches"]) == 3
        )
        deadline = time.time() + 120
        while "unreachable" not in model.get("detail", "") and time.time() < deadline:
            time.sleep(0.5)
            r = httpx.get(srv.url + "/readyz", timeout=10)
            model = r.json()["models"][PATTERNS_MODEL]
        assert model["detail"] == f"served from the local copy of v{version}; registry unreachable"
        assert r.status_code == 200 and str(port) not in r.text and "http" not in r.text
    finally:
        srv.stop()


_NO_MLFLOW = textwrap.dedent(
    """
    import asyncio, json, sys
    import httpx
    from serving.app import create_app

    async def main():
        app = create_app()
        async with app.router.lifespan_context(app):
            at_ready = "mlflow" in sys.modules
            transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 1234))
            async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
                ready = (await client.get("/readyz")).json()["models"]["incident-patterns"]
                r = await client.post("/v1/incidents/similar", json={"text": "disk full on the db host", "k": 3})
        return at_ready, ready["source"], r.status_code

    at_ready, source, status = asyncio.run(main())
    print(json.dumps({"mlflow_at_ready": at_ready, "source": source, "status": status}))
    """
)


def test_a_warm_start_does_not_import_mlflow_before_ready(small_store: dict, warm: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "RECUR_"))}
    env.update(
        {
            "RECUR_MLFLOW_TRACKING_URI": str(small_store["uri"]),
            "RECUR_MODEL_CACHE_DIR": str(warm),
            "HF_HUB_OFFLINE": "1",
        }
    )
    proc = subprocess.run(
        [sys.executable, "-c", _NO_MLFLOW], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out == {"mlflow_at_ready": False, "source": "local copy", "status": 200}


# ---- a first start: the champions fetched in a second process (serving.prefetch) ------------------------------

_FIRST_START = textwrap.dedent(
    """
    import asyncio, json, sys
    import httpx
    from serving.app import create_app
    from serving.prefetch import start_for
    from serving.settings import load_serving_settings

    async def main():
        settings = load_serving_settings()
        app = create_app(settings, prefetch=start_for(settings))
        async with app.router.lifespan_context(app):
            at_ready = "mlflow" in sys.modules
            transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 1234))
            async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
                ready = (await client.get("/readyz")).json()["models"]
                r = await client.post("/v1/incidents/similar", json={"text": "disk full on the db host", "k": 3})
        return at_ready, ready, r.status_code

    at_ready, ready, status = asyncio.run(main())
    print(json.dumps({"mlflow_at_ready": at_ready, "models": ready, "status": status}))
    """
)


def test_a_first_start_fetches_the_champions_in_a_second_process(small_store: dict, tmp_path: Path) -> None:
    """No local copy yet: the child process downloads the champion into the cache while the server imports its
    code; the server builds it from there, serves it as the registry's (no background check owed), never imports
    MLflow itself before ready, and reports the model without a champion as such."""
    cache = tmp_path / "model-cache"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "RECUR_"))}
    env.update(
        {
            "RECUR_MLFLOW_TRACKING_URI": str(small_store["uri"]),
            "RECUR_MODEL_CACHE_DIR": str(cache),
            "RECUR_CACHE_DIR": str(small_store["settings"].cache_dir),
            "HF_HUB_OFFLINE": "1",
        }
    )
    proc = subprocess.run(
        [sys.executable, "-c", _FIRST_START], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    patterns = out["models"][PATTERNS_MODEL]
    assert out["mlflow_at_ready"] is False and out["status"] == 200
    assert patterns["source"] == "registry" and patterns["version"] == small_store["version"]
    assert "detail" not in patterns  # fetched from the registry in this start: nothing left to check
    assert out["models"]["indicator-forecaster"] == {
        "loaded": False,
        "reason": "model indicator-forecaster is not loaded",
        "detail": "no 'champion' version of model 'indicator-forecaster' in the registry",
    }
    assert (
        ModelCache(cache, str(small_store["uri"])).current(PATTERNS_MODEL).version == small_store["version"]
    )


def test_prefetch_settles_only_what_it_could_and_a_failed_child_costs_nothing(
    small_store: dict, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from serving import prefetch

    # a registry that does not answer: nothing settled, the server loads (or retries) by itself. The port is held
    # bound and never listening (connections are refused), so no other test process can start a server on it.
    held = socket.socket()
    held.bind(("127.0.0.1", 0))
    dead = f"http://127.0.0.1:{held.getsockname()[1]}"
    job = prefetch.start(dead, tmp_path / "dead-cache", NAMES, CHAMPION)
    assert job is not None
    with caplog.at_level(logging.WARNING, logger="serving.prefetch"):
        assert job.wait(timeout=120) == {}
    assert "registry unreachable for incident-patterns" in caplog.text
    # nothing to fetch: no cache; a restart (a model has a local copy: ready from it, the poller finds the rest)
    assert prefetch.start(str(small_store["uri"]), None, NAMES, CHAMPION) is None
    restart = tmp_path / "restart-cache"
    staging = ModelCache(restart, dead).staging(PATTERNS_MODEL)
    (staging / "model").mkdir()
    (staging / "model" / MANIFEST).write_text("{}")
    ModelCache(restart, dead).keep(PATTERNS_MODEL, "1", None, staging / "model", staging)
    assert prefetch.start(dead, restart, (PATTERNS_MODEL, "indicator-forecaster"), CHAMPION) is None
    # a child that dies or hangs: {} and one log line, never an exception
    for code, timeout, said in (
        ("raise SystemExit(3)", 60.0, "failed (exit 3)"),
        ("import time; time.sleep(60)", 0.5, "took over"),
    ):
        child = subprocess.Popen(
            [sys.executable, "-c", code],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="serving.prefetch"):
            assert prefetch.Prefetch(child, NAMES, time.perf_counter()).wait(timeout=timeout) == {}
        assert said in caplog.text and child.returncode is not None
    held.close()


def test_a_forked_fetch_that_fails_or_hangs_costs_nothing(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    """The child forked on Linux: an error in it is one log line with its type and message, a hung one is
    killed after the wait, and neither returns into the caller's code (os._exit in the child)."""
    from serving import prefetch

    def broken(request: dict) -> dict:
        raise ValueError("no registry here\nsecond line")

    def hung(request: dict) -> dict:
        time.sleep(60)
        return {}

    for fetch, timeout, said in (
        (broken, 60.0, "failed (exit 1): ValueError: no registry here"),
        (hung, 0.5, "took over"),
    ):
        monkeypatch.setattr(prefetch, "fetch", fetch)  # the fork runs this process's code as it is
        child = prefetch._fork({"names": []})
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="serving.prefetch"):
            assert prefetch.Prefetch(child, NAMES, time.perf_counter()).wait(timeout=timeout) == {}
        assert said in caplog.text and "second line" not in caplog.text
        assert child.returncode is not None and child.fd == -1  # reaped, its pipe closed
