"""Similar-incident answers a responder can act on (issue #14), on the champion trained on the sample.

Each match carries its root cause (redacted, shortened), its action items with their status and its pattern; the
answer's suggestion names the pattern and a done action item when the evidence supports it, and abstains
otherwise. The artifact that holds these fields is still refused when corrupt.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ml.patterns.answers import shorten
from ml.registry.artifacts import ArtifactError, check_pattern_artifacts, fetch_version, write_manifest
from ml.registry.names import PATTERNS_MODEL
from ml.registry.runtimes import PatternsRuntime
from ml.text.redaction import redact
from tests.conftest import SAMPLE

pytestmark = pytest.mark.slow

UNRELATED = "The quarterly marketing offsite agenda: a picnic by the lake, a boat ride and a pub quiz."


def _sample() -> dict[str, dict[str, Any]]:
    rows = [json.loads(x) for x in (SAMPLE / "incidents.jsonl").read_text().splitlines()]
    return {r["id"]: r for r in rows}


@pytest.fixture(scope="module")
def artifact(store: dict, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    dest = tmp_path_factory.mktemp("champion")
    uri = store["env"]["RECUR_MLFLOW_TRACKING_URI"]
    yield fetch_version(uri, PATTERNS_MODEL, str(store["result"]["version"]), dest=dest)
    shutil.rmtree(dest, ignore_errors=True)


@pytest.fixture(scope="module")
def rt(artifact: Path) -> PatternsRuntime:
    return PatternsRuntime(artifact)


def test_match_fields_root_cause_shortened_and_redacted(rt: PatternsRuntime) -> None:
    sample = _sample()
    # Some raw root causes name a mailbox (e.g. INC-0007): answers show them redacted.
    leaky = {
        i for i, r in sample.items() if r.get("root_cause") and redact(r["root_cause"]) != r["root_cause"]
    }
    query = next(i for i in sample if i not in leaky)
    matches, _ = rt.similar_to(query, k=len(rt.index) - 1)  # every other incident
    assert len(matches) == len(sample) - 1 and leaky <= {m["id"] for m in matches}
    seen_long = 0
    for m in matches:
        raw = sample[m["id"]]
        if not raw.get("root_cause"):
            assert m["root_cause"] is None
        else:
            assert m["root_cause"] == shorten(redact(raw["root_cause"]))
            assert len(m["root_cause"]) <= 301
            if len(" ".join(raw["root_cause"].split())) > 300:
                seen_long += 1
                assert m["root_cause"][-1] in ".!?…", m["root_cause"]
        if m["id"] in leaky:
            assert "@" not in m["root_cause"]  # the raw mailbox or handle is never served
        assert [(a["title"], a["status"]) for a in m["action_items"]] == [
            (redact(a["title"]), a["status"]) for a in raw["action_items"]
        ]
        if m["pattern_id"] >= 0:
            p = rt.pattern(m["pattern_id"])
            last = p["last_seen"][:10]
            assert m["pattern"] == {"id": p["id"], "name": p["name"], "seen": p["size"], "last_seen": last}
        else:
            assert m["pattern"] is None
    assert seen_long >= 50
    assert {a["status"] for m in matches for a in m["action_items"]} == {"done", "open", "wontfix"}


def test_suggestion_abstains_on_unrelated_text(rt: PatternsRuntime) -> None:
    matches, qp = rt.similar(UNRELATED, k=5)
    assert len(matches) == 5
    assert rt.suggestion(matches, qp) is None, qp


def test_suggestion_names_the_pattern_and_a_done_fix(rt: PatternsRuntime) -> None:
    sample = _sample()
    named = 0
    for p in rt.patterns()[:5]:
        inc = sample[p["representatives"][0]["id"]]
        text = "\n".join(x for x in (inc["title"], inc["summary"], inc.get("root_cause")) if x)
        matches, qp = rt.similar(text, k=5)
        s = rt.suggestion(matches, qp)
        if qp["pattern_id"] != p["id"]:
            continue
        assert s is not None, (p["name"], qp, [m["pattern_id"] for m in matches])
        named += 1
        assert s["pattern_id"] == p["id"] and s["seen"] == p["size"] and s["last_seen"] == p["last_seen"][:10]
        assert s["support"] >= 2
        assert s["text"].startswith(
            f"looks like pattern {p['name']} (seen {p['size']} times, last on {s['last_seen']})"
        )
        fix = s["fix"]
        assert fix is not None
        source = sample[fix["incident_id"]]
        assert rt.assignments[fix["incident_id"]] == p["id"]
        done = [redact(a["title"]) for a in source["action_items"] if a["status"] == "done"]
        assert fix["action_item"] in done and fix["action_item"] in s["text"]
    assert named >= 3


def test_corrupt_incidents_jsonl_is_refused(artifact: Path, tmp_path: Path) -> None:
    copy = tmp_path / "model"
    shutil.copytree(artifact, copy)
    check_pattern_artifacts(copy)
    path = copy / "incidents.jsonl"
    lines = path.read_text(encoding="utf-8").splitlines()
    # Bytes changed behind the manifest's back: refused by its checksum.
    path.write_text("\n".join(lines[:-1]) + "\n", encoding="utf-8")
    with pytest.raises(ArtifactError, match="incidents.jsonl"):
        check_pattern_artifacts(copy)
    # A well-formed file whose action item has an unknown status (manifest rewritten): refused by line and field.
    row = next(json.loads(x) for x in lines if json.loads(x)["action_items"])
    row["action_items"][0]["status"] = "maybe"
    at = next(n for n, x in enumerate(lines) if json.loads(x)["id"] == row["id"])
    lines[at] = json.dumps(row, sort_keys=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    write_manifest(copy, "patterns")
    with pytest.raises(ArtifactError, match=rf"line {at + 1}: field action_items\.0\.status"):
        check_pattern_artifacts(copy)
    # A root cause that is not text: refused too.
    row["action_items"][0]["status"] = "done"
    row["root_cause"] = 42
    lines[at] = json.dumps(row, sort_keys=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    write_manifest(copy, "patterns")
    with pytest.raises(ArtifactError, match=rf"line {at + 1}: field root_cause"):
        check_pattern_artifacts(copy)


def test_corrupt_root_cause_view_is_refused(artifact: Path, tmp_path: Path) -> None:
    """The index's root-cause view (view-cause-*.npy) is validated like the rest before anything is built."""
    copy = tmp_path / "model"
    shutil.copytree(artifact, copy)
    present = copy / "index" / "view-cause-present.npy"
    assert present.is_file()  # the default index holds the root-cause view
    np.save(present, np.ones(3, dtype=bool), allow_pickle=False)
    write_manifest(copy, "patterns")
    with pytest.raises(ArtifactError, match="view-cause-present.npy"):
        check_pattern_artifacts(copy)


def test_answer_cache_is_a_bounded_lru_per_loaded_version() -> None:
    from serving.models import AnswerCache, LoadedModel

    cache = AnswerCache(2)
    cache.put(("a", 5, None, None, None), b"A")
    cache.put(("b", 5, None, None, None), b"B")
    assert cache.get(("a", 5, None, None, None)) == b"A"  # now the most recent
    cache.put(("c", 5, None, None, None), b"C")
    assert cache.get(("b", 5, None, None, None)) is None  # the least recent went
    assert cache.get(("a", 5, None, None, None)) == b"A" and len(cache) == 2
    assert cache.get(("a", 3, None, None, None)) is None  # another k is another question
    off = AnswerCache(0)
    off.put(("a",), b"A")
    assert off.get(("a",)) is None
    # each loaded version has its own cache: a reload never serves the previous version's answers
    first, second = (LoadedModel(name="m", version=v, run_id=None, runtime=None) for v in ("1", "2"))
    assert first.answers is not second.answers
