"""Every route of the app, in-process (FastAPI's TestClient), over small in-memory champions: fast, no MLflow.

The pattern champion is the real :class:`PatternsRuntime` code over a real similarity index of twelve incidents,
with a deterministic hashing embedder and a nearest-centroid pattern model instead of MiniLM and a trained
model; the forecaster champion is the real :class:`ForecasterRuntime` over two series fitted here (seasonal
naive). Recorded experiments and the report (MLflow runs) are in-memory stand-ins. The slow uvicorn tests
(tests/serving/test_api.py) cover the same routes over trained champions; ``test_every_route_is_exercised``
fails when a route is added without a fast test here.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from ml.causes import explain_signals, signal_id
from ml.errors import NotFoundError
from ml.io.schemas import Incident, series_key
from ml.patterns.pattern import Pattern
from ml.patterns.similarity import SimilarityIndex
from ml.registry import runtimes
from ml.registry.names import FORECASTER_MODEL, PATTERNS_MODEL
from serving.app import create_app
from serving.models import LoadedModel
from serving.settings import ServingSettings
from tests.conftest import reopens_experiment

LOCAL = ("127.0.0.1", 50000)
BASE = "http://127.0.0.1:8000"
DIM = 64
_WORD = re.compile(r"[a-z]{3,20}")

CAUSES = {
    0: ("Certificate expiry", "The TLS certificate expired after the renewal job failed"),
    1: ("Disk full", "The disk filled up with debug logs and writes failed"),
    2: ("Connection pool exhaustion", "The connection pool was exhausted by a leak under load"),
}
T0 = dt.datetime(2025, 1, 6, tzinfo=dt.UTC)


class HashingEmbedder:
    """Deterministic bag-of-words vectors (hashed words, unit length): texts sharing words are close."""

    model_id = "hashing-test-embedder"

    def encode(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), DIM), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in _WORD.findall(text.lower()):
                out[i, int(hashlib.md5(word.encode()).hexdigest(), 16) % DIM] += 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms > 0, norms, 1.0)


class CentroidModel:
    """The part of a PatternModel a runtime calls: text preparation, nearest-centroid assignment, patterns."""

    def __init__(self, centroids: np.ndarray, patterns: list[Pattern]) -> None:
        self.centroids = centroids
        self.patterns_ = patterns

    def prepare_text(self, text: str) -> str:
        return text

    def assign(self, vecs: np.ndarray, docs: list[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
        sims = vecs @ self.centroids.T
        best = sims.argmax(axis=1)
        conf = sims[np.arange(len(vecs)), best]
        return np.where(conf >= 0.5, best, -1), np.clip(conf, 0.0, 1.0)


class MemoryPatternsRuntime(runtimes.PatternsRuntime):
    """PatternsRuntime's own methods over in-memory parts (its constructor reads an artifact folder)."""

    def __init__(self) -> None:
        emb = HashingEmbedder()
        incidents, labels = [], []
        for i in range(12):
            label = i % 3
            name, cause = CAUSES[label]
            incidents.append(
                Incident(
                    id=f"INC-{i}",
                    title=f"{name} on {'checkout' if i % 2 else 'search'}",
                    summary=cause,
                    root_cause=cause,
                    service="checkout-api" if i % 2 else "search-api",
                    team="payments" if i % 2 else "discovery",
                    started_at=T0 + dt.timedelta(days=20 * i),
                )
            )
            labels.append(label if i != 11 else -1)  # one unclustered incident
        texts = [f"{inc.title}. {inc.summary}" for inc in incidents]
        vectors = emb.encode(texts)
        self.assignments = {inc.id: lab for inc, lab in zip(incidents, labels, strict=True)}
        centroids = np.vstack([vectors[np.array(labels) == c].mean(axis=0) for c in CAUSES])
        centroids /= np.linalg.norm(centroids, axis=1, keepdims=True)
        patterns = [
            Pattern(
                id=c,
                name=CAUSES[c][0],
                keywords=CAUSES[c][1].lower().split()[1:4],
                size=labels.count(c),
                representative_ids=[incidents[c].id],
                trend={"direction": "flat", "slope": 0.0, "counts": [1, 0, 1]},
                first_seen="2025-01",
                last_seen="2025-07",
            )
            for c in CAUSES
        ]
        self.root = Path(".")
        self.config = {}
        self.index = SimilarityIndex().fit(
            incidents, texts, vectors, self.assignments, {c: CAUSES[c][0] for c in CAUSES}
        )
        self._embedder = emb
        self._embedder_lock = threading.Lock()
        self.model = CentroidModel(centroids, patterns)  # type: ignore[assignment]
        self._incidents = incidents
        titles = {inc.id: inc.title for inc in incidents}
        self._patterns = [runtimes._pattern_view(p.to_dict(), titles) for p in patterns]
        self._by_id = {int(p["id"]): p for p in self._patterns}
        self._first_day = min(i.started_at.date() for i in incidents)
        self._cache = runtimes.LRUCache(64)
        self._batcher = runtimes.EmbeddingBatcher(lambda batch: self.embedder.encode(batch))
        self._heat_cache = runtimes.LRUCache(8)


SERIES = [series_key("latency_p95", team="payments"), series_key("latency_p95", team="discovery")]
SHIFT = "2025-06-30"
TOTAL_SHIFT = signal_id("latency_p95", SHIFT)  # the total's shift, explained by the payments slice


def _forecaster(folder: Path) -> runtimes.ForecasterRuntime:
    from ml.indicators.forecasting import fit_many

    rng = np.random.default_rng(0)
    ds = pd.date_range("2025-01-06", periods=40, freq="W-MON")
    history = pd.concat(
        [pd.DataFrame({"series": s, "ds": ds, "y": 20 + rng.normal(0, 1, 40).cumsum() * 0.3}) for s in SERIES]
    )
    # payments moves the total: its shift is explained by that slice (GET /v1/signals/{id}/causes)
    history.loc[(history["series"] == SERIES[0]) & (history["ds"] >= SHIFT), "y"] += 6.0
    bundle = fit_many(history, {"candidates": ["seasonal_naive"], "horizon": 4}, n_jobs=1)
    long = history.assign(indicator="latency_p95", team=[s.split("team=")[1] for s in history["series"]])
    explanations = explain_signals(long[["indicator", "ds", "y", "team"]])
    runtimes.write_forecaster_artifacts(
        folder, bundle=bundle, history=history, config={}, explanations=explanations
    )
    return runtimes.ForecasterRuntime(folder)


RECORDED = {
    "id": "EXP-1",
    "name": "Canary gate",
    "verdict": "worked",
    "effect": -0.2,
    "ci_low": -0.3,
    "ci_high": -0.1,
    "p_value": 0.01,
    "run_id": "run-1",
    "scored_at": "2025-09-01T00:00:00+00:00",
    "indicator": "reopens",
    "treated": "payments",
    "owner": None,
    "relative_effect": -0.1,
    "mde": 0.05,
    "previous_run_id": None,
    "hypothesis": {"problem": "Pushes break production", "solution": "A canary gate", "metric": "reopens"},
}  # the shape of ml.registry.runs._summary
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16


def _recorded(uri: str, experiment_id: str) -> dict[str, Any]:
    if experiment_id != RECORDED["id"]:
        raise NotFoundError(
            f"no recorded experiment {experiment_id!r}", field="experiment_id", value=experiment_id
        )
    return dict(RECORDED)


def _recorded_plot(uri: str, experiment_id: str) -> bytes:
    _recorded(uri, experiment_id)
    return PNG


def _report_artifact(uri: str, name: str) -> tuple[str, str]:
    if name == "report.json":
        return '{"summary": ["Disk full grew fastest"]}', "run-report"
    return "<!doctype html><title>Recur report</title><h1>Report</h1>", "run-report"


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FastAPI]:
    mp = pytest.MonkeyPatch()
    from serving.routes import experiments, report
    from serving.ui import routes as ui

    for module in (experiments, ui):
        mp.setattr(module, "list_recorded", lambda uri: [dict(RECORDED)])
        mp.setattr(module, "recorded_plot", _recorded_plot)
    mp.setattr(experiments, "get_recorded", _recorded)
    mp.setattr(report, "_latest_artifact", _report_artifact)
    folder = tmp_path_factory.mktemp("fast-routes")
    for k in ("RECUR_API_KEYS", "RECUR_API_KEYS_FILE"):
        mp.delenv(k, raising=False)
    app = create_app(
        ServingSettings(mlflow_tracking_uri=f"sqlite:///{folder / 'unused.db'}"), load_models=False
    )
    store = app.state.store
    store._models = {
        PATTERNS_MODEL: LoadedModel(PATTERNS_MODEL, "3", "run-p", MemoryPatternsRuntime()),
        FORECASTER_MODEL: LoadedModel(FORECASTER_MODEL, "5", "run-f", _forecaster(folder / "forecaster")),
    }
    # /v1/admin/reload asks the registry: in memory, nothing changed
    mp.setattr(
        store,
        "reload",
        lambda force=False, only_missing=False: {
            n: {"status": "unchanged", "version": m.version} for n, m in store._models.items()
        },
    )
    yield app
    mp.undo()


@pytest.fixture(scope="module")
def client(app: FastAPI) -> TestClient:
    # not entered as a context manager: no lifespan, so no registry poller
    return TestClient(app, base_url=BASE, client=LOCAL, follow_redirects=False)


def _json(r: Any) -> Any:
    assert r.headers["content-type"].startswith("application/json"), r.text[:200]
    return r.json()


def hit(client: TestClient, method: str, template: str, url: str | None = None, **kw: Any) -> Any:
    """A request to the route `template` (at `url` when it has path parameters)."""
    return client.request(method, url or template, **kw)


def test_health_metrics_and_docs(client: TestClient) -> None:
    assert hit(client, "GET", "/healthz").status_code == 200
    ready = _json(hit(client, "GET", "/readyz"))
    assert (
        ready["models"][PATTERNS_MODEL]["version"] == "3"
        and ready["models"][FORECASTER_MODEL]["version"] == "5"
    )
    metrics = hit(client, "GET", "/metrics")
    assert metrics.status_code == 200 and "recur" in metrics.text
    spec = _json(hit(client, "GET", "/openapi.json"))
    assert "/v1/incidents/similar" in spec["paths"]
    for path in ("/docs", "/redoc", "/docs/oauth2-redirect"):
        r = hit(client, "GET", path)
        assert r.status_code == 200 and "<html" in r.text.lower(), path
    r = hit(client, "POST", "/v1/admin/reload", json={})
    assert r.status_code == 200 and _json(r)["models"][PATTERNS_MODEL]["status"] == "unchanged"


def test_similar_classify_and_patterns(client: TestClient) -> None:
    r = hit(
        client, "POST", "/v1/incidents/similar", json={"text": "the disk filled up with debug logs", "k": 3}
    )
    body = _json(r)
    assert (
        r.status_code == 200
        and r.headers["X-Model-Name"] == PATTERNS_MODEL
        and r.headers["X-Model-Version"] == "3"
    )
    assert body["query_pattern"]["pattern_id"] == 1 and body["query_pattern"]["pattern_name"] == "Disk full"
    assert len(body["matches"]) == 3 and all(m["pattern_id"] == 1 for m in body["matches"])
    r = hit(client, "POST", "/v1/incidents/similar", json={"text": "x", "k": 0})
    assert r.status_code == 422 and set(_json(r)) == {"error", "detail"}

    t = "/v1/incidents/{incident_id}/similar"
    body = _json(hit(client, "GET", t, "/v1/incidents/INC-0/similar", params={"k": 2}))
    assert body["query_pattern"]["pattern_id"] == 0 and "INC-0" not in [m["id"] for m in body["matches"]]
    assert [m["pattern_id"] for m in body["matches"]] == [0, 0]
    r = hit(client, "GET", t, "/v1/incidents/NOPE/similar")
    assert r.status_code == 404 and _json(r)["error"] == "not_found"

    r = hit(
        client,
        "POST",
        "/v1/incidents/classify",
        json={"incident": {"title": "Pool", "root_cause": CAUSES[2][1]}},
    )
    assert (_json(r)["pattern_id"], r.json()["pattern_name"], r.json()["unclustered"]) == (
        2,
        "Connection pool exhaustion",
        False,
    )

    patterns = _json(hit(client, "GET", "/v1/patterns"))
    assert [p["id"] for p in patterns["patterns"]] == [0, 1, 2] and patterns["unclustered"] == 1
    one = _json(hit(client, "GET", "/v1/patterns/{pattern_id}", "/v1/patterns/1"))
    assert one["name"] == "Disk full" and one["representatives"] == [
        {"id": "INC-1", "title": "Disk full on checkout"}
    ]
    assert hit(client, "GET", "/v1/patterns/{pattern_id}", "/v1/patterns/9").status_code == 404


def test_heat_maps(client: TestClient) -> None:
    body = _json(hit(client, "GET", "/v1/heatmap", params={"by": "team"}))
    assert sum(map(sum, body["values"])) == 12 and sorted(body["columns"]) == ["discovery", "payments"]
    assert hit(client, "GET", "/v1/heatmap", params={"by": "colour"}).status_code == 422
    r = hit(client, "GET", "/v1/heatmap.png", params={"by": "service"})
    assert r.status_code == 200 and r.headers["content-type"] == "image/png" and r.content[:4] == b"\x89PNG"
    r = hit(client, "GET", "/v1/heatmap.html", params={"by": "month", "period": "quarter"})
    assert r.status_code == 200 and "2025-Q1" in r.text


def test_indicators(client: TestClient) -> None:
    listed = _json(hit(client, "GET", "/v1/indicators"))
    assert sorted(s["series"] for s in listed["series"]) == sorted(SERIES)
    r = hit(client, "POST", "/v1/forecast", json={"series": SERIES[0], "horizon": 3})
    assert (
        r.status_code == 200
        and len(_json(r)["points"]) == 3
        and r.headers["X-Model-Name"] == FORECASTER_MODEL
    )
    assert hit(client, "POST", "/v1/forecast", json={"series": "nope", "horizon": 3}).status_code == 404
    # an id with an encoded team (platform/infra) is a valid id: unknown here, so 404, not a 422 on its form
    encoded = {"series": "latency_p95/team=platform%2Finfra", "horizon": 3}
    assert hit(client, "POST", "/v1/forecast", json=encoded).status_code == 404
    assert hit(client, "POST", "/v1/forecast", json={"series": SERIES[0], "horizon": 0}).status_code == 422
    assert "signals" in _json(hit(client, "GET", "/v1/signals", params={"since": "2025-01-01"}))
    assert "warnings" in _json(hit(client, "GET", "/v1/warnings"))
    shifts = _json(hit(client, "GET", "/v1/signals", params={"kind": "shift"}))["signals"]
    assert TOTAL_SHIFT in {s["id"] for s in shifts}
    t = "/v1/signals/{signal_id}/causes"
    why = _json(hit(client, "GET", t, f"/v1/signals/{TOTAL_SHIFT}/causes"))
    assert (why["series"], why["date"], why["verdict"]) == ("latency_p95", SHIFT, "explained")
    assert (why["causes"][0]["kind"], why["causes"][0]["key"]) == ("slice", "team=payments")
    assert why["aliases"] == [] and isinstance(why["detail"], str)  # found where it is dated: no other id
    first, last = why[
        "date_range"
    ]  # the dates it may have happened between: a clear step, dated to a few weeks
    assert (
        first <= SHIFT <= last and (dt.date.fromisoformat(last) - dt.date.fromisoformat(first)).days <= 28
    ), why
    r = hit(client, "GET", t, "/v1/signals/sig-0000000000/causes")
    assert r.status_code == 404 and _json(r)["error"] == "not_found"
    t = "/v1/indicators/{series:path}/plot.png"
    r = hit(client, "GET", t, f"/v1/indicators/{SERIES[1]}/plot.png")
    assert r.status_code == 200 and r.content[:4] == b"\x89PNG"


def test_experiments_and_report(client: TestClient) -> None:
    days = pd.date_range("2025-01-06", periods=30, freq="W-MON")
    data = [
        {
            "indicator": "reopens",
            "team": team,
            "ds": str(d.date()),
            "y": float(10 + (i % 3) - (2 if team == "payments" and i >= 20 else 0)),
        }
        for team in ("payments", "search", "storage")
        for i, d in enumerate(days)
    ]
    experiment = reopens_experiment("EXP-9", str(days[20].date()))
    r = hit(client, "POST", "/v1/experiments/score", json={"experiment": experiment, "data": data})
    body = _json(r)
    assert r.status_code == 200, body
    assert body["effect"] < 0 and body["ci_low"] <= body["effect"] <= body["ci_high"]
    bad = {**experiment, "start": "not a date"}
    assert (
        hit(client, "POST", "/v1/experiments/score", json={"experiment": bad, "data": data}).status_code
        == 422
    )

    listed = _json(hit(client, "GET", "/v1/experiments"))
    assert listed["experiments"][0]["id"] == "EXP-1" and listed["load"] == []  # no start recorded: no load
    assert body["overlaps"] == []
    one = _json(hit(client, "GET", "/v1/experiments/{experiment_id}", "/v1/experiments/EXP-1"))
    assert one["verdict"] == "worked" and one["plot"] == "/v1/experiments/EXP-1/plot.png"
    assert hit(client, "GET", "/v1/experiments/{experiment_id}", "/v1/experiments/EXP-2").status_code == 404
    r = hit(client, "GET", "/v1/experiments/{experiment_id}/plot.png", "/v1/experiments/EXP-1/plot.png")
    assert r.content == PNG and r.headers["content-type"] == "image/png"

    assert _json(hit(client, "GET", "/v1/report")) == {
        "run_id": "run-report",
        "summary": ["Disk full grew fastest"],
    }
    r = hit(client, "GET", "/v1/report.html")
    assert r.status_code == 200 and "<h1>Report</h1>" in r.text


def test_experiment_plan(client: TestClient) -> None:
    """The plan on the champion's history: 200 with the MDE and its power; bad input: 422 naming the field."""
    req = {"indicator": "latency_p95", "treated": "team=payments", "weeks": 6, "direction": "decrease"}
    r = hit(client, "POST", "/v1/experiments/plan", json=req)
    plan = _json(r)
    assert r.status_code == 200, plan
    assert plan["treated_series"] == SERIES[0] and plan["weeks"] == 6 and plan["mde"] > 0
    assert [p["label"] for p in plan["power"]] == ["0.5x MDE", "1x MDE", "2x MDE"]
    assert abs(plan["power"][1]["power"] - 0.80) < 1e-3
    assert plan["likely"]["effect"] is None and "too few" in plan["likely"]["note"]  # EXP-1 is on reopens
    longer = {**req, "weeks": 26, "controls": ["discovery"]}
    longer = _json(hit(client, "POST", "/v1/experiments/plan", json=longer))
    # the history is a random walk: a longer experiment does not narrow the counterfactual of a wandering level
    assert longer["mde"] > 0 and longer["weeks"] == 26 and longer["controls"] == [SERIES[1]]
    for bad, says in (
        ({"indicator": "nope"}, "unknown indicator 'nope'"),
        ({"treated": "team=nobody"}, "treated: no series 'latency_p95/team=nobody'"),
        ({"controls": ["ghost"]}, "controls: no series 'latency_p95/team=ghost'"),
        ({"treated": "team=platform/infra"}, "treated: no series 'latency_p95/team=platform%2Finfra'"),
        ({"treated": "team=payments,service=api"}, "the indicators show no team running service 'api'"),
    ):
        r = hit(client, "POST", "/v1/experiments/plan", json={**req, **bad})
        assert r.status_code == 422 and says in _json(r)["detail"], r.text
    # numbers must be JSON numbers: true is not 1 week, "8" is not 8
    for bad in (
        {"weeks": 0},
        {"weeks": 105},
        {"weeks": True},
        {"weeks": "8"},
        {"weeks": 8.5},
        {"direction": "up"},
        {"treated": "payments"},
    ):
        r = hit(client, "POST", "/v1/experiments/plan", json={**req, **bad})
        assert r.status_code == 422 and _json(r)["error"] == "invalid_request", (bad, r.text)


def test_web_pages(client: TestClient) -> None:
    def page(template: str, url: str | None = None, **kw: Any) -> str:
        r = hit(client, "GET", template, url, **kw)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html"), (
            url or template,
            r.status_code,
        )
        return r.text

    assert "search-api" in page("/ui")
    assert "Disk full" in page("/ui/search", params={"q": "the disk filled up"})
    assert "Connection pool exhaustion" in page("/ui/incidents/{incident_id}", "/ui/incidents/INC-2")
    assert "Certificate expiry" in page("/ui/patterns")
    assert "INC-1" in page("/ui/patterns/{pattern_id}", "/ui/patterns/1")
    assert "latency_p95" in page("/ui/indicators")
    assert "Canary gate" in page("/ui/experiments")
    r = hit(client, "GET", "/ui/indicators/{series:path}/plot.png", f"/ui/indicators/{SERIES[0]}/plot.png")
    assert r.status_code == 200 and r.content[:4] == b"\x89PNG"
    r = hit(client, "GET", "/ui/experiments/{experiment_id}/plot.png", "/ui/experiments/EXP-1/plot.png")
    assert r.status_code == 200 and r.content == PNG
    # without keys there is nothing to log in to: the login routes send the page home
    for method, path in (("GET", "/ui/login"), ("POST", "/ui/login"), ("POST", "/ui/logout")):
        r = hit(client, method, path)
        assert r.status_code == 303 and r.headers["location"] == "/ui", (method, path)
    r = hit(client, "GET", "/ui/static", "/ui/static/ui.css")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/css")


# One request per route, with the status it must answer; the route test walks app.routes and requires one for
# each, so a new route without a fast test fails here. (The tests above check what the answers hold.)
PROBES: dict[tuple[str, str], tuple[str, dict[str, Any], int]] = {
    ("GET", "/openapi.json"): ("/openapi.json", {}, 200),
    ("GET", "/docs"): ("/docs", {}, 200),
    ("GET", "/docs/oauth2-redirect"): ("/docs/oauth2-redirect", {}, 200),
    ("GET", "/redoc"): ("/redoc", {}, 200),
    ("GET", "/healthz"): ("/healthz", {}, 200),
    ("GET", "/readyz"): ("/readyz", {}, 200),
    ("GET", "/metrics"): ("/metrics", {}, 200),
    ("POST", "/v1/admin/reload"): ("/v1/admin/reload", {"json": {}}, 200),
    ("POST", "/v1/incidents/similar"): ("/v1/incidents/similar", {"json": {"text": "disk full"}}, 200),
    ("GET", "/v1/incidents/{incident_id}/similar"): ("/v1/incidents/INC-3/similar", {}, 200),
    ("POST", "/v1/incidents/classify"): ("/v1/incidents/classify", {"json": {"text": "disk full"}}, 200),
    ("GET", "/v1/patterns"): ("/v1/patterns", {}, 200),
    ("GET", "/v1/patterns/{pattern_id}"): ("/v1/patterns/0", {}, 200),
    ("GET", "/v1/heatmap"): ("/v1/heatmap", {}, 200),
    ("GET", "/v1/heatmap.png"): ("/v1/heatmap.png", {}, 200),
    ("GET", "/v1/heatmap.html"): ("/v1/heatmap.html", {}, 200),
    ("GET", "/v1/indicators"): ("/v1/indicators", {}, 200),
    ("POST", "/v1/forecast"): ("/v1/forecast", {"json": {"series": SERIES[0]}}, 200),
    ("GET", "/v1/signals"): ("/v1/signals", {}, 200),
    ("GET", "/v1/signals/{signal_id}/causes"): (f"/v1/signals/{TOTAL_SHIFT}/causes", {}, 200),
    ("GET", "/v1/warnings"): ("/v1/warnings", {}, 200),
    ("GET", "/v1/indicators/{series:path}/plot.png"): (f"/v1/indicators/{SERIES[0]}/plot.png", {}, 200),
    ("POST", "/v1/experiments/score"): ("/v1/experiments/score", {"json": {}}, 422),
    ("POST", "/v1/experiments/plan"): ("/v1/experiments/plan", {"json": {}}, 422),
    ("GET", "/v1/experiments"): ("/v1/experiments", {}, 200),
    ("GET", "/v1/experiments/{experiment_id}"): ("/v1/experiments/EXP-1", {}, 200),
    ("GET", "/v1/experiments/{experiment_id}/plot.png"): ("/v1/experiments/EXP-1/plot.png", {}, 200),
    ("GET", "/v1/report"): ("/v1/report", {}, 200),
    ("GET", "/v1/report.html"): ("/v1/report.html", {}, 200),
    ("GET", "/ui"): ("/ui", {}, 200),
    ("GET", "/ui/search"): ("/ui/search", {"params": {"q": "disk"}}, 200),
    ("GET", "/ui/incidents/{incident_id}"): ("/ui/incidents/INC-0", {}, 200),
    ("GET", "/ui/patterns"): ("/ui/patterns", {}, 200),
    ("GET", "/ui/patterns/{pattern_id}"): ("/ui/patterns/0", {}, 200),
    ("GET", "/ui/indicators"): ("/ui/indicators", {}, 200),
    ("GET", "/ui/indicators/{series:path}/plot.png"): (f"/ui/indicators/{SERIES[1]}/plot.png", {}, 200),
    ("GET", "/ui/experiments"): ("/ui/experiments", {}, 200),
    ("GET", "/ui/experiments/{experiment_id}/plot.png"): ("/ui/experiments/EXP-1/plot.png", {}, 200),
    ("GET", "/ui/login"): ("/ui/login", {}, 303),
    ("POST", "/ui/login"): ("/ui/login", {}, 303),
    ("POST", "/ui/logout"): ("/ui/logout", {}, 303),
    ("GET", "/ui/static"): ("/ui/static/ui.css", {}, 200),
}


def _routes(app: FastAPI) -> set[tuple[str, str]]:
    """(method, path) of every route, through included routers (FastAPI >= 0.165 nests them) and mounts."""
    out: set[tuple[str, str]] = set()
    for route in app.routes:
        contexts = route.effective_route_contexts() if hasattr(route, "effective_route_contexts") else [route]
        for ctx in contexts:
            original = getattr(ctx, "original_route", ctx)
            methods = getattr(original, "methods", None) or {"GET"}
            out |= {(m, ctx.path) for m in methods if m != "HEAD"}
    return out


def test_every_route_is_exercised(app: FastAPI, client: TestClient) -> None:
    routes = _routes(app)
    assert ("POST", "/v1/incidents/similar") in routes and ("GET", "/ui/static") in routes
    assert routes - set(PROBES) == set(), "routes without a fast test: add them to PROBES and a test above"
    assert set(PROBES) - routes == set(), "probes of routes that no longer exist"
    for (method, _template), (url, kw, status) in sorted(PROBES.items()):
        r = client.request(method, url, **kw)
        assert r.status_code == status, (method, url, r.status_code, r.text[:300])
        assert r.status_code != 404


def test_a_long_error_keeps_its_end_in_the_log_line() -> None:
    """A refused model's log line is bounded, and a long path in it loses its middle, not what was wrong."""
    from serving.models import _first_line

    long_path = "/tmp/" + "c" * 400 + "/index/embeddings.npy"
    line = _first_line(
        ValueError(f"model artifact {long_path}: content differs from the manifest's SHA-256\nmore")
    )
    assert (
        len(line) == 300 and line.startswith("model artifact /tmp/cc") and line.endswith("manifest's SHA-256")
    )
    assert _first_line(ValueError("short\nsecond line")) == "short" and _first_line(ValueError("")) == ""


def test_scoring_inline_counts_reads_absent_weeks_as_zeros(client: TestClient) -> None:
    """The inline data of POST /v1/experiments/score is read as `recur experiment score` reads files: a sparse
    count's absent week is a 0, so an export without its zero rows scores as the full one."""
    days = pd.date_range("2025-01-06", periods=40, freq="W-MON")
    rng = np.random.default_rng(4)
    full = [
        {
            "indicator": "reopens",
            "team": team,
            "ds": str(d.date()),
            "y": float(rng.poisson(0.6 if team == "payments" and i >= 24 else 1.6)),
        }
        for team in ("payments", "search", "storage")
        for i, d in enumerate(days)
    ]
    experiment = reopens_experiment("EXP-8", str(days[24].date()))
    sparse = [o for o in full if o["y"] != 0]
    assert len(sparse) < 0.85 * len(full)
    got = {
        k: _json(hit(client, "POST", "/v1/experiments/score", json={"experiment": experiment, "data": d}))
        for k, d in (("full", full), ("sparse", sparse))
    }
    assert got["sparse"]["effect"] == pytest.approx(got["full"]["effect"])
    assert got["sparse"]["p_value"] == pytest.approx(got["full"]["p_value"])


def test_scoring_inline_data_with_dates_pandas_cannot_hold_is_a_clear_error(client: TestClient) -> None:
    """Found by schemathesis: year-68 dates in the inline data once raised out of the completion (a 500)."""
    data = [
        {"indicator": "reopens", "team": "payments", "ds": "0068-11-16", "y": 1.0},
        {"indicator": "reopens", "team": "search", "ds": "1576-11-03", "y": 2.0},
    ]
    r = hit(
        client,
        "POST",
        "/v1/experiments/score",
        json={"experiment": reopens_experiment("EXP-7", "2026-06-22"), "data": data},
    )
    assert 400 <= r.status_code < 500 and set(_json(r)) >= {"error", "detail"}, (r.status_code, r.text)
