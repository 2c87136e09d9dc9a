"""Experiment impact scoring: a counterfactual for the treated series, and the effect of the change.

Method (CausalImpact-style, built to stay calibrated on short, autocorrelated weekly series):

1. Counterfactual model, fitted on the pre-period only (at most ``max_pre_weeks`` recent weeks)::

       y_t = x_t' beta + mu_t + e_t,   mu_t a random walk (weekly variance q * s2),
                                       e_t a stationary AR(1) (coefficient phi, variance s2)

   ``x_t`` holds an intercept and the control series when the experiment has controls. The model nests white
   noise (phi = q = 0), an autocorrelated but stable level (q = 0) and a wandering level (q > 0). It is a Gaussian
   process regression, so everything is closed form: beta has a flat prior and s2 a Jeffreys prior, both
   integrated out exactly (Student-t predictions with n - k degrees of freedom), and (phi, q) are integrated over
   a grid weighted by their restricted likelihood. Uncertainty about the noise structure, the level and the
   regression on controls all flow into the counterfactual's interval. (A plug-in estimate of phi from 20-30 weeks,
   or a test that treats weeks as independent, is what makes naive intervals far too narrow.)
2. The effect is observed minus counterfactual over the post-period weeks: the average, the cumulative sum and
   both relative to the counterfactual. The interval (level 1 - alpha) and the two-sided p-value come from the
   same predictive distribution of the post-period mean (a mixture of Student-t), so p < alpha exactly when the
   interval excludes zero.
3. Placebo calibration (conformal-style): when the history before the pre-period window is long enough, the same
   model is refitted at fake intervention dates inside the pre-period (same training length and horizon), and
   the standardised placebo errors estimate how much too narrow the model's own interval is (a variance
   inflation factor, shrunk towards 1 and never below 1). With a short history the model's own interval is used.

Cross-checks reported beside the estimate: difference-in-differences against the mean of the controls (standard
error corrected for lag-1 autocorrelation) and a Mann-Whitney before/after test (which ignores autocorrelation:
a familiar reference, not evidence). ``bench/bench_impact.py`` measures false-positive rate, coverage and power.

Units: ``effect``, ``mde`` and ``Experiment.min_effect`` are in the indicator's own units per week; relative
figures are fractions of the counterfactual mean.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict
from scipy import special, stats

from ml.errors import InputError, NotFittedError, NotFoundError
from ml.io.schemas import Direction, Experiment, series_key

if TYPE_CHECKING:
    from matplotlib.figure import Figure

logger = logging.getLogger(__name__)

Verdict = Literal["improved", "worsened", "inconclusive"]
ControlMode = Literal["auto", "each", "mean"]

#: AR(1) coefficients of the noise integrated over (uniform prior).
DEFAULT_PHI_GRID: tuple[float, ...] = (-0.3, 0.0, 0.2, 0.4, 0.55, 0.7, 0.8)
#: Weekly random-walk variance of the level, relative to the AR(1) noise variance (0: a stable level).
DEFAULT_Q_GRID: tuple[float, ...] = (0.0, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0)
#: Prior probability of a stable level (q = 0); the rest is spread evenly over the positive q values.
DEFAULT_Q_ZERO_PRIOR = 0.65

_Z_POWER = float(stats.norm.ppf(0.80))


# --------------------------------------------------------------------------------------------------------------
# Predictive distributions: a mixture of Student-t
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TMixture:
    """Mixture of location-scale Student-t sharing `df`; `loc`/`scale` are (G,) or (G, h), `weights` (G,)."""

    weights: np.ndarray
    loc: np.ndarray
    scale: np.ndarray
    df: float

    def _w(self) -> np.ndarray:
        return self.weights.reshape((-1,) + (1,) * (self.loc.ndim - 1))

    def mean(self) -> np.ndarray:
        return np.sum(self._w() * self.loc, axis=0)

    def sd(self) -> np.ndarray:
        """Standard deviation (the spread between components included)."""
        var_factor = self.df / (self.df - 2.0) if self.df > 2 else 3.0
        m = self.mean()
        second = np.sum(self._w() * (self.scale**2 * var_factor + self.loc**2), axis=0)
        return np.sqrt(np.maximum(second - m**2, 0.0))

    def cdf(self, x: np.ndarray | float) -> np.ndarray:
        z = (np.asarray(x, dtype=float) - self.loc) / self.scale
        return np.sum(self._w() * special.stdtr(self.df, z), axis=0)

    def ppf(self, p: float) -> np.ndarray:
        """Quantile, by vectorised bisection between bounds that hold every component's quantile."""
        reach = float(stats.t.ppf(1.0 - 1e-10, self.df))
        lo = np.min(self.loc - reach * self.scale, axis=0)
        hi = np.max(self.loc + reach * self.scale, axis=0)
        for _ in range(48):
            mid = 0.5 * (lo + hi)
            below = self.cdf(mid) < p
            lo = np.where(below, mid, lo)
            hi = np.where(below, hi, mid)
        return 0.5 * (lo + hi)

    def inflate(self, factor: float) -> TMixture:
        """The same mixture with every component's scale multiplied by `factor`."""
        return TMixture(self.weights, self.loc, self.scale * factor, self.df)


# --------------------------------------------------------------------------------------------------------------
# Counterfactual model (arrays)
# --------------------------------------------------------------------------------------------------------------


def _as_times(
    t: np.ndarray | Sequence[float] | None, n: int, name: str, default_start: float = 0.0
) -> np.ndarray:
    if t is None:
        return default_start + np.arange(n, dtype=float)
    arr = np.asarray(t, dtype=float)
    if arr.shape != (n,):
        raise InputError(f"{name} has shape {arr.shape}, expected ({n},)", field=name, value=arr.shape)
    if not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)):
        raise InputError(f"{name} must hold whole period numbers (e.g. week indices)", field=name, value=None)
    if n > 1 and np.any(np.diff(arr) <= 0):
        raise InputError(f"{name} must be strictly increasing", field=name, value=None)
    return arr


def _design(X: np.ndarray | None, n: int, name: str) -> np.ndarray:
    """Intercept column followed by the regressors (the controls)."""
    ones = np.ones((n, 1))
    if X is None:
        return ones
    arr = np.asarray(X, dtype=float)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or arr.shape[0] != n:
        raise InputError(f"{name} has shape {arr.shape}, expected ({n}, k)", field=name, value=arr.shape)
    if not np.all(np.isfinite(arr)):
        raise InputError(f"{name} has missing or infinite values", field=name, value=None)
    return np.hstack([ones, arr])


class CounterfactualModel:
    """Regression on controls + random-walk level + AR(1) noise, with (phi, q) integrated over a grid.

    Parameters
    ----------
    phi_grid:
        AR(1) coefficients of the noise to integrate over.
    q_grid:
        Weekly random-walk variance of the level relative to the noise variance; 0 means a stable level.
    q_zero_prior:
        Prior probability of q = 0 (a stable level); the rest is spread evenly over the positive values of
        `q_grid`. The prior over `phi_grid` is uniform.

    Learned attributes: ``weights_`` (posterior weight of each grid point), ``phi_`` and ``q_`` (the grid points),
    ``s2_`` (noise variance per grid point, data units squared), ``df_`` (degrees of freedom of the predictions),
    ``n_`` (observations) and ``k_`` (coefficients, intercept included).
    """

    def __init__(
        self,
        phi_grid: Sequence[float] = DEFAULT_PHI_GRID,
        q_grid: Sequence[float] = DEFAULT_Q_GRID,
        q_zero_prior: float = DEFAULT_Q_ZERO_PRIOR,
    ) -> None:
        self.phi_grid = phi_grid
        self.q_grid = q_grid
        self.q_zero_prior = q_zero_prior

    def clone(self) -> CounterfactualModel:
        """An unfitted copy with the same parameters."""
        return CounterfactualModel(self.phi_grid, self.q_grid, self.q_zero_prior)

    # ---- fitting ----------------------------------------------------------------------------------------------

    def _validate_params(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        phi = np.asarray(self.phi_grid, dtype=float)
        q = np.asarray(self.q_grid, dtype=float)
        if phi.ndim != 1 or phi.size == 0 or np.any(np.abs(phi) >= 1):
            raise InputError(
                "phi_grid needs values strictly between -1 and 1", field="phi_grid", value=self.phi_grid
            )
        if q.ndim != 1 or q.size == 0 or np.any(q < 0):
            raise InputError("q_grid needs non-negative values", field="q_grid", value=self.q_grid)
        if not 0.0 <= self.q_zero_prior <= 1.0:
            raise InputError("q_zero_prior must be in [0, 1]", field="q_zero_prior", value=self.q_zero_prior)
        n_zero, n_pos = int(np.sum(q == 0)), int(np.sum(q > 0))
        if n_zero and n_pos:
            q_prior = np.where(q == 0, self.q_zero_prior / n_zero, (1.0 - self.q_zero_prior) / n_pos)
        else:
            q_prior = np.full(q.size, 1.0 / q.size)
        phis, qs = np.meshgrid(phi, q, indexing="ij")
        prior = np.broadcast_to(q_prior[None, :], phis.shape).ravel() / phi.size
        return phis.ravel(), qs.ravel(), prior

    def _cov(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Noise covariance (unit AR variance) between times `a` and `b` (both >= 1), shape (G, len a, len b)."""
        lag = np.abs(a[:, None] - b[None, :]).astype(np.intp)
        powers = self.phi_[:, None] ** np.arange(int(lag.max()) + 1)[None, :]  # (G, max lag + 1)
        ar = powers[:, lag]
        rw = self.q_[:, None, None] * np.minimum(a[:, None], b[None, :])[None]
        return ar + rw

    def fit(
        self, y: np.ndarray, X: np.ndarray | None = None, t: np.ndarray | None = None
    ) -> CounterfactualModel:
        """Fit on the pre-period: `y` (n,), optional regressors `X` (n, c), optional whole-period times `t` (n,)."""
        phis, qs, prior = self._validate_params()
        y = np.asarray(y, dtype=float)
        if y.ndim != 1:
            raise InputError(f"y must be one-dimensional, got shape {y.shape}", field="y", value=y.shape)
        if not np.all(np.isfinite(y)):
            raise InputError("y has missing or infinite values", field="y", value=None)
        n = y.shape[0]
        D = _design(X, n, "X")
        k = D.shape[1]
        if n - k < 3:
            raise InputError(f"{n} observations are too few for {k} coefficients", field="y", value=n)
        times = _as_times(t, n, "t")
        self.phi_, self.q_ = phis, qs
        G = phis.size
        # the random walk starts just before the first observation; with a flat prior on the intercept this
        # is the same as a diffuse initial level
        self.t0_ = float(times[0] - 1.0)
        tt = times - self.t0_
        # work on a standardised y (the model is equivariant under affine changes of y)
        self.y_shift_ = float(np.mean(y))
        self.y_scale_ = float(np.std(y)) or 1.0
        ys = (y - self.y_shift_) / self.y_scale_
        x_sd = D[:, 1:].std(axis=0)
        if np.any(x_sd == 0):
            raise InputError("a regressor is constant over the fitting period", field="X", value=None)

        S = self._cov(tt, tt)
        S[:, np.arange(n), np.arange(n)] += 1e-9
        try:  # positive definite by construction; this guards against degenerate grids
            L = np.linalg.cholesky(S)
        except np.linalg.LinAlgError as exc:
            raise InputError("noise covariance is not positive definite", field="t", value=None) from exc
        rhs = np.concatenate([ys[:, None], D], axis=1)
        W = np.linalg.solve(L, np.broadcast_to(rhs, (G, n, k + 1)))
        yw, Dw = W[:, :, 0], W[:, :, 1:]
        DtD = np.einsum("gni,gnj->gij", Dw, Dw)
        sign, logdet_DtD = np.linalg.slogdet(DtD)
        if np.any(sign <= 0) or np.any(np.linalg.cond(DtD) > 1e12):
            raise InputError("the regressors are collinear over the fitting period", field="X", value=None)
        DtD_inv = np.linalg.inv(DtD)
        beta = np.einsum("gij,gnj,gn->gi", DtD_inv, Dw, yw)
        rw = yw - np.einsum("gnk,gk->gn", Dw, beta)
        rss = np.maximum(np.einsum("gn,gn->g", rw, rw), 1e-12)
        logdet_S = 2.0 * np.sum(np.log(np.diagonal(L, axis1=1, axis2=2)), axis=1)
        # restricted (integrated) likelihood: beta flat and s2 Jeffreys, both integrated out
        loglik = -0.5 * logdet_S - 0.5 * logdet_DtD - 0.5 * (n - k) * np.log(rss)
        logpost = loglik + np.log(np.maximum(prior, 1e-300))
        w = np.exp(logpost - logpost.max())
        self.weights_ = w / w.sum()
        self.s2_ = rss / (n - k) * self.y_scale_**2
        self.df_ = float(n - k)
        self.n_, self.k_ = n, k
        self._fit_state = (tt, L, Dw, rw, DtD_inv, beta, rss / (n - k))
        return self

    # ---- prediction -------------------------------------------------------------------------------------------

    def _check_fitted(self) -> None:
        if not hasattr(self, "weights_"):
            raise NotFittedError("CounterfactualModel is not fitted; call fit() first")

    def _conditional(
        self, t_new: np.ndarray | Sequence[float], X_new: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Pieces of the predictive distribution at `t_new`: times from origin, cross term A, mean, R."""
        self._check_fitted()
        tt, L, Dw, rw, _, beta, _ = self._fit_state
        tn = np.asarray(t_new, dtype=float)
        h = tn.shape[0] if tn.ndim == 1 else -1
        tn = _as_times(tn, h, "t_new") - self.t0_
        if tn[0] <= tt[-1]:
            raise InputError(
                "t_new must come after the fitted period", field="t_new", value=float(tn[0] + self.t0_)
            )
        D_new = _design(X_new, h, "X_new")
        if D_new.shape[1] != self.k_:
            raise InputError(
                f"X_new has {D_new.shape[1] - 1} regressors, the model was fitted with {self.k_ - 1}",
                field="X_new",
                value=D_new.shape[1] - 1,
            )
        A = np.linalg.solve(L, self._cov(tt, tn))  # (G, n, h)
        mean = np.einsum("hk,gk->gh", D_new, beta) + np.einsum("gnh,gn->gh", A, rw)
        R = D_new[None] - np.einsum("gnh,gnk->ghk", A, Dw)  # (G, h, k)
        return tn, A, mean, R

    def predict_points(
        self, t_new: np.ndarray | Sequence[float], X_new: np.ndarray | None = None
    ) -> TMixture:
        """Pointwise predictive distribution of each new observation (arrays of shape (G, h))."""
        tn, A, mean, R = self._conditional(t_new, X_new)
        _, _, _, _, DtD_inv, _, s2 = self._fit_state
        prior_var = 1.0 + self.q_[:, None] * tn[None]
        var = prior_var - np.einsum("gnh,gnh->gh", A, A) + np.einsum("ghk,gkl,ghl->gh", R, DtD_inv, R)
        scale = np.sqrt(np.maximum(var, 1e-12) * s2[:, None]) * self.y_scale_
        return TMixture(self.weights_, mean * self.y_scale_ + self.y_shift_, scale, self.df_)

    def predict_mean(self, t_new: np.ndarray | Sequence[float], X_new: np.ndarray | None = None) -> TMixture:
        """Predictive distribution of the mean of the new observations (arrays of shape (G,))."""
        tn, A, mean, R = self._conditional(t_new, X_new)
        _, _, _, _, DtD_inv, _, s2 = self._fit_state
        h = tn.shape[0]
        a = A.sum(axis=2) / h
        r = R.sum(axis=1) / h
        var = (
            self._cov(tn, tn).sum(axis=(1, 2)) / h**2
            - np.einsum("gn,gn->g", a, a)
            + np.einsum("gk,gkl,gl->g", r, DtD_inv, r)
        )
        scale = np.sqrt(np.maximum(var, 1e-12) * s2) * self.y_scale_
        return TMixture(self.weights_, mean.mean(axis=1) * self.y_scale_ + self.y_shift_, scale, self.df_)

    def predict_mean_by_horizon(
        self, t_new: np.ndarray | Sequence[float], X_new: np.ndarray | None = None
    ) -> TMixture:
        """Predictive distribution of the mean of the first j new observations, j = 1..h (arrays (G, h))."""
        tn, A, mean, R = self._conditional(t_new, X_new)
        _, _, _, _, DtD_inv, _, s2 = self._fit_state
        j = np.arange(1, tn.shape[0] + 1, dtype=float)
        S_cum = np.cumsum(np.cumsum(self._cov(tn, tn), axis=1), axis=2)
        prior = np.diagonal(S_cum, axis1=1, axis2=2) / j**2  # (G, h)
        a = np.cumsum(A, axis=2) / j  # (G, n, h)
        r = np.cumsum(R, axis=1) / j[None, :, None]  # (G, h, k)
        var = prior - np.einsum("gnh,gnh->gh", a, a) + np.einsum("ghk,gkl,ghl->gh", r, DtD_inv, r)
        scale = np.sqrt(np.maximum(var, 1e-12) * s2[:, None]) * self.y_scale_
        loc = np.cumsum(mean, axis=1) / j * self.y_scale_ + self.y_shift_
        return TMixture(self.weights_, loc, scale, self.df_)

    def noise_summary(self) -> dict[str, float]:
        """Posterior summaries of the noise structure: phi, q, P(level wanders), residual sd."""
        self._check_fitted()
        w = self.weights_
        return {
            "phi": float(w @ self.phi_),
            "q": float(w @ self.q_),
            "p_level_wander": float(w @ (self.q_ > 0)),
            "noise_sd": float(math.sqrt(w @ self.s2_)),
        }


# --------------------------------------------------------------------------------------------------------------
# Effect estimate on arrays (used by the scorer and by the calibration harness)
# --------------------------------------------------------------------------------------------------------------


@dataclass
class EffectEstimate:
    """Average effect over the post-period, its interval and p-value, with the fitted model behind it."""

    observed_mean: float
    counterfactual_mean: float
    effect: float
    ci_low: float
    ci_high: float
    p_value: float
    se: float
    inflation: float
    n_placebos: int
    n_pre: int
    n_post: int
    model: CounterfactualModel
    mixture: TMixture


def _two_sided_p(mix: TMixture, x: float) -> float:
    F = float(mix.cdf(x))
    return float(min(1.0, 2.0 * min(F, 1.0 - F)))


def placebo_inflation(
    y: np.ndarray,
    X: np.ndarray | None,
    t: np.ndarray,
    *,
    train: int,
    horizon: int,
    model: CounterfactualModel,
    max_placebos: int = 8,
    min_placebos: int = 4,
    prior_strength: float = 4.0,
) -> tuple[float, int]:
    """Variance inflation of the model's interval, measured at fake intervention dates inside `y`.

    Each placebo refits `model` on `train` observations and predicts the mean of the next `horizon` ones,
    stepping back by half a horizon from the end of `y`. The squared normal scores of the placebo outcomes
    estimate the ratio of real to predicted variance; the estimate is shrunk towards 1 with `prior_strength`
    pseudo-placebos and never goes below 1. Returns (factor on the scale, number of placebos); (1.0, 0) when
    `y` is too short for `min_placebos` placebos.
    """
    n = y.shape[0]
    step = max(1, horizon // 2)
    ends = [n - horizon - i * step for i in range(max_placebos)]
    ends = [e for e in ends if e >= train]
    if len(ends) < min_placebos:
        return 1.0, 0
    z2 = []
    for e in ends:
        Xtr = None if X is None else X[e - train : e]
        Xte = None if X is None else X[e : e + horizon]
        try:
            m = model.clone().fit(y[e - train : e], Xtr, t[e - train : e])
        except InputError:  # e.g. a control constant over this window: skip the placebo
            continue
        mix = m.predict_mean(t[e : e + horizon], Xte)
        pit = float(np.clip(mix.cdf(float(np.mean(y[e : e + horizon]))), 1e-6, 1 - 1e-6))
        z2.append(min(float(stats.norm.ppf(pit)) ** 2, 16.0))
    if len(z2) < min_placebos:
        return 1.0, 0
    ratio = (prior_strength + float(np.sum(z2))) / (prior_strength + len(z2))
    return max(1.0, math.sqrt(ratio)), len(z2)


def estimate_effect(
    y_pre: np.ndarray,
    y_post: np.ndarray,
    X_pre: np.ndarray | None = None,
    X_post: np.ndarray | None = None,
    t_pre: np.ndarray | None = None,
    t_post: np.ndarray | None = None,
    *,
    alpha: float = 0.05,
    max_pre_weeks: int = 52,
    calibrate: bool = True,
    model: CounterfactualModel | None = None,
) -> EffectEstimate:
    """Average effect of the change (observed minus counterfactual over the post-period) with its interval.

    The model is fitted on the last `max_pre_weeks` pre-period observations; older history, when there is
    enough, serves for placebo calibration (see :func:`placebo_inflation`). Times default to consecutive weeks.
    """
    if not 0.0 < alpha < 1.0:
        raise InputError("alpha must be between 0 and 1", field="alpha", value=alpha)
    y_pre = np.asarray(y_pre, dtype=float)
    y_post = np.asarray(y_post, dtype=float)
    n, h = y_pre.shape[0], y_post.shape[0]
    if n < 4:
        raise InputError(
            f"the pre-period has {n} observations; at least 4 are needed", field="y_pre", value=n
        )
    if h == 0:
        raise InputError("the post-period has no observations", field="y_post", value=0)
    if not np.all(np.isfinite(y_post)):
        raise InputError("y_post has missing or infinite values", field="y_post", value=None)
    t_pre = _as_times(t_pre, n, "t_pre")
    t_post = _as_times(t_post, h, "t_post", default_start=float(t_pre[-1] + 1))
    Xp = None if X_pre is None else np.asarray(X_pre, dtype=float).reshape(n, -1)
    Xo = None if X_post is None else np.asarray(X_post, dtype=float).reshape(h, -1)
    if (Xp is None) != (Xo is None):
        raise InputError("give controls for both periods or for neither", field="X_post", value=None)
    template = model if model is not None else CounterfactualModel()
    m_used = min(n, max_pre_weeks)
    lo = n - m_used
    fitted = template.clone().fit(y_pre[lo:], None if Xp is None else Xp[lo:], t_pre[lo:])
    mix = fitted.predict_mean(t_post, Xo)
    inflation, n_placebos = 1.0, 0
    if calibrate:
        inflation, n_placebos = placebo_inflation(y_pre, Xp, t_pre, train=m_used, horizon=h, model=template)
        mix = mix.inflate(inflation)
    observed = float(np.mean(y_post))
    q_lo, q_hi = float(mix.ppf(alpha / 2)), float(mix.ppf(1 - alpha / 2))
    cf = float(mix.mean())
    return EffectEstimate(
        observed_mean=observed,
        counterfactual_mean=cf,
        effect=observed - cf,
        ci_low=observed - q_hi,
        ci_high=observed - q_lo,
        p_value=_two_sided_p(mix, observed),
        se=(q_hi - q_lo) / (2.0 * float(stats.norm.ppf(1 - alpha / 2))),
        inflation=inflation,
        n_placebos=n_placebos,
        n_pre=m_used,
        n_post=h,
        model=fitted,
        mixture=mix,
    )


# --------------------------------------------------------------------------------------------------------------
# Cross-checks
# --------------------------------------------------------------------------------------------------------------


class DiDCheck(BaseModel):
    """Difference-in-differences of the treated series against the mean of the controls."""

    estimate: float
    se: float
    ci_low: float
    ci_high: float
    p_value: float
    lag1_autocorrelation: float


class MannWhitneyCheck(BaseModel):
    """Mann-Whitney U test of post- against pre-period values of the treated series (ignores autocorrelation)."""

    statistic: float
    p_value: float
    median_pre: float
    median_post: float
    hodges_lehmann_shift: float


def did_check(
    y_pre: np.ndarray, y_post: np.ndarray, c_pre: np.ndarray, c_post: np.ndarray, alpha: float = 0.05
) -> DiDCheck:
    """DiD of treated minus mean-of-controls; the se is widened by (1 + r) / (1 - r), r the lag-1 autocorrelation."""
    d_pre = np.asarray(y_pre, float) - np.asarray(c_pre, float).reshape(len(y_pre), -1).mean(axis=1)
    d_post = np.asarray(y_post, float) - np.asarray(c_post, float).reshape(len(y_post), -1).mean(axis=1)
    n, h = d_pre.size, d_post.size
    est = float(d_post.mean() - d_pre.mean())
    resid = np.concatenate([d_pre - d_pre.mean(), d_post - d_post.mean()])
    dof = max(n + h - 2, 1)
    s2 = float(resid @ resid) / dof
    r = 0.0
    if n > 2:
        a, b = d_pre[:-1] - d_pre.mean(), d_pre[1:] - d_pre.mean()
        denom = float(np.sum((d_pre - d_pre.mean()) ** 2))
        r = float(np.clip(np.sum(a * b) / denom, 0.0, 0.95)) if denom > 0 else 0.0
    se = math.sqrt(s2 * (1.0 / n + 1.0 / h) * (1 + r) / (1 - r))
    tq = float(stats.t.ppf(1 - alpha / 2, dof))
    p = float(2 * stats.t.sf(abs(est) / se, dof)) if se > 0 else (0.0 if est != 0 else 1.0)
    return DiDCheck(
        estimate=est, se=se, ci_low=est - tq * se, ci_high=est + tq * se, p_value=p, lag1_autocorrelation=r
    )


def mann_whitney_check(y_pre: np.ndarray, y_post: np.ndarray) -> MannWhitneyCheck:
    """Before/after Mann-Whitney U (two-sided) and the Hodges-Lehmann shift (median of post - pre pairs)."""
    pre, post = np.asarray(y_pre, float), np.asarray(y_post, float)
    if np.ptp(np.concatenate([pre, post])) == 0:
        stat, p = float(pre.size * post.size) / 2.0, 1.0
    else:
        res = stats.mannwhitneyu(post, pre, alternative="two-sided")
        stat, p = float(res.statistic), float(res.pvalue)
    return MannWhitneyCheck(
        statistic=stat,
        p_value=p,
        median_pre=float(np.median(pre)),
        median_post=float(np.median(post)),
        hodges_lehmann_shift=float(np.median(post[:, None] - pre[None, :])),
    )


# --------------------------------------------------------------------------------------------------------------
# Scoring an experiment (pydantic at the boundary)
# --------------------------------------------------------------------------------------------------------------


class ImpactSeries(BaseModel):
    """What a before/after/counterfactual plot needs; counterfactual and band are None before `start`."""

    ds: list[dt.date]
    observed: list[float]
    counterfactual: list[float | None]
    lower: list[float | None]
    upper: list[float | None]

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.model_dump())


class ImpactDiagnostics(BaseModel):
    did: DiDCheck | None
    mann_whitney: MannWhitneyCheck
    noise: dict[str, float]
    inflation: float
    n_placebos: int
    controls_used: list[str]
    control_mode: Literal["none", "each", "mean"]
    notes: list[str]


class ImpactResult(BaseModel):
    """The scored experiment. Effects are observed minus counterfactual, in the indicator's units per week."""

    model_config = ConfigDict(frozen=True)

    experiment_id: str
    indicator: str
    treated_series: str
    desired_direction: Direction
    start: dt.date
    n_pre: int
    n_post: int
    alpha: float
    observed_mean: float
    counterfactual_mean: float
    effect: float
    ci_low: float
    ci_high: float
    relative_effect: float | None
    relative_ci_low: float | None
    relative_ci_high: float | None
    cumulative_effect: float
    cumulative_ci_low: float
    cumulative_ci_high: float
    p_value: float
    verdict: Verdict
    mde: float
    mde_relative: float | None
    min_effect: float | None
    weeks_needed: int | None
    method: str
    diagnostics: ImpactDiagnostics
    series: ImpactSeries


def verdict_for(effect: float, p_value: float, alpha: float, desired_direction: Direction) -> Verdict:
    """'improved' / 'worsened' when significant at `alpha`, by the sign of `effect`; else 'inconclusive'."""
    if p_value >= alpha or effect == 0:
        return "inconclusive"
    good = effect < 0 if desired_direction == "decrease" else effect > 0
    return "improved" if good else "worsened"


def _series_id_column(data: pd.DataFrame) -> pd.Series:
    if "series" in data.columns:
        return data["series"].astype(str)
    if "indicator" not in data.columns:
        raise InputError(
            "data needs a 'series' column (or 'indicator' plus team/service)", field="data", value=None
        )

    def key(row: pd.Series) -> str:
        team = row.get("team")
        service = row.get("service")
        return series_key(
            str(row["indicator"]),
            team=None if pd.isna(team) or team == "" else str(team),
            service=None if pd.isna(service) or service == "" else str(service),
        )

    return data.apply(key, axis=1)


def _wide(data: pd.DataFrame, treated: str, controls: list[str]) -> pd.DataFrame:
    """One column per series (treated first), indexed by ds, rows where every series has a value."""
    if not isinstance(data, pd.DataFrame):
        raise InputError("data must be a pandas DataFrame", field="data", value=type(data).__name__)
    for col in ("ds", "y"):
        if col not in data.columns:
            raise InputError(f"data has no {col!r} column", field="data", value=list(data.columns))
    df = pd.DataFrame({"series": _series_id_column(data), "ds": data["ds"], "y": data["y"]})
    df = df[df["series"].isin([treated, *controls])]
    if not (df["series"] == treated).any():
        raise NotFoundError(f"no data for the treated series {treated!r}", field="treated", value=treated)
    for c in controls:
        if not (df["series"] == c).any():
            raise NotFoundError(f"no data for the control series {c!r}", field="controls", value=c)
    ds = pd.to_datetime(df["ds"], errors="coerce")
    if ds.isna().any():
        bad = df.loc[ds.isna(), "ds"].iloc[0]
        raise InputError(f"ds value {bad!r} is not a date", field="ds", value=bad)
    if getattr(ds.dt, "tz", None) is not None:
        ds = ds.dt.tz_convert("UTC").dt.tz_localize(None)
    y = pd.to_numeric(df["y"], errors="coerce").astype(float)
    if np.isinf(y).any():
        raise InputError("y has infinite values", field="y", value=float(y[np.isinf(y)].iloc[0]))
    df = pd.DataFrame(
        {"series": df["series"].to_numpy(), "ds": ds.dt.normalize().to_numpy(), "y": y.to_numpy()}
    )
    df = df.dropna(subset=["y"])
    dup = df.duplicated(subset=["series", "ds"])
    if dup.any():
        row = df[dup].iloc[0]
        raise InputError(
            f"series {row['series']!r} has more than one value on {row['ds'].date()}",
            field="ds",
            value=str(row["ds"]),
        )
    wide = df.pivot(index="ds", columns="series", values="y").sort_index()
    return wide[[treated, *controls]].dropna()


def _period_index(ds: pd.DatetimeIndex) -> np.ndarray:
    """Whole-period numbers for the dates (the period is the most common gap, a week for weekly data)."""
    days = ((ds - ds[0]) / pd.Timedelta(days=1)).to_numpy(dtype=float)
    if days.size < 2:
        return np.zeros(days.size)
    step = float(np.median(np.diff(days)))
    idx = np.round(days / step)
    if np.any(np.diff(idx) <= 0):
        raise InputError("ds values are not on a regular (e.g. weekly) grid", field="ds", value=None)
    return idx


class ImpactScorer:
    """Scores an experiment: counterfactual, effect with interval and p-value, cross-checks, verdict, power.

    Parameters
    ----------
    alpha: significance level of the verdict; the interval has level 1 - alpha.
    min_pre_weeks: fewest pre-period observations accepted.
    max_pre_weeks: the model is fitted on at most this many recent pre-period weeks (older ones calibrate).
    calibrate: use placebo windows in the older history to widen the interval when it proves too narrow.
    control_mode: "each" control as a regressor, their "mean" as one, or "auto" (each when there are at
        least 10 pre weeks per coefficient, else the mean).
    max_extra_weeks: how far ahead `weeks_needed` looks.
    model: the counterfactual model template (default :class:`CounterfactualModel`).

    Learned attributes: ``result_`` (:class:`ImpactResult`), ``estimate_`` (:class:`EffectEstimate`).
    """

    def __init__(
        self,
        alpha: float = 0.05,
        min_pre_weeks: int = 12,
        max_pre_weeks: int = 52,
        calibrate: bool = True,
        control_mode: ControlMode = "auto",
        max_extra_weeks: int = 52,
        model: CounterfactualModel | None = None,
    ) -> None:
        self.alpha = alpha
        self.min_pre_weeks = min_pre_weeks
        self.max_pre_weeks = max_pre_weeks
        self.calibrate = calibrate
        self.control_mode = control_mode
        self.max_extra_weeks = max_extra_weeks
        self.model = model

    def _check_params(self) -> None:
        if not 0.0 < self.alpha < 1.0:
            raise InputError("alpha must be between 0 and 1", field="alpha", value=self.alpha)
        if self.min_pre_weeks < 6:
            raise InputError(
                "min_pre_weeks must be at least 6", field="min_pre_weeks", value=self.min_pre_weeks
            )
        if self.max_pre_weeks < self.min_pre_weeks:
            raise InputError(
                "max_pre_weeks must be at least min_pre_weeks",
                field="max_pre_weeks",
                value=self.max_pre_weeks,
            )
        if self.control_mode not in ("auto", "each", "mean"):
            raise InputError(
                "control_mode must be 'auto', 'each' or 'mean'", field="control_mode", value=self.control_mode
            )

    def fit(self, experiment: Experiment, data: pd.DataFrame) -> ImpactScorer:
        """Score `experiment` on `data` (long format: series, ds, y; or indicator, ds, y, team/service)."""
        self._check_params()
        treated, controls = experiment.treated_series, experiment.control_series
        wide = _wide(data, treated, controls)
        start = pd.Timestamp(experiment.start)
        end = None if experiment.end is None else pd.Timestamp(experiment.end)
        if wide.empty:
            raise InputError(
                f"{treated!r} and its controls share no dates", field="controls", value=experiment.controls
            )
        t_all = _period_index(wide.index)
        pre_mask = wide.index < start
        post_mask = (wide.index >= start) & (True if end is None else wide.index < end)
        n_pre, n_post = int(pre_mask.sum()), int(post_mask.sum())
        if n_pre < self.min_pre_weeks:
            raise InputError(
                f"experiment {experiment.id!r}: {treated!r} has {n_pre} weeks before start {experiment.start}"
                f" (with its controls); at least {self.min_pre_weeks} are needed",
                field="start",
                value=experiment.start.isoformat(),
            )
        if n_post == 0:
            raise InputError(
                f"experiment {experiment.id!r}: {treated!r} has no observations from start {experiment.start}"
                + ("" if end is None else f" to end {experiment.end}"),
                field="start" if end is None else "end",
                value=experiment.start.isoformat() if end is None else experiment.end.isoformat(),
            )
        y_pre = wide.loc[pre_mask, treated].to_numpy()
        y_post = wide.loc[post_mask, treated].to_numpy()
        t_pre, t_post = t_all[pre_mask], t_all[post_mask]
        m_used = min(n_pre, self.max_pre_weeks)
        if np.ptp(y_pre[-m_used:]) == 0:
            raise InputError(
                f"{treated!r} is constant ({y_pre[-1]:g}) over the {m_used} weeks before start: no noise to compare"
                " the change with",
                field="treated",
                value=treated,
            )
        notes: list[str] = []

        # controls: drop those constant over the fitting window, then each or their mean
        used = [c for c in controls if np.ptp(wide.loc[pre_mask, c].to_numpy()[-m_used:]) > 0]
        for c in controls:
            if c not in used:
                notes.append(f"control {c!r} is constant before start and was left out")
        mode: Literal["none", "each", "mean"] = "none"
        X_pre = X_post = None
        if used:
            mode = self.control_mode if self.control_mode != "auto" else "each"
            if self.control_mode == "auto" and m_used < 10 * (len(used) + 1):
                mode = "mean"
            C_pre, C_post = wide.loc[pre_mask, used].to_numpy(), wide.loc[post_mask, used].to_numpy()
            X_pre, X_post = (C_pre, C_post) if mode == "each" else (C_pre.mean(1), C_post.mean(1))
            if mode == "mean" and np.ptp(X_pre[-m_used:]) == 0:
                notes.append("the mean of the controls is constant before start; controls left out")
                mode, X_pre, X_post = "none", None, None

        template = self.model if self.model is not None else CounterfactualModel()
        est = estimate_effect(
            y_pre,
            y_post,
            X_pre,
            X_post,
            t_pre,
            t_post,
            alpha=self.alpha,
            max_pre_weeks=self.max_pre_weeks,
            calibrate=self.calibrate,
            model=template,
        )
        if est.inflation > 1.0:
            notes.append(
                f"placebo windows before the pre-period showed the model's interval too narrow; widened x{est.inflation:.2f}"
            )

        # effect figures
        h = n_post
        cf = est.counterfactual_mean
        q_lo, q_hi = float(est.mixture.ppf(self.alpha / 2)), float(est.mixture.ppf(1 - self.alpha / 2))
        rel = rel_lo = rel_hi = None
        if q_lo > 0 or q_hi < 0:  # counterfactual clearly away from zero: relative figures are meaningful
            rel = est.effect / cf
            rel_lo, rel_hi = sorted((est.observed_mean / q_hi - 1.0, est.observed_mean / q_lo - 1.0))
        else:
            notes.append("the counterfactual interval contains 0: relative effects are not reported")
        z_crit = float(stats.norm.ppf(1 - self.alpha / 2))
        mde = (z_crit + _Z_POWER) * est.se
        weeks_needed = None
        if experiment.min_effect is not None:
            weeks_needed = self._weeks_needed(est, X_post, t_post, experiment.min_effect, z_crit)
        verdict = verdict_for(est.effect, est.p_value, self.alpha, experiment.desired_direction)

        # plot series: pre-period observed (fitted window), post-period observed + counterfactual band
        points = est.model.predict_points(
            t_post, None if X_post is None else np.asarray(X_post).reshape(h, -1)
        )
        points = points.inflate(est.inflation)
        cf_pts = points.mean()
        lo_pts, hi_pts = points.ppf(self.alpha / 2), points.ppf(1 - self.alpha / 2)
        pre_ds = list(wide.index[pre_mask][-m_used:].date)
        series = ImpactSeries(
            ds=pre_ds + list(wide.index[post_mask].date),
            observed=[float(v) for v in y_pre[-m_used:]] + [float(v) for v in y_post],
            counterfactual=[None] * m_used + [float(v) for v in cf_pts],
            lower=[None] * m_used + [float(v) for v in lo_pts],
            upper=[None] * m_used + [float(v) for v in hi_pts],
        )

        did = None
        if used:
            did = did_check(
                y_pre[-m_used:],
                y_post,
                wide.loc[pre_mask, used].to_numpy()[-m_used:],
                wide.loc[post_mask, used].to_numpy(),
                self.alpha,
            )
        if did is not None and (did.ci_low > est.ci_high or did.ci_high < est.ci_low):
            notes.append(
                f"difference-in-differences ({did.estimate:.3g} [{did.ci_low:.3g}, {did.ci_high:.3g}]) disagrees with"
                " the regression estimate: the controls may move with the treated series on another scale"
                " (regression is right) or noisy controls may understate a shared change (DiD is right)"
            )
        diagnostics = ImpactDiagnostics(
            did=did,
            mann_whitney=mann_whitney_check(y_pre[-m_used:], y_post),
            noise=est.model.noise_summary(),
            inflation=est.inflation,
            n_placebos=est.n_placebos,
            controls_used=used,
            control_mode=mode,
            notes=notes,
        )
        method = (
            "counterfactual regression"
            + (
                f" on {len(used)} control(s)"
                if mode == "each"
                else " on the mean of the controls"
                if used
                else ""
            )
            + " with random-walk level + AR(1) noise, integrated over (phi, q); "
            + (
                "placebo-calibrated interval"
                if est.n_placebos
                else "model interval (history too short for placebos)"
            )
        )
        self.estimate_ = est
        self.result_ = ImpactResult(
            experiment_id=experiment.id,
            indicator=experiment.indicator,
            treated_series=treated,
            desired_direction=experiment.desired_direction,
            start=experiment.start,
            n_pre=est.n_pre,
            n_post=h,
            alpha=self.alpha,
            observed_mean=est.observed_mean,
            counterfactual_mean=cf,
            effect=est.effect,
            ci_low=est.ci_low,
            ci_high=est.ci_high,
            relative_effect=rel,
            relative_ci_low=rel_lo,
            relative_ci_high=rel_hi,
            cumulative_effect=est.effect * h,
            cumulative_ci_low=est.ci_low * h,
            cumulative_ci_high=est.ci_high * h,
            p_value=est.p_value,
            verdict=verdict,
            mde=mde,
            mde_relative=None if rel is None else mde / abs(cf),
            min_effect=experiment.min_effect,
            weeks_needed=weeks_needed,
            method=method,
            diagnostics=diagnostics,
            series=series,
        )
        logger.info(
            "Impact - %s: effect %.4g [%.4g, %.4g], p=%.3g, %s (%d pre, %d post weeks)",
            experiment.id,
            est.effect,
            est.ci_low,
            est.ci_high,
            est.p_value,
            verdict,
            est.n_pre,
            h,
        )
        return self

    def _weeks_needed(
        self,
        est: EffectEstimate,
        X_post: np.ndarray | None,
        t_post: np.ndarray,
        min_effect: float,
        z_crit: float,
    ) -> int | None:
        """Extra post weeks until the MDE (80% power) falls to `min_effect`; None when not within max_extra_weeks."""
        h = t_post.shape[0]
        extra = np.arange(1, self.max_extra_weeks + 1, dtype=float) + t_post[-1]
        t_ext = np.concatenate([t_post, extra])
        X_ext = None
        if X_post is not None:
            Xp = np.asarray(X_post, dtype=float).reshape(h, -1)
            X_ext = np.vstack([Xp, np.repeat(Xp.mean(axis=0, keepdims=True), extra.size, axis=0)])
        mix = est.model.predict_mean_by_horizon(t_ext, X_ext).inflate(est.inflation)
        half_width = (mix.ppf(1 - self.alpha / 2) - mix.ppf(self.alpha / 2)) / 2.0
        mde = (z_crit + _Z_POWER) * half_width[h - 1 :] / z_crit
        ok = np.flatnonzero(mde <= min_effect)
        return int(ok[0]) if ok.size else None

    def score(self, experiment: Experiment, data: pd.DataFrame) -> ImpactResult:
        """Fit and return the result."""
        return self.fit(experiment, data).result_

    @property
    def is_fitted(self) -> bool:
        return hasattr(self, "result_")

    def get_result(self) -> ImpactResult:
        if not self.is_fitted:
            raise NotFittedError("ImpactScorer is not fitted; call fit(experiment, data) first")
        return self.result_


# --------------------------------------------------------------------------------------------------------------
# Plot
# --------------------------------------------------------------------------------------------------------------


def plot_impact(result: ImpactResult, *, units: str | None = None) -> Figure:
    """Before/after plot with the counterfactual and its band (top) and the weekly effect (bottom).

    Greyscale-readable: observed is a solid black line with dots, the counterfactual a dashed dark-grey line,
    the interval a light-grey band, the start a dotted vertical line. `units` labels the y axes
    (default: "<indicator> per week").
    """
    from matplotlib.figure import Figure

    s = result.series
    ds = pd.to_datetime(pd.Series(s.ds))
    post = np.array([c is not None for c in s.counterfactual])
    obs = np.asarray(s.observed, dtype=float)
    cf = np.array([np.nan if v is None else v for v in s.counterfactual], dtype=float)
    lo = np.array([np.nan if v is None else v for v in s.lower], dtype=float)
    hi = np.array([np.nan if v is None else v for v in s.upper], dtype=float)
    unit_label = units or f"{result.indicator} per week"
    level = int(round(100 * (1 - result.alpha)))

    fig = Figure(figsize=(9, 6), layout="constrained")
    ax, ax2 = fig.subplots(2, 1, sharex=True, height_ratios=(2, 1))
    start = pd.Timestamp(result.start)
    for a in (ax, ax2):
        a.axvline(start, color="0.35", linestyle=":", linewidth=1.2)
        a.grid(True, color="0.9", linewidth=0.6)
    ax.fill_between(ds[post], lo[post], hi[post], color="0.85", label=f"{level}% interval", linewidth=0)
    ax.plot(
        ds[post], cf[post], color="0.35", linestyle="--", linewidth=1.6, label="counterfactual (no change)"
    )
    ax.plot(ds, obs, color="black", marker="o", markersize=3, linewidth=1.3, label="observed")
    ax.set_ylabel(unit_label)
    ax.legend(loc="best", fontsize=8, frameon=False)
    eff = obs - cf
    ax2.fill_between(ds[post], (obs - hi)[post], (obs - lo)[post], color="0.85", linewidth=0)
    ax2.plot(ds[post], eff[post], color="black", marker="o", markersize=3, linewidth=1.3)
    ax2.axhline(0.0, color="0.35", linewidth=0.8)
    ax2.set_ylabel(f"effect ({unit_label})")
    ax2.set_xlabel("week")
    rel = "" if result.relative_effect is None else f" ({result.relative_effect:+.0%})"
    fig.suptitle(
        f"{result.experiment_id}: {result.treated_series} - {result.verdict}\n"
        f"average effect {result.effect:+.3g}{rel} per week, {level}% CI [{result.ci_low:.3g}, {result.ci_high:.3g}],"
        f" p = {result.p_value:.3f}",
        fontsize=10,
    )
    ax.text(0.0, 1.02, "before", transform=ax.transAxes, fontsize=8, color="0.3")
    ax.annotate(
        "after",
        xy=(start, 1.02),
        xycoords=("data", "axes fraction"),
        fontsize=8,
        color="0.3",
        xytext=(4, 0),
        textcoords="offset points",
    )
    return fig
