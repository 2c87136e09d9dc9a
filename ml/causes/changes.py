"""Changes (the change log) and experiments that started shortly before a shift, in the slice that shifted.

A change or experiment is a candidate for a shift at date d when it started in ``[d - lookback, d + slack]``.
Its confidence is the product of:

- **slice agreement**: the same value on a dimension the series is split on (a different value rules it out);
  for an aggregate, a change in slice s counts with the confidence that s drives the aggregate (from the slice
  analysis); an org-wide change (no dimension value) or one on a dimension the series cannot check counts
  ``PARTIAL``. A change on a dimension the series is not split on (``team=payments`` on indicators split by
  service) is checked through the incidents, which name both (:func:`ownership`): on a series of a service of
  which the team holds more than ``OWNED`` (half) of the incidents it agrees from ``PARTIAL`` (at half) to 1 (at
  all of them), on one of which it holds less it agrees in proportion (0 for none: ruled out; the service needs
  ``MIN_OWNED`` incidents naming a team), and an aggregate takes it with the confidence of the most convincing
  slice the team owns (times that agreement), its contribution the sum of theirs. A team no incident names keeps
  ``PARTIAL``; a change that also names the series' own slice agrees at least ``PARTIAL``. In the chance term a
  change matched so counts by its agreement;
- **timing**: full credit when it started at most ``full_credit_days`` before the shift, then falling linearly to
  ``min_timing`` at ``lookback_days``; ``AFTER`` when it started after the detected date (date noise);
- **not visible before**: the series' mean in the window before the change must sit at the shift's old level;
  when it is already half-way to the new level the change came too late to be the cause;
- **chance**: one minus the probability that a change as frequent as this slice's changes (or experiments on
  this indicator) falls in the window by chance, so a busy change log does not make every shift "explained";
- for experiments, **direction**: one that moved the indicator against its desired direction counts ``AGAINST``.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ml.causes.aggregates import SeriesData
from ml.causes.cause import Cause, ExplainConfig
from ml.io.schemas import readable, slice_key

__all__ = [
    "AFTER",
    "AGAINST",
    "MIN_OWNED",
    "OWNED",
    "PARTIAL",
    "Owners",
    "Started",
    "change_causes",
    "experiment_causes",
    "owned_agreement",
    "ownership",
    "prepare_changes",
    "prepare_experiments",
]

#: Agreement of an org-wide change, or one on a dimension the series cannot check.
PARTIAL = 0.7
#: Timing credit of a change that started after the detected shift date (within the slack).
AFTER = 0.85
#: Direction credit of an experiment that moved its indicator against the desired direction.
AGAINST = 0.6
#: Share of a slice's incidents a value of another dimension must exceed to own it (:func:`ownership`).
OWNED = 0.5
#: Fewest incidents (naming both dimensions) a slice needs before its owners are known.
MIN_OWNED = 5


class Owners(dict[tuple[str, str], dict[tuple[str, str], float]]):
    """For a slice (dimension, value), the share of its incidents each value of each other dimension holds:
    ``{("service", "checkout"): {("team", "payments"): 0.95, ("team", "identity"): 0.05}}``
    (:func:`ownership`); ``held`` is the same the other way round."""

    @functools.cached_property
    def held(self) -> dict[tuple[str, str], dict[tuple[str, str], float]]:
        """For a value (dimension, value), the share of each slice's incidents it holds:
        ``{("team", "payments"): {("service", "checkout"): 0.95}}``."""
        out: dict[tuple[str, str], dict[tuple[str, str], float]] = {}
        for piece, shares in self.items():
            for holder, share in shares.items():
                out.setdefault(holder, {})[piece] = share
        return out

    def owned_by(self, d: str, v: str) -> dict[tuple[str, str], float]:
        """The slices of which ``d=v`` holds more than ``OWNED`` of the incidents, with that share."""
        return {piece: x for piece, x in self.held.get((d, v), {}).items() if x > OWNED}


_CHANGE_FIELDS = ("ds", "kind", "description", "id")


@dataclass(frozen=True)
class Started:
    """A change or experiment: when it started, where (dimension values; none = org-wide) and what it is."""

    id: str
    start: pd.Timestamp
    dims: dict[str, str]
    kind: str
    description: str
    indicator: str | None = None
    desired: str | None = None


def _blank(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v)) or str(v).strip() == ""


def prepare_changes(changes: pd.DataFrame | None) -> list[Started]:
    """The change log as :class:`Started` records (id ``CHG-<row>`` when the log has none)."""
    if changes is None or len(changes) == 0 or "ds" not in changes.columns:
        return []
    dims = [c for c in changes.columns if c not in _CHANGE_FIELDS]
    out = []
    for i, row in enumerate(changes.to_dict(orient="records")):
        rid = row.get("id")
        out.append(
            Started(
                id=f"CHG-{i + 2}" if _blank(rid) else str(rid),
                start=pd.Timestamp(row["ds"]).tz_localize(None).normalize()
                if pd.Timestamp(row["ds"]).tzinfo
                else pd.Timestamp(row["ds"]).normalize(),
                dims={d: str(row[d]).strip() for d in dims if not _blank(row.get(d))},
                kind="" if _blank(row.get("kind")) else str(row["kind"]),
                description="" if _blank(row.get("description")) else str(row["description"]),
            )
        )
    return out


def prepare_experiments(experiments: list[Any] | None) -> list[Started]:
    """Experiment definitions (dicts as read from experiments.yaml, or ``Experiment`` records) as
    :class:`Started` records."""
    out = []
    for item in experiments or []:
        e: dict[str, Any] = item.model_dump() if hasattr(item, "model_dump") else dict(item)
        start = e.get("start")
        if start is None or _blank(e.get("id")):
            continue
        if isinstance(start, dt.datetime):
            start = start.date()
        dim = str(e.get("dimension") or "team")
        treated = e.get("treated")
        out.append(
            Started(
                id=str(e["id"]),
                start=pd.Timestamp(start).normalize(),
                dims={} if _blank(treated) else {dim: str(treated)},
                kind="experiment",
                description=str(e.get("name") or e["id"]),
                indicator=None if _blank(e.get("indicator")) else str(e["indicator"]),
                desired=str(e.get("desired_direction") or "decrease"),
            )
        )
    return out


def ownership(incidents: pd.DataFrame | None, dims: list[str]) -> Owners:
    """Who owns what, from the incidents: for each value of each dimension in ``dims`` that the incidents name
    together with another of those dimensions on at least ``MIN_OWNED`` incidents, the share of those incidents
    each value of the other dimension holds (see :data:`Owners`). Blank and missing values name nothing. Empty
    without incidents or with fewer than two of ``dims``."""
    out = Owners()
    if incidents is None or len(incidents) == 0:
        return out
    cols = [d for d in dims if d in incidents.columns]
    named = incidents[cols].fillna("").astype(str).apply(lambda col: col.str.strip())
    for a in cols:
        for b in cols:
            if a == b:
                continue
            pair = named[(named[a] != "") & (named[b] != "")]
            for w, rows in pair.groupby(b, sort=True):
                if len(rows) < MIN_OWNED:
                    continue
                shares = rows[a].value_counts(normalize=True)
                out.setdefault((b, str(w)), {}).update({(a, str(v)): float(x) for v, x in shares.items()})
    return out


def owned_agreement(share: float) -> float:
    """Agreement of a change on a value holding ``share`` of a slice's incidents: 0 for none, rising linearly to
    ``PARTIAL`` at ``OWNED`` (half of them) and on to 1 when it holds all of them. A team that filed a few stray
    incidents of a service is all but unrelated to it (a 0.7 for every such team made every team's change a
    candidate for every service, and the chance that one falls near a shift then drowned the owner's change)."""
    if share <= OWNED:
        return PARTIAL * max(share, 0.0) / OWNED
    return PARTIAL + (1.0 - PARTIAL) * (share - OWNED) / (1.0 - OWNED)


def _owned_by(s: SeriesData, d: str, v: str, owners: Owners) -> tuple[float, str] | None:
    """(agreement, how) of a change on ``d=v`` with a series not split on ``d``, from the share of the series'
    slice incidents ``d=v`` holds; None when the incidents do not tell (they never name ``d=v``, or the series'
    slices have too few incidents naming ``d``)."""
    if (d, v) not in owners.held:  # the incidents never name it with another dimension
        return None
    best: tuple[float, str] | None = None
    for e, w in sorted(s.dims.items()):
        shares = {k: x for k, x in owners.get((e, w), {}).items() if k[0] == d}
        if not shares:
            continue
        share = shares.get((d, v), 0.0)
        if share > 0.0:
            found = (owned_agreement(share), f"{d}={v} holds {share:.0%} of the incidents of {e}={w}")
        else:
            top = max(sorted(shares), key=lambda k: shares[k])
            found = (0.0, f"{d}={v} holds none of the incidents of {e}={w} (most are {d}={top[1]}'s)")
        if best is None or found[0] > best[0]:
            best = found
    return best


def _aggregate_owned(
    d: str, v: str, drivers: dict[str, tuple[float, float]], owners: Owners
) -> tuple[float, str, float | None] | None:
    """(agreement, how, contribution) of a change on ``d=v`` with an aggregate whose slices do not include
    ``d``: the slices ``d=v`` owns (:func:`ownership`) that the slice analysis scored; None when it owns none."""
    owned = {  # slice key -> (agreement, share of its incidents d=v holds)
        key: (owned_agreement(share), share)
        for (e, w), share in owners.owned_by(d, v).items()
        if (key := slice_key({e: w})) in drivers
    }
    if not owned:
        return None
    top = max(sorted(owned), key=lambda k: drivers[k][0] * owned[k][0])
    conf = drivers[top][0] * owned[top][0]
    contribution = sum(max(drivers[k][1], 0.0) for k in owned)
    others = [readable(k) for k in sorted(owned) if k != top]
    return (
        conf,
        f"{d}={v} holds {owned[top][1]:.0%} of the incidents of {readable(top)}"
        + (f" (and most of {', '.join(others)})" if others else "")
        + f"; {readable(top)} drives the aggregate (slice confidence {drivers[top][0]:.2f})",
        min(contribution, 1.0),
    )


def _agreement(
    s: SeriesData, c: Started, drivers: dict[str, tuple[float, float]], owners: Owners | None = None
) -> tuple[float, str, float | None, bool]:
    """(agreement, how, contribution, whether the incidents' owners decided it) of the slice of ``c`` with series
    ``s`` (see the module docstring)."""
    if not c.dims:
        return PARTIAL, "org-wide", None, False
    owners = owners if owners is not None else Owners()
    unfixed: dict[str, str] = {}
    for d, v in c.dims.items():
        if d in s.dims:
            if s.dims[d] != v:
                return 0.0, f"{d}={v} is another slice than {d}={s.dims[d]}", None, False
        else:
            unfixed[d] = v
    if not unfixed:
        return 1.0, "same slice", None, False
    if s.is_aggregate:
        key = slice_key(unfixed)
        found = drivers.get(key)
        if found is None:  # a pair with the same leaves as one of its values is analysed as that value
            singles = [drivers[k] for d, v in sorted(unfixed.items()) if (k := slice_key({d: v})) in drivers]
            found = min(singles) if len(unfixed) > 1 and singles else None
        if found is not None:
            conf, ep = found
            return (
                conf,
                f"{readable(key)} drives the aggregate (slice confidence {conf:.2f})",
                min(max(ep, 0.0), 1.0),
                False,
            )
        if len(unfixed) == 1 and len(c.dims) == 1:
            ((d, v),) = unfixed.items()
            owned = _aggregate_owned(d, v, drivers, owners)
            if owned is not None:
                return (*owned, True)
        return 0.0, f"{readable(key)} is not a slice of {readable(s.series)}", None, False
    checks = [_owned_by(s, d, v, owners) for d, v in sorted(unfixed.items())]
    if all(x is not None for x in checks):
        agree, how = min((x for x in checks if x is not None), key=lambda x: x[0])
        if len(unfixed) < len(c.dims):  # it also names the series' own slice: it is on it, whoever owns it
            agree = max(agree, PARTIAL)
        return agree, how, None, True
    return PARTIAL, "a dimension the series is not split on", None, False


def _timing(gap_days: int, cfg: ExplainConfig) -> float:
    if gap_days < 0:
        return AFTER
    if gap_days <= cfg.full_credit_days:
        return 1.0
    span = max(cfg.lookback_days - cfg.full_credit_days, 1)
    return 1.0 - (1.0 - cfg.min_timing) * min(1.0, (gap_days - cfg.full_credit_days) / span)


def _visible_before(
    s: SeriesData, c: Started, before: pd.DatetimeIndex, after: pd.DatetimeIndex, cfg: ExplainConfig
) -> float:
    """Share of the shift already there before the change started (0: none; 1: all of it)."""
    v = s.values
    pre = v[(v.index < c.start) & (v.index >= c.start - pd.Timedelta(days=cfg.window_days))]
    pre = pre[pre.index < after[0]] if len(after) else pre
    b, a = v.reindex(before).mean(), v.reindex(after).mean()
    if len(pre) < 2 or not (math.isfinite(a) and math.isfinite(b)) or a == b:
        return 0.0
    return float((pre.mean() - b) / (a - b))


def _chance(n_matching: float, span_days: float, cfg: ExplainConfig) -> float:
    """Probability that at least one of ``n_matching`` changes over ``span_days`` falls in the window by chance."""
    if span_days <= 0 or n_matching <= 0:
        return 0.0
    lam = n_matching / span_days
    return 1.0 - math.exp(-lam * (cfg.lookback_days + cfg.slack_days))


def _span(s: SeriesData) -> float:
    idx = s.values.index
    return float((idx[-1] - idx[0]).days) if len(idx) > 1 else 0.0


def _candidates(
    s: SeriesData,
    items: list[Started],
    d: pd.Timestamp,
    before: pd.DatetimeIndex,
    after: pd.DatetimeIndex,
    drivers: dict[str, tuple[float, float]],
    cfg: ExplainConfig,
    owners: Owners | None = None,
) -> list[tuple[Started, float, dict[str, Any], float | None]]:
    """(item, confidence without direction, evidence, contribution) of each item in the window."""
    lo, hi = d - pd.Timedelta(days=cfg.lookback_days), d + pd.Timedelta(days=cfg.slack_days)
    idx = s.values.index
    spanned = [c for c in items if len(idx) == 0 or idx[0] <= c.start <= idx[-1]]
    agreement = {id(c): _agreement(s, c, drivers, owners) for c in spanned}
    # how many of the items agree with this series (one matched through the incidents counts by its agreement: a
    # team with a few stray incidents of the service is not one more of its changes)
    weights = [agree if by_owner else 1.0 for agree, _, _, by_owner in agreement.values() if agree > 0]
    p_chance = _chance(sum(weights), _span(s), cfg)
    out = []
    for c in items:
        if not lo <= c.start <= hi:
            continue
        found = agreement.get(id(c))
        agree, how, contribution, by_owner = found if found else _agreement(s, c, drivers, owners)
        if agree <= 0:
            continue
        gap = int((d - c.start).days)
        timing = _timing(gap, cfg)
        frac = _visible_before(s, c, before, after, cfg)
        visible = float(np.clip(1.0 - (frac - 0.25) / 0.5, 0.0, 1.0))
        conf = agree * timing * visible * (1.0 - p_chance)
        evidence = {
            "started": str(c.start.date()),
            "days_before_shift": gap,
            "dimensions": dict(sorted(c.dims.items())),
            "kind": c.kind,
            "description": c.description,
            "slice_agreement": agree,
            "slice_check": how,
            "matched_by_incidents": by_owner,
            "timing_credit": timing,
            "shift_visible_before": frac,
            "chance_in_window": p_chance,
        }
        out.append((c, conf, evidence, contribution))
    return out


def _where(c: Started, evidence: dict[str, Any]) -> str:
    """The slice of a change or experiment for its summary; with how the incidents matched it, when they did."""
    where = ",".join(f"{k}={v}" for k, v in sorted(c.dims.items())) or "org-wide"
    how = str(evidence["slice_check"])
    if not evidence.get("matched_by_incidents"):
        return where
    return (
        f"{where}, which {how.removeprefix(where + ' ')}"
        if how.startswith(where + " ")
        else f"{where}: {how}"
    )


def _when(gap: int) -> str:
    if gap == 0:
        return "on the shift's date"
    days = f"{abs(gap)} day{'' if abs(gap) == 1 else 's'}"
    return f"{days} after the detected shift date" if gap < 0 else f"{days} before the shift"


def change_causes(
    s: SeriesData,
    changes: list[Started],
    d: pd.Timestamp,
    before: pd.DatetimeIndex,
    after: pd.DatetimeIndex,
    drivers: dict[str, tuple[float, float]],
    cfg: ExplainConfig,
    owners: Owners | None = None,
) -> list[Cause]:
    """Change-log causes of a shift of ``s`` at ``d`` (see the module docstring)."""
    out = []
    for c, conf, ev, contribution in _candidates(s, changes, d, before, after, drivers, cfg, owners):
        where = _where(c, ev)
        what = f"{c.kind}: {c.description}" if c.kind else c.description
        out.append(
            Cause(
                "change",
                c.id,
                contribution,
                conf,
                ev,
                f"Change {c.id} ({what}; {where}) started {_when(ev['days_before_shift'])}.",
            )
        )
    return out


def experiment_causes(
    s: SeriesData,
    experiments: list[Started],
    d: pd.Timestamp,
    before: pd.DatetimeIndex,
    after: pd.DatetimeIndex,
    direction: int,
    drivers: dict[str, tuple[float, float]],
    cfg: ExplainConfig,
    owners: Owners | None = None,
) -> list[Cause]:
    """Experiments on the series' indicator that may have caused the shift (see the module docstring)."""
    mine = [e for e in experiments if e.indicator == s.indicator]
    out = []
    for c, conf, ev, contribution in _candidates(s, mine, d, before, after, drivers, cfg, owners):
        wanted = 1 if c.desired == "increase" else -1
        agrees = wanted == direction
        ev["desired_direction"] = c.desired
        ev["direction_agrees"] = agrees
        word = "as intended" if agrees else "against its desired direction"
        where = _where(c, ev)
        out.append(
            Cause(
                "experiment",
                c.id,
                contribution,
                conf * (1.0 if agrees else AGAINST),
                ev,
                f"Experiment {c.id} ({c.description}; {where}) started {_when(ev['days_before_shift'])} and "
                f"moved {s.indicator} {word}.",
            )
        )
    return out
