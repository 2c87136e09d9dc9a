"""The experiment hygiene and planning commands: overlap warnings, `recur experiment plan`, its one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT, SAMPLE, reopens_experiment

INDICATORS = str(SAMPLE / "indicators.csv")


def recur(*args: str, tmp: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "RECUR_MLFLOW_TRACKING_URI": f"sqlite:///{tmp / 'mlflow.db'}",
        "RECUR_MLFLOW_ARTIFACT_ROOT": str(tmp / "artifacts"),
    }
    return subprocess.run(
        [sys.executable, "-m", "training.cli", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=600,
    )


def test_validate_warns_once_per_overlapping_pair(tmp_path: Path) -> None:
    sample = yaml.safe_load((SAMPLE / "experiments.yaml").read_text())
    exp9 = next(
        e for e in sample if e["id"] == "EXP-009"
    )  # incidents, payments, from 2025-11-10, still running
    again = {**exp9, "id": "EXP-900", "start": "2026-01-05", "end": "2026-03-02"}
    other = {**exp9, "id": "EXP-901", "indicator": "reopens", "start": "2026-01-05"}  # another indicator
    path = tmp_path / "experiments.yaml"
    path.write_text(
        yaml.safe_dump(json.loads(json.dumps([*sample, again, other], default=str)))
    )  # no aliases
    out = recur("validate", str(path), tmp=tmp_path)
    assert out.returncode == 0, out.stderr
    warnings = [line for line in out.stdout.splitlines() if line.startswith("warning:")]
    assert warnings == [
        "warning: EXP-009 overlaps EXP-900: EXP-900 runs on incidents from 2026-01-05 to 2026-03-02 and also"
        " treats team=payments: the effects are confounded (each estimate holds both changes)"
    ]
    data = json.loads(recur("validate", str(path), "--json", tmp=tmp_path).stdout)
    assert [(o["id"], o["other_id"], o["kind"]) for o in data["overlaps"]] == [
        ("EXP-009", "EXP-900", "same slice")
    ]
    clean = json.loads(recur("validate", str(SAMPLE / "experiments.yaml"), "--json", tmp=tmp_path).stdout)
    assert clean["overlaps"] == []


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--indicator", "nope"], "unknown indicator 'nope'"),
        (["--treated", "team=nobody"], "treated: no series 'incidents/team=nobody'"),
        (["--treated", "payments"], "treated must be team=VALUE, service=VALUE or team=VALUE,service=VALUE"),
        (["--treated", "team=payments,service=checkout"], "the indicators show no team running service"),
        (["--controls", "ghost"], "controls: no series 'incidents/team=ghost'"),
        (["--weeks", "0"], "weeks must be a whole number from 1 to 104"),
        (["--weeks", "105"], "weeks must be a whole number from 1 to 104"),
        (["--direction", "up"], "direction must be 'increase' or 'decrease'"),
    ],
)
def test_plan_errors_are_one_line(tmp_path: Path, args: list[str], says: str) -> None:
    base = {
        "--indicator": "incidents",
        "--treated": "team=payments",
        "--weeks": "8",
        "--direction": "decrease",
    }
    opts = dict(base)
    opts.update(dict(zip(args[::2], args[1::2], strict=True)))
    out = recur(
        "experiment",
        "plan",
        "--indicators",
        INDICATORS,
        *[x for kv in opts.items() for x in kv],
        tmp=tmp_path,
    )
    assert out.returncode == 1, out.stdout
    errors = [line for line in out.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and says in errors[0] and "Traceback" not in out.stderr, out.stderr


#: `recur experiment plan` for payments over 8 weeks, a decrease desired, as JSON (the first two are the command).
PLAN_PAYMENTS = (
    *("experiment", "plan", "--treated", "team=payments"),
    *("--weeks", "8", "--direction", "decrease", "--json"),
)


@pytest.mark.slow
def test_plan_with_past_experiments(tmp_path: Path) -> None:
    """Past experiments on incidents in the sample, scored on the fly: those aiming the other way left out."""
    out = recur(
        "experiment",
        "plan",
        "--indicators",
        INDICATORS,
        "--experiments",
        str(SAMPLE / "experiments.yaml"),
        "--indicator",
        "incidents",
        *PLAN_PAYMENTS[2:],
        tmp=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    plan = json.loads(out.stdout)
    likely = plan["likely"]  # EXP-002 and EXP-009 aimed to decrease incidents; EXP-011 to raise reports
    assert likely["n_past"] == 2 and [p["id"] for p in likely["past"]] == ["EXP-002", "EXP-009"]
    assert likely["effect"] is None and "too few" in likely["note"] and plan["weeks_needed"] is None
    assert any("1 past experiment(s) on incidents aimed to increase it" in n for n in plan["notes"])
    assert [p["label"] for p in plan["power"]] == ["0.5x MDE", "1x MDE", "2x MDE"]
    assert [o["other_id"] for o in plan["overlaps"]] == ["EXP-009"]  # still running on team=payments
    assert abs(plan["power"][1]["power"] - 0.80) < 1e-3 and plan["calibration"]["method"] == "pooled placebos"


def test_plan_and_score_say_when_absent_weeks_of_counts_are_zeros(tmp_path: Path) -> None:
    """A sparse export (no rows for weeks without a reopen): both commands read it as the full file and say so."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(6)
    days = pd.date_range("2024-01-01", periods=60, freq="7D")
    rows = [
        {"indicator": "reopens", "ds": str(d.date()), "y": int(v), "team": team}
        for team in ("payments", "search", "storage")
        for d, v in zip(days, rng.poisson(1.5, 60), strict=True)
        if v
    ]
    path = tmp_path / "sparse.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    absent = 180 - len(rows)
    note = f"reopens: {absent} absent dates of 3 of its 3 series counted as 0"
    args = (*PLAN_PAYMENTS[:2], "--indicators", str(path), "--indicator", "reopens", *PLAN_PAYMENTS[2:])
    plan = recur(*args, tmp=tmp_path)
    assert plan.returncode == 0, plan.stderr
    assert any(n.startswith(note) for n in json.loads(plan.stdout)["notes"])
    exp = tmp_path / "exp.yaml"
    exp.write_text(yaml.safe_dump([reopens_experiment("EXP-1", str(days[40].date()))]), encoding="utf-8")
    score = recur(
        "experiment",
        "score",
        "--indicators",
        str(path),
        "--experiments",
        str(exp),
        "--no-record",
        tmp=tmp_path,
    )
    assert score.returncode == 0, score.stderr
    assert any(ln.startswith(f"note: {note}") for ln in score.stderr.splitlines()), score.stderr


@pytest.mark.slow
def test_service_experiments_on_indicators_split_by_both_are_scored_and_count_for_their_team(
    tmp_path: Path,
) -> None:
    """Indicators by team and service: a service experiment is scored on the service's total, a pair types its
    plan, the overlap with the team's experiment is a nested slice, and the load of the team counts both."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(2)
    days = pd.date_range("2025-01-06", periods=60, freq="7D")
    leaves = (("payments", "checkout"), ("payments", "billing"), ("data", "etl"))
    pd.DataFrame(
        [
            {"indicator": "incidents", "ds": str(d.date()), "y": int(v), "team": team, "service": svc}
            for team, svc in leaves
            for d, v in zip(days, rng.poisson(6.0, len(days)), strict=True)
        ]
    ).to_csv(tmp_path / "ind.csv", index=False)

    def experiment(eid: str, dimension: str, treated: str, controls: list[str]) -> dict[str, object]:
        return {
            "id": eid,
            "name": eid,
            "hypothesis": {"problem": "p", "solution": "s", "metric": "incidents"},
            "indicator": "incidents",
            "dimension": dimension,
            "treated": treated,
            "controls": controls,
            "start": "2026-01-05",
            "desired_direction": "decrease",
        }

    exps = [
        experiment("EXP-S", "service", "checkout", ["etl"]),
        experiment("EXP-T", "team", "payments", ["data"]),
    ]
    (tmp_path / "exps.yaml").write_text(yaml.safe_dump(exps), encoding="utf-8")
    ind = str(tmp_path / "ind.csv")
    out = recur(
        "experiment",
        "score",
        "--indicators",
        ind,
        "--experiments",
        str(tmp_path / "exps.yaml"),
        "--json",
        tmp=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    scored = {r["id"]: r for r in json.loads(out.stdout)["results"]}
    assert scored["EXP-S"]["treated_series"] == "incidents/service=checkout"
    assert [o["kind"] for o in scored["EXP-S"]["overlaps"]] == ["nested slice"]
    plan = recur(
        "experiment",
        "plan",
        "--indicators",
        ind,
        "--indicator",
        "incidents",
        "--treated",
        "team=payments,service=checkout",
        "--weeks",
        "8",
        "--direction",
        "decrease",
        "--json",
        tmp=tmp_path,
    )
    assert plan.returncode == 0, plan.stderr
    planned = json.loads(plan.stdout)
    assert planned["treated_series"] == "incidents/service=checkout"
    assert {o["other_id"] for o in planned["overlaps"]} == {"EXP-S", "EXP-T"}
    listed = json.loads(recur("experiment", "list", "--indicators", ind, "--json", tmp=tmp_path).stdout)
    load = {r["slice"]: r for r in listed["load"]}
    assert load["team=payments"]["running"] == ["EXP-S", "EXP-T"] and load["service=checkout"]["running"] == [
        "EXP-S"
    ]
