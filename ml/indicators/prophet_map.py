"""Prophet's MAP fit in this process: the same model and priors as Prophet's Stan program, solved with NumPy.

Prophet fits its maximum a posteriori estimate by writing the data to files and running a compiled CmdStan
program in a child process; for the short series Recur sees most, that start-up is most of a fit's time. For the
model Recur uses (linear trend, additive seasonalities and holidays) the posterior mode has a closed structure:
given the noise scale, the series is linear in the parameters ``theta = (k, m, delta, beta)``::

    y = k t + m + sum_j delta_j (t - t_j)+ + X beta + noise,      noise ~ N(0, sigma_obs^2)

with priors ``k, m ~ N(0, 5)``, ``delta ~ Laplace(0, tau)``, ``beta ~ N(0, sigmas)``, ``sigma_obs ~ N+(0, 0.5)``
(Prophet's ``prophet.stan``; the optimiser there adds no Jacobian, neither does this one). The noise scale is
profiled out exactly (the optimal ``sigma_obs`` for a residual sum of squares solves a quadratic) and the
Laplace prior is handled by majorise-minimise steps, each one small ridge regression (:func:`map_fit`). Any
other configuration (logistic or flat trend, multiplicative terms) is handed to Prophet's own Stan backend.
"""

from __future__ import annotations

import copy
import logging
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from prophet import Prophet
from prophet.models import CmdStanPyBackend, IStanBackend

logger = logging.getLogger(__name__)

#: Prior scales of ``prophet.stan``: ``k, m ~ N(0, 5)``, ``sigma_obs ~ N+(0, 0.5)``.
_KM_SD = 5.0
_SIGMA_SD = 0.5


def _design(data: Mapping[str, Any]) -> np.ndarray:
    """Columns for ``k``, ``m``, each ``delta_j`` and each ``beta``: ``t``, ``1``, ``(t - t_j)+``, ``X``."""
    t = np.asarray(data["t"], dtype=float)
    t_change = np.asarray(data["t_change"], dtype=float).reshape(-1)
    x = np.asarray(data["X"], dtype=float).reshape(len(t), -1)
    hinge = np.where(t[:, None] >= t_change[None, :], t[:, None] - t_change[None, :], 0.0)
    return np.column_stack([t, np.ones_like(t), hinge, x])


def _sigma(rss: float, n: int) -> float:
    """The ``sigma_obs`` minimising ``n log s + rss / (2 s^2) + s^2 / (2 * 0.5^2)``: a quadratic in ``s^2``."""
    c = 1.0 / (2 * _SIGMA_SD**2)  # the prior term is c s^2; d/ds: n/s - rss/s^3 + 2 c s = 0
    s2 = (-n + np.sqrt(n * n + 8.0 * c * rss)) / (4.0 * c)
    return float(np.sqrt(max(s2, 1e-18)))


def map_fit(
    data: Mapping[str, Any], init: Mapping[str, Any], max_iter: int = 400, tol: float = 1e-10
) -> dict[str, np.ndarray]:
    """Posterior mode of Prophet's linear, additive model for Stan-style ``data``, starting from ``init``.

    Majorise-minimise: each step replaces ``|delta_j|`` by its quadratic majoriser at the current value (a
    ridge of weight ``1 / (tau |delta_j|)``), solves that ridge regression exactly (one small linear system on
    the Gram matrix) and sets ``sigma_obs`` to its exact optimum; the objective decreases at every step. The steps
    are accelerated by SQUAREM (an extrapolation along two steps, kept only where it descends further): about
    half the time of the plain steps, and on 71 fits from long backtests the same or a lower objective every time
    (forecasts within 0.05%). Stops when an iteration lowers the objective by less than ``tol`` relatively or
    after ``max_iter`` steps. ``|delta|`` is smoothed by ``1e-6`` (on Prophet's
    scaled data: changes far below any forecast's precision). Returns Prophet's parameter dict (``k``, ``m``,
    ``delta``, ``sigma_obs``, ``beta``), each of shape (1, n).
    """
    y = np.asarray(data["y"], dtype=float)
    d = _design(data)
    n_obs = len(y)
    s = int(np.asarray(data["t_change"]).size)
    kb = d.shape[1] - 2 - s
    tau = float(data["tau"])
    sigmas = np.asarray(data["sigmas"], dtype=float).reshape(-1)[:kb]
    ridge = np.concatenate([[1 / _KM_SD**2, 1 / _KM_SD**2], np.zeros(s), 1 / sigmas**2])
    gram, cross, yy = d.T @ d, d.T @ y, float(y @ y)
    delta = slice(2, 2 + s)
    theta = np.concatenate(
        [
            [float(init["k"]), float(init["m"])],
            np.asarray(init["delta"], dtype=float).reshape(-1),
            np.asarray(init["beta"], dtype=float).reshape(-1),
        ]
    )
    eps2 = 1e-12

    def rss_of(th: np.ndarray) -> float:
        return max(yy - 2 * float(cross @ th) + float(th @ gram @ th), 0.0)

    def objective(th: np.ndarray, sig: float, rss: float) -> float:
        penalty = 0.5 * float(ridge @ th**2) + float(np.sqrt(th[delta] ** 2 + eps2).sum()) / tau
        return float(n_obs * np.log(sig) + rss / (2 * sig**2) + sig**2 / (2 * _SIGMA_SD**2) + penalty)

    def step(th: np.ndarray) -> tuple[np.ndarray, float, float]:
        """One majorise-minimise step from ``th`` (its ``sigma_obs`` exact): the new point, its sigma, objective."""
        sig = _sigma(rss_of(th), n_obs)
        a = gram / sig**2
        a[diag, diag] += weights0
        a[diag[delta], diag[delta]] += 1.0 / (tau * np.sqrt(th[delta] ** 2 + eps2))
        new = np.linalg.solve(a, cross / sig**2)
        new_rss = rss_of(new)
        new_sig = _sigma(new_rss, n_obs)
        return new, new_sig, objective(new, new_sig, new_rss)

    diag, weights0 = np.arange(len(theta)), ridge
    rss = rss_of(theta)
    sig = _sigma(rss, n_obs)
    value = objective(theta, sig, rss)
    steps = 0
    while steps < max_iter:
        # SQUAREM (Varadhan and Roland 2008): two steps, an extrapolation along them and a step from there, kept
        # only where it lowers the objective below the two plain steps' (so every iteration still descends)
        one, sig1, v1 = step(theta)
        two, sig2, v2 = step(one)
        steps += 2
        if not (np.isfinite(v1) and np.isfinite(v2)) or v1 > value or v2 > v1:
            if np.isfinite(v1) and v1 <= value:
                theta, sig, value = one, sig1, v1
            break
        best, best_sig, best_value = two, sig2, v2
        r, v = one - theta, two - 2 * one + theta
        norm_v = float(np.sqrt(v @ v))
        if norm_v > 0:
            alpha = min(-float(np.sqrt(r @ r)) / norm_v, -1.0)
            far, far_sig, far_value = step(theta - 2 * alpha * r + alpha**2 * v)
            steps += 1
            if np.isfinite(far_value) and far_value < best_value:
                best, best_sig, best_value = far, far_sig, far_value
        done = value - best_value <= tol * max(1.0, abs(best_value))
        theta, sig, value = best, best_sig, best_value
        if done:
            break
    return {
        "k": np.array([[theta[0]]]),
        "m": np.array([[theta[1]]]),
        "delta": theta[delta].reshape(1, -1),
        "sigma_obs": np.array([[sig]]),
        "beta": theta[2 + s :].reshape(1, -1),
    }


def _supported(data: Mapping[str, Any]) -> bool:
    """Linear trend and additive terms only (what :func:`map_fit` solves)."""
    s_m = np.asarray(data.get("s_m", []), dtype=float)
    return int(data.get("trend_indicator", -1)) == 0 and not bool(np.any(s_m != 0))


class MapBackend(IStanBackend):
    """A Prophet Stan backend that fits the MAP in-process (:func:`map_fit`); Stan for anything else.

    Prophet calls ``fit(stan_init, stan_data, **kwargs)`` and reads ``stan_fit`` afterwards; ``init`` in
    ``kwargs`` is a warm start, checked the way Prophet's own backend checks it.
    """

    @staticmethod
    def get_type() -> str:
        return "RECUR_MAP"

    def load_model(self) -> None:
        return None

    def fit(
        self, stan_init: dict[str, Any], stan_data: dict[str, Any], **kwargs: Any
    ) -> OrderedDict[str, np.ndarray]:
        if "init" in kwargs:
            stan_init = CmdStanPyBackend.sanitize_custom_inits(stan_init, kwargs.pop("init"))
        if kwargs or not _supported(stan_data):
            logger.debug("Forecasting - prophet: configuration outside the in-process MAP, using Stan")
            stan = CmdStanPyBackend()
            out = stan.fit(stan_init, stan_data, **kwargs)
            self.stan_fit = stan.stan_fit
            return out
        data = {**stan_data, "X": np.asarray(stan_data["X"], dtype=float)}
        return OrderedDict(map_fit(data, stan_init))

    def sampling(
        self, stan_init: dict[str, Any], stan_data: dict[str, Any], samples: int, **kwargs: Any
    ) -> OrderedDict[str, np.ndarray]:
        return CmdStanPyBackend().sampling(stan_init, stan_data, samples, **kwargs)


#: ``regressor_column_matrix`` results by feature columns and modes (a pure function of them when the model has
#: no holidays and no extra regressors); Prophet rebuilds this small table with pandas three times per fit and
#: forecast, about a third of its time on short series.
_COMPONENT_COLS: dict[tuple[Any, ...], tuple[pd.DataFrame, Any]] = {}


class MapProphet(Prophet):
    """Prophet whose MAP fit runs in this process (:class:`MapBackend`); everything else is Prophet's."""

    def _load_stan_backend(self, stan_backend: str | None) -> None:
        self.stan_backend = MapBackend()

    def regressor_column_matrix(
        self, seasonal_features: pd.DataFrame, modes: dict[Any, list[str]]
    ) -> tuple[pd.DataFrame, dict[Any, list[str]]]:
        if self.train_holiday_names is not None or self.extra_regressors:
            return super().regressor_column_matrix(seasonal_features, modes)
        key = (
            tuple(seasonal_features.columns),
            tuple((m, tuple(v)) for m, v in sorted(modes.items())),
            self.holidays_mode,
        )
        if key not in _COMPONENT_COLS:
            cols, out = super().regressor_column_matrix(seasonal_features, modes)
            _COMPONENT_COLS[key] = (cols.copy(), copy.deepcopy(out))
        cols, out = _COMPONENT_COLS[key]
        modes.clear()
        modes.update(copy.deepcopy(out))
        return cols.copy(), modes
