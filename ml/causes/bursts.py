"""Failure patterns whose incident rate changed around a shift.

For a shift at date d, the incidents of the shifted series' slice (all incidents for an aggregate) are counted
per pattern in the before window ``[b0, d)`` and the after window ``[d, a1)``; the before window is the longer
``pattern_baseline_days`` (sparse counts need a longer baseline, and a detected date a week late then moves
only a small part of a burst into it). Each pattern's rate change is
tested by the conditional (binomial) test of two Poisson rates: given ``n = before + after`` incidents, the after
count is Binomial(n, T_after / (T_before + T_after)) when the rate did not change. The test is one-sided in the
direction of the shift and Bonferroni-corrected over the patterns seen in the windows. Confidence = that
significance x :func:`~ml.causes.cause.concentration` of the pattern's extra incidents among all extra incidents
against its share before (patterns that all rise in proportion explain nothing in particular). The contribution
(extra incidents of the pattern / extra incidents overall) is reported only when the indicator counts incidents;
for other indicators the pattern is an indirect cause and its confidence is scaled by ``INDIRECT``.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
from scipy import stats

from ml.causes.cause import MIN_ROOM, Cause, concentration, significance

__all__ = ["INDIRECT", "NO_PATTERN", "pattern_causes", "prepare_incidents"]

#: Confidence scale for a pattern behind a shift of an indicator that does not count incidents.
INDIRECT = 0.75
#: Pattern ids that mean "no pattern" (noise, one-off incidents).
NO_PATTERN = frozenset({"-1", "unclustered", "one-off", "", "none", "nan"})
#: Incident ids listed in a cause's evidence.
MAX_IDS = 10


def prepare_incidents(incidents: pd.DataFrame | None) -> pd.DataFrame | None:
    """Incidents with a tz-naive day ``date`` and a string ``pattern_id``; None when there are none."""
    if incidents is None or len(incidents) == 0 or "pattern_id" not in incidents.columns:
        return None
    df = incidents.copy()
    dates = pd.to_datetime(df["date"], utc=True)
    df["date"] = dates.dt.tz_convert(None).dt.normalize()
    df["pattern_id"] = [str(v) for v in df["pattern_id"]]
    if "pattern_name" not in df.columns:
        df["pattern_name"] = df["pattern_id"]
    df["id"] = [str(v) for v in df["id"]] if "id" in df.columns else [str(i) for i in range(len(df))]
    df = df[~df["pattern_id"].str.lower().isin(NO_PATTERN)]
    return df.sort_values(["date", "id"]).reset_index(drop=True)


def pattern_causes(
    incidents: pd.DataFrame,
    dims: dict[str, str],
    b0: pd.Timestamp,
    d: pd.Timestamp,
    a1: pd.Timestamp,
    direction: int,
    counts_incidents: bool,
) -> tuple[list[Cause], list[str]]:
    """Pattern causes of a shift of the series with dimension values ``dims`` (see the module docstring)."""
    notes: list[str] = []
    df = incidents
    for dim, value in sorted(dims.items()):
        if dim not in df.columns:
            notes.append(
                f"incidents have no {dim!r} column: pattern causes cannot be restricted to {dim}={value}"
            )
            return [], notes
        df = df[df[dim].astype(str) == value]
    t_b = max((d - b0).days, 1)
    t_a = max((a1 - d).days, 1)
    bef = df[(df["date"] >= b0) & (df["date"] < d)]
    aft = df[(df["date"] >= d) & (df["date"] < a1)]
    n_b, n_a = len(bef), len(aft)
    extra_all = n_a - n_b * t_a / t_b
    if n_a + n_b == 0:
        return [], notes
    cb = bef.groupby("pattern_id").size()
    ca = aft.groupby("pattern_id").size()
    pids = sorted(set(cb.index) | set(ca.index))
    pi = t_a / (t_a + t_b)
    causes: list[Cause] = []
    names = df.drop_duplicates("pattern_id").set_index("pattern_id")["pattern_name"].to_dict()
    for pid in pids:
        kb, ka = int(cb.get(pid, 0)), int(ca.get(pid, 0))
        n = kb + ka
        p = float(stats.binom.sf(ka - 1, n, pi)) if direction > 0 else float(stats.binom.cdf(ka, n, pi))
        sig = significance(p, len(pids))
        extra = ka - kb * t_a / t_b
        ep = extra / extra_all if extra_all * direction > 0 else 0.0
        share_b = kb / n_b if n_b else 0.0
        conf = sig * concentration(ep, share_b, MIN_ROOM) * (1.0 if counts_incidents else INDIRECT)
        if extra * direction <= 0 or conf <= 0:
            continue
        window = aft if direction > 0 else bef
        ids = window[window["pattern_id"] == pid]["id"].tolist()
        name = str(names.get(pid, pid))
        rate_b, rate_a = kb / t_b * 7, ka / t_a * 7
        evidence: dict[str, Any] = {
            "pattern_id": pid,
            "pattern_name": name,
            "before_count": kb,
            "after_count": ka,
            "before_days": t_b,
            "after_days": t_a,
            "rate_before_per_week": rate_b,
            "rate_after_per_week": rate_a,
            "rate_ratio": (rate_a / rate_b) if rate_b > 0 else None,
            "extra_incidents": extra,
            "extra_incidents_overall": extra_all,
            "share_before": share_b,
            "p_value": p,
            "patterns_tested": len(pids),
            "incident_ids": ids[:MAX_IDS],
            "incidents_listed_from": "after" if direction > 0 else "before",
        }
        if not counts_incidents:
            evidence["indirect"] = (
                "the indicator does not count incidents: the pattern may explain it in part"
            )
        where = ",".join(f"{k}={v}" for k, v in sorted(dims.items())) or "all incidents"
        word = "rose" if direction > 0 else "fell"
        causes.append(
            Cause(
                "pattern",
                pid,
                float(min(max(ep, 0.0), 1.0)) if counts_incidents and math.isfinite(ep) else None,
                float(conf),
                evidence,
                f"Pattern '{name}' {word} from {kb} incidents in {t_b / 7:.0f} weeks to {ka} in {t_a / 7:.0f} weeks "
                f"({rate_b:.2g} -> {rate_a:.2g} a week, {where}) across the shift.",
            )
        )
    return causes, notes
