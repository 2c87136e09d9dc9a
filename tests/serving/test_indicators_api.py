"""Indicators, experiments and report endpoints on the live server, after a reload picks up the forecaster."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from tests.conftest import SAMPLE
from tests.serving.server import Server

pytestmark = pytest.mark.slow


def test_indicators_forecast_signals_plot(live: Server, indicators_store: dict) -> None:
    body = httpx.get(live.url + "/v1/indicators").json()
    assert len(body["series"]) == 36 and body["model"]["name"] == "indicator-forecaster"
    sid = "reopens/team=payments"
    r = httpx.post(live.url + "/v1/forecast", json={"series": sid, "horizon": 20}, timeout=60)
    assert r.status_code == 200 and r.headers["X-Model-Name"] == "indicator-forecaster"
    pts = r.json()["points"]
    assert len(pts) == 20 and all(p["yhat_lower"] <= p["yhat"] <= p["yhat_upper"] for p in pts)
    assert httpx.post(live.url + "/v1/forecast", json={"series": "nope", "horizon": 4}).status_code == 404
    assert httpx.post(live.url + "/v1/forecast", json={"series": sid, "horizon": 0}).status_code == 422
    sig = httpx.get(live.url + "/v1/signals", params={"since": "2025-01-01", "kind": "shift"}).json()[
        "signals"
    ]
    assert sig and all(s["date"] >= "2025-01-01" and s["kind"] == "shift" for s in sig)
    png = httpx.get(live.url + f"/v1/indicators/{sid}/plot.png", timeout=60)
    assert png.status_code == 200 and png.content[:4] == b"\x89PNG"
    assert httpx.get(live.url + "/v1/warnings").status_code == 200


def test_signal_causes(live: Server, indicators_store: dict) -> None:
    """Every listed shift has an id that GET /v1/signals/{id}/causes explains, and every explained one is listed
    (aggregates too); an unknown id is a 404 JSON error."""
    from ml.causes import ExplainConfig

    rows = httpx.get(live.url + "/v1/signals", params={"kind": "shift"}).json()["signals"]
    assert rows and all(r["id"].startswith("sig-") and r["verdict"] is not None for r in rows)
    assert any("/" not in r["series"] for r in rows)  # a total over the teams (built from its parts)
    with httpx.Client(base_url=live.url, timeout=60) as c:
        answers = [c.get(f"/v1/signals/{r['id']}/causes") for r in rows]
    assert all(a.status_code == 200 and a.headers["X-Model-Name"] == "indicator-forecaster" for a in answers)
    bodies = [a.json() for a in answers]
    assert [(b["id"], b["series"], b["date"]) for b in bodies] == [
        (r["id"], r["series"], r["date"]) for r in rows
    ]
    kinds = {c["kind"] for b in bodies for c in b["causes"]}
    assert "slice" in kinds and any(b["verdict"] == "explained" for b in bodies), bodies
    for b in bodies:
        conf = [c["confidence"] for c in b["causes"]]
        assert conf == sorted(conf, reverse=True)
        assert (b["verdict"] == "explained") == bool(conf and conf[0] >= ExplainConfig().explained_at)
        assert all(c["summary"] and isinstance(c["evidence"], dict) for c in b["causes"])
    # the same as the explanations trained with the forecaster
    stored = {
        e["id"]: e for e in json.loads((indicators_store["out"] / "causes.json").read_text())["signals"]
    }
    assert all(b["causes"] == stored[b["id"]]["causes"] for b in bodies)
    assert all(b["date_range"] == stored[b["id"]]["date_range"] for b in bodies)
    assert any(b["date_range"] and b["date_range"][0] < b["date"] < b["date_range"][1] for b in bodies)
    # and every shift explained is listed: those found at a change's date or once the season is out too
    assert set(stored) == {r["id"] for r in rows}
    missing = httpx.get(live.url + "/v1/signals/sig-0000000000/causes")
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"
    assert "sig-0000000000" in missing.json()["detail"]


def test_each_model_endpoint_names_its_own_model(live: Server) -> None:
    """With both champions loaded, a response names the model that answered it, not every loaded one."""
    iid = next(iter((SAMPLE / "incidents.jsonl").read_text().splitlines())).split('"id": "')[1].split('"')[0]
    text = {"text": "TLS handshakes failed: the edge certificate expired overnight"}
    calls = {
        "incident-patterns": [
            ("POST", "/v1/incidents/similar", text),
            ("GET", f"/v1/incidents/{iid}/similar", None),
            ("POST", "/v1/incidents/classify", text),
            ("GET", "/v1/patterns", None),
            ("GET", "/v1/heatmap", None),
            ("GET", "/v1/heatmap.png", None),
            ("GET", "/v1/heatmap.html", None),
        ],
        "indicator-forecaster": [
            ("GET", "/v1/indicators", None),
            ("GET", "/v1/warnings", None),
            ("GET", "/v1/indicators/reopens/team=payments/plot.png", None),
        ],
    }
    with httpx.Client(base_url=live.url, timeout=60) as c:
        for name, routes in calls.items():
            for method, path, body in routes:
                r = c.request(method, path, json=body)
                assert r.status_code == 200, (path, r.text[:200])
                assert r.headers["X-Model-Name"] == name, path
                assert r.headers["X-Model-Version"].isdigit(), path


def test_experiments_endpoints(live: Server) -> None:
    rows = httpx.get(live.url + "/v1/experiments").json()["experiments"]
    assert len(rows) == 12
    one = httpx.get(live.url + "/v1/experiments/EXP-004").json()
    assert one["verdict"] in ("improved", "worsened", "inconclusive") and "result" in one
    assert httpx.get(live.url + "/v1/experiments/EXP-004/plot.png").content[:4] == b"\x89PNG"
    assert httpx.get(live.url + "/v1/experiments/NOPE").status_code == 404
    import yaml

    exp = yaml.safe_load((SAMPLE / "experiments.yaml").read_text())[3]
    exp = {k: (str(v) if k in ("start", "end") else v) for k, v in exp.items()}
    r = httpx.post(live.url + "/v1/experiments/score", json={"experiment": exp}, timeout=120)
    assert r.status_code == 200, r.text
    assert r.json()["verdict"] == one["verdict"]


def test_report_endpoints(live: Server, tmp_path: Path) -> None:
    body = httpx.get(live.url + "/v1/report", timeout=60).json()
    assert [s["id"] for s in body["sections"]] == [
        "patterns",
        "indicators",
        "causes",
        "experiments",
        "learning",
        "suggestions",
    ]
    html = httpx.get(live.url + "/v1/report.html", timeout=60)
    assert html.status_code == 200 and html.text.startswith("<!DOCTYPE html>")
