"""The API's security model (issue #12 items 4, 5, 7, 9): keyless means loopback-only, enforced by the app itself;
the Host check against DNS rebinding; reload takes a JSON body; settings that are wrong are one line and exit 2;
heat-map caches are bounded; nothing internal reaches a client.

Foreign callers are simulated in process (httpx ``ASGITransport(client=("203.0.113.9", 1234))``): no traffic
leaves 127.0.0.1.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from mlflow.tracking import MlflowClient

from serving.app import create_app
from serving.settings import ServingSettings, SettingsError, load_serving_settings

ROOT = Path(__file__).resolve().parents[2]
FOREIGN = ("203.0.113.9", 1234)  # TEST-NET-3: never routed
LOCAL = ("127.0.0.1", 50000)
READ_KEY = "read-key-0123456789abcdef"
ADMIN_KEY = "admin-key-0123456789abcdef"


def _call(app: FastAPI, method: str, path: str, client: tuple[str, int] = LOCAL, **kw: Any) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, client=client)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as c:
            return await c.request(method, path, **kw)

    import asyncio

    return asyncio.run(go())


@pytest.fixture(scope="module")
def empty_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    """An empty MLflow store (created once: its migrations take a few seconds)."""
    uri = f"sqlite:///{tmp_path_factory.mktemp('empty') / 'mlflow.db'}"
    MlflowClient(tracking_uri=uri, registry_uri=uri).search_registered_models()
    return uri


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    for k in list(os.environ):
        if k.startswith("RECUR_"):
            monkeypatch.delenv(k)
    monkeypatch.chdir(tmp_path)  # no project .env
    yield


def _app(uri: str, **settings: Any) -> FastAPI:
    return create_app(ServingSettings(mlflow_tracking_uri=uri, **settings), load_models=False)


# ------------------------------------------------------------------------------------------------ item 4


def test_keyless_app_refuses_a_foreign_peer_itself(empty_uri: str, clean_env: None) -> None:
    """`uvicorn --factory --host 0.0.0.0` without keys: the app answers 403 JSON to a non-loopback peer."""
    app = _app(empty_uri)
    for method, path, kw in [
        ("GET", "/healthz", {}),
        ("GET", "/v1/patterns", {}),
        ("POST", "/v1/admin/reload", {"json": {}}),
    ]:
        r = _call(app, method, path, client=FOREIGN, **kw)
        assert r.status_code == 403, (path, r.text)
        assert r.json()["error"] == "forbidden" and "loopback" in r.json()["detail"]
    assert _call(app, "GET", "/healthz").status_code == 200
    assert _call(app, "GET", "/healthz", client=("::1", 1)).status_code == 200
    assert _call(app, "GET", "/healthz", client=("::ffff:127.0.0.1", 1)).status_code == 200
    assert _call(app, "GET", "/healthz", client=("10.0.0.1", 1)).status_code == 403


def test_with_keys_a_foreign_peer_needs_a_key(empty_uri: str, clean_env: None) -> None:
    app = _app(empty_uri, api_keys=f"{READ_KEY}:read,{ADMIN_KEY}:admin")
    assert _call(app, "GET", "/healthz", client=FOREIGN).status_code == 200
    assert _call(app, "GET", "/v1/patterns", client=FOREIGN).status_code == 401
    read = {"Authorization": f"Bearer {READ_KEY}"}
    r = _call(app, "GET", "/v1/patterns", client=FOREIGN, headers=read)
    assert r.status_code == 503 and r.json()["error"] == "model_unavailable"  # authorised; no model loaded
    r = _call(app, "POST", "/v1/admin/reload", client=FOREIGN, headers=read, json={})
    assert r.status_code == 403
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    assert _call(app, "POST", "/v1/admin/reload", client=FOREIGN, headers=admin, json={}).status_code == 200


@pytest.mark.parametrize(
    ("host", "status"),
    [
        ("localhost:8000", 200),
        ("LOCALHOST", 200),
        ("127.0.0.1:8000", 200),
        ("127.1.2.3", 200),
        ("[::1]:8000", 200),
        ("attacker.example:8000", 400),  # DNS rebinding: attacker.example now resolves to 127.0.0.1
        ("127.0.0.1.attacker.example", 400),
        ("localhost.attacker.example", 400),
        ("recur.internal:443", 200),  # RECUR_ALLOWED_HOSTS
    ],
)
def test_keyless_app_checks_the_host_header(empty_uri: str, clean_env: None, host: str, status: int) -> None:
    app = _app(empty_uri, allowed_hosts="recur.internal")
    r = _call(app, "GET", "/healthz", headers={"Host": host})
    assert r.status_code == status, r.text
    if status == 400:
        assert r.json()["error"] == "bad_request" and "Host" in r.json()["detail"]


def test_host_check_with_keys_follows_allowed_hosts(empty_uri: str, clean_env: None) -> None:
    keys = f"{READ_KEY}:read"
    assert _call(
        _app(empty_uri, api_keys=keys), "GET", "/healthz", headers={"Host": "recur.example"}
    ).is_success
    app = _app(empty_uri, api_keys=keys, allowed_hosts="recur.example")
    assert _call(app, "GET", "/healthz", client=FOREIGN, headers={"Host": "recur.example"}).is_success
    assert _call(app, "GET", "/healthz", client=FOREIGN, headers={"Host": "other.example"}).status_code == 400


@pytest.mark.parametrize(
    ("kw", "status"),
    [
        ({"data": {"models": "incident-patterns"}}, 415),  # a cross-site HTML form
        ({"content": b"{}", "headers": {"Content-Type": "text/plain"}}, 415),  # a "simple" cross-site fetch
        ({"content": b"{}"}, 415),  # no Content-Type at all (a Blob body)
        ({}, 415),  # no body
        ({"content": b"", "headers": {"Content-Type": "application/json"}}, 422),
        ({"json": {"unknown": 1}}, 422),
        ({"json": {}}, 200),
        ({"json": {"force": True}}, 200),
    ],
)
def test_reload_takes_a_json_body_only(empty_uri: str, clean_env: None, kw: dict, status: int) -> None:
    r = _call(_app(empty_uri), "POST", "/v1/admin/reload", **kw)
    assert r.status_code == status, r.text
    if status == 200:
        assert set(r.json()["models"]) == {"incident-patterns", "indicator-forecaster"}
    else:
        assert r.json()["error"] in ("unsupported_media_type", "invalid_request")


# ------------------------------------------------------------------------------------------------ item 5


def _keys_file(tmp_path: Path, content: str | None, folder: bool = False) -> Path:
    path = tmp_path / "keys.json"
    if folder:
        path.mkdir()
    elif content is not None:
        path.write_text(content, encoding="utf-8")
    return path


DIGEST = hashlib.sha256(ADMIN_KEY.encode()).hexdigest()
BAD_KEY_FILES = {
    "missing": (None, False, "no such file"),
    "folder": (None, True, "not a file"),
    "invalid JSON": ("{not json", False, "invalid JSON"),
    "a list": (json.dumps([DIGEST]), False, "JSON object"),
    "empty object": ("{}", False, "no keys"),
    "bad scope": (json.dumps({DIGEST: "root"}), False, "scope 'root'"),
    "not a digest": (json.dumps({ADMIN_KEY: "admin"}), False, "SHA-256"),
}


@pytest.mark.parametrize("case", sorted(BAD_KEY_FILES))
def test_bad_keys_file_is_one_line_naming_setting_and_file(
    case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clean_env: None
) -> None:
    content, folder, says = BAD_KEY_FILES[case]
    path = _keys_file(tmp_path, content, folder)
    monkeypatch.setenv("RECUR_API_KEYS_FILE", str(path))
    with pytest.raises(SettingsError) as err:
        load_serving_settings()
    msg = str(err.value)
    assert "\n" not in msg and "RECUR_API_KEYS_FILE" in msg and str(path) in msg and says in msg, msg


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("short:read", "at least 16 characters"),
        (f"{READ_KEY}:root", "scope 'root'"),
        ("[not json", "RECUR_API_KEYS"),
    ],
)
def test_bad_inline_keys_are_one_line_without_the_key(
    value: str, says: str, monkeypatch: pytest.MonkeyPatch, clean_env: None
) -> None:
    monkeypatch.setenv("RECUR_API_KEYS", value)
    with pytest.raises(SettingsError) as err:
        load_serving_settings()
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith("RECUR_API_KEYS") and says in msg, msg
    assert READ_KEY not in msg


def test_empty_settings_mean_unset(monkeypatch: pytest.MonkeyPatch, clean_env: None) -> None:
    for name in ("API_KEYS_FILE", "API_KEYS", "API_PORT", "MLFLOW_TRACKING_URI", "ALLOWED_HOSTS"):
        monkeypatch.setenv(f"RECUR_{name}", "")
    s = load_serving_settings()
    assert s.api_keys_file is None and s.key_scopes() == {} and s.api_port == 8000
    assert s.allowed_hosts == [] and s.tracking_uri.startswith(
        ("sqlite:///", os.environ.get("MLFLOW_TRACKING_URI", ""))
    )


def test_keys_file_and_inline_keys_are_loaded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clean_env: None
) -> None:
    path = _keys_file(tmp_path, json.dumps({DIGEST.upper(): "admin"}))
    monkeypatch.setenv("RECUR_API_KEYS_FILE", str(path))
    monkeypatch.setenv("RECUR_API_KEYS", READ_KEY)
    scopes = load_serving_settings().key_scopes()
    assert scopes == {DIGEST: "admin", hashlib.sha256(READ_KEY.encode()).hexdigest(): "read"}


def _run(cmd: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("RECUR_", "MLFLOW_"))}
    return subprocess.run(
        cmd,
        env={**base, "PYTHONPATH": str(ROOT), **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _without_python_warnings(stderr: str) -> list[str]:
    """stderr lines, less Python's warnings (a library's import-time UserWarning and its source line)."""
    out: list[str] = []
    skip_next = False
    for line in stderr.splitlines():
        if skip_next and line.startswith(" "):
            skip_next = False
            continue
        skip_next = "Warning: " in line
        if line.strip() and not skip_next:
            out.append(line)
    return out


@pytest.mark.parametrize("how", ["recur serve", "uvicorn --factory"])
@pytest.mark.parametrize("case", ["empty object", "a list", "missing"])
def test_server_start_with_bad_keys_file_exits_2_with_one_line(how: str, case: str, tmp_path: Path) -> None:
    content, folder, says = BAD_KEY_FILES[case]
    path = _keys_file(tmp_path, content, folder)
    env = {"RECUR_API_KEYS_FILE": str(path), "RECUR_MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'm.db'}"}
    if how == "recur serve":
        cmd = [sys.executable, "-m", "training.cli", "serve", "--port", "1"]
    else:
        cmd = [sys.executable, "-m", "uvicorn", "--factory", "serving.app:app_factory", "--port", "1"]
    proc = _run(cmd, env, tmp_path)
    lines = _without_python_warnings(proc.stderr)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert (
        len(lines) == 1 and "RECUR_API_KEYS_FILE" in lines[0] and str(path) in lines[0] and says in lines[0]
    )


def test_recur_serve_with_empty_keys_file_setting_starts_keyless(tmp_path: Path) -> None:
    """RECUR_API_KEYS_FILE="" is unset (it used to be Path("") == "." and IsADirectoryError): with a bad port
    the command gets as far as validating the port, which names its setting."""
    env = {"RECUR_API_KEYS_FILE": "", "RECUR_API_PORT": "99999"}
    proc = _run([sys.executable, "-m", "training.cli", "serve"], env, tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "RECUR_API_PORT" in proc.stderr and "RECUR_API_KEYS_FILE" not in proc.stderr


# ------------------------------------------------------------------------------------------------ item 9


@pytest.fixture(scope="module")
def broken_registry(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """A champion whose artifacts are not a model: loading it fails with its path in the exception."""
    tmp = tmp_path_factory.mktemp("broken")
    secret = tmp / "secret-artifact-location" / "model"
    secret.mkdir(parents=True)
    (secret / "weights.txt").write_text("not a model")
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    client.create_registered_model("incident-patterns")
    mv = client.create_model_version("incident-patterns", source=str(secret))
    client.set_registered_model_alias("incident-patterns", "champion", mv.version)
    return uri, secret


def test_model_load_errors_stay_in_the_log(
    broken_registry: tuple[str, Path], clean_env: None, caplog: pytest.LogCaptureFixture
) -> None:
    uri, secret = broken_registry
    app = _app(uri)
    with caplog.at_level("INFO"):
        result = app.state.store.reload()
    assert result["incident-patterns"]["status"] != "loaded"
    assert any(  # the operator gets the details
        "incident-patterns" in r.getMessage() and r.levelno >= logging.WARNING for r in caplog.records
    )
    leaks = (str(secret), "secret-artifact-location", uri, "MLmodel", "MlflowException")
    responses = [
        _call(app, "GET", "/readyz"),
        _call(app, "POST", "/v1/incidents/similar", json={"text": "disk full on the db host"}),
        _call(app, "GET", "/v1/heatmap"),
        _call(app, "POST", "/v1/admin/reload", json={"force": True}),
    ]
    assert [r.status_code for r in responses] == [503, 503, 503, 200]
    for r in responses:
        assert not [s for s in leaks if s in r.text], r.text
    assert "model incident-patterns is not loaded" in responses[0].json()["missing"]
    assert responses[1].json()["detail"].startswith("model incident-patterns is not loaded")


def test_a_5xx_domain_error_is_generic_for_the_client(empty_uri: str, clean_env: None) -> None:
    """An unavailable embedding model (its message names a folder) is a generic 503 with a log reference."""
    from ml.errors import ModelUnavailableError

    app = _app(empty_uri)

    @app.get("/boom")
    def boom() -> None:
        raise ModelUnavailableError(
            "no sentence-transformers model found in /opt/secret/model", field="model_path"
        )

    r = _call(app, "GET", "/boom")
    assert r.status_code == 503 and "/opt/secret" not in r.text and "reference" in r.json()["detail"]


# ------------------------------------------------------------------------------------------------ item 7


@pytest.mark.slow
def test_heatmap_caches_are_bounded_lrus_with_normalised_keys(store: dict, clean_env: None) -> None:
    app = create_app(
        ServingSettings(mlflow_tracking_uri=store["settings"].tracking_uri, heatmap_cache_size=4),
        load_models=False,
    )
    assert app.state.store.reload()["incident-patterns"]["status"] == "loaded"
    runtime = app.state.store.get("incident-patterns").runtime
    first = min(i.started_at.date() for i in runtime.incidents)
    for day in range(12):  # 12 distinct `since` values, each a table and a page
        since = (first + dt.timedelta(days=30 + day)).isoformat()
        r = _call(app, "GET", "/v1/heatmap.html", params={"by": "month", "since": since})
        assert r.status_code == 200
        assert len(runtime._heat_cache) <= 4
    # Equal requests share one entry: period is irrelevant unless by=month; a date string is a date.
    a = runtime.heatmap_table("service", "year", since=None)
    assert runtime.heatmap_table("SERVICE", "month", since=None) is a
    b = runtime.heatmap_table("team", since=first + dt.timedelta(days=40))
    assert runtime.heatmap_table(" Team ", since=(first + dt.timedelta(days=40)).isoformat()) is b
    assert _call(app, "GET", "/v1/heatmap", params={"by": "nonsense"}).status_code == 422
