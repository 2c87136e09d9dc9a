"""Series to explain: the input's own series, aggregates built from their parts, and their shifts.

Shifts are detected on every series with :func:`ml.indicators.signals.detect_signals`; an aggregate's shift dated
15-63 days from a part's shift moves to the part's date when the aggregate fits it at least as well there
(:func:`redate_shifts`); a part's shift that the aggregate's own detection missed is tested on the aggregate at its
date (:func:`carried_shifts`).

The input is long (``indicator, ds, y`` + dimension columns such as ``team`` and ``service``; an empty value means
"not split on that dimension"). Per indicator, the leaves are the rows split on every dimension the indicator
uses. From them two kinds of aggregate are built (unless the input already holds them, in which case its values
are kept and only the parts are attached): the indicator over everything (series id = the bare indicator
name) and, with two dimensions, per value of the first dimension over the second. An aggregate is the sum of its
parts or, for rates, averages, durations and latencies (see :class:`~ml.causes.cause.ExplainConfig`), their mean.
In a sum, a part adds nothing before its first date or after its last, and a date it lacks in between is
interpolated from its neighbours when it has a value on at least half of those dates (unmeasured, not 0: one
team's export missing for a month would otherwise show as a fall and a rise of the total); a part with values on
fewer of them (an export that lists only its non-zero weeks) adds 0 there. A summed indicator of sparse
whole-number counts gets a 0 at each date of its grid a series has no row for first
(:func:`ml.indicators.completion.complete_counts`), so each part agrees with the sum it makes.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import stats

from ml.causes.cause import ExplainConfig
from ml.errors import InputError
from ml.indicators.changepoints import _segment_means, ar1_mean_variance, residual_ar1
from ml.indicators.completion import UNSET, complete_counts, looks_like_mean, weekly_anchors
from ml.indicators.events import is_trend_change
from ml.indicators.signals import detect_signals, per_week_bars
from ml.io.schemas import key_part

__all__ = [
    "CARRY_DAYS",
    "CARRY_SIGMA",
    "MIN_POINTS",
    "SeriesData",
    "build_series",
    "carried_shifts",
    "detect_shifts",
    "dimension_columns",
    "redate_shifts",
    "series_name",
]

logger = logging.getLogger(__name__)

_RESERVED = ("indicator", "ds", "y", "series")
_FIRST_DIMS = ("team", "service")
#: A part's shift is carried to its aggregate only when the aggregate has no shift this close to it.
CARRY_DAYS = 14
#: A detected shift this far (more than ``CARRY_DAYS``) from a known date may be moved to it (:func:`redate_shifts`).
REDATE_DAYS = 63
#: How much worse (in noise variances of the sum of squares: twice the log-likelihood ratio) the two-level fit at a
#: part's shift date may be than at the aggregate's own date for the shift to move there (:func:`redate_shifts`).
REDATE_LR = 8.0
#: ... when the part's own step at its date is at least this share of the sum's step (:func:`redate_shifts`).
REDATE_SHARE = 1 / 2
#: Fewest dates a series needs for its shifts to be searched or tested.
MIN_POINTS = 12
#: Share of the detector's size bar (``min_shift_sigma``) a carried shift must reach on the aggregate.
CARRY_SIGMA = 0.5


@dataclass
class SeriesData:
    """One series to explain: its values, its fixed dimensions and, for an aggregate, its parts.

    ``season`` is the shared seasonal profile taken out of ``values`` (:mod:`ml.causes.season`; None: none was),
    ``unadjusted`` the values before.

    ``parts`` is wide (index ``ds``, one column per leaf, NaN where a leaf has no value) and ``part_dims`` gives
    each leaf column's dimension values; ``how`` says how the parts make the series ("sum" or "mean").
    """

    series: str
    indicator: str
    dims: dict[str, str]
    values: pd.Series
    parts: pd.DataFrame | None = None
    part_dims: list[dict[str, str]] = field(default_factory=list)
    how: Literal["sum", "mean"] = "sum"
    part_series: list[str] = field(default_factory=list)
    season: pd.Series | None = None
    unadjusted: pd.Series | None = None

    @property
    def is_aggregate(self) -> bool:
        return self.parts is not None and self.parts.shape[1] > 1


def shift_event(
    series: str, date: pd.Timestamp, diff: float, sd: float, conf: float, detail: str
) -> dict[str, Any]:
    """A level shift found by a targeted test (not the detector's blind search), as an event dict."""
    return {
        "rank": None,
        "series": series,
        "date": str(date.date()),
        "kind": "shift",
        "direction": "increase" if diff > 0 else "decrease",
        "magnitude": diff,
        "magnitude_sigma": diff / sd,
        "confidence": conf,
        "outside_interval": None,
        "detail": detail,
    }


def dimension_columns(frame: pd.DataFrame) -> list[str]:
    """Dimension columns of an indicator frame: team and service first, then any others by name."""
    others = sorted(c for c in frame.columns if c not in _RESERVED and c not in _FIRST_DIMS)
    return [c for c in _FIRST_DIMS if c in frame.columns] + others


def series_name(indicator: str, dims: dict[str, str], order: list[str]) -> str:
    """``indicator/team=payments/service=checkout`` (dimensions in ``order``; none: the bare indicator)."""
    return "/".join(
        [key_part(indicator), *(f"{key_part(d)}={key_part(dims[d])}" for d in order if dims.get(d))]
    )


def is_mean_indicator(indicator: str, cfg: ExplainConfig) -> bool:
    if cfg.mean_indicators is not None:
        return indicator in cfg.mean_indicators
    return looks_like_mean(indicator)


def _clean(frame: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    missing = [c for c in ("indicator", "ds", "y") if c not in frame.columns]
    if missing:
        raise InputError(
            f"indicators lack the column(s) {', '.join(missing)}", field="indicators", value=missing
        )
    dims = dimension_columns(frame)
    out = frame[["indicator", "ds", "y", *dims]].copy()
    out["ds"] = pd.to_datetime(out["ds"]).dt.tz_localize(None) if len(out) else pd.to_datetime(out["ds"])
    out["ds"] = out["ds"].dt.normalize()
    out["y"] = pd.to_numeric(out["y"], errors="coerce").astype(float)
    out["indicator"] = out["indicator"].astype(str)
    for d in dims:
        col = out[d].astype(object)
        out[d] = [
            None if v is None or (isinstance(v, float) and np.isnan(v)) or str(v).strip() == "" else str(v)
            for v in col
        ]
    return out, dims


#: Share of the dates between a part's first and last that must hold a value for its missing ones to be gaps.
MEASURED_SHARE = 0.5


def _fill_gaps_of_measured_parts(parts: pd.DataFrame) -> pd.DataFrame:
    """Parts of a sum with their missing dates between their first and last interpolated when they have a value
    on at least ``MEASURED_SHARE`` of those dates (a measured series with a gap: one team's export lost for a
    month); a part with fewer (an export that lists only the weeks with a value) keeps them missing, so they add 0.
    Before its first date or after its last a part adds nothing either way."""
    out = parts.copy()
    for col in out.columns:
        present = out[col].notna().to_numpy()
        where = np.flatnonzero(present)
        if len(where) < 2 or present.all():
            continue
        span = present[where[0] : where[-1] + 1]
        if span.mean() >= MEASURED_SHARE and not span.all():
            out[col] = out[col].interpolate(method="time", limit_area="inside")
    return out


def build_series(indicators: pd.DataFrame, cfg: ExplainConfig | None = None) -> dict[str, SeriesData]:
    """Every series of the input and every aggregate its parts make, by series id (see the module docstring)."""
    cfg = cfg or ExplainConfig()
    frame, all_dims = _clean(indicators)
    # an absent date of a count is a 0; a row whose value is empty is a gap (completed first, dropped after)
    frame, notes = complete_counts(frame, all_dims, lambda name: is_mean_indicator(name, cfg))
    frame = frame[np.isfinite(frame["y"])]
    for note in notes:
        logger.info("Explaining - %s", note)
    out: dict[str, SeriesData] = {}
    for indicator, rows in frame.groupby("indicator", sort=True):
        ind = str(indicator)
        dims = [d for d in all_dims if rows[d].notna().any()]
        how: Literal["sum", "mean"] = "mean" if is_mean_indicator(ind, cfg) else "sum"
        # the input's own series
        keys = rows[dims].astype(object).where(rows[dims].notna(), None) if dims else None
        groups: dict[tuple[str | None, ...], pd.DataFrame] = {}
        if keys is None:
            groups[()] = rows
        else:
            for key, g in rows.groupby([rows[d].fillna(UNSET) for d in dims], sort=True):
                kt = key if isinstance(key, tuple) else (key,)
                groups[tuple(None if v == UNSET else str(v) for v in kt)] = g
        for key, g in groups.items():
            fixed = {d: v for d, v in zip(dims, key, strict=True) if v is not None}
            sid = series_name(ind, fixed, all_dims)
            values = g.groupby("ds")["y"].sum() if g["ds"].duplicated().any() else g.set_index("ds")["y"]
            out[sid] = SeriesData(sid, ind, fixed, values.sort_index().astype(float), how=how)
        if not dims:
            continue
        leaves = {k: g for k, g in groups.items() if all(v is not None for v in k)}
        # a series set on a later dimension without an earlier one (a service without its team) is neither a part
        # nor an aggregate the input gives (the total, a team's total): it is analysed alone
        loose = [k for k in groups if any(v is not None and None in k[:i] for i, v in enumerate(k))]
        if loose:
            example = series_name(ind, {d: v for d, v in zip(dims, loose[0], strict=True) if v}, all_dims)
            logger.warning(
                "Explaining - %s: %d series are split on a dimension but not on the one before it (order: %s; "
                "e.g. %s): each is analysed alone, not as a part of the aggregates",
                ind,
                len(loose),
                ", ".join(dims),
                example,
            )
        if len(leaves) < 2:
            continue
        if len(weekly_anchors([pd.DatetimeIndex(g["ds"]) for g in leaves.values()])) > 1:
            # weekly parts on different weekdays: a sum over them would interleave the days (complete_counts
            # says so in its note); each part is still analysed on its own
            logger.info("Explaining - %s: parts on different weekdays, no aggregate built", ind)
            continue
        wide = pd.DataFrame({k: g.groupby("ds")["y"].sum() for k, g in sorted(leaves.items())}).sort_index()
        leaf_keys = list(sorted(leaves))
        wide.columns = range(len(leaf_keys))
        leaf_dims = [{d: str(v) for d, v in zip(dims, k, strict=True)} for k in leaf_keys]
        scopes: list[dict[str, str]] = [{}]
        if len(dims) >= 2:
            scopes += [{dims[0]: v} for v in sorted({k[0] for k in leaf_keys if k[0] is not None})]
        for scope in scopes:
            cols = [j for j, ld in enumerate(leaf_dims) if all(ld[d] == v for d, v in scope.items())]
            if len(cols) < 2:
                continue
            parts = wide[cols]
            parts = parts[parts.notna().any(axis=1)]
            if how == "sum":
                parts = _fill_gaps_of_measured_parts(parts)
            agg = parts.mean(axis=1) if how == "mean" else parts.fillna(0.0).sum(axis=1)
            sid = series_name(ind, scope, all_dims)
            given = out.get(sid)
            out[sid] = SeriesData(
                sid,
                ind,
                dict(scope),
                given.values if given is not None else agg.astype(float),
                parts=parts.copy(),
                part_dims=[leaf_dims[j] for j in cols],
                how=how,
                part_series=[series_name(ind, leaf_dims[j], all_dims) for j in cols],
            )
    return out


def _detect(s: SeriesData, cfg: ExplainConfig) -> list[dict[str, Any]]:
    """Shifts of one series: on its values, and for a series that lost a shared season (:mod:`ml.causes.season`)
    on both.

    The detector fits no season of its own on a series whose shared season is out. A leaf series (one the
    forecaster also lists the shifts of, by the same detector on its values) keeps every shift found on its
    values, at their dates, so that each shift listed there is explained under its own id; a shift found only once
    the season is out (none on the values within ``CARRY_DAYS``) is added, and one found only on the values says
    so in its ``detail`` and is marked ``seasonal`` (its explanation names the season and no convincing cause).
    An aggregate's shifts are those found with the season out.
    """

    def shifts(values: pd.Series, **extra: Any) -> list[dict[str, Any]]:
        found = detect_signals(
            s.series, list(values.index), list(values.to_numpy()), **{**extra, **cfg.signal_params}
        )
        return [e for e in found if e.get("kind") == "shift"]

    if s.season is None:
        return shifts(s.values)
    adjusted = shifts(s.values, season_length=1)
    if s.is_aggregate:
        return adjusted
    raw = shifts(s.unadjusted if s.unadjusted is not None else s.values + s.season)

    def near(event: dict[str, Any], others: list[dict[str, Any]]) -> bool:
        d = pd.Timestamp(str(event["date"]))
        return any(abs(pd.Timestamp(str(o["date"])) - d) <= pd.Timedelta(days=CARRY_DAYS) for o in others)

    out = [
        e
        if near(e, adjusted)
        else {
            **e,
            "detail": f"{e.get('detail') or ''}; no shift near it once the shared season is out",
            "seasonal": True,
        }
        for e in raw
    ]
    out += [
        {**a, "detail": f"{a.get('detail') or ''}; found once the shared season is out"}
        for a in adjusted
        if not near(a, raw)
    ]
    return out


def detect_shifts(
    series: dict[str, SeriesData],
    cfg: ExplainConfig | None = None,
    starts: dict[str, list[tuple[pd.Timestamp, str]]] | None = None,
) -> list[dict[str, Any]]:
    """Shift events (:data:`~ml.indicators.events.EVENT_FIELDS` dicts) of every series, by series id then date.

    ``starts`` (:func:`~ml.causes.candidates.experiment_starts`): a shift moves to one the data cannot tell apart."""
    cfg = cfg or ExplainConfig()
    events: list[dict[str, Any]] = []
    for sid in sorted(series):
        s = series[sid]
        if len(s.values) < MIN_POINTS:
            continue
        try:
            found = _detect(s, cfg)
        except InputError as exc:
            logger.info("Explaining - no shift detection on %s: %s", sid, exc.message)
            continue
        events += found
    if starts:
        events = redate_shifts(series, events, starts, cfg, known=True)
    anchors: dict[str, list[tuple[pd.Timestamp, str]]] = {}
    for e in events:
        for sid in sorted(series):
            if str(e["series"]) in series[sid].part_series:
                anchors.setdefault(sid, []).append(
                    (pd.Timestamp(str(e["date"])[:10]), f"the shift of {e['series']}")
                )
    events = redate_shifts(series, events, anchors, cfg)
    events += carried_shifts(series, events, cfg)
    return sorted(events, key=lambda e: (str(e["series"]), str(e["date"])))


def grid_bars(idx: pd.DatetimeIndex, params: dict[str, Any]) -> tuple[int, float]:
    """The detector's bars on grid ``idx`` (:func:`~ml.indicators.signals.per_week_bars`: 28 points and sigma /
    sqrt(7) on a daily grid), so a carried or re-dated shift of a daily series meets the same bars as a detected
    one."""
    return per_week_bars(int(params["min_segment"]), float(params["min_shift_sigma"]), idx)


def _steps(events: list[dict[str, Any]]) -> dict[str, list[tuple[pd.Timestamp, float]]]:
    """(date, step) of each series' shifts (a trend change: step 0), by series id."""
    by_series: dict[str, list[tuple[pd.Timestamp, float]]] = {}
    for e in events:
        mag = e.get("magnitude")
        step = 0.0 if is_trend_change(e) or not isinstance(mag, int | float) else mag
        by_series.setdefault(str(e["series"]), []).append((pd.Timestamp(str(e["date"])[:10]), float(step)))
    return by_series


def _cleared(
    y0: np.ndarray, idx: pd.DatetimeIndex, steps: list[tuple[pd.Timestamp, float]], w: float, d: pd.Timestamp
) -> np.ndarray:
    """An aggregate's values less its parts' steps (weight ``w`` each) more than ``CARRY_DAYS`` from ``d``."""
    y = y0.copy()
    for o, m in steps:
        if abs(o - d) > pd.Timedelta(days=CARRY_DAYS):
            y[idx >= o] -= w * m
    return y


def _two_level_sse(y: np.ndarray, a: int, p: int, b: int) -> float:
    left, right = y[a:p], y[p:b]
    return float(((left - left.mean()) ** 2).sum() + ((right - right.mean()) ** 2).sum())


def redate_shifts(
    series: dict[str, SeriesData],
    events: list[dict[str, Any]],
    anchors: dict[str, list[tuple[pd.Timestamp, str]]],
    cfg: ExplainConfig,
    known: bool = False,
) -> list[dict[str, Any]]:
    """``events`` with a detected shift moved to a known date of its series (an anchor; :func:`detect_shifts`
    passes an aggregate its parts' shifts, and every series the starts of the experiments made on its slice) when
    the data fit it as well there (see below).

    A blind search dates a shift to within a few weeks; on a sum of parts, or next to a seasonal swing, it can
    land three or four weeks off, and then it hides the true date from every test made there (the shift blocks
    tests within ``CARRY_DAYS`` and clips their segments). A shift without an anchor within ``CARRY_DAYS`` is
    compared with each anchor more than ``CARRY_DAYS`` and at most ``REDATE_DAYS`` away that lies between its
    neighbouring shifts: the sum of squares of the two-level fit over the span between those neighbours is
    computed with the step at the detected date and at the anchor (each side at least ``min_segment`` points).
    The shift moves to the best anchor when the fit there is at least as good and the step keeps its sign; or,
    when the parts' own steps at the anchor are at least ``REDATE_SHARE`` (half) of the sum's step there (and
    of its detected step), when the fit there is not decisively worse: its sum of squares exceeds the detected
    date's by at most ``REDATE_LR`` noise variances (the detected fit's residual variance), a likelihood ratio of
    at most e^4, so the sum's data cannot tell the two dates apart. Such a part's shift is dated on a far less noisy
    series than the sum of all parts, so its date is the better estimate of when the sum moved (on GitHub's history with
    planted rises, a sum's shift dated 3-5 weeks from the date of the part that explains it was the most common
    miss at large sizes); a part whose step is a small share of the sum's (an unrelated rise of one team a month
    before a rise of all of them) does not take it. Its magnitude becomes the step there, its confidence stays the
    detector's, and ``detail`` says so.

    ``known=True`` (experiment starts on their own indicator and slice): the slack applies to every anchor. A change
    made on purpose to that slice on a known day dates a shift the data cannot tell from it better than the blind
    search, which lands weeks off on a gradual move. A moved event keeps its detected date in ``redated_from`` and
    is not moved again. A change-log entry is no such anchor: its effect comes 0-3 weeks later.
    """
    params = cfg.detector_params()
    near, far = pd.Timedelta(days=CARRY_DAYS), pd.Timedelta(days=REDATE_DAYS)
    own: dict[str, list[pd.Timestamp]] = {}
    for e in events:
        own.setdefault(str(e["series"]), []).append(pd.Timestamp(str(e["date"])[:10]))
    by_part = _steps(events)
    out = []
    for e in events:
        sid, o = str(e["series"]), pd.Timestamp(str(e["date"])[:10])
        s, marks = series.get(sid), anchors.get(sid, [])
        mag = e.get("magnitude")
        if (
            s is None
            or not marks
            or e.get("redated_from")  # moved already (to an experiment's start)
            or any(abs(a - o) <= near for a, _ in marks)
            or is_trend_change(e)
            or not isinstance(mag, int | float)
        ):
            out.append(e)
            continue
        idx = pd.DatetimeIndex(s.values.index)
        ms = grid_bars(idx, params)[0]
        y0 = s.values.to_numpy(dtype=float)
        steps = sorted((d, m) for part in s.part_series for d, m in by_part.get(part, []))
        w = 1.0 / len(s.part_series) if s.how == "mean" and s.part_series else 1.0
        others = [x for x in own[sid] if x != o]
        lo = max([x for x in others if x < o], default=idx[0])
        hi = min([x for x in others if x > o], default=idx[-1] + pd.Timedelta(days=1))
        a, b = int(idx.searchsorted(lo)), int(idx.searchsorted(hi))
        po = int(idx.searchsorted(o))
        if min(po - a, b - po) < ms:
            out.append(e)
            continue
        best: tuple[float, int, str, float] | None = None
        for d, label in sorted(marks, key=lambda m: (m[0], m[1])):
            if not (near < abs(d - o) <= far and lo < d < hi):
                continue
            pa = int(idx.searchsorted(d))
            if min(pa - a, b - pa) < ms:
                continue
            y = _cleared(y0, idx, steps, w, d)  # an aggregate: less its parts' other shifts
            sse, sse_o = _two_level_sse(y, a, pa, b), _two_level_sse(y, a, po, b)
            step = float(y[pa:b].mean() - y[a:pa].mean())
            # a part whose own step there is most of the sum's may take the shift where the fit is a little worse
            part_step = w * sum(m for x, m in steps if x == d)
            big = part_step * step > 0 and abs(part_step) >= REDATE_SHARE * max(abs(step), abs(float(mag)))
            slack = REDATE_LR * sse_o / max(b - a - 2, 1) if big or known else 0.0  # in noise variances
            if step * float(mag) > 0 and sse <= sse_o + slack and (best is None or sse - sse_o < best[0]):
                best = (sse - sse_o, pa, label, step)
        if best is None:
            out.append(e)
            continue
        _, pa, label, step = best
        d = idx[pa]
        sigma = e.get("magnitude_sigma")
        moved = {
            **e,
            "date": str(d.date()),
            "magnitude": step,
            "magnitude_sigma": float(sigma) * step / float(mag)
            if isinstance(sigma, int | float) and mag
            else sigma,
            "detail": f"{e.get('detail') or ''}; re-dated from {o.date()} to {d.date()}, the date of {label}: "
            f"the two-level fit between its neighbouring shifts is about as good there".lstrip("; "),
            "redated_from": str(o.date()),
        }
        own[sid] = [*others, d]
        out.append(moved)
    return out


def carried_shifts(
    series: dict[str, SeriesData], events: list[dict[str, Any]], cfg: ExplainConfig
) -> list[dict[str, Any]]:
    """Shifts of an aggregate at the date of a shift of one of its parts, when the aggregate's own detection
    missed it but the aggregate's level did change there.

    A part's shift can be too small against the noise of the sum of all parts for the detector's penalised
    search, yet clear when tested at its known date. The aggregate is first cleared of its parts' other shifts
    (each part's detected step, more than ``CARRY_DAYS`` away, subtracted; weighted 1/K for a mean), then tested
    as the detector does: the difference of its means over the segments either side (up to its own neighbouring
    shifts) against the AR(1) noise around the segment means, one-sided in the direction the parts' steps at that
    date move the aggregate (two-sided where they cancel: a part's rise is carried only as a rise), and
    Bonferroni-corrected over the dates tested: the distinct dates of its parts' shifts (each part's own detection
    already paid for its search over every date). Kept when the confidence reaches ``min_confidence`` (0.95) and the
    shift is at least ``CARRY_SIGMA`` x ``min_shift_sigma`` noise sds (the part's own shift already passed the
    full size bar; the sum of many parts is noisier). The dates are tested in order, and again while a pass carries
    one: a shift carried at a later date bounds the segment after an earlier one, which no longer holds both; at
    the end each carried shift is measured once more with all the others as segment ends, and one whose step is
    then less than half of what it was (kept only because its segment after held a later level) is dropped.

    With two dimensions an aggregate (the total) also holds inner aggregates (each team over its services), whose
    shifts, found by the detector or carried here (the smallest aggregates go first), are tested the same way: a
    team whose services each rose too little to be found can still move the team's sum, and so the total.
    """
    params = cfg.detector_params()
    by_series = _steps(events)
    out: list[dict[str, Any]] = []
    # the smallest aggregates first, so that a total also tests the dates its inner aggregates' shifts were carried to
    for sid in sorted(series, key=lambda k: (len(series[k].part_series), k)):
        s = series[sid]
        if not s.is_aggregate or len(s.values) < MIN_POINTS:
            continue
        own = [d for d, _ in by_series.get(sid, [])]
        steps = sorted((d, m) for part in s.part_series for d, m in by_series.get(part, []))
        mine = set(s.part_series)
        inner = sorted(k for k, t in series.items() if t.is_aggregate and set(t.part_series) < mine)
        inner_steps = sorted((d, m) for k in inner for d, m in by_series.get(k, []))
        w = 1.0 / len(s.part_series) if s.how == "mean" else 1.0
        y0 = s.values.to_numpy(dtype=float)
        idx = pd.DatetimeIndex(s.values.index)
        ms, bar = grid_bars(idx, params)
        dates = sorted({d for d, _ in [*steps, *inner_steps]})  # the dates tested: the Bonferroni count
        # the direction each date's parts (or else inner aggregates) moved it (0: they cancel; the test is two-sided)
        sign = {
            d: float(np.sign(sum(m for o, m in steps if o == d) or sum(m for o, m in inner_steps if o == d)))
            for d in dates
        }
        carried = True
        while carried:  # again while a pass carries one: a later shift found bounds an earlier date's segment
            carried = False
            for d in dates:
                res = _carry_test(y0, idx, steps, w, own, sign[d], d, ms)
                if res is None:
                    continue
                p, diff, sd, phi, before, after = res
                conf = max(0.0, 1.0 - min(1.0, p * len(dates)))
                if conf < params["min_confidence"] or abs(diff) < CARRY_SIGMA * bar * sd:
                    continue
                parts = sorted(
                    part for part in s.part_series if any(o == d for o, _ in by_series.get(part, []))
                )
                parts = parts or [k for k in inner if any(o == d for o, _ in by_series.get(k, []))]
                out.append(
                    shift_event(
                        sid,
                        d,
                        diff,
                        sd,
                        conf,
                        f"carried from {', '.join(parts)}: the aggregate, cleared of its parts' other shifts, "
                        f"moves {before:.4g} -> {after:.4g} there (noise sd {sd:.3g}, AR(1) phi {phi:.2f})",
                    )
                )
                own.append(d)
                by_series.setdefault(sid, []).append((d, diff))
                carried = True
        # each kept once more with all the others as segment ends: one an earlier pass kept only because its
        # segment after held a later level (found since) is dropped: its step there is less than half of it
        for e in [e for e in out if e["series"] == sid]:
            d = pd.Timestamp(e["date"])
            res = _carry_test(y0, idx, steps, w, [o for o in own if o != d], sign[d], d, ms)
            if res is None or res[1] * np.sign(e["magnitude"]) < 0.5 * abs(e["magnitude"]):
                out.remove(e)
                own.remove(d)
                by_series[sid] = [(o, m) for o, m in by_series[sid] if o != d]
    return out


def _carry_test(
    y0: np.ndarray,
    idx: pd.DatetimeIndex,
    steps: list[tuple[pd.Timestamp, float]],
    w: float,
    own: list[pd.Timestamp],
    sign: float,
    d: pd.Timestamp,
    min_segment: int,
) -> tuple[float, float, float, float, float, float] | None:
    """(p, step, noise sd, phi, mean before, mean after) of an aggregate at a part's date ``d``, cleared of its
    parts' other ``steps`` (weight ``w``), between its ``own`` shifts, one-sided in direction ``sign`` (0: two-sided);
    None when it has a shift within ``CARRY_DAYS``, a segment is too short or there is no noise
    (:func:`carried_shifts`)."""
    if any(abs(d - o) <= pd.Timedelta(days=CARRY_DAYS) for o in own) or d not in idx:
        return None
    y = _cleared(y0, idx, steps, w, d)
    cps = sorted({int(idx.get_loc(o)) for o in [*own, d] if o in idx} - {0})
    phi, sd = residual_ar1(y - _segment_means(y, cps), len(cps) + 1, 0.8)
    if sd <= 0:
        return None
    lo = max([o for o in own if o < d], default=idx[0])
    hi = min([o for o in own if o > d], default=idx[-1] + pd.Timedelta(days=1))
    left, right = y[(idx >= lo) & (idx < d)], y[(idx >= d) & (idx < hi)]
    if min(len(left), len(right)) < min_segment:
        return None
    diff = float(right.mean() - left.mean())
    se = math.sqrt(ar1_mean_variance(len(left), phi, sd) + ar1_mean_variance(len(right), phi, sd))
    z = diff / se
    p = float(stats.norm.sf(sign * z)) if sign else 2.0 * float(stats.norm.sf(abs(z)))
    return p, diff, sd, phi, float(left.mean()), float(right.mean())
