"""The CLI's settings (training/settings.py): empty means unset; one default store for training and serving."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from training.settings import PROJECT_ROOT, load_training_settings


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for k in list(os.environ):
        if k.startswith(("RECUR_", "MLFLOW_")):
            monkeypatch.delenv(k)
    monkeypatch.chdir(tmp_path)  # no project .env


def test_empty_values_mean_unset(monkeypatch: pytest.MonkeyPatch, clean_env: None) -> None:
    for name in ("DATA_DIR", "INCIDENTS_PATH", "CACHE_DIR", "MLFLOW_TRACKING_URI", "MLFLOW_ARTIFACT_ROOT"):
        monkeypatch.setenv(f"RECUR_{name}", "")
    s = load_training_settings()
    assert s.data_dir == PROJECT_ROOT / "data" / "sample" and s.incidents_path is None
    assert s.resolve("incidents") == PROJECT_ROOT / "data" / "sample" / "incidents.jsonl"
    assert s.tracking_uri == f"sqlite:///{PROJECT_ROOT / 'mlruns' / 'mlflow.db'}"


def test_tracking_uri_precedence(monkeypatch: pytest.MonkeyPatch, clean_env: None) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:////tmp/mlflow-own.db")
    assert load_training_settings().tracking_uri == "sqlite:////tmp/mlflow-own.db"
    monkeypatch.setenv("RECUR_MLFLOW_TRACKING_URI", "sqlite:////tmp/recur.db")
    assert load_training_settings().tracking_uri == "sqlite:////tmp/recur.db"


def test_serving_and_training_share_the_default_store(clean_env: None) -> None:
    from serving.settings import load_serving_settings

    assert load_serving_settings().tracking_uri == load_training_settings().tracking_uri
