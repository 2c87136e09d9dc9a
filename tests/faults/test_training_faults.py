"""Two trainings at once against one fresh embedded SQLite store: both runs are recorded and the champion alias
points to a complete version."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from ml.registry.artifacts import check_artifacts, fetch_version
from ml.registry.names import CHAMPION, PATTERNS_MODEL
from tests.faults.conftest import popen_recur, sqlite_env

pytestmark = pytest.mark.slow


def test_two_trainings_at_once_are_both_recorded_and_the_champion_is_complete(
    fault_data: dict[str, Path], tmp_path: Path
) -> None:
    env = sqlite_env(tmp_path / "store", fault_data["cache"])  # a store neither process has created yet
    args = ("train", "patterns", "--incidents", str(fault_data["incidents"]), "--promote", "--json")
    procs = [popen_recur(env, *args, log=tmp_path / f"train{i}.log") for i in range(2)]
    for p in procs:
        p.wait(600)
    logs = [(tmp_path / f"train{i}.log").read_text(encoding="utf-8") for i in range(2)]
    assert [p.returncode for p in procs] == [0, 0], [log[-2000:] for log in logs]
    uri = env["RECUR_MLFLOW_TRACKING_URI"]
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    exp = client.get_experiment_by_name("incident-patterns")
    runs = client.search_runs([exp.experiment_id])
    assert len(runs) == 2 and {r.info.status for r in runs} == {"FINISHED"}
    versions = client.search_model_versions(f"name='{PATTERNS_MODEL}'")
    assert sorted(int(v.version) for v in versions) == [1, 2]
    assert {v.run_id for v in versions} == {r.info.run_id for r in runs}
    champion = str(client.get_model_version_by_alias(PATTERNS_MODEL, CHAMPION).version)
    folder = fetch_version(uri, PATTERNS_MODEL, champion, tmp_path / "champion")
    assert check_artifacts(folder, "patterns") == "patterns"  # every file present, of its size and hash
    shutil.rmtree(tmp_path / "champion", ignore_errors=True)
