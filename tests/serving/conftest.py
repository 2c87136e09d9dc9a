"""A real uvicorn process serving the trained `incident-patterns` champion (the `store` fixture)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.serving.server import Server


@pytest.fixture(scope="session")
def server(store: dict[str, object]) -> Iterator[Server]:
    srv = Server(store["env"], log_path=Path(store["root"]) / "server.log")  # type: ignore[arg-type]
    srv.start(ready_path="/readyz")
    yield srv
    srv.stop()
