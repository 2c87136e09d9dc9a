"""Start-up work that needs no artifact (no model trained here): one query embedder, loaded once by
ModelStore.prepare while a first start's champions are fetched, serves every pattern runtime built after it; a
failure to prepare it costs the start nothing (the build then says why)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

import serving.models as models
from ml.registry.names import FORECASTER_MODEL, PATTERNS_MODEL
from serving.models import ModelStore


class _Embedder:
    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def encode(self, texts: list[str]) -> list[list[float]]:
        self.calls.append(texts)
        return [[1.0] for _ in texts]


def test_one_query_embedder_is_loaded_once_and_shared_by_every_build(monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[tuple[str, _Embedder]] = []
    built: list[tuple[str | None, dict[str, Any]]] = []

    def query_embedder(runtime: str) -> _Embedder:
        made.append((runtime, _Embedder()))
        return made[-1][1]

    def open_runtime(root: Path, kind: str | None = None, **options: Any) -> object:
        built.append((kind, options))
        return object()

    imported: list[bool] = []
    monkeypatch.setattr(models, "query_embedder", query_embedder)
    monkeypatch.setattr(models, "open_runtime", open_runtime)
    monkeypatch.setattr(models, "import_pattern_code", lambda: imported.append(True))
    store = ModelStore("sqlite:///unused.db", query_runtime="onnx-int8")
    store.prepare()
    assert imported == [True] and [r for r, _ in made] == ["onnx-int8"]
    embedder = made[0][1]
    assert embedder.calls == [["warm up"]]  # loaded and run once before any artifact arrives
    for _ in range(2):  # a first load and a reload: the same embedder, not a second one
        store._build(Path("v"), PATTERNS_MODEL)
    store._build(Path("f"), FORECASTER_MODEL)
    assert len(made) == 1
    assert built == [
        ("patterns", {"embedder": embedder}),
        ("patterns", {"embedder": embedder}),
        ("forecaster", {}),  # the forecaster has no embedder
    ]
    # without a configured runtime: the runtime's default ("auto"), still one for all
    plain = ModelStore("sqlite:///unused.db")
    plain._build(Path("v"), PATTERNS_MODEL)
    plain._build(Path("v"), PATTERNS_MODEL)
    assert [r for r, _ in made] == ["onnx-int8", "auto"]


def test_a_query_embedder_that_cannot_load_does_not_stop_the_start(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(runtime: str) -> None:
        raise RuntimeError("no ONNX export and no torch\nsecond line")

    monkeypatch.setattr(models, "query_embedder", broken)
    monkeypatch.setattr(models, "import_pattern_code", lambda: None)
    store = ModelStore("sqlite:///unused.db", query_runtime="onnx")
    with caplog.at_level(logging.WARNING, logger="serving.models"):
        store.prepare()  # no exception: the build tries again and refuses the version, saying why
    assert "could not prepare the query embedder: RuntimeError: no ONNX export and no torch" in caplog.text
    assert "second line" not in caplog.text
    with pytest.raises(RuntimeError, match="no ONNX export"):
        store._build(Path("v"), PATTERNS_MODEL)


@pytest.mark.parametrize("load_models", [True, False])
def test_the_start_up_turns_collection_back_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, load_models: bool
) -> None:
    """`recur serve` stops the collector before its imports; the app's start-up turns it back on, models or not
    (here the registry has no champion: nothing to build)."""
    import asyncio
    import gc

    from serving.app import create_app
    from serving.settings import ServingSettings

    monkeypatch.setattr(ModelStore, "reload", lambda self, **_: {})
    settings = ServingSettings(
        mlflow_tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}", model_cache_dir=tmp_path
    )
    app = create_app(settings, load_models=load_models)

    async def start() -> bool:
        async with app.router.lifespan_context(app):
            return gc.isenabled()

    gc.disable()
    try:
        assert asyncio.run(start()) is True
    finally:
        gc.enable()
