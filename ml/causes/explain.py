"""``explain_signals``: ranked candidate causes for every shift of an indicator series, or an honest abstention.

Every series first loses the seasonal profile its indicator's series share, when they share one
(:mod:`ml.causes.season`); shifts are searched and measured on what is left. Shifts detected here include those
found at a known candidate date (a change, an experiment start or a pattern burst) that the blind detector missed
(:mod:`ml.causes.candidates`), and a detected shift moves to the start of an experiment made on its slice when the
data cannot tell the two dates apart (:func:`ml.causes.aggregates.redate_shifts`; its explanation lists the id of the
date it was detected at among its ``aliases``). For each shift (detected here, or given), windows of
``window_days`` before and after the shift date are cut, clipped at the neighbouring shifts of the same series.
Then:

- an aggregate's shift is split over its slices (:mod:`ml.causes.slices`);
- failure patterns of the series' slice whose incident rate changed (:mod:`ml.causes.bursts`);
- changes and experiments that started just before it in an agreeing slice (:mod:`ml.causes.changes`).

Each explanation also gives ``date_range``: the dates the shift may have happened between, since a blind search
dates a step only to within a few weeks (:func:`date_range`).

Causes are ranked by confidence, then contribution. On an aggregate a convincing slice ranks first: a pattern,
change or experiment found on the aggregate is a deeper but less certain step of the same explanation, so its
confidence is capped just below the best slice's. The verdict is "explained" when the best cause reaches
``explained_at`` and "no convincing cause" otherwise (the causes found are still listed, all below the bar).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import math
import re
from typing import Any

import numpy as np
import pandas as pd

from ml.causes.aggregates import (
    SeriesData,
    build_series,
    detect_shifts,
    dimension_columns,
    grid_bars,
    is_mean_indicator,
)
from ml.causes.bursts import pattern_causes, prepare_incidents
from ml.causes.candidates import burst_candidates, candidate_shifts, experiment_starts
from ml.causes.cause import Cause, ExplainConfig, json_safe
from ml.causes.changes import (
    Owners,
    change_causes,
    experiment_causes,
    ownership,
    prepare_changes,
    prepare_experiments,
)
from ml.causes.season import adjust_for_season, step_days
from ml.causes.slices import slice_causes
from ml.errors import InputError
from ml.experiments.hygiene import ExperimentSpan, Overlap, find_overlaps
from ml.indicators.changepoints import _segment_means, residual_ar1
from ml.indicators.completion import service_owners
from ml.indicators.events import is_trend_change
from ml.indicators.grid import fill_gaps
from ml.io.schemas import parse_series_key, readable

__all__ = ["DATE_LR", "date_range", "explain_signals", "signal_id", "when_text"]

logger = logging.getLogger(__name__)

_INCIDENT_NAME = re.compile(r"incident")
#: Likelihood-ratio bar of the 95% set of a break date, in long-run noise variances: -2 ln(1 - sqrt(0.95)), the
#: 95% point of the likelihood ratio of a break's location (Hansen 2000, Econometrica 68: 575-603).
DATE_LR = -2.0 * math.log(1.0 - math.sqrt(0.95))
#: Cap of a non-slice cause on an aggregate, relative to the best slice (see the module docstring).
BELOW_SLICE = 0.95
#: Cap of every cause of a shift that the shared season may explain, relative to ``ExplainConfig.explained_at``.
SEASONAL_CAP = 0.9


def signal_id(series: str, date: str) -> str:
    """``sig-`` + the first 10 hex digits of sha1("series|date")."""
    return "sig-" + hashlib.sha1(f"{series}|{date}".encode()).hexdigest()[:10]


def _counts_incidents(s: SeriesData, cfg: ExplainConfig) -> bool:
    if cfg.incident_indicators is not None:
        return s.indicator in cfg.incident_indicators
    return bool(_INCIDENT_NAME.search(s.indicator.lower())) and not is_mean_indicator(s.indicator, cfg)


def date_range(
    s: SeriesData, d: pd.Timestamp, bounds: list[pd.Timestamp], cfg: ExplainConfig
) -> list[str] | None:
    """[first, last] date the shift dated ``d`` may have happened on: the 95% likelihood-ratio set of one break
    between the series' neighbouring shifts (``bounds``; each side at least the detector's ``min_segment``), i.e.
    the break dates whose two-level fit has a sum of squares at most ``DATE_LR`` long-run noise variances (AR(1),
    from the residuals of the best fit) above the best one's, and ``d`` itself. On two years of weekly AR(1) noise
    (phi 0.4) with a step at a known week, 200 draws: a step of 2 noise sds is found in 147, and their ranges
    hold that week in 97% (median 7 weeks wide); one of 4 sds in all 199 found, 2 weeks wide
    (tests/ml/test_causes_date_range.py). None when the neighbours leave no room on either side (and, in
    :func:`explain_signals`, for a trend change, which has no single break date)."""
    params = cfg.detector_params()
    idx = pd.DatetimeIndex(s.values.index)
    ms = max(int(grid_bars(idx, params)[0]), 1)
    prev = max([b for b in bounds if b < d], default=idx[0])
    nxt = min([b for b in bounds if b > d], default=idx[-1] + pd.Timedelta(days=1))
    a, b, at = (int(idx.searchsorted(x)) for x in (prev, nxt, d))
    values = s.values.to_numpy(dtype=float)
    if at - a < ms or b - at < ms or not np.isfinite(values).any():
        return None
    y = fill_gaps(values)[a:b]
    y = y - y.mean()  # sums of squares of values near their mean: no precision lost at a large level
    n = len(y)
    cs, cs2 = np.concatenate([[0.0], np.cumsum(y)]), np.concatenate([[0.0], np.cumsum(y * y)])
    p = np.arange(ms, n - ms + 1)
    sse = cs2[p] - cs[p] ** 2 / p + (cs2[n] - cs2[p]) - (cs[n] - cs[p]) ** 2 / (n - p)
    best = int(p[np.argmin(sse)])
    phi, sd = residual_ar1(y - _segment_means(y, [best]), 2, 0.8)
    keep = p[sse - sse.min() <= DATE_LR * sd**2 * (1 + phi) / (1 - phi)]
    lo, hi = min(int(keep.min()), at - a), max(int(keep.max()), at - a)
    # the shift's own date too where the series has no value on it (a week missing, a weekend of a daily export
    # of weekdays: the detector works on the regular grid)
    day = d.date()
    return [str(min(idx[a + lo].date(), day)), str(max(idx[a + hi].date(), day))]


def when_text(e: dict[str, Any]) -> str:
    """An explanation's date, with the dates it may have happened between when they are not that date alone."""
    span = e.get("date_range")
    if isinstance(span, list) and len(span) == 2 and span[0] != span[1]:
        return f"{e['date']} (between {span[0]} and {span[1]})"
    return str(e["date"])


def _windows(
    s: SeriesData, d: pd.Timestamp, bounds: list[pd.Timestamp], cfg: ExplainConfig
) -> tuple[pd.DatetimeIndex, pd.DatetimeIndex, pd.Timestamp, pd.Timestamp]:
    """(before dates, after dates, b0, a1): the windows around ``d``, clipped at the neighbouring shifts."""
    idx = pd.DatetimeIndex(s.values.index)
    w = pd.Timedelta(days=cfg.window_days)
    prev = max([b for b in bounds if b < d], default=None)
    nxt = min([b for b in bounds if b > d], default=None)
    lo = max(d - w, prev) if prev is not None else d - w
    hi = min(d + w, nxt) if nxt is not None else d + w
    before, after = idx[(idx >= lo) & (idx < d)], idx[(idx >= d) & (idx < hi)]
    if len(before) < 2 or len(after) < 2:  # clipped too hard: use the plain windows
        before, after = idx[(idx >= d - w) & (idx < d)], idx[(idx >= d) & (idx < d + w)]
    step = pd.Timedelta(days=step_days(idx) or 7)
    b0 = before[0] if len(before) else d - w
    a1 = after[-1] + step if len(after) else d + step
    return before, after, b0, a1


def _baseline(
    s: SeriesData, d: pd.Timestamp, bounds: list[pd.Timestamp], cfg: ExplainConfig
) -> pd.DatetimeIndex:
    """The dates a slice's share before the shift is measured over: ``pattern_baseline_days`` before ``d``,
    clipped at the series' previous shift (a sparse count's 8-week window holds a handful of incidents)."""
    idx = pd.DatetimeIndex(s.values.index)
    prev = max([b for b in bounds if b < d], default=idx[0])
    lo = max(prev, d - pd.Timedelta(days=cfg.pattern_baseline_days))
    return idx[(idx >= lo) & (idx < d)]


def _after_long(
    s: SeriesData, d: pd.Timestamp, bounds: list[pd.Timestamp], cfg: ExplainConfig
) -> pd.DatetimeIndex:
    """The dates from ``d`` over ``pattern_baseline_days``, clipped at the series' next shift: with
    :func:`_baseline`, the spans a slice's own change is tested over."""
    idx = pd.DatetimeIndex(s.values.index)
    nxt = min([b for b in bounds if b > d], default=idx[-1] + pd.Timedelta(days=1))
    hi = min(nxt, d + pd.Timedelta(days=cfg.pattern_baseline_days))
    return idx[(idx >= d) & (idx < hi)]


def _direction(e: dict[str, Any], magnitude: float) -> int:
    word = str(e.get("direction") or "").lower()
    if word in ("increase", "up", "rise"):
        return 1
    if word in ("decrease", "down", "fall"):
        return -1
    return 1 if magnitude >= 0 else -1


def _rank(causes: list[Cause], cfg: ExplainConfig) -> list[Cause]:
    def key(c: Cause) -> tuple[float, float, str, str]:
        return (-round(c.confidence, 6), -(c.contribution or 0.0), c.kind, c.key)

    return sorted(causes, key=key)[: cfg.max_causes]


def _explain_one(
    e: dict[str, Any],
    s: SeriesData | None,
    bounds: list[pd.Timestamp],
    incidents: pd.DataFrame | None,
    changes: list[Any],
    experiments: list[Any],
    cfg: ExplainConfig,
    owners: Owners | None = None,
) -> dict[str, Any]:
    sid, date = str(e["series"]), str(e["date"])[:10]
    d = pd.Timestamp(date)
    notes: list[str] = []
    causes: list[Cause] = []
    windows: dict[str, list[str]] | None = None
    dated: list[str] | None = None
    magnitude = e.get("magnitude")
    mag = float(magnitude) if isinstance(magnitude, int | float) and math.isfinite(magnitude) else math.nan
    if s is None:
        notes.append(f"{readable(sid)} is not a series of the indicators: no cause can be checked")
        direction = _direction(e, 0.0 if math.isnan(mag) else mag)
    else:
        before, after, b0, a1 = _windows(s, d, bounds, cfg)
        dated = None if is_trend_change(e) else date_range(s, d, bounds, cfg)  # a kink has no single date
        if s.season is not None:
            notes.append(
                f"measured after taking out the seasonal profile shared by the series of {s.indicator} "
                f"(peak to trough {float(s.season.max() - s.season.min()):.3g} on this series)"
            )
        windows = {
            "before": [str(x.date()) for x in before[[0, -1]]] if len(before) else [],
            "after": [str(x.date()) for x in after[[0, -1]]] if len(after) else [],
        }
        if math.isnan(mag):
            mag = float(s.values.reindex(after).mean() - s.values.reindex(before).mean())
        direction = _direction(e, mag)
        drivers: dict[str, tuple[float, float]] = {}
        if s.is_aggregate:
            spans = (_baseline(s, d, bounds, cfg), _after_long(s, d, bounds, cfg))
            res = slice_causes(s, before, after, direction, cfg, spans=spans)
            causes += res.causes
            notes += res.notes
            drivers = res.drivers
        deeper: list[Cause] = []
        if incidents is not None:
            first = incidents["date"].min()
            pb0 = max(min(b0, d - pd.Timedelta(days=cfg.pattern_baseline_days)), first)
            found, pnotes = pattern_causes(
                incidents, s.dims, pb0, d, a1, direction, _counts_incidents(s, cfg)
            )
            deeper += found
            notes += pnotes
        deeper += change_causes(s, changes, d, before, after, drivers, cfg, owners)
        deeper += experiment_causes(s, experiments, d, before, after, direction, drivers, cfg, owners)
        if e.get("seasonal"):
            notes.append(
                f"no shift is found near {date} once the seasonal profile shared by the series of {s.indicator} "
                "is taken out: the season may explain it, so no cause is convincing"
            )
            for c in deeper:
                c.confidence = min(c.confidence, SEASONAL_CAP * cfg.explained_at)
        best_slice = max((c.confidence for c in causes), default=0.0)
        if s.is_aggregate and best_slice >= cfg.explained_at:
            for c in deeper:
                c.confidence = min(c.confidence, BELOW_SLICE * best_slice)
        causes += deeper
    ranked = _rank([c for c in causes if c.confidence > 0.0], cfg)
    best = ranked[0].confidence if ranked else 0.0
    if best < cfg.explained_at:
        notes.append(
            "no convincing cause: "
            + (f"the best candidate reaches confidence {best:.2f}" if ranked else "no candidate found")
        )
    indicator = s.indicator if s is not None else str(parse_series_key(sid)["indicator"])
    out = {
        "id": signal_id(sid, date),
        "series": sid,
        "indicator": indicator,
        "date": date,
        "date_range": dated,
        "direction": "increase" if direction > 0 else "decrease",
        "magnitude": mag if math.isfinite(mag) else None,
        "confidence": e.get("confidence"),
        "detail": e.get("detail"),
        # a shift moved from the date it was detected at (ml.causes.aggregates.redate_shifts): that date's id too,
        # so the forecaster's listing of it there finds this explanation
        "aliases": [signal_id(sid, str(e["redated_from"]))] if e.get("redated_from") else [],
        "causes": [c.to_dict() for c in ranked],
        "verdict": "explained" if best >= cfg.explained_at else "no convincing cause",
        "windows": windows,
        "notes": notes,
    }
    return dict(json_safe(out))


def _overlaps(
    experiments: list[dict[str, Any]] | None, owners: dict[str, set[str]] | None = None
) -> dict[str, list[Overlap]]:
    """Each experiment's overlaps with the others (:func:`ml.experiments.hygiene.find_overlaps`; a team and a
    service meet where ``owners``, teams by service, says the team runs it), by id."""
    rows = [e.model_dump() if hasattr(e, "model_dump") else dict(e) for e in experiments or []]
    spans = [span for row in rows if (span := ExperimentSpan.from_record(row)) is not None]
    return find_overlaps(spans, owners)


def _flag_overlaps(result: dict[str, Any], overlaps: dict[str, list[Overlap]]) -> None:
    """An experiment cause that overlaps another experiment says so (evidence ``overlaps``, and its summary): the
    shift holds both changes, and neither effect can be told apart from the other's."""
    for c in result["causes"]:
        found = overlaps.get(str(c["key"])) if c["kind"] == "experiment" else None
        if found:
            c["evidence"]["overlaps"] = [
                {"id": o.other_id, "kind": o.kind, "reason": o.reason} for o in found
            ]
            c["summary"] = f"{c['summary']} Overlap: {'; '.join(o.reason for o in found)}."


def explain_signals(
    indicators: pd.DataFrame,
    signals: list[dict[str, Any]] | None = None,
    incidents: pd.DataFrame | None = None,
    experiments: list[dict[str, Any]] | None = None,
    changes: pd.DataFrame | None = None,
    since: dt.date | None = None,
    config: ExplainConfig | None = None,
) -> list[dict[str, Any]]:
    """Ranked candidate causes of every shift, newest first (see the module docstring).

    ``indicators`` is long (``indicator, ds, y`` + dimension columns); ``signals`` are detected events (only
    ``kind == "shift"`` ones are explained; None: shifts are detected here on every series and aggregate);
    ``incidents`` has ``id, date, pattern_id, pattern_name`` + dimension columns (without the pattern columns it
    gives no pattern causes, but still tells which team owns which service for the change log and experiments:
    :func:`~ml.causes.changes.ownership`); ``experiments`` are experiment
    definitions as dicts; ``changes`` is the change log (``ds``, dimension columns, ``kind``, ``description``,
    optional ``id``). Each result is JSON-safe and the output is deterministic.
    """
    cfg = config or ExplainConfig()
    if not isinstance(indicators, pd.DataFrame):
        raise InputError(
            "indicators must be a DataFrame", field="indicators", value=type(indicators).__name__
        )
    series = build_series(indicators, cfg)
    if cfg.shared_season:
        series = adjust_for_season(series)
    inc = prepare_incidents(incidents)
    chg = prepare_changes(changes)
    exps = prepare_experiments(experiments)
    overlaps = _overlaps(experiments, service_owners(series))
    # who owns what, on the indicators' dimensions and those the change log and experiments name
    named = sorted({*dimension_columns(indicators), *(d for c in [*chg, *exps] for d in c.dims)})
    owners = ownership(incidents, named) if chg or exps else Owners()
    if signals is None:
        events = detect_shifts(series, cfg, experiment_starts(series, exps, owners))
        bursts = burst_candidates(inc, dimension_columns(indicators), cfg)
        events += candidate_shifts(series, events, chg, exps, bursts, cfg, owners)
        events.sort(key=lambda e: (str(e["series"]), str(e["date"])))
    else:
        events = [dict(e) for e in signals if str(e.get("kind", "shift")) == "shift" and e.get("series")]
    bounds: dict[str, list[pd.Timestamp]] = {}
    for e in events:
        bounds.setdefault(str(e["series"]), []).append(pd.Timestamp(str(e["date"])[:10]))
    seen: set[tuple[str, str]] = set()
    out = []
    for e in events:
        key = (str(e["series"]), str(e["date"])[:10])
        if key in seen or (since is not None and dt.date.fromisoformat(key[1]) < since):
            continue
        seen.add(key)
        out.append(_explain_one(e, series.get(key[0]), bounds.get(key[0], []), inc, chg, exps, cfg, owners))
        _flag_overlaps(out[-1], overlaps)
    ids = {r["id"] for r in out}
    for r in out:  # a shift found since at the date another one was moved from keeps that date's id
        r["aliases"] = [a for a in r["aliases"] if a not in ids]
    out.sort(key=lambda r: r["series"])
    out.sort(key=lambda r: r["date"], reverse=True)
    logger.info(
        "Explaining - %d shifts, %d explained", len(out), sum(r["verdict"] == "explained" for r in out)
    )
    return out
