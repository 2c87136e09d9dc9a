"""The effect of a change on arrays: the counterfactual model's estimate, its interval and its calibration.

Two estimators share :class:`~ml.experiments.counterfactual.CounterfactualModel` and the calibration of
:mod:`ml.experiments.calibration`:

* ``"step"`` (the default), intervention analysis (Box & Tiao 1975): the model is fitted on the pre- and
  post-period together with a step ``1{t >= start}`` as one more regressor (flat prior, like the intercept and
  the controls); the effect is the step's coefficient, whose posterior is a Student-t per grid point mixed with
  the grid weights. Under a stable level this is close to the forecast comparison; under a wandering level the
  post-period weeks locate the level after the start, so the jump is measured with far less variance than an
  eight-week forecast has.
* ``"forecast"``, the method before: the model is fitted on the pre-period alone and the post-period mean is
  compared with the forecast of it.

Either way ``effect`` is the average post-period effect (for a step, its coefficient), the counterfactual mean
is the observed mean minus the effect, and ``mixture`` is the counterfactual mean's distribution, so the
interval and the p-value come from the same distribution. Placebo windows are scored by the same estimator.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from ml.errors import InputError
from ml.experiments.calibration import (
    MAX_PLACEBO_HORIZON,
    MAX_PLACEBOS,
    Calibration,
    CalibrationMethod,
    Estimator,
    PlaceboWindow,
    calibrated_factor,
    describe,
    is_nonstationary,
    normal_score,
    placebo_ends,
    placebo_train,
    prior_factor,
)
from ml.experiments.counterfactual import CounterfactualModel, TMixture, as_times

logger = logging.getLogger(__name__)

ESTIMATORS: tuple[Estimator, ...] = ("step", "forecast")


@dataclass
class EffectEstimate:
    """Average effect over the post-period, its interval and p-value, with the fitted models behind it.

    `model` is fitted on the pre-period alone (its forecasts draw the counterfactual band and plan experiments);
    `joint` is the step estimator's fit on the pre- and post-period (None for the forecast comparison);
    `mixture` is the distribution of the counterfactual mean (observed mean minus the effect), calibrated.
    """

    observed_mean: float
    counterfactual_mean: float
    effect: float
    ci_low: float
    ci_high: float
    p_value: float
    se: float
    inflation: float
    n_placebos: int
    calibration: Calibration
    n_pre: int
    n_post: int
    model: CounterfactualModel
    mixture: TMixture
    estimator: Estimator = "step"
    joint: CounterfactualModel | None = None


def _two_sided_p(mix: TMixture, x: float) -> float:
    F = min(max(float(mix.cdf(x)), 0.0), 1.0)  # the weights' sum may round past 1: never a negative p
    return float(min(1.0, 2.0 * min(F, 1.0 - F)))


def with_step(X_pre: np.ndarray | None, X_post: np.ndarray | None, n: int, h: int) -> np.ndarray:
    """Regressors for the joint fit: the controls (pre over post) and the step 1{t >= start} as the last column."""
    step: np.ndarray = np.r_[np.zeros(n), np.ones(h)][:, None]
    if X_pre is None or X_post is None:
        return step
    C = np.vstack(
        [np.asarray(X_pre, dtype=float).reshape(n, -1), np.asarray(X_post, dtype=float).reshape(h, -1)]
    )
    return np.hstack([C, step])


#: A last pre-period week this many standard deviations from the other fitted pre-period weeks is left out of the
#: step's fit: with autocorrelated noise the step's estimate leans on the weeks either side of the start, so one
#: unusual week just before it (an experiment started after a bad week) would be read as a change that reverts.
BOUNDARY_OUTLIER_Z = 4.0


def boundary_outlier(y_pre: np.ndarray) -> bool:
    """Whether the last pre-period value lies more than ``BOUNDARY_OUTLIER_Z`` sd from the others (at least 8)."""
    rest = np.asarray(y_pre[:-1], dtype=float)
    if rest.size < 8:
        return False
    gap = abs(float(y_pre[-1]) - float(np.mean(rest)))
    sd = float(np.std(rest, ddof=1))
    return gap > BOUNDARY_OUTLIER_Z * sd if sd > 0 else gap > 0


def fit_step(
    model: CounterfactualModel,
    y_pre: np.ndarray,
    y_post: np.ndarray,
    X_pre: np.ndarray | None,
    X_post: np.ndarray | None,
    t_pre: np.ndarray,
    t_post: np.ndarray,
) -> tuple[CounterfactualModel, TMixture]:
    """The step estimator: `model` (unfitted) fitted on both periods with the step column, and the distribution
    of the counterfactual mean (the observed post-period mean minus the step's coefficient)."""
    if boundary_outlier(y_pre):
        y_pre, t_pre = y_pre[:-1], t_pre[:-1]
        X_pre = None if X_pre is None else np.asarray(X_pre)[:-1]
    n, h = y_pre.shape[0], y_post.shape[0]
    X = with_step(X_pre, X_post, n, h)
    joint = model.fit(np.r_[y_pre, y_post], X, np.r_[t_pre, t_post])
    eff = joint.coef_posterior(X.shape[1])
    observed = float(np.mean(y_post))
    return joint, TMixture(eff.weights, observed - eff.loc, eff.scale, eff.df)


def placebo_scores(
    windows: Sequence[PlaceboWindow],
    *,
    train: int,
    horizon: int,
    model: CounterfactualModel,
    max_placebos: int = MAX_PLACEBOS,
    estimator: Estimator = "step",
) -> tuple[list[float], int]:
    """Normal scores of placebo outcomes at fake intervention dates in `windows`, and how many series gave one.

    In each series the estimator is applied to `train` observations before a fake start and `horizon` after it,
    stepping back half a horizon from the series' end; the most recent placebos of all series come first, at
    most `max_placebos` in all.
    """
    candidates: list[tuple[int, int, PlaceboWindow]] = []
    for w in windows:
        for rank, e in enumerate(placebo_ends(w.y.shape[0], train, horizon, max_placebos)):
            candidates.append((rank, e, w))
    candidates.sort(key=lambda c: c[0])
    scores: list[float] = []
    series: set[str] = set()
    for _, e, w in candidates:
        if len(scores) >= max_placebos:
            break
        Xtr = None if w.X is None else w.X[e - train : e]
        Xte = None if w.X is None else w.X[e : e + horizon]
        ytr, yte = w.y[e - train : e], w.y[e : e + horizon]
        ttr, tte = w.t[e - train : e], w.t[e : e + horizon]
        if np.ptp(ytr) == 0:
            continue
        try:
            if estimator == "step":
                _, mix = fit_step(model.clone(), ytr, yte, Xtr, Xte, ttr, tte)
            else:
                mix = model.clone().fit(ytr, Xtr, ttr).predict_mean(tte, Xte)
        except InputError:  # e.g. a control constant over this window: no placebo here
            continue
        scores.append(normal_score(float(mix.cdf(float(np.mean(yte))))))
        series.add(w.series)
    return scores, len(series)


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
    pool: Sequence[PlaceboWindow] = (),
    series: str = "treated",
    max_placebos: int = MAX_PLACEBOS,
    prior: float | None = None,
    estimator: Estimator = "step",
) -> EffectEstimate:
    """Average effect of the change (observed minus counterfactual over the post-period) with its interval.

    The model is fitted on the last `max_pre_weeks` pre-period observations (and, for the ``"step"``
    estimator, the post-period with a step column). With `calibrate`, the interval is widened as
    :mod:`ml.experiments.calibration` says, from placebo windows (scored by the same estimator) in the older
    pre-period history and in `pool` (the same indicator's other series, up to the start) and the learned prior
    (or `prior`, a fixed prior factor). Times default to consecutive weeks.
    """
    if not 0.0 < alpha < 1.0:
        raise InputError("alpha must be between 0 and 1", field="alpha", value=alpha)
    if estimator not in ESTIMATORS:
        raise InputError("estimator must be 'step' or 'forecast'", field="estimator", value=estimator)
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
    t_pre = as_times(t_pre, n, "t_pre")
    t_post = as_times(t_post, h, "t_post", default_start=float(t_pre[-1] + 1))
    Xp = None if X_pre is None else np.asarray(X_pre, dtype=float).reshape(n, -1)
    Xo = None if X_post is None else np.asarray(X_post, dtype=float).reshape(h, -1)
    if (Xp is None) != (Xo is None):
        raise InputError("give controls for both periods or for neither", field="X_post", value=None)
    template = model if model is not None else CounterfactualModel()
    m_used = min(n, max_pre_weeks)
    lo = n - m_used
    X_fit = None if Xp is None else Xp[lo:]
    fitted = template.clone().fit(y_pre[lo:], X_fit, t_pre[lo:])
    joint: CounterfactualModel | None = None
    if estimator == "step":
        joint, mix = fit_step(template.clone(), y_pre[lo:], y_post, X_fit, Xo, t_pre[lo:], t_post)
    else:
        mix = fitted.predict_mean(t_post, Xo)
    nonstat = is_nonstationary(fitted.noise_summary())  # from the pre-period alone, as the placebos
    f0 = prior
    if f0 is None:
        f0 = prior_factor(m_used, controls=Xp is not None, nonstationary=nonstat, estimator=estimator)
    calibration = Calibration(
        method="model",
        factor=1.0,
        prior_factor=f0,
        n_placebos=0,
        n_series=0,
        nonstationary=nonstat,
        reason=describe("model", 1.0, f0, 0, 0, m_used, nonstat),
    )
    if calibrate:
        own = PlaceboWindow(series=series, y=y_pre, X=Xp, t=t_pre)
        windows = [own, *pool]
        hp = min(h, MAX_PLACEBO_HORIZON)
        scores, n_series = placebo_scores(
            windows,
            train=placebo_train(m_used, max((w.y.shape[0] for w in pool), default=0), hp),
            horizon=hp,
            model=template,
            max_placebos=max_placebos,
            estimator=estimator,
        )
        factor = calibrated_factor(scores, alpha=alpha, prior=f0)
        method: CalibrationMethod = "pooled placebos" if scores else "prior"
        calibration = Calibration(
            method=method,
            factor=factor,
            prior_factor=f0,
            n_placebos=len(scores),
            n_series=n_series,
            nonstationary=nonstat,
            reason=describe(method, factor, f0, len(scores), n_series, m_used, nonstat),
        )
        mix = mix.inflate(factor)
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
        inflation=calibration.factor,
        n_placebos=calibration.n_placebos,
        calibration=calibration,
        n_pre=m_used,
        n_post=h,
        model=fitted,
        mixture=mix,
        estimator=estimator,
        joint=joint,
    )


def se_by_horizon(
    est: EffectEstimate,
    t_post: np.ndarray,
    X_post: np.ndarray | None,
    alpha: float,
    counts: Sequence[int] = (),
) -> np.ndarray:
    """Standard error of the effect (calibrated, as ``EffectEstimate.se``) had the post-period been the first `c`
    weeks of `t_post` (controls `X_post`, one row per week), for each `c` in `counts` (default 1..len(t_post)).

    It needs no post-period values, so plans can use it: the forecast comparison reads it from the pre-period
    model's forecasts; the step estimator from the step coefficient's posterior with the pre-period model's grid
    weights and noise variances (``CounterfactualModel.coef_scale``).
    """
    t_post = np.asarray(t_post, dtype=float)
    cs = list(counts) or list(range(1, t_post.size + 1))
    z = 2.0 * float(stats.norm.ppf(1 - alpha / 2))
    Xo = None if X_post is None else np.asarray(X_post, dtype=float).reshape(t_post.size, -1)
    m = est.model
    if est.estimator == "forecast":
        mix = m.predict_mean_by_horizon(t_post, Xo).inflate(est.inflation)
        se: np.ndarray = (mix.ppf(1 - alpha / 2) - mix.ppf(alpha / 2))[np.asarray(cs) - 1] / z
        return se
    X_pre = m.design_[:, 1:] if m.k_ > 1 else None
    X = with_step(X_pre, Xo, m.n_, t_post.size)
    lengths = [m.n_ + c for c in cs]
    mix = m.coef_scale(X.shape[1], np.r_[m.t_, t_post], X, lengths).inflate(est.inflation)
    out: np.ndarray = (mix.ppf(1 - alpha / 2) - mix.ppf(alpha / 2)) / z
    return out
