"""The runtime that embeds pasted texts in the API (RECUR_QUERY_RUNTIME): int8 by default, validated at start-up,
and a missing export never leaves a query unanswered."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ml.errors import InputError
from ml.registry.runtimes import PatternsRuntime
from serving.settings import SettingsError, load_serving_settings


def test_a_bad_query_runtime_names_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECUR_QUERY_RUNTIME", "tensorrt")
    with pytest.raises(SettingsError) as exc:
        load_serving_settings()
    assert "RECUR_QUERY_RUNTIME" in str(exc.value) and "\n" not in str(exc.value)
    monkeypatch.setenv("RECUR_QUERY_RUNTIME", "")  # empty means unset: the default
    assert load_serving_settings().query_runtime == "onnx-int8"


def _patterns_root(store: dict[str, object]) -> Path:
    from ml.registry.artifacts import fetch_version
    from ml.registry.names import PATTERNS_MODEL
    from serving.models import ModelStore

    uri = str(store["env"]["RECUR_MLFLOW_TRACKING_URI"])  # type: ignore[index]
    champ = ModelStore(uri)._champion(PATTERNS_MODEL)
    assert champ is not None
    return Path(fetch_version(uri, PATTERNS_MODEL, champ[0], dest=Path(str(store["root"])) / "query-runtime"))


@pytest.mark.slow
def test_int8_queries_agree_with_fp32_and_a_missing_export_falls_back(
    store: dict[str, object], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    root = _patterns_root(store)
    text = "checkout returns 503 after the payment config push; connection pool exhausted"
    fp32, int8 = PatternsRuntime(root), PatternsRuntime(root)
    fp32.configure_embedding("onnx")
    int8.configure_embedding("onnx-int8")
    assert (fp32.embedder.backend, int8.embedder.backend) == ("onnx", "onnx-int8")
    a, b = fp32.embed(text), int8.embed(text)
    assert float(a @ b / np.linalg.norm(a) / np.linalg.norm(b)) >= 0.99
    with pytest.raises(InputError) as exc:
        fp32.configure_embedding("tensorrt")
    assert exc.value.field == "runtime"
    # no ONNX export where the server looks: the query runtime falls back to "auto" instead of failing queries
    import ml.text.onnx_runtime as onnx_runtime

    monkeypatch.setattr(onnx_runtime, "default_onnx_dir", lambda: tmp_path / "no-export")
    bare = PatternsRuntime(root)
    bare.configure_embedding("onnx-int8")
    assert bare.embedder.backend == "torch" and bare.embed(text).shape == a.shape
