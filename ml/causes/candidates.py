"""Shifts found at a known candidate date: a change, an experiment start or a failure-pattern burst.

The blind detector (:func:`ml.indicators.signals.detect_signals`) searches every date of a series, so it needs a
large shift to report one. A change, an experiment start or a burst of one pattern's incidents is a date given in
advance: the series of its slice (for a team's change on indicators split by service, the services the team owns
by the incidents; and the aggregate over everything, for a sliced candidate) can be tested for a
level shift at that date (each lag of ``LAGS_DAYS``: the effect may show 0-3 weeks later) with the detector's
segment test, as :func:`ml.causes.aggregates.carried_shifts` does for a part's shift on its aggregate: the
difference of the series' means over the segments either side of the date (up to its own detected shifts, at most
``window_days`` x ``SEGMENT_WINDOWS`` long) against the AR(1) noise around the segment means, two-sided. The
p-value is Bonferroni-corrected over ALL candidate tests made (every candidate x series x lag), so a busy change
log does not buy spurious shifts. A shift is kept when the corrected confidence reaches ``min_confidence`` (0.95)
and the step is at least ``CARRY_SIGMA`` x ``min_shift_sigma`` noise sds, and only when the series has no shift
(detected, or found here at a more significant date) within ``CARRY_DAYS`` of it; there the existing shift keeps its
explanation. The tests that pass are kept from the most significant, each tested again with the shifts kept so far
as segment ends (a step kept at an experiment's start is not found again at a change three weeks later). The
shift's ``detail`` says "found at the date of <id>" and ``candidate`` names it.

Bursts: per slice value (each dimension the incidents share with the indicators) and pattern, the weekly incident
counts; a burst starts at a week where the pattern's count over the next ``BURST_WEEKS`` weeks exceeds its rate
over the ``pattern_baseline_days`` before (one-sided conditional binomial test, corrected p < ``BURST_P``), at the
first such week of a run. The correction is Bonferroni over the slice x pattern x week tests that could reach
significance at all (Tarone's count, :func:`tarone_count`): most pairs of a slice and a pattern hold a handful of
incidents in two years, and a test whose every outcome has p above the bar cannot make a false discovery.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from ml.causes.aggregates import (
    CARRY_DAYS,
    CARRY_SIGMA,
    MIN_POINTS,
    SeriesData,
    carried_shifts,
    grid_bars,
    shift_event,
)
from ml.causes.cause import ExplainConfig
from ml.causes.changes import Owners, Started
from ml.indicators.changepoints import _segment_means, ar1_mean_variance, residual_ar1

__all__ = [
    "BURST_P",
    "BURST_WEEKS",
    "LAGS_DAYS",
    "Candidate",
    "burst_candidates",
    "candidate_shifts",
    "experiment_starts",
    "tarone_count",
]

#: Lags after a candidate date at which its series is tested (the planned lag window of 0-3 weeks).
LAGS_DAYS = (0, 7, 14, 21)
#: A segment either side of a candidate date is at most this many ``window_days`` long.
SEGMENT_WINDOWS = 2
#: Weeks of a burst window, and the corrected p-value a burst needs.
BURST_WEEKS = 4
BURST_P = 0.01


@dataclass(frozen=True)
class Candidate:
    """A pre-specified date: kind ("change", "experiment" or "pattern"), id, date, slice and indicator (if one)."""

    kind: str
    id: str
    date: pd.Timestamp
    dims: dict[str, str]
    indicator: str | None = None


def segment_test(
    y: np.ndarray,
    idx: pd.DatetimeIndex,
    own: list[pd.Timestamp],
    d: pd.Timestamp,
    max_days: int,
    min_segment: int,
) -> tuple[float, float, float, float, float, float] | None:
    """(diff, se, noise sd, phi, left mean, right mean) of a level shift of ``y`` at ``d`` (see module docstring),
    the segments ending at the series' own shifts ``own``; None when a segment is too short or there is no noise."""
    cps = sorted({int(idx.get_loc(o)) for o in [*own, d] if o in idx} - {0})
    phi, sd = residual_ar1(y - _segment_means(y, cps), len(cps) + 1, 0.8)
    if sd <= 0:
        return None
    span = pd.Timedelta(days=max_days)
    lo = max([o for o in own if o < d] + [d - span])
    hi = min([o for o in own if o > d] + [d + span])
    left, right = y[(idx >= lo) & (idx < d)], y[(idx >= d) & (idx < hi)]
    if min(len(left), len(right)) < min_segment:
        return None
    diff = float(right.mean() - left.mean())
    se = math.sqrt(ar1_mean_variance(len(left), phi, sd) + ar1_mean_variance(len(right), phi, sd))
    return diff, se, sd, phi, float(left.mean()), float(right.mean())


def _targets(series: dict[str, SeriesData], c: Candidate, owners: Owners | None = None) -> list[SeriesData]:
    """The series of exactly the candidate's slice (the aggregates for an org-wide one), on its indicator if any;
    for a slice of one dimension no series of the indicator is split on (a team's change, indicators by service),
    the series of the slices it owns by the incidents (:meth:`ml.causes.changes.Owners.owned_by`)."""
    mine = [
        series[sid] for sid in sorted(series) if c.indicator is None or series[sid].indicator == c.indicator
    ]
    out = [s for s in mine if s.dims == c.dims]
    if out or len(c.dims) != 1 or not owners:
        return out
    ((d, v),) = c.dims.items()
    split_on_d = {s.indicator for s in mine if d in s.dims}
    owned = owners.owned_by(d, v)
    return [
        s
        for s in mine
        if len(s.dims) == 1 and s.indicator not in split_on_d and next(iter(s.dims.items())) in owned
    ]


def experiment_starts(
    series: dict[str, SeriesData], experiments: list[Started], owners: Owners | None = None
) -> dict[str, list[tuple[pd.Timestamp, str]]]:
    """The first date on or after each experiment's start on every series of its indicator and treated slice (as a
    candidate's, :func:`_targets`), labelled "the start of experiment <id>", by series id: the dates
    :func:`ml.causes.aggregates.detect_shifts` may move a shift of that series to."""
    out: dict[str, list[tuple[pd.Timestamp, str]]] = {}
    for e in experiments:
        if not e.indicator:
            continue
        for s in _targets(series, Candidate("experiment", e.id, e.start, e.dims, e.indicator), owners):
            idx = pd.DatetimeIndex(s.values.index)
            at = idx[idx >= e.start]
            if len(at) and at[0] > idx[0]:
                out.setdefault(s.series, []).append((at[0], f"the start of experiment {e.id}"))
    return out


def tarone_count(p_min: np.ndarray, alpha: float) -> int:
    """Tarone's (1990) Bonferroni count for discrete tests: the smallest K such that at most K tests can reach a
    p-value of ``alpha / K`` at all (``p_min``: each test's smallest attainable p-value; at least 1). A test
    that cannot reach significance (a pattern seen twice in half a year) cannot make a false discovery and takes
    no share of the budget; Bonferroni over K still bounds the family-wise error rate by ``alpha``."""
    ordered = np.sort(p_min)
    for k in range(1, len(ordered) + 1):
        if int(np.searchsorted(ordered, alpha / k, side="right")) <= k:
            return k
    return max(len(ordered), 1)


def burst_candidates(incidents: pd.DataFrame | None, dims: list[str], cfg: ExplainConfig) -> list[Candidate]:
    """Burst starts of each pattern per slice value (see the module docstring), by date."""
    if incidents is None or len(incidents) == 0:
        return []
    week = incidents["date"] - pd.to_timedelta(incidents["date"].dt.weekday, unit="D")
    weeks = pd.date_range(week.min(), week.max(), freq="7D")
    base = max(cfg.pattern_baseline_days // 7, 4)
    share = BURST_WEEKS / (BURST_WEEKS + base)
    tests: list[tuple[float, str, dict[str, str], pd.Timestamp]] = []
    p_min: list[np.ndarray] = []
    for dim in [d for d in dims if d in incidents.columns]:
        for (value, pid), rows in incidents.groupby([incidents[dim].astype(str), "pattern_id"], sort=True):
            counts = week[rows.index].value_counts().reindex(weeks, fill_value=0).to_numpy()
            csum = np.concatenate([[0], np.cumsum(counts)])
            t = np.arange(base, len(weeks) - BURST_WEEKS + 1)
            kb, ka = csum[t] - csum[t - base], csum[t + BURST_WEEKS] - csum[t]
            p_min.append(share ** (ka + kb).astype(float))  # every one of the n incidents in the burst window
            for i in np.flatnonzero((counts[t] > 0) & (ka >= 3)):
                p = float(stats.binom.sf(ka[i] - 1, ka[i] + kb[i], share))
                tests.append((p, str(pid), {dim: str(value)}, weeks[t[i]]))
    n_tests = tarone_count(np.concatenate(p_min) if p_min else np.empty(0), BURST_P)
    out: list[Candidate] = []
    last: dict[tuple[str, str], pd.Timestamp] = {}
    for p, pid, where, w in sorted(tests, key=lambda t: (t[3], t[1], sorted(t[2].items()))):
        if p * n_tests >= BURST_P:
            continue
        key = (pid, ",".join(f"{k}={v}" for k, v in sorted(where.items())))
        prev = last.get(key)
        last[key] = w
        if prev is not None and (w - prev).days <= 7 * BURST_WEEKS:
            continue  # the same run
        out.append(Candidate("pattern", pid, w, where))
    return out


def candidate_shifts(
    series: dict[str, SeriesData],
    events: list[dict[str, Any]],
    changes: list[Started],
    experiments: list[Started],
    bursts: list[Candidate],
    cfg: ExplainConfig,
    owners: Owners | None = None,
) -> list[dict[str, Any]]:
    """Shift events found at candidate dates that no shift of the same series lies near (see module docstring);
    ``owners`` (:func:`ml.causes.changes.ownership`) gives a team's change the series of the services it owns."""
    cands = [Candidate("change", c.id, c.start, c.dims) for c in changes]
    cands += [Candidate("experiment", e.id, e.start, e.dims, e.indicator) for e in experiments if e.indicator]
    cands += bursts
    own: dict[str, list[pd.Timestamp]] = {}
    for e in events:
        own.setdefault(str(e["series"]), []).append(pd.Timestamp(str(e["date"])[:10]))
    tests: list[tuple[Candidate, SeriesData, pd.Timestamp]] = []
    for c in cands:
        lags = (0,) if c.kind == "pattern" else LAGS_DAYS
        for s in _targets(series, c, owners):
            idx = pd.DatetimeIndex(s.values.index)
            if len(idx) < MIN_POINTS:
                continue
            dates = {idx[idx >= c.date + pd.Timedelta(days=lag)].min() for lag in lags}
            tests += [(c, s, d) for d in sorted(x for x in dates if not pd.isna(x) and x > idx[0])]
    n_tests = max(len(tests), 1)
    near = pd.Timedelta(days=CARRY_DAYS)
    out: list[dict[str, Any]] = []
    # a sliced candidate is tested on its own slice; a shift found there is carried to the aggregates above it
    # (carried_shifts), so an aggregate is tested directly only for an org-wide candidate
    found = _test(tests, own, n_tests, cfg)
    # the most significant first; each next one tested again with the shifts kept so far as segment ends (a
    # step kept at one lag is not found again three weeks later by a segment that still holds it)
    tested_with = {k: len(v) for k, v in own.items()}  # the shifts each series had when `found` was tested
    for _, e, test in sorted(found, key=lambda t: (t[0], t[1]["series"], t[1]["date"])):
        d = pd.Timestamp(e["date"])
        mine = own.setdefault(str(e["series"]), [])
        if any(abs(d - o) <= near for o in mine):
            continue
        if len(mine) > tested_with.get(str(e["series"]), 0):  # a shift kept since: its segments changed
            again = _test([test], own, n_tests, cfg)
            if not again:
                continue
            e = again[0][1]
        mine.append(d)
        out.append(e)
    dates = {e["date"] for e in out}
    out += [e for e in carried_shifts(series, [*events, *out], cfg) if e["date"] in dates]
    return out


def _test(
    tests: list[tuple[Candidate, SeriesData, pd.Timestamp]],
    own: dict[str, list[pd.Timestamp]],
    n_tests: int,
    cfg: ExplainConfig,
) -> list[tuple[float, dict[str, Any], tuple[Candidate, SeriesData, pd.Timestamp]]]:
    """(p-value, shift event, the test) of each test that passes (see the module docstring)."""
    params = cfg.detector_params()
    near = pd.Timedelta(days=CARRY_DAYS)
    found: list[tuple[float, dict[str, Any], tuple[Candidate, SeriesData, pd.Timestamp]]] = []
    for c, s, d in tests:
        idx = pd.DatetimeIndex(s.values.index)
        mine = own.get(s.series, [])
        if any(abs(d - o) <= near for o in mine):
            continue
        ms, bar = grid_bars(idx, params)
        res = segment_test(
            s.values.to_numpy(dtype=float), idx, mine, d, cfg.window_days * SEGMENT_WINDOWS, ms
        )
        if res is None:
            continue
        diff, se, sd, phi, before, after = res
        p = 2.0 * float(stats.norm.sf(abs(diff) / se))
        conf = max(0.0, 1.0 - min(1.0, p * n_tests))
        if conf < params["min_confidence"] or abs(diff) < CARRY_SIGMA * bar * sd:
            continue
        what = {"change": "", "experiment": "experiment ", "pattern": "the burst of pattern "}[c.kind]
        found.append(
            (
                p,
                {
                    **shift_event(
                        s.series,
                        d,
                        diff,
                        sd,
                        conf,
                        f"found at the date of {what}{c.id} ({c.date.date()}): the series moves "
                        f"{before:.4g} -> {after:.4g} there (noise sd {sd:.3g}, AR(1) phi {phi:.2f}; "
                        f"{n_tests} candidate tests)",
                    ),
                    "candidate": {"kind": c.kind, "id": c.id, "date": str(c.date.date())},
                },
                (c, s, d),
            )
        )
    return found
