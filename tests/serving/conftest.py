"""A real MLflow store with a trained `incident-patterns` champion, and a real uvicorn process serving it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from ml.settings import Settings
from tests.conftest import SAMPLE
from tests.serving.server import Server


@pytest.fixture(scope="session")
def store(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """Train the pattern model on the sample into a fresh SQLite store (once per session)."""
    from training.patterns import train_patterns

    root = tmp_path_factory.mktemp("store")
    env = {
        "RECUR_MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}",
        "RECUR_MLFLOW_ARTIFACT_ROOT": str(root / "artifacts"),
        "RECUR_CACHE_DIR": str(Path(os.environ.get("RECUR_TEST_CACHE", root / "cache"))),
    }
    settings = Settings(
        mlflow_tracking_uri=env["RECUR_MLFLOW_TRACKING_URI"],
        mlflow_artifact_root=Path(env["RECUR_MLFLOW_ARTIFACT_ROOT"]),
        cache_dir=Path(env["RECUR_CACHE_DIR"]),
    )
    result = train_patterns(settings, [SAMPLE / "incidents.jsonl"], promote=True, show_progress=False)
    return {"env": env, "settings": settings, "result": result, "root": root}


@pytest.fixture(scope="session")
def server(store: dict[str, object]) -> Iterator[Server]:
    srv = Server(store["env"], log_path=Path(store["root"]) / "server.log")  # type: ignore[arg-type]
    srv.start(ready_path="/readyz")
    yield srv
    srv.stop()
