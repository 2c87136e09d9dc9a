"""`recur explain` as a user runs it (a real subprocess) on a small data set with planted causes, and the
explanations stored with the forecaster (written, checked on load, served by id)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from ml.registry.artifacts import ArtifactError, write_manifest
from tests.training.test_cli import recur

TEAMS = ("payments", "search", "storage")
WEEKS = 80
SHIFT_WEEK = 55  # payments' incidents rise by 10 a week from here; the others stay flat
START = pd.Timestamp("2024-01-01")  # a Monday


def planted(tmp_path: Path) -> dict[str, Path]:
    """Weekly incidents per team (noise sd 1 around 10); payments +10 from week 55, after a pipeline change two
    weeks earlier; an unrelated change on storage at week 20 (nothing moves after it)."""
    rng = np.random.default_rng(11)
    rows = []
    for team in TEAMS:
        for w in range(WEEKS):
            y = 10 + rng.normal(0, 1) + (10 if team == "payments" and w >= SHIFT_WEEK else 0)
            rows.append(
                {
                    "indicator": "incidents",
                    "ds": (START + pd.Timedelta(weeks=w)).date(),
                    "y": round(y, 2),
                    "team": team,
                }
            )
    ind = tmp_path / "indicators.csv"
    pd.DataFrame(rows).to_csv(ind, index=False)
    changes = tmp_path / "changes.csv"
    pipe = (START + pd.Timedelta(weeks=SHIFT_WEEK - 2)).date()
    other = (START + pd.Timedelta(weeks=20)).date()
    changes.write_text(
        "id,ds,team,kind,description\n"
        f"CHG-PIPE,{pipe},payments,deploy-pipeline,Deploys skip the canary stage\n"
        f"CHG-ONCALL,{other},storage,on-call,On-call rotation moved to weekly\n",
        encoding="utf-8",
    )
    return {"indicators": ind, "changes": changes}


def store_env(tmp_path: Path) -> dict[str, str]:
    """An empty MLflow store: no champion pattern model."""
    return {
        "RECUR_MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
        "RECUR_MLFLOW_ARTIFACT_ROOT": str(tmp_path / "artifacts"),
    }


def explain_with_changes(files: dict[str, Path], tmp_path: Path) -> Any:
    """`recur explain --json` on the planted indicators and change log; it must succeed."""
    out = recur(
        "explain",
        "--indicators",
        str(files["indicators"]),
        "--changes",
        str(files["changes"]),
        "--json",
        env=store_env(tmp_path),
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return out


def near(date: str, week: int, weeks: int = 2) -> bool:
    return abs((pd.Timestamp(date) - (START + pd.Timedelta(weeks=week))).days) <= 7 * weeks


def test_explain_json_names_the_planted_slice_and_change(tmp_path: Path) -> None:
    files = planted(tmp_path)
    out = explain_with_changes(files, tmp_path)
    data = json.loads(out.stdout)
    assert list(data) == ["signals"]
    signals = data["signals"]
    for s in signals:  # the contract
        assert {"series", "date", "direction", "magnitude", "causes"} <= set(s)
        for c in s["causes"]:
            assert {"kind", "key", "contribution", "confidence", "evidence"} <= set(c)
            assert c["kind"] in ("slice", "pattern", "change", "experiment")
            assert 0 <= c["confidence"] <= 1 and (c["contribution"] is None or 0 <= c["contribution"] <= 1)
    total = [s for s in signals if s["series"] == "incidents" and near(s["date"], SHIFT_WEEK)]
    assert total and total[0]["direction"] == "increase", signals
    assert total[0]["causes"][0]["kind"] == "slice" and total[0]["causes"][0]["key"] == "team=payments"
    team = [s for s in signals if s["series"] == "incidents/team=payments" and near(s["date"], SHIFT_WEEK)]
    assert team, signals
    assert ("change", "CHG-PIPE") in {(c["kind"], c["key"]) for c in team[0]["causes"]}
    # the storage change moved nothing: never blamed confidently
    blamed = [c for s in signals for c in s["causes"] if c["key"] == "CHG-ONCALL" and c["confidence"] >= 0.8]
    assert blamed == []
    # --since keeps the later shifts only; the dates are newest first
    later = recur(
        "explain",
        "--indicators",
        str(files["indicators"]),
        "--since",
        str((START + pd.Timedelta(weeks=50)).date()),
        "--json",
        env=store_env(tmp_path),
    )
    dates = [s["date"] for s in json.loads(later.stdout)["signals"]]
    assert dates and all(d >= str((START + pd.Timedelta(weeks=50)).date()) for d in dates)
    assert dates == sorted(dates, reverse=True)


def test_explain_without_a_pattern_model_says_so_in_one_line(tmp_path: Path) -> None:
    files = planted(tmp_path)
    incidents = tmp_path / "incidents.jsonl"
    incidents.write_text(
        json.dumps(
            {
                "id": "INC-1",
                "title": "Checkout failed",
                "summary": "Payments timed out",
                "team": "payments",
                "started_at": "2025-01-20T10:00:00Z",
            }
        )
        + "\n",
        encoding="utf-8",
    )
    out = recur(
        "explain",
        "--indicators",
        str(files["indicators"]),
        "--incidents",
        str(incidents),
        env=store_env(tmp_path),
    )
    assert out.returncode == 0, out.stderr[-2000:]
    # (MLflow's own lines when it creates a fresh store aside)
    notes = [ln for ln in out.stderr.splitlines() if ln.strip() and "mlflow.store.db.utils" not in ln]
    assert notes == [notes[0]] and notes[0].startswith("note: no champion 'incident-patterns' model"), (
        out.stderr
    )
    assert "Why it moved" in out.stdout and "team=payments" in out.stdout


def test_explain_is_in_the_help() -> None:
    out = recur("--help")
    assert out.returncode == 0 and "explain" in out.stdout
    sub = recur("explain", "--help", env={"COLUMNS": "40"})
    for opt in ("--indicators", "--incidents", "--experiments", "--changes", "--since", "--json"):
        assert opt in sub.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--since", "last week"], "--since: 'last week' is not a date (YYYY-MM-DD)"),
        (["--changes", "{tmp}/nope.csv"], "nope.csv: no such file or folder"),
    ],
)
def test_explain_errors_are_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    files = planted(tmp_path)
    out = recur(
        "explain",
        "--indicators",
        str(files["indicators"]),
        *[a.format(tmp=tmp_path) for a in args],
        env=store_env(tmp_path),
    )
    assert out.returncode == 1
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], out.stderr


# ---------------------------------------------------------------------------------------------- stored


def _forecaster(tmp_path: Path) -> tuple[Path, list[dict]]:
    from ml.indicators.forecasting import fit_many
    from ml.io.readers import indicators_frame, read_indicators
    from ml.registry.forecaster_runtime import write_forecaster_artifacts
    from training.explain import explain_history

    history = indicators_frame(read_indicators(planted(tmp_path)["indicators"]).records)
    bundle = fit_many(
        history[["series", "ds", "y"]], {"candidates": ["seasonal_naive"], "n_windows": 2}, map_fn=map
    )
    explanations = explain_history(history)
    root = write_forecaster_artifacts(
        tmp_path / "model", bundle=bundle, history=history, config={}, explanations=explanations
    )
    return root, explanations


def test_explanations_are_stored_with_the_forecaster_and_served_by_id(tmp_path: Path) -> None:
    from ml.causes import signal_id
    from ml.errors import NotFoundError
    from ml.registry.forecaster_runtime import ForecasterRuntime

    root, explanations = _forecaster(tmp_path)
    rt = ForecasterRuntime(root)
    rows = rt.signals()
    assert rows and all(r["id"] == signal_id(r["series"], r["date"]) for r in rows)
    # every shift of a fitted series is explained under the same id; the total's shifts are listed too
    shifts = [r for r in rows if r["kind"] == "shift"]
    assert all(rt.causes(r["id"])["series"] == r["series"] for r in shifts)
    assert {e["id"] for e in explanations} <= {r["id"] for r in rows}
    total = [r for r in rows if r["series"] == "incidents"]  # the aggregate, in the detector's words
    assert total and {r["direction"] for r in rows} <= {"increase", "decrease"}
    assert [r["rank"] for r in rows] == list(range(1, len(rows) + 1))
    with pytest.raises(NotFoundError, match="no explained shift with id 'sig-0000000000'"):
        rt.causes("sig-0000000000")


@pytest.mark.parametrize(
    "corrupt",
    [
        lambda d: {**d, "format": "other/1"},
        lambda d: {**d, "signals": [{**d["signals"][0], "magnitude": "big"}]},
        lambda d: {**d, "signals": [{**d["signals"][0], "causes": [{"kind": "astrology", "key": "x"}]}]},
        lambda d: {**d, "signals": d["signals"][:1] * 2},
        lambda d: {**d, "signals": [{**d["signals"][0], "date_range": ["2000-01-03", "2000-02-07"]}]},
        lambda d: {**d, "signals": [{**d["signals"][0], "date_range": "soon"}]},
    ],
    ids=["format", "magnitude", "cause kind", "duplicate id", "date outside its range", "range not a list"],
)
def test_corrupt_explanations_are_refused_on_load(tmp_path: Path, corrupt: object) -> None:
    from ml.registry.forecaster_runtime import ForecasterRuntime

    root, _ = _forecaster(tmp_path)
    path = root / "causes.json"
    path.write_text(json.dumps(corrupt(json.loads(path.read_text()))), encoding="utf-8")  # type: ignore[operator]
    write_manifest(root, "forecaster")  # a consistent manifest: the content check must catch it
    with pytest.raises(ArtifactError, match="causes.json"):
        ForecasterRuntime(root)


def test_why_it_moved_section_names_causes_and_abstentions(tmp_path: Path) -> None:
    from ml.registry.forecaster_runtime import ForecasterRuntime
    from training.report_sections import causes_section

    root, explanations = _forecaster(tmp_path)  # no change log: the team's own rise has no convincing cause
    sec = causes_section(ForecasterRuntime(root), "7")
    assert sec.id == "causes" and "Why it moved" in sec.title and sec.has_content
    causes, abstained = sec.tables
    total = next(r for r in causes.rows if r[0] == "incidents")
    assert "team=payments" in total[3] and total[4] > 80 and total[5] >= 50  # the slice, in plain words
    assert abstained.title == "No convincing cause"
    assert ["incidents/team=payments"] == [r[0] for r in abstained.rows if near(r[1][:10], SHIFT_WEEK)]
    assert sec.data["signals"] and {s["id"] for s in sec.data["signals"]} <= {e["id"] for e in explanations}
    assert sec.summary.endswith(": 1 explained, 1 with no convincing cause.")
    assert causes_section(None, None).empty and not causes_section(None, None).has_content


def test_why_it_moved_section_gives_the_dates_a_shift_may_lie_between() -> None:
    from training.report_sections import causes_section

    shift = {
        "id": "sig-1",
        "series": "incidents",
        "date": "2025-03-03",
        "date_range": ["2025-02-17", "2025-03-17"],
        "direction": "increase",
        "magnitude": 4.0,
        "verdict": "explained",
        "causes": [
            {
                "kind": "slice",
                "key": "team=a",
                "summary": "team=a rose",
                "contribution": 0.9,
                "confidence": 0.9,
            }
        ],
    }
    sure = {**shift, "id": "sig-2", "series": "reopens", "date_range": ["2025-03-03", "2025-03-03"]}

    class Runtime:
        history = pd.DataFrame({"ds": [pd.Timestamp("2025-06-30")]})

        def explanations(self) -> list[dict[str, object]]:
            return [shift, sure]

        def signals(self) -> list[dict[str, object]]:
            return []

    (table, _) = causes_section(Runtime(), "1").tables
    dates = {r[0]: r[1] for r in table.rows}
    assert dates == {"incidents": "2025-03-03 (between 2025-02-17 and 2025-03-17)", "reopens": "2025-03-03"}


@pytest.mark.slow
def test_train_all_stores_the_causes_with_the_forecaster(tmp_path: Path) -> None:
    """`recur train all` on a folder with indicators and changes.csv: the champion serves each shift's causes."""
    from ml.registry.names import FORECASTER_MODEL
    from training.champions import load_runtime
    from training.settings import Settings

    data = tmp_path / "data"
    data.mkdir()
    planted(data)
    env = store_env(tmp_path)
    out = recur("train", "all", "--data", str(data), "--promote", "--executor", "serial", "--json", env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    why = json.loads(out.stdout)["indicators"]["explanations"]
    assert why["shifts"] >= 2 and why["explained"] >= 2
    settings = Settings(
        mlflow_tracking_uri=env["RECUR_MLFLOW_TRACKING_URI"],
        mlflow_artifact_root=Path(env["RECUR_MLFLOW_ARTIFACT_ROOT"]),
        cache_dir=tmp_path / "cache",
    )
    runtime, _version = load_runtime(settings, FORECASTER_MODEL)
    team = [e for e in runtime.explanations() if e["series"] == "incidents/team=payments"]
    assert team and team[0]["causes"][0]["key"] == "CHG-PIPE"  # the change log of the data folder
    assert {e["id"] for e in runtime.explanations()} <= {s["id"] for s in runtime.signals()}


def test_a_sparse_export_of_counts_is_explained_as_the_full_one(tmp_path: Path) -> None:
    """Only the weeks with an incident have a row (an export grouped by team and week): the absent weeks are
    zeros, said in one note, and the explanation is the one of the full file."""
    rng = np.random.default_rng(5)
    rows = []
    for k, team in enumerate(TEAMS):
        y = rng.poisson(0.4 + 0.3 * k, WEEKS).astype(int)
        if team == "payments":
            y[SHIFT_WEEK:] += rng.poisson(4.0, WEEKS - SHIFT_WEEK)
        y[0], y[-1] = max(y[0], 1), max(y[-1], 1)
        rows += [
            {
                "indicator": "incidents",
                "ds": (START + pd.Timedelta(weeks=w)).date(),
                "y": int(v),
                "team": team,
            }
            for w, v in enumerate(y)
        ]
    full = pd.DataFrame(rows)
    paths = {"full": tmp_path / "full.csv", "sparse": tmp_path / "sparse.csv"}
    full.to_csv(paths["full"], index=False)
    full[full.y != 0].to_csv(paths["sparse"], index=False)
    absent = int((full.y == 0).sum())
    outs = {
        k: recur("explain", "--indicators", str(p), "--json", env=store_env(tmp_path))
        for k, p in paths.items()
    }
    for out in outs.values():
        assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(outs["sparse"].stdout) == json.loads(outs["full"].stdout)
    total = [s for s in json.loads(outs["full"].stdout)["signals"] if s["series"] == "incidents"]
    assert any(near(s["date"], SHIFT_WEEK) and s["causes"][0]["key"] == "team=payments" for s in total), total
    notes = [ln for ln in outs["sparse"].stderr.splitlines() if ln.startswith("note: ")]
    assert notes == [
        f"note: incidents: {absent} absent dates of 3 of its 3 series counted as 0 (whole-number counts summed "
        "over their parts: a date without a row had none)"
    ], outs["sparse"].stderr
    assert not [ln for ln in outs["full"].stderr.splitlines() if ln.startswith("note: ")]


def test_a_history_too_short_for_shifts_says_so(tmp_path: Path) -> None:
    path = tmp_path / "ten.csv"
    rows = [
        {"indicator": "incidents", "ds": (START + pd.Timedelta(weeks=w)).date(), "y": 3 + w % 2, "team": t}
        for t in TEAMS
        for w in range(10)
    ]
    pd.DataFrame(rows).to_csv(path, index=False)
    out = recur("explain", "--indicators", str(path), "--json", env=store_env(tmp_path))
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout) == {"signals": []}
    notes = [ln for ln in out.stderr.splitlines() if ln.startswith("note: ")]
    assert notes == [
        "note: no indicator has the 12 dates a shift needs to be searched (the longest has 10): nothing to explain yet"
    ], out.stderr


def test_a_change_on_a_slice_no_series_has_is_named_in_a_note(tmp_path: Path) -> None:
    files = planted(tmp_path)
    with files["changes"].open("a", encoding="utf-8") as fh:
        fh.write("CHG-TYPO,2024-06-03,paymnets,deploy-pipeline,Deploys skip the canary stage\n")
    out = explain_with_changes(files, tmp_path)
    notes = [ln for ln in out.stderr.splitlines() if ln.startswith("note: ")]
    assert notes == [
        "note: 1 change(s) name a team no indicator series has: CHG-TYPO (team=paymnets); they explain no shift"
    ], out.stderr
    keys = {c["key"] for s in json.loads(out.stdout)["signals"] for c in s["causes"]}
    assert "CHG-TYPO" not in keys and "CHG-PIPE" in keys


def incident_history(tmp_path: Path) -> Path:
    """80 weeks of incidents on three services (Poisson 2 a week each, some naming no service); checkout's rise
    by 6 a week from week 55."""
    rng = np.random.default_rng(5)
    lines = []
    for w in range(WEEKS):
        for service in ("checkout", "search", "storage", ""):
            lam = 1.0 if not service else 2.0 + (6.0 if service == "checkout" and w >= SHIFT_WEEK else 0.0)
            for k in range(int(rng.poisson(lam))):
                when = START + pd.Timedelta(weeks=w, days=int(rng.integers(0, 7)), hours=9 + k)
                record = {
                    "id": f"INC-{len(lines)}",
                    "title": f"{service or 'Something'} degraded",
                    "summary": "Requests failed and were retried.",
                    "started_at": when.isoformat() + "Z",
                }
                lines.append(json.dumps(record | ({"service": service} if service else {})))
    path = tmp_path / "incidents.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_incidents_alone_explain_their_weekly_counts(tmp_path: Path) -> None:
    path = incident_history(tmp_path)
    out = recur("explain", "--incidents", str(path), "--json", env=store_env(tmp_path))
    assert out.returncode == 0, out.stderr[-2000:]
    notes = [ln for ln in out.stderr.splitlines() if ln.startswith("note: ")]
    assert any(
        n.startswith("note: no --indicators: explaining the weekly count of the")
        and "by service: 4 series" in n
        for n in notes
    ), out.stderr
    signals = json.loads(out.stdout)["signals"]
    total = [s for s in signals if s["series"] == "incidents" and near(s["date"], SHIFT_WEEK)]
    assert total and total[0]["direction"] == "increase", signals
    assert total[0]["causes"][0]["key"] == "service=checkout"
    assert {s["series"] for s in signals} <= {
        "incidents",
        *(f"incidents/service={v}" for v in ("checkout", "search", "storage", "unspecified")),
    }


def test_explain_with_neither_indicators_nor_incidents_is_one_line(tmp_path: Path) -> None:
    out = recur("explain", "--json", env=store_env(tmp_path))
    assert out.returncode == 1
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: nothing to explain: give --indicators"), out.stderr


def test_an_incident_with_a_mistyped_year_is_left_out_of_the_counts_with_a_note(tmp_path: Path) -> None:
    path = incident_history(tmp_path)
    clean = recur("explain", "--incidents", str(path), "--json", env=store_env(tmp_path))
    typo = {
        "id": "TYPO",
        "title": "x",
        "summary": "y",
        "service": "search",
        "started_at": "2124-03-04T10:00:00Z",
    }
    with path.open("a", encoding="utf-8") as f:
        f.write(json.dumps(typo) + "\n")
    out = recur("explain", "--incidents", str(path), "--json", env=store_env(tmp_path))
    assert out.returncode == 0, out.stderr[-2000:]
    assert "1 incident(s) more than 365 days from the rest of the history left out" in out.stderr
    assert "first: TYPO on 2124-03-04" in out.stderr
    signals = [(s["series"], s["date"]) for s in json.loads(out.stdout)["signals"]]
    assert signals == [(s["series"], s["date"]) for s in json.loads(clean.stdout)["signals"]]


def test_incidents_that_all_fail_validation_are_an_error_not_an_empty_answer(tmp_path: Path) -> None:
    path = tmp_path / "incidents.csv"
    path.write_text(
        "id,team,started_at\n"
        + "".join(f"I{i},pay,2024-0{1 + i % 9}-0{1 + i % 9}T10:00:00Z\n" for i in range(30)),
        encoding="utf-8",
    )
    out = recur("explain", "--incidents", str(path), env=store_env(tmp_path))
    assert out.returncode == 1
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith(
        "error: nothing to explain: no incident of --incidents could be read (30 of 30 incidents"
    )
    assert "title: is required" in last


def test_a_count_of_quarantined_incidents_is_a_note(tmp_path: Path) -> None:
    path = incident_history(tmp_path)
    with path.open("a", encoding="utf-8") as f:
        f.write(json.dumps({"id": "BAD", "title": "x", "started_at": "2024-05-01T00:00:00Z"}) + "\n")
    out = recur("explain", "--incidents", str(path), "--json", env=store_env(tmp_path))
    assert out.returncode == 0, out.stderr[-2000:]
    assert any(
        ln.startswith("note: 1 of ") and "incidents quarantined (first: " in ln
        for ln in out.stderr.splitlines()
    ), out.stderr


def test_every_field_nothing_reads_and_every_rejected_entry_is_a_note(tmp_path: Path) -> None:
    """An incident's ``component``, an experiment's misspelt ``contols`` and a change log's bad row each leave a
    note on what was not used, and a datetime without a time zone one on how it was read; a --since after the
    history's end says so instead of an empty answer alone."""
    path = incident_history(tmp_path)
    with path.open("a", encoding="utf-8") as f:
        extra = {"id": "C1", "title": "x", "summary": "y", "started_at": "2024-05-01T00:00:00"}
        f.write(json.dumps(extra | {"component": "api"}) + "\n")
    exp = tmp_path / "experiments.yaml"
    exp.write_text(
        "- id: EXP-1\n  name: Canary\n  hypothesis: {problem: a, solution: b, metric: c}\n  indicator: incidents\n"
        "  dimension: service\n  treated: checkout\n  contols: [search]\n  start: 2024-06-03\n",
        encoding="utf-8",
    )
    changes = tmp_path / "changes.csv"
    changes.write_text(
        "ds,service,kind,description\n2024-06-03,checkout,deploy,Canary skipped\nnot-a-date,search,deploy,x\n",
        encoding="utf-8",
    )
    args = ["--incidents", str(path), "--experiments", str(exp), "--changes", str(changes)]
    out = recur("explain", *args, "--since", "2031-01-01", "--json", env=store_env(tmp_path))
    assert out.returncode == 0, out.stderr[-2000:]
    notes = [ln for ln in out.stderr.splitlines() if ln.startswith("note: ")]
    line = len(path.read_text().splitlines())
    why = "field 'component' is not read (rename it service to split the incidents by it)"
    assert f"note: {path}:{line} [component]: {why}" in notes, notes
    naive = (
        f"note: 1 of {line} records give a datetime without a time zone, taken as UTC (first: {path}:{line}"
    )
    assert any(n.startswith(naive) for n in notes), notes
    assert f"note: {exp}:1 [contols]: field 'contols' is not read (did you mean controls?)" in notes, notes
    assert any(n.startswith("note: 1 of 2 change-log entries quarantined (first: ") for n in notes), notes
    assert any(
        n.startswith("note: --since 2031-01-01 is after the last date of the history (") for n in notes
    )
    assert json.loads(out.stdout)["signals"] == []


def test_mean_and_sum_flags_choose_how_an_aggregate_is_made(tmp_path: Path) -> None:
    """--mean makes an indicator's aggregate the mean of its teams (its step a third of the summed one's here);
    --sum and --mean of one indicator is a one-line error; a name the history lacks is a note."""
    paths = planted(tmp_path)
    ind = paths["indicators"]
    ind.write_text(ind.read_text(encoding="utf-8").replace("incidents,", "queue_depth,"), encoding="utf-8")

    def total_step(*flags: str) -> tuple[float, list[str]]:
        out = recur("explain", "--indicators", str(ind), *flags, "--json", env=store_env(tmp_path))
        assert out.returncode == 0, out.stderr[-2000:]
        total = [
            s
            for s in json.loads(out.stdout)["signals"]
            if s["series"] == "queue_depth" and near(s["date"], SHIFT_WEEK)
        ]
        assert total and total[0]["causes"][0]["key"] == "team=payments", total
        return float(total[0]["magnitude"]), [ln for ln in out.stderr.splitlines() if ln.startswith("note: ")]

    summed, _ = total_step()  # "queue_depth" names no rate or duration: summed
    averaged, notes = total_step("--mean", "queue_depth", "--sum", "nope")
    assert abs(summed - 10) < 2 and abs(averaged - 10 / 3) < 1, (summed, averaged)
    assert "note: --sum 'nope': no such indicator (the indicators are queue_depth)" in notes
    both = recur("explain", "--indicators", str(ind), "--mean", "x", "--sum", "x", env=store_env(tmp_path))
    assert both.returncode == 1
    assert (
        both.stderr.strip().splitlines()[-1]
        == "error: --mean and --sum both name 'x': an aggregate is one or the other"
    )


def test_mean_names_an_indicator_whose_absent_weeks_are_unknown_not_zero(tmp_path: Path) -> None:
    """A sparse whole-number indicator exported without some weeks: summed by its name, its absent weeks count as
    0 (a note says so); named by --mean, they stay unknown, as for any mean."""
    rng = np.random.default_rng(4)
    rows = [
        {
            "indicator": "queue_depth",
            "ds": (START + pd.Timedelta(weeks=w)).date(),
            "y": int(rng.poisson(2)),
            "team": t,
        }
        for t in TEAMS
        for w in range(WEEKS)
        if w % 9
    ]
    ind = tmp_path / "indicators.csv"
    pd.DataFrame(rows).to_csv(ind, index=False)

    def completed(*flags: str) -> list[str]:
        out = recur("explain", "--indicators", str(ind), *flags, "--json", env=store_env(tmp_path))
        assert out.returncode == 0, out.stderr[-2000:]
        return [ln for ln in out.stderr.splitlines() if "absent dates" in ln]

    assert completed() and completed()[0].startswith("note: queue_depth: ")
    assert completed("--mean", "queue_depth") == []


def test_a_team_change_is_matched_to_the_services_its_incidents_show_it_owns(tmp_path: Path) -> None:
    """Indicators by service, a change log by team: the incidents (no pattern model) tell which team owns which
    service, so payments' pipeline change explains checkout's rise and search's owner's change does not."""
    rng = np.random.default_rng(12)
    owner = {"checkout": "payments", "search": "growth", "storage": "growth"}
    rows = [
        {
            "indicator": "incidents",
            "ds": (START + pd.Timedelta(weeks=w)).date(),
            "y": round(10 + rng.normal(0, 1) + (10 if svc == "checkout" and w >= SHIFT_WEEK else 0), 2),
            "service": svc,
        }
        for svc in owner
        for w in range(WEEKS)
    ]
    ind = tmp_path / "indicators.csv"
    pd.DataFrame(rows).to_csv(ind, index=False)
    changes = tmp_path / "changes.csv"
    when = (START + pd.Timedelta(weeks=SHIFT_WEEK - 2)).date()
    changes.write_text(
        "id,ds,team,kind,description\n"
        f"CHG-PAY,{when},payments,deploy-pipeline,Deploys skip the canary stage\n"
        f"CHG-GROW,{when},growth,on-call,On-call rotation moved to weekly\n",
        encoding="utf-8",
    )
    incidents = tmp_path / "incidents.jsonl"
    incidents.write_text(
        "".join(
            json.dumps(
                {
                    "id": f"INC-{svc}-{i}",
                    "title": f"{svc} degraded",
                    "summary": "Requests failed and were retried.",
                    "team": team,
                    "service": svc,
                    "started_at": (START + pd.Timedelta(weeks=i)).isoformat() + "Z",
                }
            )
            + "\n"
            for svc, team in owner.items()
            for i in range(6)
        ),
        encoding="utf-8",
    )
    args = ["explain", "--indicators", str(ind), "--changes", str(changes), "--json"]
    out = recur(*args, "--incidents", str(incidents), env=store_env(tmp_path))
    assert out.returncode == 0, out.stderr[-2000:]
    notes = [ln for ln in out.stderr.splitlines() if ln.startswith("note: ")]
    assert any(
        "name a team, which the indicators are not split on" in n
        and n.endswith("each is matched through the incidents to the series of what its team owns")
        for n in notes
    ), out.stderr
    signals = json.loads(out.stdout)["signals"]
    leaf = [s for s in signals if s["series"] == "incidents/service=checkout" and near(s["date"], SHIFT_WEEK)]
    assert leaf, signals
    causes = {c["key"]: c for c in leaf[0]["causes"]}
    assert leaf[0]["causes"][0]["key"] == "CHG-PAY" and "CHG-GROW" not in causes
    assert causes["CHG-PAY"]["evidence"]["slice_check"] == (
        "team=payments holds 100% of the incidents of service=checkout"
    )
    total = [s for s in signals if s["series"] == "incidents" and near(s["date"], SHIFT_WEEK)]
    assert total and total[0]["causes"][0]["key"] == "service=checkout", signals
    assert "CHG-PAY" in {c["key"] for c in total[0]["causes"]}
    # without the incidents: both changes only partly agree, and the note says how to match them
    blind = recur(*args, env=store_env(tmp_path))
    assert blind.returncode == 0, blind.stderr[-2000:]
    assert "give --incidents that name the team to match it to the series of what it owns" in blind.stderr
    leaf = [
        s
        for s in json.loads(blind.stdout)["signals"]
        if s["series"] == "incidents/service=checkout" and near(s["date"], SHIFT_WEEK)
    ]
    assert {"CHG-PAY", "CHG-GROW"} <= {c["key"] for c in leaf[0]["causes"]}


def test_the_note_on_team_changes_says_which_are_matched_through_the_incidents() -> None:
    from training.explain import unknown_slices

    history = pd.DataFrame({"team": [None, None], "service": ["checkout", "search"]})
    changes = pd.DataFrame({"id": ["CHG-1", "CHG-2"], "team": ["payments", "sre"], "ds": ["2025-01-06"] * 2})
    inc = pd.DataFrame(
        {
            "team": ["payments"] * 6 + ["growth"] * 6 + ["sre"],
            "service": ["checkout"] * 7 + ["search"] * 6,
        }
    )
    head = "2 change(s) name a team, which the indicators are not split on: CHG-1 (team=payments), CHG-2 (team=sre); "
    (note,) = unknown_slices(changes, history, inc)
    assert note.startswith(
        head + "1 are matched through the incidents to the series of what their team owns; the other 1"
    )
    (note,) = unknown_slices(changes[changes.id == "CHG-1"], history, inc)
    assert note.endswith("each is matched through the incidents to the series of what its team owns")
    (note,) = unknown_slices(changes[changes.id == "CHG-2"], history, inc)
    assert "their team owns nothing by the incidents" in note
    # indicators split on nothing: a team cannot be matched to any series
    (note,) = unknown_slices(changes[changes.id == "CHG-1"], history.assign(service=None), inc)
    assert "their team owns nothing by the incidents" in note
    (note,) = unknown_slices(changes, history)
    assert note.endswith("(give --incidents that name the team to match it to the series of what it owns)")
    assert all("\n" not in n for n in unknown_slices(changes, history, inc))


def test_an_experiment_on_an_indicator_the_history_lacks_is_a_note() -> None:
    from training.explain import ExplainInputs, unmatched_experiments

    history = pd.DataFrame({"indicator": ["incidents", "reopens"], "ds": ["2025-01-06"] * 2, "y": [1.0, 2.0]})
    inputs = ExplainInputs(
        experiments=[
            {"id": "EXP-1", "indicator": "incidents", "treated": "payments"},
            {"id": "EXP-2", "indicator": "deploy_frequency", "treated": "payments"},
        ]
    )
    assert unmatched_experiments(inputs, history) == [
        "1 experiment(s) name an indicator the history does not have: EXP-2 (deploy_frequency); they explain no"
        " shift"
    ]
    assert unmatched_experiments(ExplainInputs(experiments=inputs.experiments[:1]), history) == []
    assert unmatched_experiments(ExplainInputs(), history) == []


def test_a_re_dated_shift_is_served_under_the_id_the_forecaster_lists_and_listed_once(tmp_path: Path) -> None:
    from ml.causes import explain_signals, signal_id
    from ml.indicators.forecasting import fit_many
    from ml.registry.forecaster_runtime import ForecasterRuntime, write_forecaster_artifacts
    from tests.ml.test_causes_candidates import _slow_start

    frame, exps = _slow_start(1, 2.0, 3.5)  # detected 4 weeks after the experiment's start, moved to it
    history = frame.assign(series="mttr_hours/team=" + frame["team"])
    bundle = fit_many(
        history[["series", "ds", "y"]], {"candidates": ["seasonal_naive"], "n_windows": 2}, map_fn=map
    )
    explanations = explain_signals(frame, experiments=exps)
    (moved,) = [e for e in explanations if e["series"] == "mttr_hours/team=a"]
    assert moved["date"] == "2025-02-24" and moved["aliases"]
    root = write_forecaster_artifacts(
        tmp_path / "model", bundle=bundle, history=history, config={}, explanations=explanations
    )
    rt = ForecasterRuntime(root)
    mine = [r for r in rt.signals() if r["series"] == "mttr_hours/team=a" and r["kind"] == "shift"]
    # the forecaster's own shift, at the date it detected it, leads to the explanation; not listed twice
    assert [r["id"] for r in mine] == moved["aliases"], mine
    assert mine[0]["verdict"] == moved["verdict"] and mine[0]["n_causes"] == len(moved["causes"])
    assert rt.causes(moved["aliases"][0])["id"] == moved["id"] == signal_id("mttr_hours/team=a", "2025-02-24")
    assert rt.causes(moved["id"])["date"] == "2025-02-24"
    # the web page's lookup of the listed ids finds it too
    assert rt.explanations_by_id()[mine[0]["id"]]["id"] == moved["id"]
    assert all(r["id"] in rt.explanations_by_id() for r in rt.signals() if r["kind"] == "shift")


def test_a_shift_found_where_another_was_moved_from_keeps_that_id_and_both_are_listed(tmp_path: Path) -> None:
    from ml.causes import explain_signals
    from ml.indicators.forecasting import fit_many
    from ml.registry.forecaster_runtime import ForecasterRuntime, write_forecaster_artifacts
    from tests.ml.test_causes_candidates import _slow_start

    # detected at 03-24 and moved to the experiment's start (02-24); a change dated 03-24 then finds a shift there
    frame, exps = _slow_start(5, 2.0, 4.5)
    change = pd.DataFrame(
        [{"ds": "2025-03-24", "team": "a", "kind": "deploy", "description": "x", "id": "CHG-9"}]
    )
    explanations = explain_signals(frame, experiments=exps, changes=change)
    mine = {e["date"]: e for e in explanations if e["series"] == "mttr_hours/team=a"}
    assert {"2025-02-24", "2025-03-24"} <= set(mine)
    assert mine["2025-02-24"]["aliases"] == []  # the id of 03-24 is the shift found there, not an alias
    history = frame.assign(series="mttr_hours/team=" + frame["team"])
    bundle = fit_many(
        history[["series", "ds", "y"]], {"candidates": ["seasonal_naive"], "n_windows": 2}, map_fn=map
    )
    root = write_forecaster_artifacts(
        tmp_path / "model", bundle=bundle, history=history, config={}, explanations=explanations
    )
    listed = {r["id"] for r in ForecasterRuntime(root).signals() if r["series"] == "mttr_hours/team=a"}
    assert {mine["2025-02-24"]["id"], mine["2025-03-24"]["id"]} <= listed
