"""No planted personal data or secret leaves Recur (issue #12 item 3).

Sixty sample incidents get e-mails, IPs, tokens, phone numbers, handles, URL credentials, ``password is ...``,
GitLab/Azure/AWS/GitHub/Slack keys, JWTs and a private key planted in their titles, summaries, root causes and
action items. The pattern model is trained and the report written into a fresh MLflow store; then every API
response (every GET route of ``/openapi.json``, with real incident and pattern ids, and the similar/classify
POST routes), every report file, every MLflow artifact of every run and registered version, and every run's
params and tags are scanned for the planted values.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from mlflow.tracking import MlflowClient

from tests.conftest import SAMPLE
from training.settings import Settings

pytestmark = pytest.mark.slow

# (text planted, what must never appear again). The needles are the identifying part of each value, without
# characters that HTML or JSON would escape; the scan is case-insensitive (keywords are lower-cased).
PLANTED: list[tuple[str, str]] = [
    ("leak.alice@example.com", "leak.alice"),
    ("203.0.113.77", "203.0.113.77"),
    ("2001:db8:dead:beef::42", "dead:beef"),
    ("+1 415 555 0142", "555 0142"),
    ("@leakybob", "leakybob"),
    ("https://svcuser:Hunter2Leak@db.example.com/orders", "hunter2leak"),
    ("password is Tr0ub4dorLeak9", "tr0ub4dorleak9"),
    ("password: Qx7LeakPass!", "qx7leakpass"),
    ("token=LeakToken31337", "leaktoken31337"),
    ("glpat-LeakGitLab0123456789ab", "leakgitlab0123456789ab"),
    (
        "DefaultEndpointsProtocol=https;AccountName=leakacct;AccountKey=TGVha0F6dXJlS2V5MTIzNDU2Nzg5MA==;",
        "tgvha0f6dxjls2v5mtizndu2nzg5ma",
    ),
    ("AKIALEAKLEAKLEAK1234", "akialeakleakleak1234"),
    ("ghp_LeakGitHub0123456789abcdefghijklmnop", "leakgithub0123456789"),
    ("xoxb-1234567890-0987654321-LeakSlackTokenAbc", "leakslacktoken"),
    ("eyJhbGciOiJIUzI1NiJ9.eyJsZWFrIjoibGVha2p3dCJ9.LeakJwtSig123", "szwfrijoibgvha2p3dcj9"),
    ("-----BEGIN RSA PRIVATE KEY-----\nMIIEleakPEMbodyAAAA\n-----END RSA PRIVATE KEY-----", "leakpembody"),
]
NEEDLES = [needle for _, needle in PLANTED]
N_INCIDENTS = 60


def _plant(i: int, k: int) -> str:
    return PLANTED[(i * 4 + k) % len(PLANTED)][0]


def _planted_incidents(path: Path) -> list[str]:
    rows = []
    with (SAMPLE / "incidents.jsonl").open(encoding="utf-8") as fh:
        for i, line in enumerate(fh):
            if i == N_INCIDENTS:
                break
            row = json.loads(line)
            row["title"] = f"{row['title']} ({_plant(i, 0)})"
            row["summary"] = f"{row['summary']} Reported by {_plant(i, 1)}."
            row["root_cause"] = f"{row.get('root_cause') or 'Unknown'}; seen with {_plant(i, 2)}"
            items = row.get("action_items") or []
            items.append({"id": f"AI-LEAK-{i}", "title": f"Rotate {_plant(i, 3)}", "status": "open"})
            row["action_items"] = items
            rows.append(row)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return [r["id"] for r in rows]


def _leaks(text: str) -> list[str]:
    low = text.lower()
    return [n for n in NEEDLES if n in low]


@pytest.fixture(scope="module")
def leaky(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from training.patterns import train_patterns
    from training.report import write_report

    root = tmp_path_factory.mktemp("leak")
    data = root / "incidents.jsonl"
    ids = _planted_incidents(data)
    text = data.read_text(encoding="utf-8").lower()
    assert all(n in text for n in NEEDLES), "every needle is planted"
    settings = Settings(
        mlflow_tracking_uri=f"sqlite:///{root / 'mlflow.db'}",
        mlflow_artifact_root=root / "artifacts",
        cache_dir=Path(os.environ.get("RECUR_TEST_CACHE", root / "cache")),
    )
    outputs = root / "outputs"
    trained = train_patterns(
        settings, [data], out=outputs, promote=True, show_progress=False, min_cluster_size=3
    )
    report_dir = root / "report"
    write_report(settings, report_dir, incidents_paths=[data], experiments_paths=[])
    return {"root": root, "settings": settings, "ids": ids, "trained": trained, "dirs": [outputs, report_dir]}


def _call(app: FastAPI, method: str, path: str, **kw: Any) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as c:
            return await c.request(method, path, **kw)

    return asyncio.run(go())


def _scan_files(folder: Path) -> dict[str, list[str]]:
    found = {}
    for f in sorted(folder.rglob("*")):
        if f.is_file():
            leaks = _leaks(f.read_bytes().decode("utf-8", errors="replace"))
            if leaks:
                found[str(f)] = leaks
    return found


def test_no_planted_pii_in_report_files_or_outputs(leaky: dict[str, Any]) -> None:
    found: dict[str, list[str]] = {}
    for d in leaky["dirs"]:
        assert any(d.rglob("*")), d
        found |= _scan_files(d)
    assert found == {}
    assert _leaks(json.dumps(leaky["trained"], default=str)) == []


def test_no_planted_pii_in_mlflow_runs_or_registered_models(leaky: dict[str, Any], tmp_path: Path) -> None:
    import mlflow

    uri = leaky["settings"].tracking_uri
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    experiments = client.search_experiments()
    runs = client.search_runs([e.experiment_id for e in experiments])
    assert {r.data.tags.get("mlflow.runName") for r in runs} >= {"patterns", "report"}
    found: dict[str, list[str]] = {}
    for run in runs:
        meta = json.dumps({"params": run.data.params, "tags": run.data.tags}, default=str)
        if _leaks(meta):
            found[f"run {run.info.run_id} params/tags"] = _leaks(meta)
        dst = tmp_path / "runs" / run.info.run_id
        dst.mkdir(parents=True)
        mlflow.artifacts.download_artifacts(run_id=run.info.run_id, dst_path=str(dst), tracking_uri=uri)
        found |= _scan_files(dst)
    versions = [
        v for m in client.search_registered_models() for v in client.search_model_versions(f"name='{m.name}'")
    ]
    assert versions
    for v in versions:
        dst = tmp_path / "models" / f"{v.name}-{v.version}"
        dst.mkdir(parents=True)
        mlflow.artifacts.download_artifacts(
            artifact_uri=f"models:/{v.name}/{v.version}", dst_path=str(dst), tracking_uri=uri
        )
        assert (next(dst.rglob("incidents.jsonl"), None) is not None) or v.name != "incident-patterns"
        found |= _scan_files(dst)
    assert found == {}


def _fill_path(path: str, ids: list[str], pattern_ids: list[int]) -> list[str]:
    if "{incident_id}" in path:
        return [path.replace("{incident_id}", i) for i in ids]
    if "{pattern_id}" in path:
        return [path.replace("{pattern_id}", str(p)) for p in pattern_ids]
    return [re.sub(r"\{[^}]+\}", "unknown", path)]


def test_no_planted_pii_in_any_api_response(leaky: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    from serving.app import create_app
    from serving.settings import ServingSettings

    for k in list(os.environ):
        if k.startswith("RECUR_"):
            monkeypatch.delenv(k)
    app = create_app(ServingSettings(mlflow_tracking_uri=leaky["settings"].tracking_uri), load_models=False)
    assert app.state.store.reload()["incident-patterns"]["status"] == "loaded"
    pattern_ids = [int(p["id"]) for p in _call(app, "GET", "/v1/patterns").json()["patterns"]]
    assert pattern_ids
    schema = _call(app, "GET", "/openapi.json").json()
    gets = [p for p, ops in schema["paths"].items() if "get" in ops]
    assert {"/v1/patterns", "/v1/patterns/{pattern_id}", "/v1/report", "/v1/report.html"} <= set(gets)
    found: dict[str, list[str]] = {}
    ok = 0
    for path in gets:
        for url in _fill_path(path, leaky["ids"], pattern_ids):
            params_list: list[dict[str, str]] = [{}]
            if "heatmap" in url:
                params_list = [{"by": by} for by in ("service", "team", "month")]
            for params in params_list:
                r = _call(app, "GET", url, params=params)
                ok += r.status_code == 200
                leaks = _leaks(r.content.decode("utf-8", errors="replace"))
                if leaks:
                    found[f"GET {url} {params}"] = leaks
    for text, _ in PLANTED:
        query = f"checkout failed, see {text}"
        for route, body in (
            ("/v1/incidents/similar", {"text": query, "k": 10}),
            ("/v1/incidents/classify", {"text": query}),
        ):
            r = _call(app, "POST", route, json=body)
            assert r.status_code == 200, r.text
            ok += 1
            leaks = _leaks(r.text)
            if leaks:
                found[f"POST {route} {text[:20]}"] = leaks
    assert ok > len(leaky["ids"]) + len(pattern_ids)
    assert found == {}
