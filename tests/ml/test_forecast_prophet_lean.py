"""Prophet in NumPy (ml.indicators.prophet_lean): the backtest's fits and every forecast equal Prophet's own."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ml.errors import RecurError
from ml.indicators import backtest
from ml.indicators.candidates import ProphetCandidate, _seeded, make_candidate
from ml.indicators.config import ForecastConfig
from ml.indicators.grid import to_grid
from ml.indicators.prophet_lean import LeanProphet
from ml.indicators.seasonality import _prepare


def _prep(n: int, freq: str, seed: int, gaps: bool = False) -> object:
    rng = np.random.default_rng(seed)
    dates = pd.date_range("2015-01-05", periods=n, freq=freq)
    t = np.arange(n, dtype=float)
    period = 52.18 if freq.startswith("W") else 7.0
    y = 100 + 0.2 * t - 0.3 * np.maximum(t - 0.5 * n, 0) + 8 * np.sin(2 * np.pi * t / period)
    y = (y + rng.normal(0, 2, n)).round(2)
    keep = np.ones(n, dtype=bool)
    if gaps:
        keep[rng.choice(np.arange(5, n - 5), size=6, replace=False)] = False
    grid = to_grid([str(d.date()) for d in dates[keep]], y[keep].tolist())
    return _prepare(grid.y, grid.dates, grid.freq)


@pytest.mark.parametrize(
    ("n", "freq", "gaps", "warm"),
    [
        (313, "W-MON", False, False),
        (313, "W-MON", True, True),
        (80, "W-MON", False, False),
        (120, "D", True, True),
    ],
)
def test_lean_prophet_gives_prophets_forecast_and_interval(n: int, freq: str, gaps: bool, warm: bool) -> None:
    prep = _prep(n, freq, seed=n, gaps=gaps)
    cfg = ForecastConfig(seed=3)
    form = make_candidate("prophet").fit(prep, cfg).structure() if warm else {}  # type: ignore[arg-type]
    full = make_candidate("prophet", **form).fit(prep, cfg)  # type: ignore[arg-type]
    lean = make_candidate("prophet", lean=True, **form).fit(prep, cfg)  # type: ignore[arg-type]
    assert isinstance(lean.model_, LeanProphet)  # type: ignore[attr-defined]
    loaded = ProphetCandidate().load_state(prep, full.state())  # type: ignore[arg-type]
    for level in (80, 95):
        # Prophet's own predict (pandas), as the candidate called it before prophet_lean
        model = full.model_  # type: ignore[attr-defined]
        model.interval_width = level / 100
        with _seeded(3):
            ref = model.predict(full._future(13))  # type: ignore[attr-defined]
        scale = float(np.abs(ref["yhat"]).mean())
        for cand in (full, lean, loaded):
            got = cand.predict(13, level)
            np.testing.assert_allclose(got.mean, ref["yhat"], atol=1e-9 * scale)
            np.testing.assert_allclose(got.lower, ref["yhat_lower"], atol=1e-9 * scale)
            np.testing.assert_allclose(got.upper, ref["yhat_upper"], atol=1e-9 * scale)
    a_init, b_init = full.structure()["init"], lean.structure()["init"]
    for key in ("k", "m", "sigma_obs", "delta", "beta"):
        np.testing.assert_allclose(b_init[key], a_init[key], rtol=1e-9, atol=1e-12)


def test_lean_prophet_is_only_for_the_backtest() -> None:
    prep = _prep(200, "W-MON", seed=1)
    lean = make_candidate("prophet", lean=True).fit(prep, ForecastConfig())  # type: ignore[arg-type]
    with pytest.raises(RecurError):
        lean.state()
    with pytest.raises(RecurError):
        lean.simulate(13, 10, 0)
    holidays = ForecastConfig(holidays=({"holiday": "x", "ds": "2016-01-04"},))
    assert not isinstance(
        make_candidate("prophet", lean=True).fit(prep, holidays).model_,  # type: ignore[arg-type, attr-defined]
        LeanProphet,
    )  # holidays: Prophet itself
    assert backtest.BACKTEST_PARAMS["prophet"] == {"lean": True}
    assert "lean" not in ProphetCandidate(lean=True).get_params()
