"""data/github_status.py: the GitHub status corpus as Recur files that Recur's readers accept without a reject."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

from ml.io.readers import read_incidents, read_indicators

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def gh() -> ModuleType:
    spec = importlib.util.spec_from_file_location("recur_github_status", ROOT / "data" / "github_status.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _row(i: str, when: str, components: list[str], impact: str = "minor") -> dict[str, object]:
    return {
        "id": i,
        "name": f"Incident {i}",
        "impact": impact,
        "started_at": when,
        "resolved_at": when,
        "components": components,
        "text": f"<ul><li><strong>{when}</strong> - We are investigating &amp; mitigating {i}.</li></ul>",
    }


def test_convert_writes_files_the_readers_accept(gh: ModuleType, tmp_path: Path) -> None:
    rows = [
        _row("a", "2024-01-02T10:00:00.000Z", ["GitHub Actions"], "major"),  # an alias of Actions
        _row("b", "2024-01-03T10:00:00.000Z", ["Actions", "Webhooks"]),  # counted once, first component
        _row("c", "2024-01-17T10:00:00.000Z", ["Visit www.githubstatus.com for more information"], "none"),
        _row("d", "2023-01-01T10:00:00.000Z", ["Webhooks"]),  # before --since
    ]
    source = tmp_path / "incidents.jsonl"
    source.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    out = tmp_path / "out"
    assert gh.main([str(out), "--source", str(source), "--since", "2024-01-01"]) == 0
    incidents = read_incidents(out / "incidents.jsonl")
    indicators = read_indicators(out / "indicators.csv")
    assert not incidents.rejects and not indicators.rejects
    by_id = {i.id: i for i in incidents.records}
    assert sorted(by_id) == ["a", "b", "c"]
    assert by_id["a"].service == "Actions" and by_id["a"].severity == "SEV2"
    assert by_id["c"].service == "unspecified" and by_id["c"].severity == "SEV4"
    assert by_id["b"].summary == "2024-01-03T10:00:00.000Z - We are investigating & mitigating b."
    counts = {(o.service, o.ds.isoformat()): o.y for o in indicators.records}
    # Monday weeks 2024-01-01 .. 2024-01-15 for every component, zero-filled; each incident counted once.
    assert counts == {
        ("Actions", "2024-01-01"): 2,
        ("Actions", "2024-01-08"): 0,
        ("Actions", "2024-01-15"): 0,
        ("unspecified", "2024-01-01"): 0,
        ("unspecified", "2024-01-08"): 0,
        ("unspecified", "2024-01-15"): 1,
    }
    assert sum(counts.values()) == len(incidents.records)


def test_missing_source_is_one_line(
    gh: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert gh.main([str(tmp_path / "out"), "--source", str(tmp_path / "nope.jsonl")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no such file" in err
