"""Change-point building blocks: the AR(1) noise model, PELT with an L2 cost, the Hampel filter and Fourier terms."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

logger = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------------------------------
# Noise model
# --------------------------------------------------------------------------------------------------------------


def ar1_mean_variance(n: int, phi: float, sigma: float) -> float:
    """Exact variance of the mean of ``n`` consecutive values of a stationary AR(1) with marginal sd ``sigma``."""
    if n <= 0:
        return math.inf
    if phi == 0:
        return sigma**2 / n
    k = np.arange(1, n)
    return float(sigma**2 / n * (1.0 + 2.0 * np.sum((1.0 - k / n) * phi**k)))


def mad_sd(x: np.ndarray) -> float:
    """The normal-consistent robust sd of `x`: 1.4826 x its median absolute deviation (0 when it is empty)."""
    x = np.asarray(x, dtype=float)
    return 1.4826 * float(np.median(np.abs(x - np.median(x)))) if x.size else 0.0


def _mad_var(x: np.ndarray) -> float:
    x = x[np.isfinite(x)]
    if len(x) < 3:
        return 0.0
    return mad_sd(x) ** 2


def robust_ar1(z: np.ndarray, max_phi: float = 0.9, max_lag: int = 8) -> tuple[float, float]:
    """(phi, marginal sd) of AR(1) noise from a robust variogram: little affected by level shifts and outliers.

    For AR(1), Var(x_{t+k} - x_t) = 2 s^2 (1 - phi^k). Each lag's variance is estimated by the MAD of the lag-k
    differences (a shift or an outlier spoils only k of them) and (phi, s) fitted on the log scale over
    k = 1..max_lag, phi on a 0.01 grid (the idea of Chakar et al. 2017, over several lags for stability).
    """
    n = len(z)
    lags = np.arange(1, max(2, min(max_lag, n // 4)) + 1)
    v = np.array([_mad_var(z[k:] - z[:-k]) for k in lags])
    if not (v > 0).all():
        sd = float(np.std(z))
        return 0.0, sd
    grid = np.arange(0.0, max_phi + 1e-9, 0.01)
    a = np.log(2.0 * (1.0 - grid[:, None] ** lags[None, :]))
    resid = np.log(v)[None, :] - a
    level = resid.mean(axis=1)
    err = ((resid - level[:, None]) ** 2).sum(axis=1)
    j = int(np.argmin(err))
    return float(grid[j]), float(math.exp(level[j] / 2))


def residual_ar1(r: np.ndarray, n_segments: int = 1, max_phi: float = 0.9) -> tuple[float, float]:
    """(phi, sd) of residuals around ``n_segments`` fitted means: lag-1 autocorrelation, bias-corrected.

    Removing a mean from each segment biases the autocorrelation down by about (1 + 4 phi) / n per segment.
    """
    n = len(r)
    denom = float(np.dot(r, r))
    if n < 4 or denom <= 0:
        return 0.0, 0.0
    rho = float(np.dot(r[:-1], r[1:]) / denom)
    rho = rho + n_segments * (1.0 + 4.0 * max(rho, 0.0)) / n
    return float(np.clip(rho, 0.0, max_phi)), math.sqrt(denom / max(n - n_segments, 1))


# --------------------------------------------------------------------------------------------------------------
# Components
# --------------------------------------------------------------------------------------------------------------


def _fourier(n: int, m: int, k: int) -> np.ndarray:
    t = np.arange(n)
    cols = []
    for j in range(1, k + 1):
        cols.append(np.cos(2 * np.pi * j * t / m))
        if 2 * j != m:
            cols.append(np.sin(2 * np.pi * j * t / m))
    return np.column_stack(cols)


def _hampel(z: np.ndarray, window: int, thresh: float) -> tuple[np.ndarray, np.ndarray]:
    """Indices whose deviation from the centred running median exceeds ``thresh``; and the running median."""
    med = pd.Series(z).rolling(window, center=True, min_periods=1).median().to_numpy()
    return np.flatnonzero(np.abs(z - med) > thresh), med


def pelt_l2(z: np.ndarray, pen: float, min_size: int) -> list[int]:
    """Optimal partition of ``z`` into constant-mean segments (L2 cost + ``pen`` per change), by PELT.

    Returns the start index of every segment after the first. Exact (Killick et al., 2012), O(n) to O(n^2).
    """
    n = len(z)
    if n < 2 * min_size:
        return []
    cs = np.concatenate([[0.0], np.cumsum(z)])
    cs2 = np.concatenate([[0.0], np.cumsum(z * z)])
    best = np.full(n + 1, np.inf)
    best[0] = -pen
    prev = np.zeros(n + 1, dtype=int)
    buf = np.empty(n + 1, dtype=int)  # candidate last changes, kept in buf[:k]
    k = 0
    for t in range(min_size, n + 1):
        buf[k] = t - min_size
        k += 1
        cand = buf[:k]
        seg = t - cand
        cost = cs2[t] - cs2[cand] - (cs[t] - cs[cand]) ** 2 / seg
        total = best[cand] + cost
        j = int(np.argmin(total))
        best[t] = total[j] + pen
        prev[t] = cand[j]
        keep = cand[total <= best[t]]
        k = len(keep)
        buf[:k] = keep
    cps = []
    t = n
    while t > 0:
        t = int(prev[t])
        if t > 0:
            cps.append(t)
    return sorted(cps)


def _segment_means(z: np.ndarray, cps: Sequence[int]) -> np.ndarray:
    level = np.empty_like(z)
    edges = [0, *cps, len(z)]
    for a, b in zip(edges[:-1], edges[1:], strict=True):
        level[a:b] = z[a:b].mean()
    return level


def best_hinge(
    r: np.ndarray, cps: Sequence[int], lr_var: float, min_size: int
) -> tuple[float, int, float] | None:
    """(|t|, tau, slope change) of the hinge max(0, t - tau), centred within the segments ``cps``, that best fits
    the residuals ``r`` (|t| with long-run variance ``lr_var``), tau at least 2 ``min_size`` from either end."""
    n = len(r)
    t = np.arange(n, dtype=float)
    best: tuple[float, int, float] | None = None
    for tau in range(2 * min_size, n - 2 * min_size):
        h = np.maximum(0.0, t - tau)
        h = h - _segment_means(h, cps)
        hh = float(np.dot(h, h))
        if hh <= 0:
            continue
        b = float(np.dot(h, r)) / hh
        z = abs(b) / math.sqrt(lr_var / hh)
        if best is None or z > best[0]:
            best = (z, tau, b)
    return best


# --------------------------------------------------------------------------------------------------------------
# Sparse counts
# --------------------------------------------------------------------------------------------------------------

#: A series of whole non-negative numbers with a median at most this is tested on the square-root scale.
COUNT_SCALE_MEDIAN = 5.0


def sparse_counts(y: np.ndarray) -> bool:
    """Whether the observed values are counts low enough for their Poisson noise to change with their level.

    Weekly counts with a median of at most :data:`COUNT_SCALE_MEDIAN` (a component's incidents, say) are quiet
    (0-1 a week, a noise sd near 0.5) for months and then busy (3-5 a week, an sd near 2): one noise sd for the
    whole series, estimated robustly, takes the quiet stretches' and then finds "shifts" in every busy one.
    """
    y = y[np.isfinite(y)]
    return bool(y.size and (y >= 0).all() and (y == np.round(y)).all() and np.median(y) <= COUNT_SCALE_MEDIAN)


def to_count_scale(y: np.ndarray) -> np.ndarray:
    """Anscombe's variance-stabilising transform 2 sqrt(y + 3/8): Poisson counts get a noise sd near 1."""
    out: np.ndarray = 2.0 * np.sqrt(np.maximum(y, 0.0) + 0.375)
    return out


def count_scale_sd(mean: float) -> float:
    """The sd of Anscombe's transform of Poisson(``mean``) counts: the least noise a count series at that mean rate
    has on the square-root scale (near 1 from a mean of about 2; sqrt(1.25 mean) or so for a rare event). A robust
    sd of a series that is 0 in most weeks is 0 or close to it, however many incidents its other weeks hold."""
    mean = max(float(mean), 0.0)
    if mean == 0.0:
        return 0.0
    # the transform's sd is 1 to within 0.1% from a mean of 20 (and one huge value must cost nothing)
    if mean >= 20.0:
        return 1.0
    k = np.arange(int(mean + 12.0 * math.sqrt(mean) + 25.0))
    pmf = stats.poisson.pmf(k, mean)
    a = to_count_scale(k.astype(float))
    m1 = float(pmf @ a) / float(pmf.sum())
    return math.sqrt(max(float(pmf @ (a - m1) ** 2) / float(pmf.sum()), 0.0))


def from_count_scale(v: float) -> float:
    """The Poisson mean a level on the count scale stands for: (v / 2)^2 - 1/8 (its unbiased inverse), >= 0; a
    level below 0 there (a falling trend carried past the zero counts) stands for 0, so that the inverse never
    decreases and a fall stays a fall."""
    return max((max(float(v), 0.0) / 2.0) ** 2 - 0.125, 0.0)


def _poisson_sums(counts: np.ndarray, profile: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, float]:
    """Cumulative counts and weights (the Poisson mean each point's ``profile`` stands for; 1 without one) over
    the observed points, and sum(y log weight), the part of the log-likelihood no split changes."""
    y = np.asarray(counts, dtype=float)
    obs = np.isfinite(y)
    w = (
        np.ones(len(y))
        if profile is None
        else np.array([max(from_count_scale(v), 1e-3) if math.isfinite(v) else 1.0 for v in profile])
    )
    y0, w0 = np.where(obs, y, 0.0), np.where(obs, w, 0.0)
    return (
        np.concatenate([[0.0], np.cumsum(y0)]),
        np.concatenate([[0.0], np.cumsum(w0)]),
        float(np.sum(y0 * np.log(np.where(obs, w, 1.0)))),
    )


def _segment_loglik(cy: np.ndarray, cw: np.ndarray, a: int, b: int) -> float:
    """Poisson log-likelihood (without the y! and weight terms) of points a..b-1 at one rate, its MLE."""
    s, e = cy[b] - cy[a], cw[b] - cw[a]
    return float(s * math.log(s / e) - s) if s > 0 and e > 0 else 0.0


def poisson_deviance(counts: np.ndarray, cps: Sequence[int], profile: np.ndarray | None = None) -> float:
    """-2 x the Poisson log-likelihood of the counts with one rate per segment (each point's rate that x the mean
    its ``profile`` stands for; see :func:`poisson_refine`), up to a constant of the counts alone."""
    cy, cw, fixed = _poisson_sums(counts, profile)
    edges = [0, *sorted(int(c) for c in cps), len(cy) - 1]
    return -2.0 * (
        fixed + sum(_segment_loglik(cy, cw, a, b) for a, b in zip(edges[:-1], edges[1:], strict=True))
    )


def poisson_refine(
    counts: np.ndarray, cps: Sequence[int], min_size: int, profile: np.ndarray | None = None, reach: int = 12
) -> list[int]:
    """Change points of a count series moved to where a Poisson likelihood puts them.

    The square-root scale gives a zero count the same value whatever the rate, so at a few incidents a week the
    L2 location of a rise drifts past the weeks that happened to hold none (a component going from 0 to about
    one incident a week is often dated 3-9 weeks late). Each change point in turn is placed at the best split,
    by the Poisson log-likelihood of the counts between its neighbours (each side one rate), within ``reach``
    points of where it was and ``min_size`` of its neighbours; it moves only for a gain of more than half a
    unit. ``profile`` (default: flat) is the expected value of each point on the square-root scale apart from its
    level (the series' mean level plus its season and trend there): a point's rate is its side's rate x the Poisson
    mean its profile stands for. Gaps (NaN) carry nothing.
    """
    cy, cw, _ = _poisson_sums(counts, profile)
    out = sorted(int(c) for c in cps)
    n = len(cy) - 1
    for i, c in enumerate(out):
        a = out[i - 1] if i > 0 else 0
        b = out[i + 1] if i + 1 < len(out) else n
        lo, hi = max(a + min_size, c - reach), min(b - min_size, c + reach)
        if lo > hi:
            continue
        fits = {p: _segment_loglik(cy, cw, a, p) + _segment_loglik(cy, cw, p, b) for p in range(lo, hi + 1)}
        best = max(fits, key=lambda p: (fits[p], -abs(p - c)))
        if fits[best] - fits.get(c, -math.inf) > 0.5:
            out[i] = best
    return out
