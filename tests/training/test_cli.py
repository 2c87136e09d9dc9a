"""The `recur` command line as a user runs it (a real subprocess)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT, SAMPLE


def recur(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run(
        [sys.executable, "-m", "training.cli", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        timeout=300,
    )


def test_validate_sample_has_zero_rejects() -> None:
    paths = sorted(str(p) for p in SAMPLE.iterdir())
    out = recur("validate", *paths, "--json", "--strict")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["quarantined"] == 0
    kinds = {r["kind"]: r["accepted"] for r in data["results"]}
    assert kinds["experiments"] == 12 and kinds["indicators"] > 3000
    assert sum(r["accepted"] for r in data["results"] if r["kind"] == "incidents") == 612


def test_validate_reports_rejects_and_strict_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "incidents.jsonl"
    good = (SAMPLE / "incidents.jsonl").read_text().splitlines()[:3]
    bad.write_text("\n".join([*good, '{"id": "X", "title": "t"}', "not json"]) + "\n")
    out = recur("validate", str(bad))
    assert out.returncode == 0
    assert "Quarantined records" in out.stdout and "summary" in out.stdout
    strict = recur("validate", str(bad), "--strict", "--json")
    assert strict.returncode == 2
    data = json.loads(strict.stdout)
    r = data["results"][0]
    assert (r["records_in"], r["accepted"], r["quarantined"]) == (5, 3, 2)
    assert {x["line"] for x in r["rejects"]} == {4, 5}


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    out = recur("validate", str(tmp_path / "nope.csv"))
    assert out.returncode == 1 and "no such file" in out.stderr and "Traceback" not in out.stderr


def test_help_lists_every_command() -> None:
    out = recur("--help")
    for cmd in ("validate", "train", "experiment", "report", "similar", "serve"):
        assert cmd in out.stdout
    sub = recur("train", "--help")
    for cmd in ("patterns", "indicators", "all"):
        assert cmd in sub.stdout
