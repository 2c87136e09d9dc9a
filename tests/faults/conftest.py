"""Shared pieces of the fault tests: small data, `recur` as a real process, stores and servers on 127.0.0.1."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT, SAMPLE

N_INCIDENTS = 60


def recur(
    env: Mapping[str, str], *args: str, timeout: float = 300, log: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the `recur` CLI as a separate process with `env` (plus the parent's non-Recur, non-MLflow variables)."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "RECUR_"))}
    result = subprocess.run(
        [sys.executable, "-m", "training.cli", *args],
        cwd=ROOT,
        env={**inherited, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if log is not None:
        log.write_text(result.stdout + result.stderr, encoding="utf-8")
    return result


def popen_recur(env: Mapping[str, str], *args: str, log: Path) -> subprocess.Popen[bytes]:
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "RECUR_"))}
    return subprocess.Popen(
        [sys.executable, "-m", "training.cli", *args],
        cwd=ROOT,
        env={**inherited, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", **env},
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )


def wait_for(check: Callable[[], bool], timeout: float, what: str, every: float = 0.2) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if check():
                return
        except (httpx.HTTPError, OSError):
            pass
        time.sleep(every)
    raise TimeoutError(f"{what} not seen within {timeout:.0f}s")


@pytest.fixture(scope="session")
def fault_data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """60 sample incidents, and an embedding cache shared by every fault test (RECUR_TEST_CACHE when set)."""
    root = tmp_path_factory.mktemp("fault-data")
    incidents = root / "incidents.jsonl"
    lines = (SAMPLE / "incidents.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
    incidents.write_text("".join(lines[:N_INCIDENTS]), encoding="utf-8")
    cache = Path(os.environ.get("RECUR_TEST_CACHE", root / "cache"))
    return {"incidents": incidents, "cache": cache}


def sqlite_env(root: Path, cache: Path) -> dict[str, str]:
    root.mkdir(parents=True, exist_ok=True)
    return {
        "RECUR_MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}",
        "RECUR_MLFLOW_ARTIFACT_ROOT": str(root / "artifacts"),
        "RECUR_CACHE_DIR": str(cache),
    }
