"""AutoARIMA's stepwise order search on long training windows, with a fast conditional-sum-of-squares fit.

On windows over :data:`~ml.indicators.candidates.ARIMA_APPROXIMATION_ABOVE` points statsforecast's AutoARIMA (like
R's ``auto.arima``) ranks the orders of its stepwise search by the conditional sum of squares (CSS) and fits the
best one by exact maximum likelihood. Its CSS fits run SciPy's BFGS with numerical gradients, whose Python overhead
is about 95% of the search (the sum of squares itself is a C loop): on a 313-week window the search took about
100 ms per series, most of Recur's time on long histories. This module runs the same search with the same CSS
objective, each fit a Levenberg-Marquardt solve on the residual vector with its exact Jacobian (:func:`css_fit`;
the ARMA filter and its derivatives are ``scipy.signal.lfilter`` calls), then hands the best orders to
statsforecast's exact ``ARIMA`` fit, in the ranked order, until one passes the same root checks: about 29 ms
against 108 ms per 313-week window. Both optimisers start from the same point but can stop at different local
optima of the CSS surface, so about one window in eight ends with other orders than statsforecast's (on 160
M4-like long series the selection's held-out MASE moved from 1.3446 to 1.3455, within noise).

Only the non-seasonal case is covered (weekly data, whose yearly season is removed before the models, and daily data
without a weekly season); seasonal orders keep statsforecast's own search.

What follows statsforecast 2.x's ``auto_arima_f`` (``stepwise=True``, ``approximation=True``, ``ic="aicc"``):
the number of differences by its KPSS rule (``ndiffs``); a constant (mean for ``d = 0``, drift for ``d = 1``) where
allowed; the start models (2, d, 2), (0, d, 0), (1, d, 0), (0, d, 1) and (0, d, 0) without the constant; then
single steps of p, q or both and the constant toggled while the criterion improves, ``p, q <= min(5, n // 3)``,
at most 94 models; a model whose AR or MA roots are within 1.01 of the unit circle is refused. The criterion's
additive offset (the same for every model) is left out: the ranking is unchanged.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import signal

logger = logging.getLogger(__name__)

#: Largest AR and MA orders searched (statsforecast's and R's defaults), and the model budget of the search.
MAX_ORDER = 5
MAX_MODELS = 94
#: Roots closer than this to the unit circle make a model inadmissible (R's ``auto.arima`` rule).
MIN_ROOT = 1.01
#: Iteration limit of each CSS fit (statsforecast's BFGS limit).
MAX_ITER = 100
_ONE = np.ones(1)


@dataclass(frozen=True)
class OrderFit:
    """One searched model: orders, whether it has a constant (mean or drift) and its CSS AICc (inf: refused)."""

    p: int
    d: int
    q: int
    constant: bool
    aicc: float


def _regressors(n: int, d: int, constant: bool) -> np.ndarray:
    """The constant's column: a mean (``d = 0``), a drift ``1..n`` (``d = 1``), none otherwise."""
    if not constant or d > 1:
        return np.zeros((n, 0))
    return np.ones((n, 1)) if d == 0 else np.arange(1.0, n + 1.0).reshape(-1, 1)


def _roots_ok(ar: np.ndarray, ma: np.ndarray) -> bool:
    """AR polynomial ``1 - sum ar_i z^i`` and MA ``1 + sum ma_j z^j``: every root at least ``MIN_ROOT`` away."""
    for coefs in (np.r_[1.0, -ar], np.r_[1.0, ma]):
        nz = np.flatnonzero(np.abs(coefs[1:]) > 1e-8)
        if len(nz):
            roots = np.polynomial.polynomial.polyroots(coefs[: nz[-1] + 2])
            if roots.size and float(np.min(np.abs(roots))) < MIN_ROOT:
                return False
    return True


def css_residuals(
    par: np.ndarray, dx: np.ndarray, dreg: np.ndarray, p: int, q: int, jac: bool = False
) -> tuple[np.ndarray, np.ndarray | None]:
    """CSS residuals of ``ARIMA(p, d, q)`` on the differenced series ``dx`` (regressors ``dreg`` differenced alike),
    and with ``jac`` their derivatives by the parameters ``(phi, theta, beta)`` (one column each).

    ``e_t = w_t - sum phi_i w_{t-i} - sum theta_j e_{t-j}`` for ``t >= p``, with ``w = dx - dreg @ beta`` and the
    residuals before ``p`` taken as zero: statsforecast's (and R's) ``ARIMA_CSS``. Every derivative is the same
    MA filter applied to a lagged input (``-w_{t-i}``, ``-e_{t-j}``, the AR-filtered regressors).
    """
    phi, theta, beta = par[:p], par[p : p + q], par[p + q :]
    w = dx - dreg @ beta if len(beta) else dx
    m = len(w) - p
    u = w[p:].copy()
    for i in range(p):
        u -= phi[i] * w[p - i - 1 : p - i - 1 + m]
    ma = np.empty(q + 1)
    ma[0], ma[1:] = 1.0, theta
    e: np.ndarray = signal.lfilter(_ONE, ma, u) if q else u
    if not jac:
        return e, None
    raw = np.empty((m, p + q + len(beta)))
    for i in range(p):
        raw[:, i] = w[p - i - 1 : p - i - 1 + m]
    for j in range(q):  # d e / d theta_j is the filtered e lagged j + 1 steps (filters commute with lags)
        raw[: j + 1, p + j] = 0.0
        raw[j + 1 :, p + j] = e[: m - j - 1]
    if len(beta):
        r = dreg[p:].copy()
        for i in range(p):
            r -= phi[i] * dreg[p - i - 1 : p - i - 1 + m]
        raw[:, p + q :] = r
    jacobian: np.ndarray = -signal.lfilter(_ONE, ma, raw, axis=0) if q else -raw
    return e, jacobian


def _least_squares(
    fun: Callable[[np.ndarray, bool], tuple[np.ndarray, np.ndarray | None]], x0: np.ndarray
) -> np.ndarray:
    """Levenberg-Marquardt on a residual vector with its exact Jacobian (``fun(par, jac)``), from ``x0``.

    Steps solve ``(J'J + lam diag(J'J)) s = -J'e``; a step that lowers the sum of squares is taken and ``lam``
    shrinks, otherwise ``lam`` grows; stops when the sum of squares falls by less than ``1e-10`` relatively.
    """
    par = x0
    e, jac = fun(par, True)
    ss = float(e @ e)
    lam = 1e-3
    for _ in range(MAX_ITER):
        if jac is None or not math.isfinite(ss):
            break
        grad, hess = jac.T @ e, jac.T @ jac
        scale = np.maximum(np.diag(hess), 1e-12)
        try:
            step = np.linalg.solve(hess + lam * np.diag(scale), -grad)
        except np.linalg.LinAlgError:
            lam *= 10.0
            continue
        trial = par + step
        e_new, _ = fun(trial, False)
        ss_new = float(e_new @ e_new)
        if math.isfinite(ss_new) and ss_new < ss:
            done = ss - ss_new <= 1e-10 * ss
            par, ss = trial, ss_new
            lam = max(lam / 10.0, 1e-12)
            if done:
                break
            e, jac = fun(par, True)
        else:
            lam *= 10.0
            if lam > 1e10:
                break
    return par


def css_fit(x: np.ndarray, p: int, d: int, q: int, constant: bool) -> OrderFit:
    """Fit ``ARIMA(p, d, q)`` (with a mean or drift when ``constant``) by CSS; its AICc, inf when inadmissible.

    Minimises statsforecast's objective (the mean squared residual) from statsforecast's start (ARMA coefficients
    zero, the constant by least squares on the differenced series) by Levenberg-Marquardt with the exact Jacobian
    (:func:`_least_squares`) where statsforecast runs BFGS with finite differences.
    """
    n = len(x)
    dx = np.diff(x, d) if d else x
    dreg = _regressors(n, d, constant)
    dreg = np.diff(dreg, d, axis=0) if d else dreg
    k = dreg.shape[1]
    beta0 = np.linalg.lstsq(dreg, dx, rcond=None)[0] if k else np.zeros(0)
    x0 = np.r_[np.zeros(p + q), beta0]
    npar = p + q + k
    if len(dx) - p <= npar + 2:
        return OrderFit(p, d, q, constant, math.inf)

    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            par = x0
            if p + q:
                par = _least_squares(lambda v, j: css_residuals(v, dx, dreg, p, q, jac=j), x0)
            e, _ = css_residuals(par, dx, dreg, p, q)
    except (ValueError, np.linalg.LinAlgError, FloatingPointError):
        return OrderFit(p, d, q, constant, math.inf)
    sigma2 = float(np.mean(e**2))
    if not (math.isfinite(sigma2) and sigma2 > 0) or not _roots_ok(par[:p], par[p : p + q]):
        return OrderFit(p, d, q, constant, math.inf)
    nstar = n - d
    m = npar + 1  # statsforecast counts sigma^2 as a parameter
    aic = nstar * math.log(sigma2) + 2 * m
    aicc = aic + 2 * m * (m + 1) / (nstar - m - 1) if nstar - m - 1 != 0 else math.inf
    return OrderFit(p, d, q, constant, aicc)


def stepwise_search(x: np.ndarray, d: int) -> list[OrderFit]:
    """Every model the stepwise search tried, best (lowest AICc) first."""
    n = len(x)
    max_p = max_q = min(MAX_ORDER, n // 3)
    allow = d <= 1
    constant = allow
    tried: dict[tuple[int, int, bool], OrderFit] = {}

    def fit(p: int, q: int, c: bool) -> float:
        key = (p, q, c)
        if key not in tried:
            tried[key] = css_fit(x, p, d, q, c)
        return tried[key].aicc

    p, q = min(2, max_p), min(2, max_q)
    best = fit(p, q, constant)
    starts = [(0, 0, constant)]
    starts += [(1, 0, constant)] if max_p > 0 else []
    starts += [(0, 1, constant)] if max_q > 0 else []
    starts += [(0, 0, False)] if constant else []
    for p1, q1, c1 in starts:  # the constant is not switched off here, as in R and statsforecast
        ic = fit(p1, q1, c1)
        if ic < best:
            best, p, q = ic, p1, q1
    steps = ((-1, 0), (0, -1), (1, 0), (0, 1), (-1, -1), (-1, 1), (1, -1), (1, 1))
    improved = True
    while improved and len(tried) < MAX_MODELS:
        improved = False
        for dp, dq in steps:
            p1, q1 = p + dp, q + dq
            if not (0 <= p1 <= max_p and 0 <= q1 <= max_q) or (p1, q1, constant) in tried:
                continue
            ic = fit(p1, q1, constant)
            if ic < best:
                best, p, q, improved = ic, p1, q1, True
                break
        if not improved and allow and (p, q, not constant) not in tried:
            ic = fit(p, q, not constant)
            if ic < best:
                best, constant, improved = ic, not constant, True
    return sorted(tried.values(), key=lambda f: f.aicc)


def fit_auto_arima(y: np.ndarray, search_window: int = 0) -> Any:
    """statsforecast's ``ARIMA`` fitted exactly with the best admissible orders of :func:`stepwise_search`.

    The differences are chosen on the whole of ``y``, the orders searched on its last ``search_window`` points
    (``0``: all; R's ``truncate``) and fitted on the whole of ``y``, in the search's ranking until an exact fit
    succeeds with its roots outside ``MIN_ROOT`` (statsforecast's re-fit rule); a :class:`ValueError` when none does.
    """
    from statsforecast.arima import ndiffs
    from statsforecast.models import ARIMA

    x = np.asarray(y, dtype=float)
    d = int(ndiffs(x, max_d=2))  # type: ignore[no-untyped-call]  # statsforecast's KPSS rule
    if np.ptp(np.diff(x, d) if d else x) == 0:
        raise ValueError("the differenced series is constant")
    recent = x[-search_window:] if 0 < search_window < len(x) else x
    if np.ptp(np.diff(recent, d) if d else recent) == 0:
        recent = x
    for cand in stepwise_search(recent, d):
        if not math.isfinite(cand.aicc):
            break
        model = ARIMA(
            order=(cand.p, cand.d, cand.q),
            include_mean=cand.constant and cand.d == 0,
            include_drift=cand.constant and cand.d == 1,
        )
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model.fit(x)
        except (ValueError, np.linalg.LinAlgError) as exc:
            logger.debug("Forecasting - auto_arima: exact fit of %s failed (%s)", cand, exc)
            continue
        fitted = model.model_
        coef = np.asarray(list(fitted["coef"].values()), dtype=float)
        if np.isfinite(coef).all() and _roots_ok(
            np.asarray(fitted["model"]["phi"], dtype=float), np.asarray(fitted["model"]["theta"], dtype=float)
        ):
            return model
    raise ValueError("no admissible ARIMA model found")
