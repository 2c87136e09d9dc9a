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
    data_paths = [
        SAMPLE / n for n in ("experiments.yaml", "incidents.jsonl", "indicators.csv", "postmortems")
    ]
    out = recur("validate", *map(str, data_paths), "--json", "--strict")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["quarantined"] == 0
    # config/ and truth/ hold no data a reader takes: named as unrecognised, not skipped in silence
    every = recur("validate", *sorted(str(p) for p in SAMPLE.iterdir()), "--json")
    assert every.returncode == 0, every.stderr
    unknown = {Path(u["file"]).name for u in json.loads(every.stdout)["unrecognised"]}
    assert unknown == {"config", "truth"}
    kinds = {r["kind"]: r["accepted"] for r in data["results"]}
    assert kinds["experiments"] == 12 and kinds["indicators"] > 3000
    # 640 JSONL incidents (600 + the planted bursts' postmortems) + 12 Markdown postmortems
    assert sum(r["accepted"] for r in data["results"] if r["kind"] == "incidents") == 652


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


def test_train_all_on_a_folder_that_is_not_there_is_one_line_and_trains_nothing(tmp_path: Path) -> None:
    env = {"RECUR_MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'm.db'}"}
    out = recur("train", "all", "--data", str(tmp_path / "nope"), env=env)
    assert out.returncode == 1 and out.stderr.strip() == f"error: --data: {tmp_path / 'nope'} is not a folder"
    assert not (tmp_path / "m.db").exists()


def test_help_lists_every_command() -> None:
    out = recur("--help")
    for cmd in ("validate", "train", "experiment", "report", "similar", "serve"):
        assert cmd in out.stdout
    sub = recur("train", "--help")
    for cmd in ("patterns", "indicators", "all"):
        assert cmd in sub.stdout


def _deep_dir(root: Path, depth: int = 150) -> Path:
    """A folder whose path is at least `depth` characters long (like a CI runner's nested TMPDIR)."""
    path = root / "deep"
    while len(str(path)) < depth:
        path = path / ("d" * 40)
    path.mkdir(parents=True)
    return path


def test_error_line_is_never_wrapped_whatever_the_width(tmp_path: Path) -> None:
    missing = _deep_dir(tmp_path) / "[red]nope[/].csv"
    out = recur("validate", str(missing), env={"COLUMNS": "40", "TERMINAL_WIDTH": "40"})
    assert out.returncode == 1, out.stderr
    lines = out.stderr.strip().splitlines()
    assert lines == [f"error: {missing}: no such file or folder"], out.stderr


def test_usage_errors_are_one_line_at_40_columns() -> None:
    out = recur("train", "patterns", env={"COLUMNS": "40"})
    assert out.returncode == 2
    assert "Error: Missing option '--incidents'." in out.stderr.splitlines(), out.stderr
    assert "╭" not in out.stderr


def test_rejects_table_rows_are_not_folded_when_piped(tmp_path: Path) -> None:
    bad = _deep_dir(tmp_path) / "incidents.jsonl"
    reason_field = "x" * 120
    bad.write_text(json.dumps({"id": "X-1", "title": reason_field, "summary": " "}) + "\n")
    out = recur("validate", str(bad), env={"COLUMNS": "40"})
    assert out.returncode == 0, out.stderr
    row = [ln for ln in out.stdout.splitlines() if "X-1" in ln]
    assert len(row) == 1 and str(bad) in row[0] and "summary" in row[0], out.stdout


def test_log_lines_are_one_line_each(tmp_path: Path) -> None:
    bad = tmp_path / "e.yaml"
    bad.write_text("- id: E1\n  name: [unclosed\n")
    out = recur("-v", "validate", str(bad), env={"COLUMNS": "40"})
    logged = [ln for ln in out.stderr.splitlines() if ln.strip()]
    assert any("quarantined" in ln and f"{bad}:" in ln and "invalid YAML" in ln for ln in logged), out.stderr
    assert all(" INFO " in ln or " WARNING " in ln for ln in logged), out.stderr


def test_help_is_readable_at_40_columns() -> None:
    out = recur("train", "--help", env={"COLUMNS": "40"})
    assert out.returncode == 0
    assert "╭" not in out.stdout and "patterns" in out.stdout


def test_unrecognised_file_is_a_named_reject_and_fails_strict(tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("not data\n")
    out = recur("validate", str(notes), "--json", "--strict")
    assert out.returncode == 2, out.stdout + out.stderr
    data = json.loads(out.stdout)
    assert data["quarantined"] == 1 and data["unrecognised"][0]["file"] == str(notes)
    plain = recur("validate", str(notes))
    assert plain.returncode == 0 and str(notes) in plain.stdout and "not a Recur data file" in plain.stdout


def test_bom_csv_export_is_validated_not_skipped(tmp_path: Path) -> None:
    export = tmp_path / "export.csv"
    export.write_text(
        "\ufeffid,title,summary,started_at\nA,Disk full,The log disk filled,2025-02-01T00:00:00Z\n",
        encoding="utf-8",
    )
    out = recur("validate", str(export), "--json", "--strict")
    assert out.returncode == 0, out.stdout + out.stderr
    data = json.loads(out.stdout)
    assert [(r["kind"], r["accepted"]) for r in data["results"]] == [("incidents", 1)]


def test_train_strict_fails_on_an_unrecognised_file(tmp_path: Path) -> None:
    notes = tmp_path / "postmortems.txt"
    notes.write_text("a postmortem saved as text\n")
    env = {
        "RECUR_MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
        "RECUR_MLFLOW_ARTIFACT_ROOT": str(tmp_path / "artifacts"),
    }
    out = recur("train", "patterns", "--incidents", str(notes), "--strict", env=env)
    assert out.returncode == 2, out.stderr[-2000:]
    (line,) = out.stderr.strip().splitlines()[-1:]
    assert line.startswith("error: ") and str(notes) in line and ".txt" in line
