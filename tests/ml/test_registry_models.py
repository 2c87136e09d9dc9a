"""The registered models as MLflow serves them: the pyfunc wrappers and the runtimes' DataFrame interface.

tests/ml/test_registry_artifacts.py covers building runtimes from artifact folders (and refusing bad ones);
tests/serving/test_routes_fast.py covers the runtimes behind every API route. Here: what ``mlflow.pyfunc``
callers get, in memory (the runtimes of test_routes_fast, no MLflow store, no MiniLM).
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from ml.errors import InputError, NotFoundError
from ml.registry import runtimes
from tests.serving.test_routes_fast import CAUSES, SERIES, MemoryPatternsRuntime, _forecaster


@pytest.fixture(scope="module")
def patterns() -> MemoryPatternsRuntime:
    return MemoryPatternsRuntime()


@pytest.fixture(scope="module")
def forecaster(tmp_path_factory: pytest.TempPathFactory) -> runtimes.ForecasterRuntime:
    return _forecaster(tmp_path_factory.mktemp("forecaster") / "model")


def test_patterns_pyfunc_answers_one_row_per_text(patterns: MemoryPatternsRuntime) -> None:
    model = runtimes.PatternsPyfunc()
    model.runtime = patterns
    frame = pd.DataFrame({"text": [CAUSES[1][1], CAUSES[2][1], "zzz qqq"]})
    out = model.predict(None, frame, params={"k": 2})
    assert list(out.columns) == ["pattern_id", "pattern_name", "confidence", "neighbours"]
    assert out["pattern_id"].tolist() == [1, 2, -1]
    assert out["pattern_name"].tolist() == ["Disk full", "Connection pool exhaustion", "unclustered"]
    neighbours = [json.loads(n) for n in out["neighbours"]]
    assert [len(n) for n in neighbours[:2]] == [2, 2]
    assert all(patterns.assignments[i] == 1 for i in neighbours[0])
    assert all(patterns.assignments[i] == 2 for i in neighbours[1])


def test_patterns_pyfunc_input_needs_a_text_column(patterns: MemoryPatternsRuntime) -> None:
    with pytest.raises(InputError) as exc:
        patterns.predict_frame(pd.DataFrame({"query": ["disk full"]}))
    assert exc.value.field == "text"


def test_forecaster_pyfunc_returns_the_forecast_rows(forecaster: runtimes.ForecasterRuntime) -> None:
    model = runtimes.ForecasterPyfunc()
    model.load_context(SimpleNamespace(artifacts={"model_dir": str(forecaster.root)}))
    out = model.predict(None, pd.DataFrame({"series": [SERIES[0], SERIES[1]], "horizon": [3, 2]}))
    assert list(out.columns) == ["series", "model", "ds", "yhat", "yhat_lower", "yhat_upper"]
    assert out.groupby("series").size().to_dict() == {SERIES[0]: 3, SERIES[1]: 2}
    assert (out["model"] == "seasonal_naive").all()
    assert (out["yhat_lower"] <= out["yhat"]).all() and (out["yhat"] <= out["yhat_upper"]).all()
    direct = forecaster.forecast(SERIES[0], 3)["points"]
    assert out[out["series"] == SERIES[0]]["yhat"].tolist() == [p["yhat"] for p in direct]


def test_forecaster_pyfunc_refuses_bad_input(forecaster: runtimes.ForecasterRuntime) -> None:
    with pytest.raises(InputError) as exc:
        forecaster.predict_frame(pd.DataFrame({"name": [SERIES[0]]}))
    assert exc.value.field == "series"
    with pytest.raises(NotFoundError):
        forecaster.predict_frame(pd.DataFrame({"series": ["no-such-series"]}))


def test_runtime_folder_is_what_open_runtime_builds(forecaster: runtimes.ForecasterRuntime) -> None:
    again = runtimes.open_runtime(Path(forecaster.root), "forecaster")
    assert isinstance(again, runtimes.ForecasterRuntime)
    assert again.series() == forecaster.series()
