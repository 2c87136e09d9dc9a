"""Absent rows of a count indicator are weeks with none: complete each series on its indicator's date grid.

A weekly export of counts (incidents, reopens, manual retries per team or service) often holds only the weeks
that had one: ``GROUP BY service, week`` has no row for a week without an incident. Read as gaps, those weeks
would be filled by interpolation, so a quiet service looks as busy as its busy weeks and a rise in it goes
unseen. So for an indicator whose values are all whole numbers >= 0 with a median of at most 5 (a sparse count,
as :func:`~ml.indicators.changepoints.sparse_counts` has it: a busy count's absent week is more likely unmeasured)
and that is summed over its parts (its name does not say rate, ratio, share, percent, mean, average, median, a
percentile or MTTR, and does not end in a duration or level such as time, hours, days, latency, availability or
score: :func:`looks_like_mean`), every series gets a row with ``y = 0`` at each date of
the indicator's grid that it lacks: from the indicator's first date to its last, daily or weekly as its dates are
(weekly: all on one weekday, consecutive weeks in at least a fifth of the gaps, so a fortnightly grid is not
taken for one; daily: consecutive days in at least a fifth of the gaps, as a sparse daily export has them). An
aggregate of such an indicator already counts an absent part as 0 (:mod:`ml.causes.aggregates`); this makes each
part agree with it.

Left as they are: an indicator that is a mean or holds a fraction or a negative value (an absent week of MTTR is
unknown, not 0), a busy one, an explicit empty value (a row whose ``y`` is NaN says "not measured"), and an
indicator whose dates fall on no single daily or weekly grid (the series' own validation then names the date);
one whose series are weekly on different weekdays, or some daily and some weekly, gets a note saying so.

The forecaster (``recur train indicators``), the experiment scorer and ``recur explain`` all complete their input
with :func:`complete_counts`, so a shift has the same date and id in ``GET /v1/signals`` and in its explanation.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence

import numpy as np
import pandas as pd

from ml.indicators.changepoints import sparse_counts

__all__ = [
    "DAILY_SHARE",
    "MEAN_HEADS",
    "MEAN_NAME",
    "MEAN_WORDS",
    "UNSET",
    "complete_counts",
    "looks_like_mean",
    "weekly_anchors",
]

#: Words that make an indicator a mean wherever they stand in its name (whole words): a rate, a ratio, a share, an
#: average, a percentile, a mean time (``change_failure_rate``, ``p95_latency_ms``, ``apiP99``, ``mttr``).
MEAN_WORDS = frozenset(
    {
        "rate",
        "rates",
        "ratio",
        "share",
        "pct",
        "percent",
        "percentage",
        "mean",
        "avg",
        "average",
        "median",
        "percentile",
        "p50",
        "p75",
        "p90",
        "p95",
        "p99",
        "p999",
        "mttr",
        "mtta",
        "mttd",
        "mttf",
        "mtbf",
        "apdex",
    }
)
#: Phrases with the same effect (``lead_time_for_changes``, ``time_to_restore``, ``hours_to_resolve``).
MEAN_NAME = re.compile(r"lead_time|cycle_time|time_to|time_between|hours_to|minutes_to|days_to|mean_time")
#: The last word of a name that makes it a duration or a level: the word the name is about (``resolution_time``,
#: ``incident_duration_hours``, ``ticket_age_days``, ``api_availability``; not ``latency_alerts``,
#: ``request_timeouts``, ``sec_findings`` or ``node_cpu_seconds_total``, which are counts).
MEAN_HEADS = frozenset(
    {
        "time",
        "hours",
        "hrs",
        "minutes",
        "mins",
        "seconds",
        "secs",
        "sec",
        "ms",
        "days",
        "duration",
        "latency",
        "uptime",
        "availability",
        "utilization",
        "utilisation",
        "score",
        "age",
    }
)
_CAMEL = re.compile(r"([a-z0-9])([A-Z])")
_NON_WORD = re.compile(r"[^a-z0-9]+")


#: Group key of an unset dimension value (pandas hashes object keys as C strings: a NUL sentinel would come back as
#: "", the same key as an empty string, so a total row without a team would group as a team named "").
UNSET = "\uffff"

#: Share of the gaps between an indicator's dates that must be one day for its dates to be taken as daily.
DAILY_SHARE = 0.2


def looks_like_mean(indicator: str) -> bool:
    """Whether the indicator's name says it is a rate, an average, a duration or a level, whose aggregate over its
    parts is their mean: a word of :data:`MEAN_WORDS` or a phrase of :data:`MEAN_NAME` anywhere in it, or a last
    word in :data:`MEAN_HEADS` (words split at ``_``, any other non-alphanumeric and camelCase)."""
    name = _NON_WORD.sub("_", _CAMEL.sub(r"\1_\2", indicator).lower()).strip("_")
    words = name.split("_")
    return not MEAN_WORDS.isdisjoint(words) or bool(MEAN_NAME.search(name)) or words[-1] in MEAN_HEADS


def _grid_freq(dates: pd.DatetimeIndex) -> str | None:
    """``"7D"`` when every date is on one weekday (however many weeks apart: a sparse count has long gaps),
    ``"D"`` for daily dates (consecutive days in at least ``DAILY_SHARE`` of the gaps: a quiet service's daily
    export skips most days, while monthly dates or weekly ones with a slip never follow each other that often),
    None for anything else."""
    if (dates != dates.normalize()).any():
        return None
    days = np.diff(dates.asi8) // (86_400 * 10**9)
    if bool(np.all(days % 7 == 0)):
        # weekly, not a fortnightly or a sprint grid: consecutive weeks in at least DAILY_SHARE of the gaps
        return "7D" if float(np.mean(days == 7)) >= DAILY_SHARE else None
    return "D" if float(np.mean(days == 1)) >= DAILY_SHARE else None


def weekly_anchors(series_dates: list[pd.DatetimeIndex]) -> dict[str, int]:
    """Weekday name -> number of series, when every series' own dates fall on one weekday; {} otherwise."""
    out: dict[str, int] = {}
    for d in series_dates:
        if (d != d.normalize()).any() or len(set(d.dayofweek)) != 1:
            return {}
        day = str(d[0].day_name())
        out[day] = out.get(day, 0) + 1
    return dict(sorted(out.items(), key=lambda kv: (-kv[1], kv[0])))


def complete_counts(
    frame: pd.DataFrame,
    keys: Sequence[str],
    is_mean: Callable[[str], bool] = looks_like_mean,
) -> tuple[pd.DataFrame, list[str]]:
    """``frame`` (long: ``indicator``, ``ds``, ``y`` and the columns ``keys`` that name a series within its
    indicator) with a ``y = 0`` row at each date of its indicator's grid that a series of a count indicator lacks
    (see the module docstring); and one note per indicator completed. Other columns of an added row repeat the
    series' first row; ``ds`` comes back as datetimes. The input is not changed; without anything to add it is
    returned as it is."""
    if len(frame) == 0 or not {"indicator", "ds", "y"} <= set(frame.columns):
        return frame, []
    given = frame
    frame = frame.reset_index(drop=True)  # rows are found by label below: a caller's index may repeat
    try:
        ds = pd.to_datetime(frame["ds"])
    except (ValueError, OverflowError):  # out of pandas' range (year 68): the series' own validation names it
        return given, []
    added: list[pd.DataFrame] = []
    notes: list[str] = []
    for indicator, rows in frame.groupby("indicator", sort=True):
        name = str(indicator)
        if is_mean(name) or not sparse_counts(rows["y"].to_numpy(dtype=float)):
            continue  # not a sparse count: a busy count's absent week is more likely unmeasured than quiet
        dates = pd.DatetimeIndex(ds[rows.index].unique()).sort_values()
        if len(dates) < 2:
            continue
        by = [rows[k].fillna(UNSET) for k in keys] if keys else [rows["indicator"]]
        groups = [g for _, g in rows.groupby(by, sort=True)]
        freq = _grid_freq(dates)
        own = {_grid_freq(pd.DatetimeIndex(ds[g.index])) for g in groups if g["ds"].nunique() >= 3}
        if {"7D", "D"} <= own:
            notes.append(
                f"{name}: some of its series are daily and some weekly: absent dates are not counted as 0; give "
                "every series of an indicator on one grid"
            )
            continue
        weekdays = weekly_anchors([pd.DatetimeIndex(ds[g.index]) for g in groups])
        if freq != "7D" and len(weekdays) > 1:
            # every series weekly, on different weekdays (one exported on Sundays, or written with a time zone
            # offset): neither one weekly grid nor a daily one
            notes.append(
                f"{name}: its series are weekly on different weekdays ("
                + ", ".join(f"{n} on {day}" for day, n in weekdays.items())
                + "): absent weeks are not counted as 0 and no aggregate over them can be built; put every "
                "series on the same weekday"
            )
            continue
        if freq is None:
            continue  # not one daily or weekly grid: the series' own validation names the date
        grid = pd.date_range(dates[0], dates[-1], freq=freq)
        n_added, n_series, n_all = 0, 0, 0
        for g in groups:
            n_all += 1
            missing = grid.difference(pd.DatetimeIndex(ds[g.index]))
            if len(missing) == 0:
                continue
            extra = pd.DataFrame([g.iloc[0].to_dict()] * len(missing))
            extra["ds"] = missing
            extra["y"] = 0.0
            added.append(extra)
            n_added += len(missing)
            n_series += 1
        if n_added:
            notes.append(
                f"{name}: {n_added} absent dates of {n_series} of its {n_all} series counted as 0 (whole-number "
                "counts summed over their parts: a date without a row had none)"
            )
    if not added:
        return given, notes
    out = pd.concat([frame.assign(ds=ds), *added], ignore_index=True)
    out["y"] = out["y"].astype(float)
    return out, notes


def slice_totals(
    history: pd.DataFrame, dims: Sequence[str] = ("team",), is_mean: Callable[[str], bool] = looks_like_mean
) -> pd.DataFrame:
    """``history`` (long: ``series, ds, y``) with one series per value of each of ``dims`` (team, service) of each
    indicator split by team and service where it has none: each date, the sum of the slice's leaves (for a mean
    indicator, their mean), so that an experiment on a team (``treated: payments``) or on a service (``dimension:
    service``) can be planned and scored on ``incidents/team=payments`` or ``incidents/service=checkout`` when the
    export gives only ``incidents/team=payments/service=checkout`` and its siblings (a service run by two teams
    sums both). Only the experiment's own dimension is added: the totals are its placebo siblings too."""
    from ml.io.schemas import parse_series_key, series_key

    keys = {str(s): parse_series_key(str(s)) for s in history["series"].unique()}
    parts: dict[tuple[str, str, str], list[str]] = {}
    for sid, k in keys.items():
        if k["team"] and k["service"]:
            for dim in dims:
                parts.setdefault((str(k["indicator"]), dim, str(k[dim])), []).append(sid)
    extra = []
    for (indicator, dim, value), sids in sorted(parts.items()):
        sid = series_key(indicator, **{dim: value})
        if sid in keys:
            continue
        y = history.loc[history["series"].isin(sids)].groupby("ds")["y"]
        agg = y.mean() if is_mean(indicator) else y.sum(min_count=1)
        extra.append(pd.DataFrame({"series": sid, "ds": agg.index, "y": agg.to_numpy()}))
    return pd.concat([history, *extra], ignore_index=True) if extra else history


def service_owners(series: Iterable[str]) -> dict[str, set[str]]:
    """Which teams run each service, from series keys split by both (``incidents/team=payments/service=checkout``
    says payments runs checkout), by service."""
    from ml.io.schemas import parse_series_key

    out: dict[str, set[str]] = {}
    for sid in series:
        k = parse_series_key(str(sid))
        if k["team"] and k["service"]:
            out.setdefault(str(k["service"]), set()).add(str(k["team"]))
    return out
