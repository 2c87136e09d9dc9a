"""AutoARIMA's stepwise CSS search with a faster optimiser (ml.indicators.arima_search) against statsforecast's."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from ml.errors import InputError
from ml.indicators import arima_search
from ml.indicators.candidates import ARIMA_APPROXIMATION_ABOVE, make_candidate
from ml.indicators.config import ForecastConfig
from ml.indicators.grid import to_grid
from ml.indicators.seasonality import _prepare


def arma(
    n: int, ar: list[float], ma: list[float], seed: int, drift: float = 0.0, integrate: bool = False
) -> np.ndarray:
    rng = np.random.default_rng(seed)
    e = rng.normal(0, 1, n + 100)
    x = np.zeros(n + 100)
    for t in range(len(x)):
        x[t] = e[t] + sum(a * x[t - i - 1] for i, a in enumerate(ar) if t > i)
        x[t] += sum(b * e[t - j - 1] for j, b in enumerate(ma) if t > j)
    x = x[100:]
    out: np.ndarray = 50 + (np.cumsum(x + drift) if integrate else x)
    return out


@pytest.mark.parametrize(
    ("p", "d", "q", "constant"),
    [(0, 1, 1, True), (1, 1, 1, True), (2, 1, 2, False), (2, 0, 1, True), (3, 1, 0, True)],
)
def test_css_fit_reaches_statsforecasts_css_criterion(p: int, d: int, q: int, constant: bool) -> None:
    """The CSS objective and AICc are statsforecast's: the same value for the same model (offset 0)."""
    from statsforecast.arima import myarima

    x = arma(300, [0.5], [0.3], seed=p + 10 * q, drift=0.05, integrate=d == 1)
    ours = arima_search.css_fit(x, p, d, q, constant)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = myarima(x, order=(p, d, q), constant=constant, ic="aicc", approximation=True)
    assert ours.aicc == pytest.approx(theirs["aicc"], abs=1e-3)


def test_css_gradient_matches_finite_differences() -> None:
    x = np.diff(arma(200, [0.6, -0.2], [0.4], seed=3, integrate=True))
    dreg = np.ones((len(x), 1))
    par = np.array([0.3, -0.1, 0.2, 0.05])
    e, jac = arima_search.css_residuals(par, x, dreg, 2, 1, jac=True)
    assert jac is not None
    for k in range(len(par)):
        step = np.zeros_like(par)
        step[k] = 1e-6
        up, _ = arima_search.css_residuals(par + step, x, dreg, 2, 1)
        down, _ = arima_search.css_residuals(par - step, x, dreg, 2, 1)
        np.testing.assert_allclose(jac[:, k], (up - down) / 2e-6, atol=1e-5)
    assert len(e) == len(x) - 2


@pytest.mark.parametrize(
    ("ar", "ma", "integrate", "expected"),
    [([0.7, -0.3], [], False, (2, 0, 0)), ([], [0.6], True, (0, 1, 1)), ([0.5], [], True, (1, 1, 0))],
)
def test_search_finds_the_simulated_orders(
    ar: list[float], ma: list[float], integrate: bool, expected: tuple[int, int, int]
) -> None:
    x = arma(400, ar, ma, seed=7, integrate=integrate)
    model = arima_search.fit_auto_arima(x)
    p, q, _sp, _sq, _m, d, _sd = (int(v) for v in model.model_["arma"])
    assert (p, d, q) == expected
    fc = model.predict(h=13, level=[80])
    assert np.isfinite(fc["mean"]).all() and (fc["lo-80"] < fc["hi-80"]).all()


def _prep(n: int) -> object:
    ds = [str(d.date()) for d in pd.date_range("2000-01-03", periods=n, freq="W-MON")]
    y = arma(n, [0.6], [0.3], seed=1, drift=0.1, integrate=True)
    grid = to_grid(ds, y.round(3).tolist())
    return _prepare(grid.y, grid.dates, grid.freq)


def test_long_windows_use_the_fast_search_and_short_ones_statsforecasts() -> None:
    from statsforecast.models import ARIMA, AutoARIMA

    long_prep, short_prep = _prep(ARIMA_APPROXIMATION_ABOVE + 150), _prep(ARIMA_APPROXIMATION_ABOVE)
    fast = make_candidate("auto_arima").fit(long_prep, ForecastConfig())  # type: ignore[arg-type]
    assert type(fast.model_) is ARIMA  # type: ignore[attr-defined]
    short = make_candidate("auto_arima").fit(short_prep, ForecastConfig())  # type: ignore[arg-type]
    assert type(short.model_) is AutoARIMA  # type: ignore[attr-defined]
    own = make_candidate("auto_arima").fit(long_prep, ForecastConfig(arima_search="statsforecast"))  # type: ignore[arg-type]
    assert type(own.model_) is AutoARIMA  # type: ignore[attr-defined]
    # the fast fit's form refits to the same forecast, as the backtest's reuse needs
    form = fast.structure()
    again = make_candidate("auto_arima", **form).fit(long_prep, ForecastConfig())  # type: ignore[arg-type]
    np.testing.assert_allclose(again.predict(13, 80).mean, fast.predict(13, 80).mean, rtol=1e-6)


def test_arima_search_setting_is_validated() -> None:
    with pytest.raises(InputError) as exc:
        ForecastConfig.from_dict({"arima_search": "exhaustive"})
    assert exc.value.field == "arima_search"
