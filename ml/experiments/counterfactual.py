"""The counterfactual model (local level + trend + AR(1) noise, integrated over a grid) and its predictions.

The effect estimate on arrays is in :mod:`ml.experiments.effect`; see :mod:`ml.experiments.impact` for the method."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import special, stats

from ml.errors import InputError, NotFittedError

logger = logging.getLogger(__name__)

#: AR(1) coefficients of the noise integrated over (uniform prior).
DEFAULT_PHI_GRID: tuple[float, ...] = (-0.3, 0.0, 0.2, 0.4, 0.55, 0.7, 0.8)
#: Weekly random-walk variance of the level, relative to the AR(1) noise variance (0: a stable level).
DEFAULT_Q_GRID: tuple[float, ...] = (0.0, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0)
#: Prior probability of a stable level (q = 0); the rest is spread evenly over the positive q values.
DEFAULT_Q_ZERO_PRIOR = 0.65
#: Variance of a local linear trend's slope (per period squared), relative to the AR(1) noise variance (0: none).
DEFAULT_R_GRID: tuple[float, ...] = (0.0, 0.01, 1.0)
#: Prior probability of no trend (r = 0); the rest is spread evenly over the positive r values.
DEFAULT_R_ZERO_PRIOR = 0.5
#: Periods of a stochastic cycle (seasons, slow cycles), each offered when the fitted window holds two of them.
DEFAULT_CYCLE_PERIODS: tuple[float, ...] = (4, 5, 6, 8, 10, 12, 15, 20, 26)
#: Cycle variance relative to the AR(1) noise (0: none). Off by default (``cycle_grid=CYCLE_GRID_ON`` opts in): on
#: real series it raised power at +2 sd from 0.71 to 0.77 but false calls from 0.055 to 0.074 (bench_calibration).
DEFAULT_CYCLE_GRID: tuple[float, ...] = (0.0,)
CYCLE_GRID_ON: tuple[float, ...] = (0.0, 1.0, 4.0)
#: Prior probability of no cycle; the rest is spread evenly over the (variance, period) pairs offered.
DEFAULT_CYCLE_ZERO_PRIOR = 0.5
#: With a cycle, the AR(1) coefficients and level variances integrated over (a coarser grid keeps fits fast).
CYCLE_PHI_GRID, CYCLE_Q_GRID = (0.0, 0.5), (0.0, 0.01, 0.1)
#: Damping of the cycle's autocorrelation per period: rho^lag cos(2 pi lag / period) (Harvey's cycle).
DEFAULT_CYCLE_DAMPING = 0.95


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
        mean: np.ndarray = np.sum(self._w() * self.loc, axis=0)
        return mean

    def sd(self) -> np.ndarray:
        """Standard deviation (the spread between components included)."""
        var_factor = self.df / (self.df - 2.0) if self.df > 2 else 3.0
        m = self.mean()
        second = np.sum(self._w() * (self.scale**2 * var_factor + self.loc**2), axis=0)
        sd: np.ndarray = np.sqrt(np.maximum(second - m**2, 0.0))
        return sd

    def cdf(self, x: np.ndarray | float) -> np.ndarray:
        z = (np.asarray(x, dtype=float) - self.loc) / self.scale
        cdf: np.ndarray = np.sum(self._w() * special.stdtr(self.df, z), axis=0)
        return cdf

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
        mid_point: np.ndarray = 0.5 * (lo + hi)
        return mid_point

    def inflate(self, factor: float) -> TMixture:
        """The same mixture with every component's scale multiplied by `factor`."""
        return TMixture(self.weights, self.loc, self.scale * factor, self.df)


# --------------------------------------------------------------------------------------------------------------
# Counterfactual model (arrays)
# --------------------------------------------------------------------------------------------------------------


def _zero_prior(grid: np.ndarray, zero_prior: float) -> np.ndarray:
    """Prior over a variance grid: `zero_prior` on the zero value(s), the rest spread evenly over the others."""
    n_zero, n_pos = int(np.sum(grid == 0)), int(np.sum(grid > 0))
    if n_zero and n_pos:
        return np.where(grid == 0, zero_prior / n_zero, (1.0 - zero_prior) / n_pos)
    return np.full(grid.size, 1.0 / grid.size)


def as_times(
    t: np.ndarray | Sequence[float] | None, n: int, name: str, default_start: float = 0.0
) -> np.ndarray:
    """`t` checked as `n` strictly increasing whole period numbers (`default_start` onwards when None)."""
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


def _column_transform(D: np.ndarray) -> np.ndarray:
    """The (k, k) matrix T with ``D @ T`` the design with its regressors centred and scaled to unit sd (the
    intercept kept): the same model, reparametrised (``beta = T @ beta_std``), but a control on a large offset
    (1e9 + noise) is no longer nearly parallel to the intercept, so the normal matrix stays well conditioned.
    Columns with no spread are left as they are (the callers refuse or handle them)."""
    k = D.shape[1]
    T = np.eye(k)
    if k > 1:
        centre = D[:, 1:].mean(axis=0)
        sd = D[:, 1:].std(axis=0)
        sd = np.where(sd > 0, sd, 1.0)
        T[0, 1:] = -centre / sd
        T[np.arange(1, k), np.arange(1, k)] = 1.0 / sd
    return T


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
    r_grid:
        Variance of a slope (a local linear trend over the fitted window, centred on its last period) relative
        to the noise variance; 0 means no trend.
    r_zero_prior:
        Prior probability of r = 0 (no trend); the rest is spread evenly over the positive values of `r_grid`.
    cycle_periods, cycle_grid, cycle_zero_prior, cycle_damping:
        A stochastic cycle (covariance ``c * damping^lag * cos(2 pi lag / period)``) added to the noise: its
        variance ratio ``c`` from `cycle_grid` (0: none, prior `cycle_zero_prior`) and its period from
        `cycle_periods`, offered only when the fitted window holds two periods. It carries a season or a slow
        cycle into the post-period instead of leaving it in the noise.

    Learned attributes: ``weights_`` (posterior weight of each grid point), ``phi_``, ``q_``, ``r_`` (grid points),
    ``s2_`` (noise variance per grid point, data units squared), ``df_`` (degrees of freedom of the predictions),
    ``n_`` (observations), ``k_`` (coefficients, intercept included), ``t_`` (fitted times) and ``design_``
    (intercept and regressors).
    """

    def __init__(
        self,
        phi_grid: Sequence[float] = DEFAULT_PHI_GRID,
        q_grid: Sequence[float] = DEFAULT_Q_GRID,
        q_zero_prior: float = DEFAULT_Q_ZERO_PRIOR,
        r_grid: Sequence[float] = DEFAULT_R_GRID,
        r_zero_prior: float = DEFAULT_R_ZERO_PRIOR,
        cycle_periods: Sequence[float] = DEFAULT_CYCLE_PERIODS,
        cycle_grid: Sequence[float] = DEFAULT_CYCLE_GRID,
        cycle_zero_prior: float = DEFAULT_CYCLE_ZERO_PRIOR,
        cycle_damping: float = DEFAULT_CYCLE_DAMPING,
    ) -> None:
        self.phi_grid = phi_grid
        self.q_grid = q_grid
        self.q_zero_prior = q_zero_prior
        self.r_grid = r_grid
        self.r_zero_prior = r_zero_prior
        self.cycle_periods = cycle_periods
        self.cycle_grid = cycle_grid
        self.cycle_zero_prior = cycle_zero_prior
        self.cycle_damping = cycle_damping

    def clone(self) -> CounterfactualModel:
        """An unfitted copy with the same parameters."""
        return CounterfactualModel(
            self.phi_grid,
            self.q_grid,
            self.q_zero_prior,
            self.r_grid,
            self.r_zero_prior,
            self.cycle_periods,
            self.cycle_grid,
            self.cycle_zero_prior,
            self.cycle_damping,
        )

    # ---- fitting ----------------------------------------------------------------------------------------------

    def _validate_params(self, n: int) -> tuple[np.ndarray, ...]:
        """Grid points (phi, q, r, cycle variance, cycle angular frequency) and their prior, for `n` fitted weeks."""
        phi, q, r, c, periods = (
            np.asarray(v, dtype=float)
            for v in (self.phi_grid, self.q_grid, self.r_grid, self.cycle_grid, self.cycle_periods)
        )
        checks = (
            ("phi_grid", phi.size == 0 or np.any(np.abs(phi) >= 1), "needs values strictly between -1 and 1"),
            ("q_grid", q.size == 0 or np.any(q < 0), "needs non-negative values"),
            ("r_grid", r.size == 0 or np.any(r < 0), "needs non-negative values"),
            ("cycle_grid", c.size == 0 or np.any(c < 0), "needs non-negative values"),
            ("cycle_periods", np.any(periods < 2), "must be at least 2"),
            ("cycle_damping", not 0.0 < self.cycle_damping <= 1.0, "must be in (0, 1]"),
        )
        for name, bad, what in checks:
            if bad or (name != "cycle_damping" and np.ndim(getattr(self, name)) != 1):
                raise InputError(f"{name} {what}", field=name, value=getattr(self, name))
        for name in ("q_zero_prior", "r_zero_prior", "cycle_zero_prior"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise InputError(f"{name} must be in [0, 1]", field=name, value=getattr(self, name))
        offered = periods[2.0 * periods <= n]
        pairs = [(cv, 2.0 * np.pi / period) for cv in c[c > 0] for period in offered]
        parts = [self._subgrid(phi, q, r, [(0.0, 0.0)], self.cycle_zero_prior if pairs else 1.0)]
        if pairs:
            cphi = np.asarray(CYCLE_PHI_GRID)
            cq = np.asarray(CYCLE_Q_GRID)
            parts.append(self._subgrid(cphi, cq, r, pairs, 1.0 - self.cycle_zero_prior))
        return tuple(np.concatenate([pt[i] for pt in parts]) for i in range(6))

    def _subgrid(
        self, phi: np.ndarray, q: np.ndarray, r: np.ndarray, cycles: list[tuple[float, float]], mass: float
    ) -> tuple[np.ndarray, ...]:
        """Every (phi, q, r, cycle) combination, with prior mass `mass` spread as the zero priors say."""
        q_prior, r_prior = _zero_prior(q, self.q_zero_prior), _zero_prior(r, self.r_zero_prior)
        i, j, k, m = (
            a.ravel()
            for a in np.meshgrid(
                np.arange(phi.size),
                np.arange(q.size),
                np.arange(r.size),
                np.arange(len(cycles)),
                indexing="ij",
            )
        )
        cyc = np.asarray(cycles, dtype=float)
        prior = mass * q_prior[j] * r_prior[k] / (phi.size * len(cycles))
        return phi[i], q[j], r[k], cyc[m, 0], cyc[m, 1], prior

    def _cov(self, a: np.ndarray, b: np.ndarray, keep: np.ndarray | None = None) -> np.ndarray:
        """Noise covariance (unit AR variance) between times `a` and `b` (both >= 1), shape (G, len a, len b);
        with `keep`, only the grid points it selects."""
        sel = slice(None) if keep is None else keep
        phi, q, r, cc, cw = (v[sel] for v in (self.phi_, self.q_, self.r_, self.cyc_c_, self.cyc_w_))
        lag = np.abs(a[:, None] - b[None, :]).astype(np.intp)
        powers = phi[:, None] ** np.arange(int(lag.max()) + 1)[None, :]  # (G, max lag + 1)
        ar = powers[:, lag]
        rw = q[:, None, None] * np.minimum(a[:, None], b[None, :])[None]
        slope = r[:, None, None] * ((a[:, None] - self.tc_) * (b[None, :] - self.tc_))[None]
        cov: np.ndarray = ar + rw + slope
        if np.any(cc > 0):
            damp = self.cycle_damping ** lag.astype(float)
            cov += cc[:, None, None] * damp[None] * np.cos(cw[:, None, None] * lag[None])
        return cov

    def fit(
        self, y: np.ndarray, X: np.ndarray | None = None, t: np.ndarray | None = None
    ) -> CounterfactualModel:
        """Fit on the pre-period: `y` (n,), optional regressors `X` (n, c), optional whole-period times `t` (n,)."""
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
        times = as_times(t, n, "t")
        phis, qs, rs, self.cyc_c_, self.cyc_w_, prior = self._validate_params(n)
        self.phi_, self.q_, self.r_ = phis, qs, rs
        G = phis.size
        # the random walk starts just before the first observation; with a flat prior on the intercept this
        # is the same as a diffuse initial level
        self.t0_ = float(times[0] - 1.0)
        tt = times - self.t0_
        self.tc_ = float(tt[-1])  # the slope term is centred on the last fitted period
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
        T = _column_transform(D)  # fit on centred, scaled regressors (the intercept absorbs the centres)
        rhs = np.concatenate([ys[:, None], D @ T], axis=1)
        W = np.linalg.solve(L, np.broadcast_to(rhs, (G, n, k + 1)))
        yw, Dw = W[:, :, 0], W[:, :, 1:]
        DtD = np.einsum("gni,gnj->gij", Dw, Dw)
        sign, logdet_DtD = np.linalg.slogdet(DtD)
        # columns on one scale first: the condition number then measures the angle between them, not their units
        d = np.sqrt(np.maximum(np.einsum("gii->gi", DtD), 1e-300))
        if np.any(sign <= 0) or np.any(np.linalg.cond(DtD / (d[:, :, None] * d[:, None, :])) > 1e12):
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
        self.prior_ = prior
        self.s2_ = rss / (n - k) * self.y_scale_**2
        self.df_ = float(n - k)
        self.n_, self.k_, self.t_, self.design_ = n, k, times, D
        self._transform = T  # beta (original units) = T @ beta (standardised regressors), per grid point
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
        tn = as_times(tn, h, "t_new") - self.t0_
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
        D_new = D_new @ self._transform  # on the fit's standardised regressors
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
        prior_var = np.diagonal(self._cov(tn, tn), axis1=1, axis2=2)
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

    def coef_posterior(self, j: int) -> TMixture:
        """Posterior of regression coefficient `j` (0: the intercept, then the columns of X), data units per unit
        of the regressor: a Student-t per grid point (flat prior, noise variance integrated out), mixed."""
        self._check_fitted()
        _, _, _, _, DtD_inv, beta, s2 = self._fit_state
        row = self._transform[j]  # coefficient j in original units: a combination of the standardised ones
        loc = beta @ row
        var = np.einsum("i,gij,j->g", row, DtD_inv, row)
        scale = np.sqrt(np.maximum(var, 0.0) * s2) * self.y_scale_
        return TMixture(self.weights_, loc * self.y_scale_, scale, self.df_)

    def coef_scale(
        self,
        j: int,
        t: np.ndarray,
        X: np.ndarray | None,
        lengths: Sequence[int] = (),
        min_weight: float = 1e-6,
    ) -> TMixture:
        """Coefficient `j`'s posterior, centred on 0, had the model been fitted on the first `lengths` of the
        periods `t` (after ``t0_``, with regressors `X`; default all), arrays (G, len(lengths)); the fitted grid
        weights and noise variances are kept (grid points below `min_weight` of the largest left out): how an
        interval would narrow with more weeks, before they are observed.

        One Cholesky factor serves every length: a prefix's factor is the full factor's leading block."""
        self._check_fitted()
        tt = np.asarray(t, dtype=float) - self.t0_
        D = _design(X, tt.size, "X")
        ends = np.asarray(list(lengths) or [tt.size], dtype=np.intp) - 1
        keep = self.weights_ >= min_weight * self.weights_.max()
        S = self._cov(tt, tt, keep)
        S[:, np.arange(tt.size), np.arange(tt.size)] += 1e-9
        T = _column_transform(D)  # standardised regressors, as in fit; T maps back to the original units
        Dw = np.linalg.solve(np.linalg.cholesky(S), np.broadcast_to(D @ T, (S.shape[0], *D.shape)))
        info = np.cumsum(np.einsum("gni,gnj->gnij", Dw, Dw), axis=1)[:, ends]  # (G, L, k, k)
        var = np.einsum("i,glij,j->gl", T[j], np.linalg.inv(info), T[j])
        scale = np.sqrt(np.maximum(var, 0.0) * self.s2_[keep][:, None])
        return TMixture(
            self.weights_[keep] / self.weights_[keep].sum(), np.zeros_like(scale), scale, self.df_
        )

    def noise_summary(self) -> dict[str, float]:
        """Posterior summaries of the noise structure: phi, q, P(level wanders), residual sd."""
        self._check_fitted()
        w = self.weights_
        return {
            "phi": float(w @ self.phi_),
            "q": float(w @ self.q_),
            "p_level_wander": float(w @ (self.q_ > 0)),
            "p_trend": float(w @ (self.r_ > 0)),
            "p_cycle": float(w @ (self.cyc_c_ > 0)),
            "p_nonstationary": float(w @ ((self.q_ > 0) | (self.r_ > 0))),
            "prior_nonstationary": float(self.prior_ @ ((self.q_ > 0) | (self.r_ > 0))),
            "noise_sd": float(math.sqrt(w @ self.s2_)),
        }
