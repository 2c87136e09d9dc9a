"""New observations against a forecast: points outside its interval and a robust two-sided CUSUM."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from ml.errors import InputError
from ml.indicators.events import rank_events

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class MonitorConfig:
    """CUSUM on standardised forecast errors: reference ``k`` and decision limit ``h`` (in sds)."""

    k: float = 0.5
    h: float = 4.0
    outlier_z: float = 3.0
    level: int = 80


def monitor(
    series_id: str,
    forecast: Sequence[Mapping[str, Any]],
    observed: Sequence[Mapping[str, Any]],
    config: MonitorConfig | None = None,
) -> list[dict[str, Any]]:
    """Compare new observations (``ds``, ``y``) with forecast rows (``ds, yhat, yhat_lower, yhat_upper``).

    The sd of each step comes from the forecast's own ``level``% interval. A two-sided CUSUM (k, h) on the
    standardised errors, each clipped at ``outlier_z``, raises a shift dated at the start of its run; a point
    beyond ``outlier_z`` sds that is not part of such a run is an outlier.
    """
    cfg = config or MonitorConfig()
    z_lvl = stats.norm.ppf(0.5 + cfg.level / 200)
    fc = {str(pd.Timestamp(r["ds"]).date()): r for r in forecast}
    rows = []
    for o in observed:
        d = str(pd.Timestamp(o["ds"]).date())
        if d not in fc or o.get("y") is None:
            continue
        f = fc[d]
        sd = (float(f["yhat_upper"]) - float(f["yhat_lower"])) / (2 * z_lvl)
        if not sd > 0:
            raise InputError(f"forecast interval on {d} has zero width", field="forecast", value=d)
        rows.append((d, float(o["y"]), float(f["yhat"]), sd, float(f["yhat_lower"]), float(f["yhat_upper"])))
    rows.sort()
    events: list[dict[str, Any]] = []
    s_hi = s_lo = 0.0
    start_hi = start_lo = 0
    alarmed: set[int] = set()
    for i, (_, yv, yhat, sd, _, _) in enumerate(rows):
        # robust CUSUM: one far point adds at most outlier_z, so a lone spike is an outlier, not a shift
        z = float(np.clip((yv - yhat) / sd, -cfg.outlier_z, cfg.outlier_z))
        if s_hi == 0:
            start_hi = i
        if s_lo == 0:
            start_lo = i
        s_hi = max(0.0, s_hi + z - cfg.k)
        s_lo = max(0.0, s_lo - z - cfg.k)
        for s, start, sign in ((s_hi, start_hi, 1), (s_lo, start_lo, -1)):
            if s > cfg.h:
                run = rows[start : i + 1]
                errs = np.array([r[1] - r[2] for r in run])
                sds = np.array([r[3] for r in run])
                outside = np.array([(r[1] > r[5]) if sign > 0 else (r[1] < r[4]) for r in run])
                zbar = float(errs.sum() / math.sqrt(float(np.sum(sds**2))))
                events.append(
                    {
                        "series": series_id,
                        "date": run[0][0],
                        "kind": "shift",
                        "direction": "increase" if sign > 0 else "decrease",
                        "magnitude": float(errs.mean()),
                        "magnitude_sigma": float((errs / sds).mean()),
                        "confidence": float(1 - stats.norm.sf(abs(zbar))),
                        "outside_interval": float(outside.mean()),
                        "detail": f"CUSUM alarm after {len(run)} observations",
                    }
                )
                alarmed.update(range(start, i + 1))
                s_hi = s_lo = 0.0
                break
    for i, (d, yv, yhat, sd, lo, hi) in enumerate(rows):
        z = (yv - yhat) / sd
        if i not in alarmed and abs(z) > cfg.outlier_z:
            events.append(
                {
                    "series": series_id,
                    "date": d,
                    "kind": "outlier",
                    "direction": "increase" if z > 0 else "decrease",
                    "magnitude": yv - yhat,
                    "magnitude_sigma": z,
                    "confidence": float(1 - 2 * stats.norm.sf(abs(z))),
                    "outside_interval": 1.0,
                    "detail": f"outside the forecast interval [{lo:.4g}, {hi:.4g}]",
                }
            )
    return rank_events(events)
