"""Which slices (dimension values, and pairs of values over two dimensions) explain the shift of an aggregate.

After Adtributor (Bhagwan et al., NSDI 2014) and Squeeze (Li et al., ISSRE 2019). For a shift at date d of an
aggregate A made of leaves, with before/after windows:

- each candidate slice s (one dimension value, or with two or more dimensions a pair of values) has a change
  ``change_s`` (after mean - before mean of its leaves, weighted like the aggregate) and an explanatory power
  ``EP_s = change_s / change_A``; its surprise is the Jensen-Shannon term between its share of A before and after
  (the share before measured over a longer baseline when one is given: up to ``pattern_baseline_days`` before
  the shift, clipped at the aggregate's previous shift, as the share of a sparse count's 8-week window is a
  handful of incidents, perhaps the shift's own first week when it is dated late); when the aggregate does not
  move in the shift's direction over the windows (a sparse total, a shift found over longer segments), the
  changes and shares are measured over the longer spans instead, where it does (a note says so);
- its own test: its change against the AR(1) noise of the slice's own series (variance of a mean of n AR(1)
  values, :func:`ml.indicators.changepoints.ar1_mean_variance`), one-sided in the direction of the shift,
  Bonferroni-corrected over all candidates; measured over longer spans when they are given (up to
  ``pattern_baseline_days`` either side of the shift, clipped at the aggregate's neighbouring shifts): a sustained
  step of a sparse count is a handful of incidents in an 8-week window, and a team going from none to about one
  incident a week was not convincing there;
- confidence = that test's significance x :func:`~ml.causes.cause.concentration` (EP against the slice's share
  before), so a change spread over the slices in proportion to their size blames none of them (and says so);
- a slice is preferred to its parents, the slices that contain it (a pair's two values; with nested dimensions,
  e.g. each service run by one team, a service's team too), as Squeeze's "the root cause is the most specific
  set that explains it", only when it explains at least ``combo_ep`` of what each parent explains and the rest of
  each parent (its other leaves) shows no change of its own in the direction of the shift (z < ``REST_Z``); its
  parents then rank just below it. Otherwise it ranks below its best parent.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from ml.causes.aggregates import SeriesData
from ml.causes.cause import Cause, ExplainConfig, concentration, significance
from ml.indicators.changepoints import ar1_mean_variance, robust_ar1
from ml.io.schemas import readable, slice_key

__all__ = ["REST_Z", "SliceResult", "slice_causes"]

#: The rest of a parent slice (its leaves outside a pair) "has moved too" above this z in the shift's direction.
REST_Z = 2.0


@dataclass
class SliceResult:
    """Slice causes of one shift, the notes about them, and each candidate's (confidence, EP) by key."""

    causes: list[Cause]
    notes: list[str]
    drivers: dict[str, tuple[float, float]]


def _js_term(p: float, q: float) -> float:
    """Jensen-Shannon term of one slice between its share before (p) and after (q)."""
    m = (p + q) / 2
    out = 0.0
    for x in (p, q):
        if x > 0 and m > 0:
            out += 0.5 * x * math.log(x / m)
    return out


def _candidates(s: SeriesData) -> tuple[list[tuple[dict[str, str], frozenset[int]]], set[frozenset[int]]]:
    """(dimension values, leaf columns) of every single value and pair of values that splits the aggregate; and
    the leaves of those named by two dimensions: values with the same leaves (a team whose one service it is) are
    one slice named by both."""
    merged: set[frozenset[int]] = set()
    free = [d for d in (s.part_dims[0] if s.part_dims else {}) if d not in s.dims]
    free = [d for d in free if len({ld[d] for ld in s.part_dims}) > 1]
    out: list[tuple[dict[str, str], frozenset[int]]] = []
    seen: dict[frozenset[int], int] = {}
    for depth in (1, 2):
        for combo in itertools.combinations(free, depth):
            values = sorted({tuple(ld[d] for d in combo) for ld in s.part_dims})
            for vals in values:
                dims = dict(zip(combo, vals, strict=True))
                cols = frozenset(
                    j for j, ld in enumerate(s.part_dims) if all(ld[d] == v for d, v in dims.items())
                )
                if not cols or len(cols) == len(s.part_dims):
                    continue
                if cols in seen:
                    first = out[seen[cols]][0]
                    # a team whose one service this is: one slice, named by both
                    if depth == 1 and len(first) == 1:
                        out[seen[cols]] = ({**first, **dims}, cols)
                        merged.add(cols)
                    continue
                seen[cols] = len(out)
                out.append((dims, cols))
    return out, merged


def slice_causes(
    s: SeriesData,
    before: pd.DatetimeIndex,
    after: pd.DatetimeIndex,
    direction: int,
    cfg: ExplainConfig,
    baseline: pd.DatetimeIndex | None = None,
    spans: tuple[pd.DatetimeIndex, pd.DatetimeIndex] | None = None,
) -> SliceResult:
    """Slice causes of a shift of aggregate ``s`` between the ``before`` and ``after`` dates (see module doc)."""
    if s.parts is None or s.parts.shape[1] < 2:
        return SliceResult([], [], {})
    if baseline is None and spans is not None:
        baseline = spans[0]  # the shares before: over the before span
    parts = s.parts
    k = parts.shape[1]
    w = 1.0 / k if s.how == "mean" else 1.0
    full = parts.fillna(0.0) if s.how == "sum" else parts.apply(lambda c: c.fillna(c.mean()))
    b = full.reindex(before).mean(axis=0).fillna(0.0).to_numpy() * w
    # the shares before: over the longer baseline when one is given (shares of a few incidents are noise)
    base, base_points = b, len(before)
    if baseline is not None and len(baseline) > len(before):
        base, base_points = full.reindex(baseline).mean(axis=0).fillna(0.0).to_numpy() * w, len(baseline)
    a = full.reindex(after).mean(axis=0).fillna(0.0).to_numpy() * w
    change = a - b
    total = float(change.sum())
    notes: list[str] = []
    if spans is not None and min(len(spans[0]), len(spans[1])) > 0 and not total * direction > 0:
        # the windows' change is noise against the shift (a sparse total, or a shift found over longer segments):
        # the shares of it are measured over the longer spans, where the shift is
        lb = full.reindex(spans[0]).mean(axis=0).fillna(0.0).to_numpy() * w
        la = full.reindex(spans[1]).mean(axis=0).fillna(0.0).to_numpy() * w
        if float((la - lb).sum()) * direction > 0:
            before, after, b, a = spans[0], spans[1], lb, la
            change, total = a - b, float((a - b).sum())
            if len(before) >= base_points:
                base, base_points = b, len(before)
            notes.append(
                f"the {len(spans[0])} and {len(spans[1])} points either side are used for the slices' shares: over "
                "the shift's windows the aggregate does not move in its direction"
            )
    if s.how == "mean":
        notes.append(
            f"{readable(s.series)} is the mean of its {k} parts (a rate or average), so slices are weighted 1/{k}"
        )
    if not math.isfinite(total) or total == 0 or np.sign(total) != direction:
        notes.append("the parts do not change in the direction of the shift: no slice explains it")
        return SliceResult([], notes, {})
    nonneg = bool(
        (b >= 0).all() and (a >= 0).all() and (base >= 0).all() and min(b.sum(), a.sum(), base.sum()) > 0
    )
    cands, merged = _candidates(s)
    nb, na = len(before), len(after)

    # the test of a slice's own change: over the longer spans when given (a sustained step of a sparse count is
    # a handful of incidents in 8 weeks), each side the longer of its span and its window (a recent shift has a
    # short after side and still its long before side)
    tb, ta = before, after
    if spans is not None:
        tb = spans[0] if len(spans[0]) >= nb else before
        ta = spans[1] if len(spans[1]) >= na else after
    tchange = (
        full.reindex(ta).mean(axis=0).fillna(0.0) - full.reindex(tb).mean(axis=0).fillna(0.0)
    ).to_numpy() * w
    tnb, tna = len(tb), len(ta)

    def ztest(idx: list[int], long: bool = True) -> tuple[float, float, float, float]:
        """(change, z, noise phi, noise sd) of the leaves ``idx`` against their own AR(1) noise; z over the
        longer spans unless ``long`` is False."""
        cs = float(change[idx].sum())
        own = full.iloc[:, idx].sum(axis=1).to_numpy() * w
        phi, sd = robust_ar1(own)
        n1, n2, tc = (tnb, tna, float(tchange[idx].sum())) if long else (nb, na, cs)
        se = math.sqrt(ar1_mean_variance(n1, phi, sd) + ar1_mean_variance(n2, phi, sd)) if sd > 0 else 0.0
        z = tc / se if se > 0 else (math.inf if tc != 0 else 0.0)
        return cs, z, phi, sd

    rows: list[dict[str, Any]] = []
    for dims, cols in cands:
        idx = sorted(cols)
        cs, z, phi, sd = ztest(idx)
        ep = cs / total
        bs, as_ = float(b[idx].sum()), float(a[idx].sum())
        share_b = float(base[idx].sum()) / float(base.sum()) if nonneg else len(idx) / k
        share_a = as_ / float(a.sum()) if nonneg else len(idx) / k
        p = float(stats.norm.sf(z * direction)) if math.isfinite(z) else (0.0 if cs * direction > 0 else 1.0)
        sig = significance(p, len(cands))
        conf = sig * concentration(ep, share_b)
        rows.append(
            {
                "dims": dims,
                "cols": cols,
                "key": slice_key(dims),
                "ep": ep,
                "conf": conf,
                "evidence": {
                    "dimensions": sorted(dims),
                    "before": bs,
                    "after": as_,
                    "change": cs,
                    "aggregate_change": total,
                    "explanatory_power": ep,
                    "share_before": share_b,
                    "share_before_points": base_points,
                    "share_after": share_a,
                    "surprise": _js_term(share_b, share_a) if nonneg else None,
                    "z": z if math.isfinite(z) else None,
                    "z_points": [tnb, tna],
                    "p_value": p,
                    "noise_sd": sd,
                    "noise_phi": phi,
                    "aggregate": s.how,
                    "before_points": nb,
                    "after_points": na,
                },
            }
        )
    # whether the rest of a parent moved too: over the windows of the shift (the longer spans find any drift; when
    # the windows do not show the shift, they are the longer spans already)
    _prefer_combinations(rows, lambda idx: ztest(idx, long=False)[1] * direction, cfg)
    singles = [r for r in rows if len(r["dims"]) == 1 or r["cols"] in merged]
    # (not when a slice is convincing all the same: the verdict would say one explains it)
    if singles and max(r["ep"] for r in singles) < 0.5 and max(r["conf"] for r in rows) < cfg.explained_at:
        top = max(singles, key=lambda r: r["ep"])
        notes.append(
            f"the change is spread over the slices (the largest share, {readable(top['key'])}, explains "
            f"{max(top['ep'], 0.0):.1%}, at confidence {float(top['conf']):.2f}): no single slice explains it"
        )
    word = "rise" if direction > 0 else "fall"
    causes = [
        Cause(
            "slice",
            r["key"],
            float(min(max(r["ep"], 0.0), 1.0)),
            float(r["conf"]),
            r["evidence"],
            f"{readable(r['key'])} accounts for {max(r['ep'], 0.0):.0%} of the {word} of {readable(s.series)}"
            f"{' (more than all of it: other slices moved the other way)' if r['ep'] > 1.0 else ''} "
            f"({r['evidence']['before']:.3g} -> {r['evidence']['after']:.3g} in that slice"
            f"{', weighted as a mean' if s.how == 'mean' else ''}).",
        )
        for r in rows
        if r["ep"] > 0
    ]
    # (a slice named by a team and its one service drives the aggregate under either name too)
    drivers = {r["key"]: (float(r["conf"]), float(r["ep"])) for r in rows}
    for r in rows:
        if r["cols"] in merged:
            for d, v in r["dims"].items():
                drivers.setdefault(slice_key({d: v}), drivers[r["key"]])
    return SliceResult(causes, notes, drivers)


def _prefer_combinations(
    rows: list[dict[str, Any]], rest_z: Callable[[list[int]], float], cfg: ExplainConfig
) -> None:
    """Squeeze-style choice between a slice and its parents (see the module docstring); edits confidences.

    A slice's parents are the slices whose series strictly contain its own: a pair's two values, and with nested
    dimensions (each service run by one team) a service's team too. Slices are taken from the most specific.
    ``rest_z(leaves)`` is the z of the change of those leaves in the direction of the shift.
    """
    for r in sorted(rows, key=lambda r: (len(r["cols"]), r["key"])):
        parents_ok = [p for p in rows if r["cols"] < p["cols"]]
        if not parents_ok:
            continue
        explains = all(r["ep"] >= cfg.combo_ep * p["ep"] for p in parents_ok)
        quiet = all(rest_z(sorted(p["cols"] - r["cols"])) < REST_Z for p in parents_ok)
        if explains and quiet:
            for p in parents_ok:
                p["conf"] = min(p["conf"], 0.95 * r["conf"])
        else:
            r["conf"] = min(r["conf"], 0.9 * max(p["conf"] for p in parents_ok))
