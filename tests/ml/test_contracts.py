"""One contract test over every swappable stage (scikit-learn's estimator contract, adapted).

Each entry of ``STAGES`` is a factory: how to make the stage, fit it on small known data, use it, and call it with
a bad input. Every stage must:

- satisfy its protocol and clone through ``to_dict``/``from_dict`` (a saved model records which stage it used);
- return itself from ``fit`` and learn only ``*_`` attributes: its parameters (``vars()`` without the trailing
  underscore names) are the same before and after ``fit``;
- refuse use before ``fit`` with :class:`NotFittedError`;
- answer a bad input with one :class:`RecurError` that names the field and the value.

To add a stage (reducer, clusterer, labeller, embedder...), append a :class:`StageCase` to ``STAGES``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pytest

from ml.errors import NotFittedError, RecurError
from ml.indicators.candidates import (
    AutoARIMA,
    AutoETS,
    AutoTheta,
    ForecastingCandidate,
    ProphetCandidate,
    SeasonalNaive,
    candidate_from_dict,
)
from ml.indicators.config import ForecastConfig
from ml.indicators.grid import to_grid
from ml.indicators.seasonality import _prepare, _Prepared


@dataclass(frozen=True)
class StageCase:
    """How to exercise one stage implementation."""

    id: str
    make: Callable[[], Any]  # a new, unfitted stage
    fit: Callable[[Any], Any]  # fit it on small known data; returns what fit returned
    use: Callable[[Any], Any]  # a call that needs a fitted stage
    from_dict: Callable[[dict[str, Any]], Any]  # rebuild an unfitted stage from ``to_dict()``
    bad_input: Callable[[Any], Any]  # a call on the fitted stage with one bad value
    bad_field: str  # the field the error must name
    bad_value: Any  # the value the error must carry
    protocol: type | None = None


# --------------------------------------------------------------------------------------------------------------
# Forecasting candidates
# --------------------------------------------------------------------------------------------------------------


def _window() -> _Prepared:
    rng = np.random.default_rng(3)
    ds = [str(d.date()) for d in pd.date_range("2024-01-01", periods=60, freq="W-MON")]
    y = (20 + np.cumsum(rng.normal(0, 1, 60)) * 0.3 + rng.normal(0, 1, 60)).round(2).tolist()
    grid = to_grid(ds, y)
    return _prepare(grid.y, grid.dates, grid.freq)


_WINDOW = _window()
_CONFIG = ForecastConfig(seed=0)


def _candidate(make: Callable[[], Any], id: str) -> StageCase:
    return StageCase(
        id=id,
        make=make,
        fit=lambda c: c.fit(_WINDOW, _CONFIG),
        use=lambda c: c.predict(4, 80),
        from_dict=candidate_from_dict,
        bad_input=lambda c: c.predict(0, 80),
        bad_field="horizon",
        bad_value=0,
        protocol=ForecastingCandidate,
    )


STAGES: list[StageCase] = [
    _candidate(SeasonalNaive, "seasonal_naive"),
    _candidate(AutoETS, "auto_ets"),
    _candidate(AutoTheta, "auto_theta"),
    _candidate(AutoARIMA, "auto_arima"),
    _candidate(ProphetCandidate, "prophet"),
    # a seed of its own, unlike the config's: fit must not overwrite it
    _candidate(lambda: ProphetCandidate(seed=7), "prophet-seeded"),
]


def params(stage: Any) -> dict[str, Any]:
    """The parameters of a stage: its attributes except the learned ``*_`` ones (deep copies)."""
    return copy.deepcopy({k: v for k, v in vars(stage).items() if not k.endswith("_")})


@pytest.fixture(params=STAGES, ids=lambda c: c.id)
def case(request: pytest.FixtureRequest) -> StageCase:
    return request.param


def test_satisfies_its_protocol(case: StageCase) -> None:
    if case.protocol is None:
        pytest.skip("no protocol for this stage")
    assert isinstance(case.make(), case.protocol)


def test_clones_through_to_dict_and_from_dict(case: StageCase) -> None:
    stage = case.make()
    data = stage.to_dict()
    clone = case.from_dict(data)
    assert type(clone) is type(stage)
    assert params(clone) == params(stage)
    assert clone.to_dict() == data
    # a fitted stage records the same parameters as the unfitted one
    assert case.fit(case.make()).to_dict() == data


def test_fit_returns_self_and_does_not_write_parameters(case: StageCase) -> None:
    stage = case.make()
    before = params(stage)
    assert case.fit(stage) is stage
    assert params(stage) == before
    learned = set(vars(stage)) - set(before)
    assert learned and all(k.endswith("_") for k in learned)


def test_use_before_fit_is_a_not_fitted_error(case: StageCase) -> None:
    with pytest.raises(NotFittedError):
        case.use(case.make())


def test_bad_input_is_one_clear_error_naming_the_value(case: StageCase) -> None:
    stage = case.fit(case.make())
    with pytest.raises(RecurError) as exc:
        case.bad_input(stage)
    assert exc.value.field == case.bad_field
    assert exc.value.value == case.bad_value
    assert repr(case.bad_value) in exc.value.message or str(case.bad_value) in exc.value.message
    assert "\n" not in exc.value.message


def test_clone_fits_to_the_same_forecast(case: StageCase) -> None:
    stage = case.fit(case.make())
    clone = case.fit(case.from_dict(stage.to_dict()))
    a, b = case.use(stage), case.use(clone)
    for x, y in zip(vars(a).values(), vars(b).values(), strict=True):
        assert np.allclose(x, y)


def test_unknown_candidate_in_a_saved_entry_names_it() -> None:
    with pytest.raises(RecurError) as exc:
        candidate_from_dict({"name": "lstm", "params": {}})
    assert exc.value.field == "candidates" and exc.value.value == "lstm" and "'lstm'" in exc.value.message
    with pytest.raises(RecurError) as exc:
        candidate_from_dict({"name": "prophet", "params": {"sed": 1}})
    assert exc.value.field == "params" and exc.value.value == {"sed": 1}
