"""The API end to end over a real uvicorn process and a real MLflow champion trained on the sample."""

from __future__ import annotations

import json

import httpx
import pytest

from serving.schemas import SimilarResponse
from tests.conftest import SAMPLE
from tests.serving.server import Server

pytestmark = pytest.mark.slow


def _sample() -> list[dict]:
    return [json.loads(x) for x in (SAMPLE / "incidents.jsonl").read_text().splitlines()]


def test_ready_with_champion(server: Server, store: dict) -> None:
    r = httpx.get(server.url + "/readyz")
    assert r.status_code == 200
    assert r.json()["models"]["incident-patterns"]["version"] == store["result"]["version"]


def test_similar_returns_k_matches_with_reasons(server: Server, store: dict) -> None:
    inc = next(i for i in _sample() if i["pattern"] != "one-off")
    text = f"{inc['title']}. {inc['summary']}"
    r = httpx.post(server.url + "/v1/incidents/similar", json={"text": text, "k": 5}, timeout=30)
    assert r.status_code == 200, r.text
    assert r.headers["X-Model-Name"] == "incident-patterns"
    assert r.headers["X-Model-Version"] == store["result"]["version"]
    body = r.json()
    # The route serialises its own JSON: it must have exactly the documented shape.
    assert SimilarResponse.model_validate(body).model_dump(mode="json") == body
    assert len(body["matches"]) == 5
    top = body["matches"][0]
    assert top["id"] == inc["id"]  # the incident itself is the closest to its own text
    assert top["reasons"]["shared_keywords"]
    scores = [m["score"] for m in body["matches"]]
    assert scores == sorted(scores, reverse=True)


def test_similar_neighbours_share_the_root_cause(server: Server) -> None:
    """Over 20 postmortems queried by their root cause only, most neighbours share the true pattern
    (random ranking would give about 1 in 12)."""
    sample = _sample()
    truth = {i["id"]: i["pattern"] for i in sample}
    queries = [i for i in sample if i["pattern"] != "one-off" and i.get("root_cause")][::25][:20]
    hits = []
    with httpx.Client(base_url=server.url, timeout=30) as c:
        for inc in queries:
            r = c.post("/v1/incidents/similar", json={"text": inc["root_cause"], "k": 6})
            matches = [m for m in r.json()["matches"] if m["id"] != inc["id"]][:5]
            hits.append(sum(truth[m["id"]] == inc["pattern"] for m in matches) / 5)
    assert sum(hits) / len(hits) >= 0.5, hits


def test_similar_filters(server: Server) -> None:
    sample = _sample()
    service = sample[0]["service"]
    r = httpx.post(
        server.url + "/v1/incidents/similar",
        json={"text": "database connections exhausted", "k": 10, "service": service, "since": "2025-06-01"},
        timeout=30,
    )
    assert r.status_code == 200
    matches = r.json()["matches"]
    assert matches and all(m["service"] == service and m["date"] >= "2025-06-01" for m in matches)


def test_similar_to_known_incident(server: Server) -> None:
    iid = _sample()[3]["id"]
    r = httpx.get(server.url + f"/v1/incidents/{iid}/similar", params={"k": 3})
    assert r.status_code == 200
    assert iid not in [m["id"] for m in r.json()["matches"]]
    assert SimilarResponse.model_validate(r.json()).model_dump(mode="json") == r.json()
    r = httpx.get(server.url + "/v1/incidents/NOPE-1/similar")
    assert r.status_code == 404 and r.json()["error"] == "not_found"


def test_classify_and_patterns(server: Server) -> None:
    patterns = httpx.get(server.url + "/v1/patterns").json()
    ids = {p["id"] for p in patterns["patterns"]}
    assert len(ids) >= 5
    p0 = patterns["patterns"][0]
    assert p0["keywords"] and p0["representatives"] and p0["trend"] in ("rising", "falling", "flat")
    rep = httpx.get(server.url + f"/v1/patterns/{p0['id']}").json()
    assert rep["name"] == p0["name"]
    assert httpx.get(server.url + "/v1/patterns/99999").status_code == 404
    # Each pattern's most typical incident, sent as a new postmortem, is classified into that very pattern.
    by_id = {i["id"]: i for i in _sample()}
    for p in patterns["patterns"][:5]:
        inc = by_id[p["representatives"][0]["id"]]
        fields = ("title", "summary", "root_cause", "contributing_factors")
        r = httpx.post(
            server.url + "/v1/incidents/classify",
            json={"incident": {k: inc[k] for k in fields if inc.get(k)}},
            timeout=30,
        )
        assert r.status_code == 200, r.text
        body = r.json()
        assert (body["pattern_id"], body["pattern_name"]) == (p["id"], p["name"]), (inc["id"], body)
        assert body["unclustered"] is False and 0 < body["confidence"] <= 1.0001


def test_heatmaps(server: Server) -> None:
    n = len(_sample())
    for by in ("service", "team", "month"):
        body = httpx.get(server.url + "/v1/heatmap", params={"by": by}, timeout=60).json()
        assert sum(map(sum, body["values"])) == n
        assert len(body["values"]) == len(body["rows"]) and len(body["values"][0]) == len(body["columns"])
    r = httpx.get(server.url + "/v1/heatmap.png", params={"by": "team"}, timeout=60)
    assert r.status_code == 200 and r.headers["content-type"] == "image/png" and r.content[:4] == b"\x89PNG"
    # a start long before the first incident adds nothing (found by schemathesis: year 0231 timed out)
    r = httpx.get(server.url + "/v1/heatmap.png", params={"by": "month", "since": "0231-02-19"}, timeout=30)
    assert r.status_code == 200
    r = httpx.get(server.url + "/v1/heatmap.html", params={"by": "month", "period": "quarter"}, timeout=60)
    assert r.status_code == 200 and "<script src=" not in r.text


def test_bad_input_is_json(server: Server) -> None:
    cases = [
        ({"k": 3}, 422),
        ({"text": "x", "incident": {"title": "y"}}, 422),
        ({"text": "x", "k": 0}, 422),
        ({"text": "x", "service": "a" * 500}, 422),
        ({"text": "x" * 25_000}, 422),
    ]
    for body, status in cases:
        r = httpx.post(server.url + "/v1/incidents/similar", json=body)
        assert r.status_code == status, (body, r.text)
        assert set(r.json()) == {"error", "detail"}


def test_similar_answers_carry_root_cause_actions_and_suggestion(server: Server) -> None:
    """Issue #14: the answer over HTTP has each match's root cause, action items and pattern, and a suggestion
    that names the pattern for a clear match and is null for unrelated text."""
    by_id = {i["id"]: i for i in _sample()}
    patterns = httpx.get(server.url + "/v1/patterns", timeout=30).json()["patterns"]
    p = max(patterns, key=lambda x: x["size"])
    inc = by_id[p["representatives"][0]["id"]]
    text = "\n".join(x for x in (inc["title"], inc["summary"], inc.get("root_cause")) if x)
    body = httpx.post(server.url + "/v1/incidents/similar", json={"text": text, "k": 5}, timeout=30).json()
    assert SimilarResponse.model_validate(body).model_dump(mode="json") == body
    suggestion = body["suggestion"]
    assert suggestion is not None and suggestion["pattern_id"] == p["id"], body["query_pattern"]
    assert body["suggestion"]["text"].startswith(f"looks like pattern {p['name']} (seen {p['size']} times")
    top = body["matches"][0]
    assert top["id"] == inc["id"] and top["action_items"] and top["pattern"]["seen"] == p["size"]
    assert {a["status"] for a in top["action_items"]} <= {"open", "done", "wontfix"}
    unrelated = {"text": "The quarterly marketing offsite agenda: a picnic by the lake.", "k": 5}
    answer = httpx.post(server.url + "/v1/incidents/similar", json=unrelated, timeout=30).json()
    assert answer["suggestion"] is None, answer["query_pattern"]
    by_id_body = httpx.get(server.url + f"/v1/incidents/{inc['id']}/similar?k=5", timeout=30).json()
    assert SimilarResponse.model_validate(by_id_body).model_dump(mode="json") == by_id_body
    assert all("root_cause" in m and "action_items" in m for m in by_id_body["matches"])
