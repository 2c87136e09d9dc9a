"""Cross-checks reported beside the estimate: difference-in-differences and a Mann-Whitney before/after test;
and which controls a refused fit found collinear."""

from __future__ import annotations

import logging
import math

import numpy as np
from pydantic import BaseModel
from scipy import stats

from ml.errors import InputError
from ml.experiments.effect import with_step

logger = logging.getLogger(__name__)


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


def collinear_controls_error(
    experiment_id: str, names: list[str], X_pre: np.ndarray, X_post: np.ndarray
) -> InputError:
    """One clear error naming the control column(s) (`names`; values `X_pre` over the fitted pre-period weeks
    and `X_post`) that the fit refused as collinear: with the step at the start (a control that itself changes
    exactly at the start) or with the other controls (two controls that move together)."""
    n, h = X_pre.shape[0], np.asarray(X_post).shape[0]
    Z = with_step(X_pre, X_post, n, h)  # the fit's regressors: the controls, then the step
    C, base = Z[:, :-1], np.c_[np.ones(n + h), Z[:, -1]]

    def parallel(col: np.ndarray, others: np.ndarray) -> bool:
        res = col - others @ np.linalg.lstsq(others, col, rcond=None)[0]
        return bool(np.linalg.norm(res) <= 1e-6 * max(float(np.linalg.norm(col - col.mean())), 1e-300))

    at_start = [nm for j, nm in enumerate(names) if parallel(C[:, j], base)]
    if at_start:
        return InputError(
            f"experiment {experiment_id!r}: control(s) {', '.join(map(repr, at_start))} change exactly at the"
            " start, like the step the effect is read from (the change may have reached them): leave them out of"
            " the controls",
            field="controls",
            value=at_start,
        )
    tied = [nm for j, nm in enumerate(names) if parallel(C[:, j], np.c_[base, np.delete(C, j, axis=1)])]
    return InputError(
        f"experiment {experiment_id!r}: controls {', '.join(map(repr, tied or names))} move together (collinear"
        " over the pre- and post-period): leave one of them out",
        field="controls",
        value=tied or names,
    )
