"""Experiment impact scoring: a counterfactual for the treated series, and the effect of the change.

Method (CausalImpact-style, built to stay calibrated on short, autocorrelated weekly series):

1. Counterfactual model, fitted on the pre-period (at most ``max_pre_weeks`` recent weeks) and the post-period
   together, with a step ``1{t >= start}`` as one more regressor (intervention analysis, Box & Tiao 1975)::

       y_t = x_t' beta + mu_t + e_t,   mu_t a random walk (weekly variance q * s2) plus a random slope,
                                       e_t a stationary AR(1) (coefficient phi, variance s2), plus
                                       (opt-in, ``cycle_grid``) a stochastic cycle of 4-26 weeks

   ``x_t`` holds an intercept and the control series when the experiment has controls. The model nests white
   noise (phi = q = 0), an autocorrelated but stable level (q = 0) and a wandering level (q > 0). It is a Gaussian
   process regression, so everything is closed form: beta has a flat prior and s2 a Jeffreys prior, both
   integrated out exactly (Student-t predictions with n - k degrees of freedom), and (phi, q) are integrated over
   a grid weighted by their restricted likelihood. Uncertainty about the noise structure, the level and the
   regression on controls all flow into the counterfactual's interval. (A plug-in estimate of phi from 20-30 weeks,
   or a test that treats weeks as independent, is what makes naive intervals far too narrow.)
2. The effect is the step's coefficient, the average post-period effect (the counterfactual mean is the observed
   mean minus it): the average, the cumulative sum and both relative to the counterfactual. The interval (level
   1 - alpha) and the two-sided p-value come from the same posterior (a mixture of Student-t, one per grid
   point), so p < alpha exactly when the interval excludes zero. Because the post weeks locate the level after
   the start, a jump in a wandering series is measured far more precisely than by comparing the post-period
   with an eight-week forecast from the pre-period, the method before (``estimator="forecast"``, kept for
   comparison; :mod:`ml.experiments.effect`).
3. Calibration that borrows strength across series (:mod:`ml.experiments.calibration`): the same estimator is
   applied at fake intervention dates (same training length and horizon, ending before the start) in the
   treated series' older history and in the other series of the same indicator; the (1 - alpha) quantile of the
   placebo normal scores, pooled with a prior learned on real weekly series (wider for short fitted windows and
   non-stationary series), sets how much the model's interval is widened (never narrowed). The result says which
   calibration was used and why (``ImpactResult.calibration``).

Cross-checks reported beside the estimate: difference-in-differences against the mean of the controls (standard
error corrected for lag-1 autocorrelation) and a Mann-Whitney before/after test (which ignores autocorrelation:
a familiar reference, not evidence). ``bench/bench_impact.py`` measures false-positive rate, coverage and power.

Units: ``effect``, ``mde`` and ``Experiment.min_effect`` are in the indicator's own units per week; relative
figures are fractions of the counterfactual mean.

Layout: :mod:`ml.experiments.counterfactual` (the model), :mod:`~ml.experiments.effect` (:func:`estimate_effect`,
placebo scores), :mod:`~ml.experiments.checks`
(cross-checks), :mod:`~ml.experiments.results` (result models, verdict), :mod:`~ml.experiments.plots`
(:func:`plot_impact`); this module holds :class:`ImpactScorer` and re-exports the others' public names.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from scipy import stats

from ml.errors import InputError, NotFittedError, NotFoundError
from ml.experiments.calibration import Calibration, Estimator, PlaceboWindow
from ml.experiments.checks import (
    DiDCheck,
    MannWhitneyCheck,
    collinear_controls_error,
    did_check,
    mann_whitney_check,
)
from ml.experiments.counterfactual import (
    DEFAULT_PHI_GRID,
    DEFAULT_Q_GRID,
    DEFAULT_Q_ZERO_PRIOR,
    CounterfactualModel,
    TMixture,
)
from ml.experiments.effect import EffectEstimate, estimate_effect, placebo_scores, se_by_horizon
from ml.experiments.plots import plot_impact
from ml.experiments.results import ImpactDiagnostics, ImpactResult, ImpactSeries, Verdict, verdict_for
from ml.io.schemas import Experiment, series_key

__all__ = [
    "DEFAULT_PHI_GRID",
    "DEFAULT_Q_GRID",
    "DEFAULT_Q_ZERO_PRIOR",
    "Calibration",
    "CounterfactualModel",
    "DiDCheck",
    "EffectEstimate",
    "ImpactDiagnostics",
    "ImpactResult",
    "ImpactScorer",
    "ImpactSeries",
    "MannWhitneyCheck",
    "TMixture",
    "Verdict",
    "did_check",
    "estimate_effect",
    "mann_whitney_check",
    "placebo_scores",
    "plot_impact",
    "verdict_for",
]

logger = logging.getLogger(__name__)

ControlMode = Literal["auto", "each", "mean"]

_Z_POWER = float(stats.norm.ppf(0.80))


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
    ids = _series_id_column(data)
    df = pd.DataFrame({"series": ids, "ds": data["ds"], "y": data["y"]})
    df = df[df["series"].isin([treated, *controls])]
    if not (df["series"] == treated).any():
        indicator = treated.split("/", 1)[0]
        names = ids.astype(str)
        if not ((names == indicator) | names.str.startswith(indicator + "/")).any():
            raise NotFoundError(
                f"no series of the indicator {indicator!r} in the data", field="indicator", value=indicator
            )
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
    grid: np.ndarray = idx
    return grid


@dataclass(frozen=True)
class _Periods:
    """The treated series split at the experiment's start (and end): weekly table, masks, values, times."""

    treated: str
    wide: pd.DataFrame
    pre: np.ndarray
    post: np.ndarray
    y_pre: np.ndarray
    y_post: np.ndarray
    t_pre: np.ndarray
    t_post: np.ndarray
    m_used: int  # pre-period weeks the model is fitted on (the most recent, at most max_pre_weeks)


def _method(used: list[str], mode: str, calibration: Calibration, estimator: Estimator = "step") -> str:
    """The method in words, as reported with the result."""
    on = f" on {len(used)} control(s)" if mode == "each" else " on the mean of the controls" if used else ""
    interval = {
        "pooled placebos": f"interval calibrated on {calibration.n_placebos} pooled placebo window(s) and the prior",
        "prior": "interval calibrated by the prior learned on real series (no placebo window before the start)",
        "model": "model interval (calibration off)",
    }[calibration.method]
    how = (
        "step at the start fitted on the pre- and post-period together (intervention analysis)"
        if estimator == "step"
        else "post-period compared with the forecast of a regression fitted on the pre-period"
    )
    return (
        f"{how}{on}, with random-walk level + local trend + AR(1) noise, integrated over (phi, q, r);"
        f" {interval} x{calibration.factor:.2f}"
    )


def _sibling_windows(
    data: pd.DataFrame,
    experiment: Experiment,
    used: list[str],
    mode: str,
    max_series: int,
) -> list[PlaceboWindow]:
    """Untreated series of the same indicator up to the start, each with the experiment's other controls.

    A sibling that is itself a control is scored against the remaining controls; when none remains (or the
    series is not on a regular grid) it gives no placebo window.
    """
    ids = _series_id_column(data)
    prefix = experiment.indicator + "/"
    treated = experiment.treated_series
    names = sorted({str(k) for k in ids.unique() if str(k).startswith(prefix) and str(k) != treated})[
        :max_series
    ]
    start = pd.Timestamp(experiment.start)
    windows: list[PlaceboWindow] = []
    for sib in names:
        others = [c for c in used if c != sib]
        if used and not others:
            continue
        try:
            wide = _wide(data, sib, others)
        except (InputError, NotFoundError):
            continue
        wide = wide[wide.index < start]
        if len(wide) < 4:
            continue
        try:
            t = _period_index(wide.index)
        except InputError:
            continue
        X = None
        if others:
            C = wide[others].to_numpy()
            X = C if mode == "each" else C.mean(axis=1)
        windows.append(PlaceboWindow(series=sib, y=wide[sib].to_numpy(), X=X, t=t))
    return windows


class ImpactScorer:
    """Scores an experiment: counterfactual, effect with interval and p-value, cross-checks, verdict, power.

    Parameters
    ----------
    alpha: significance level of the verdict; the interval has level 1 - alpha.
    min_pre_weeks: fewest pre-period observations accepted.
    max_pre_weeks: the model is fitted on at most this many recent pre-period weeks (older ones calibrate).
    calibrate: widen the interval as placebo windows (older history, other series of the same indicator) and
        the prior learned on real series say (see :mod:`ml.experiments.calibration`); False: the model's own.
    max_sibling_series: most other series of the indicator searched for placebo windows.
    control_mode: "each" control as a regressor, their "mean" as one, or "auto" (each when there are at
        least 10 pre weeks per coefficient, else the mean).
    max_extra_weeks: how far ahead `weeks_needed` looks.
    model: the counterfactual model template (default :class:`CounterfactualModel`).
    estimator: "step" (intervention analysis: a step at the start fitted on both periods, the default) or
        "forecast" (the post-period compared with the pre-period model's forecast, the method before).

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
        max_sibling_series: int = 20,
        estimator: Estimator = "step",
    ) -> None:
        self.alpha = alpha
        self.min_pre_weeks = min_pre_weeks
        self.max_pre_weeks = max_pre_weeks
        self.calibrate = calibrate
        self.control_mode = control_mode
        self.max_extra_weeks = max_extra_weeks
        self.model = model
        self.max_sibling_series = max_sibling_series
        self.estimator = estimator

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
        p = self._periods(experiment, data)
        notes: list[str] = []
        last, gaps, end = p.wide.index[-1], np.diff(p.wide.index.to_numpy()), experiment.end
        if end is not None and gaps.size and last + pd.Timedelta(np.median(gaps)) < pd.Timestamp(end):
            notes.append(
                f"the data end on {last.date()}, before the experiment's end {end}: scored on the"
                f" {int(p.post.sum())} week(s) observed so far"
            )
        used, mode, X_pre, X_post = self._controls(p, experiment.control_series, notes)
        pool: list[PlaceboWindow] = []
        if self.calibrate:
            pool = _sibling_windows(data, experiment, used, mode, self.max_sibling_series)
        try:
            est = estimate_effect(
                p.y_pre,
                p.y_post,
                X_pre,
                X_post,
                p.t_pre,
                p.t_post,
                alpha=self.alpha,
                max_pre_weeks=self.max_pre_weeks,
                calibrate=self.calibrate,
                model=self.model if self.model is not None else CounterfactualModel(),
                pool=pool,
                series=p.treated,
                estimator=self.estimator,
            )
        except InputError as exc:
            if exc.field != "X" or X_pre is None or X_post is None:
                raise
            names = used if mode == "each" else ["the mean of the controls"]
            pre = np.asarray(X_pre, dtype=float).reshape(len(p.y_pre), -1)[-p.m_used :]
            raise collinear_controls_error(experiment.id, names, pre, X_post) from exc
        notes.append(f"calibration: {est.calibration.reason}")
        h = len(p.y_post)
        cf = est.counterfactual_mean
        rel, rel_lo, rel_hi = self._relative(est, notes)
        z_crit = float(stats.norm.ppf(1 - self.alpha / 2))
        # what this design could detect (80% power), read from the pre-period fit like the calibration, so a plan
        # made before the start finds the same MDE; for the forecast comparison it is (z_crit + z_0.8) x se
        mde = (z_crit + _Z_POWER) * float(se_by_horizon(est, p.t_post, X_post, self.alpha, [h])[0])
        weeks_needed = None
        if experiment.min_effect is not None:
            weeks_needed = self._weeks_needed(est, X_post, p.t_post, experiment.min_effect, z_crit)
        verdict = verdict_for(est.effect, est.p_value, self.alpha, experiment.desired_direction)
        series = self._plot_series(est, p, X_post)
        diagnostics = self._diagnostics(est, p, used, mode, notes)
        self.estimate_ = est
        self.result_ = ImpactResult(
            experiment_id=experiment.id,
            indicator=experiment.indicator,
            treated_series=p.treated,
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
            method=_method(used, mode, est.calibration, est.estimator),
            calibration=est.calibration,
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

    def _periods(self, experiment: Experiment, data: pd.DataFrame) -> _Periods:
        """The weekly table of the treated series and its controls, split at the start (and end) and checked."""
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
                value=experiment.start.isoformat() if experiment.end is None else experiment.end.isoformat(),
            )
        y_pre = wide.loc[pre_mask, treated].to_numpy()
        m_used = min(n_pre, self.max_pre_weeks)
        if np.ptp(y_pre[-m_used:]) == 0:
            raise InputError(
                f"{treated!r} is constant ({y_pre[-1]:g}) over the {m_used} weeks before start: no noise to compare"
                " the change with",
                field="treated",
                value=treated,
            )
        return _Periods(
            treated=treated,
            wide=wide,
            pre=pre_mask,
            post=post_mask,
            y_pre=y_pre,
            y_post=wide.loc[post_mask, treated].to_numpy(),
            t_pre=t_all[pre_mask],
            t_post=t_all[post_mask],
            m_used=m_used,
        )

    def _controls(
        self, p: _Periods, controls: list[str], notes: list[str]
    ) -> tuple[list[str], Literal["none", "each", "mean"], np.ndarray | None, np.ndarray | None]:
        """Controls used (constant ones over the fitting window dropped), the mode, and their pre/post values."""
        m_used = p.m_used
        used = [c for c in controls if np.ptp(p.wide.loc[p.pre, c].to_numpy()[-m_used:]) > 0]
        for c in controls:
            if c not in used:
                notes.append(f"control {c!r} is constant before start and was left out")
        mode: Literal["none", "each", "mean"] = "none"
        X_pre = X_post = None
        if used:
            mode = self.control_mode if self.control_mode != "auto" else "each"
            if self.control_mode == "auto" and m_used < 10 * (len(used) + 1):
                mode = "mean"
            C_pre, C_post = p.wide.loc[p.pre, used].to_numpy(), p.wide.loc[p.post, used].to_numpy()
            X_pre, X_post = (C_pre, C_post) if mode == "each" else (C_pre.mean(1), C_post.mean(1))
            if mode == "mean" and np.ptp(X_pre[-m_used:]) == 0:
                notes.append("the mean of the controls is constant before start; controls left out")
                mode, X_pre, X_post = "none", None, None
        return used, mode, X_pre, X_post

    def _relative(
        self, est: EffectEstimate, notes: list[str]
    ) -> tuple[float | None, float | None, float | None]:
        """Effect relative to the counterfactual, with its interval, when the counterfactual is clearly not 0."""
        q_lo, q_hi = float(est.mixture.ppf(self.alpha / 2)), float(est.mixture.ppf(1 - self.alpha / 2))
        if q_lo > 0 or q_hi < 0:
            rel_lo, rel_hi = sorted((est.observed_mean / q_hi - 1.0, est.observed_mean / q_lo - 1.0))
            return est.effect / est.counterfactual_mean, rel_lo, rel_hi
        notes.append("the counterfactual interval contains 0: relative effects are not reported")
        return None, None, None

    def _plot_series(self, est: EffectEstimate, p: _Periods, X_post: np.ndarray | None) -> ImpactSeries:
        """Pre-period observed (the fitted window), post-period observed with the counterfactual band.

        For the step estimator the counterfactual of each post week is the observed value minus the step (its
        band the effect's interval); for the forecast comparison, the pre-period model's forecast."""
        h, m_used = len(p.y_post), p.m_used
        if est.joint is not None:
            cf_pts, lo_pts, hi_pts = p.y_post - est.effect, p.y_post - est.ci_high, p.y_post - est.ci_low
        else:
            points = est.model.predict_points(
                p.t_post, None if X_post is None else np.asarray(X_post).reshape(h, -1)
            ).inflate(est.inflation)
            cf_pts, lo_pts, hi_pts = points.mean(), points.ppf(self.alpha / 2), points.ppf(1 - self.alpha / 2)
        return ImpactSeries(
            ds=list(p.wide.index[p.pre][-m_used:].date) + list(p.wide.index[p.post].date),
            observed=[float(v) for v in p.y_pre[-m_used:]] + [float(v) for v in p.y_post],
            counterfactual=[None] * m_used + [float(v) for v in cf_pts],
            lower=[None] * m_used + [float(v) for v in lo_pts],
            upper=[None] * m_used + [float(v) for v in hi_pts],
        )

    def _diagnostics(
        self,
        est: EffectEstimate,
        p: _Periods,
        used: list[str],
        mode: Literal["none", "each", "mean"],
        notes: list[str],
    ) -> ImpactDiagnostics:
        """Cross-checks beside the estimate (DiD against the controls, Mann-Whitney) and the noise model."""
        m_used = p.m_used
        did = None
        if used:
            did = did_check(
                p.y_pre[-m_used:],
                p.y_post,
                p.wide.loc[p.pre, used].to_numpy()[-m_used:],
                p.wide.loc[p.post, used].to_numpy(),
                self.alpha,
            )
        if did is not None and (did.ci_low > est.ci_high or did.ci_high < est.ci_low):
            notes.append(
                f"difference-in-differences ({did.estimate:.3g} [{did.ci_low:.3g}, {did.ci_high:.3g}]) disagrees with"
                " the regression estimate: the controls may move with the treated series on another scale"
                " (regression is right) or noisy controls may understate a shared change (DiD is right)"
            )
        return ImpactDiagnostics(
            did=did,
            mann_whitney=mann_whitney_check(p.y_pre[-m_used:], p.y_post),
            noise=est.model.noise_summary(),
            inflation=est.inflation,
            n_placebos=est.n_placebos,
            controls_used=used,
            control_mode=mode,
            notes=notes,
        )

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
        # every week count at once (for the step, one Cholesky factor serves them all): the first that brings the
        # MDE to min_effect (the forecast's MDE may grow with the horizon, the step's only shrinks)
        mdes = (z_crit + _Z_POWER) * se_by_horizon(est, t_ext, X_ext, self.alpha, range(h, t_ext.size + 1))
        ok = np.flatnonzero(mdes <= min_effect)
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
