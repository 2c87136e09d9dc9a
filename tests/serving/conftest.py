"""A real uvicorn process serving the trained champions (`store`, then `indicators_store` after a reload)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import SAMPLE
from tests.serving.server import Server


@pytest.fixture(scope="session")
def server(store: dict[str, object]) -> Iterator[Server]:
    srv = Server(store["env"], log_path=Path(store["root"]) / "server.log")  # type: ignore[arg-type]
    srv.start(ready_path="/readyz")
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def live(server: Server, indicators_store: dict, tmp_path_factory: pytest.TempPathFactory) -> Server:
    from training.report import write_report

    write_report(
        indicators_store["settings"],
        tmp_path_factory.mktemp("report"),
        incidents_paths=[SAMPLE / "incidents.jsonl"],
        experiments_paths=[SAMPLE / "experiments.yaml"],
    )
    r = httpx.post(server.url + "/v1/admin/reload", json={}, timeout=120)
    assert r.json()["models"]["indicator-forecaster"]["status"] in ("loaded", "unchanged")
    return server
