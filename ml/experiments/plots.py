"""The before/after/counterfactual plot of an impact result."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ml.experiments.results import ImpactResult

if TYPE_CHECKING:
    from matplotlib.figure import Figure

logger = logging.getLogger(__name__)


def plot_impact(result: ImpactResult, *, units: str | None = None) -> Figure:
    """Before/after plot with the counterfactual and its band (top) and the weekly effect (bottom).

    Greyscale-readable: observed is a solid black line with dots, the counterfactual a dashed dark-grey line,
    the interval a light-grey band, the start a dotted vertical line. `units` labels the y axes
    (default: "<indicator> per week").
    """
    from matplotlib.figure import Figure

    s = result.series
    ds = pd.to_datetime(pd.Series(s.ds))
    post = np.array([c is not None for c in s.counterfactual])
    obs = np.asarray(s.observed, dtype=float)
    cf = np.array([np.nan if v is None else v for v in s.counterfactual], dtype=float)
    lo = np.array([np.nan if v is None else v for v in s.lower], dtype=float)
    hi = np.array([np.nan if v is None else v for v in s.upper], dtype=float)
    unit_label = units or f"{result.indicator} per week"
    level = int(round(100 * (1 - result.alpha)))

    fig = Figure(figsize=(9, 6), layout="constrained")
    ax, ax2 = fig.subplots(2, 1, sharex=True, height_ratios=(2, 1))
    start = pd.Timestamp(result.start)
    for a in (ax, ax2):
        a.axvline(start, color="0.35", linestyle=":", linewidth=1.2)
        a.grid(True, color="0.9", linewidth=0.6)
    ax.fill_between(ds[post], lo[post], hi[post], color="0.85", label=f"{level}% interval", linewidth=0)
    ax.plot(
        ds[post], cf[post], color="0.35", linestyle="--", linewidth=1.6, label="counterfactual (no change)"
    )
    ax.plot(ds, obs, color="black", marker="o", markersize=3, linewidth=1.3, label="observed")
    ax.set_ylabel(unit_label)
    ax.legend(loc="best", fontsize=8, frameon=False)
    eff = obs - cf
    ax2.fill_between(ds[post], (obs - hi)[post], (obs - lo)[post], color="0.85", linewidth=0)
    ax2.plot(ds[post], eff[post], color="black", marker="o", markersize=3, linewidth=1.3)
    ax2.axhline(0.0, color="0.35", linewidth=0.8)
    ax2.set_ylabel(f"effect ({unit_label})")
    ax2.set_xlabel("week")
    rel = "" if result.relative_effect is None else f" ({result.relative_effect:+.0%})"
    fig.suptitle(
        f"{result.experiment_id}: {result.treated_series} - {result.verdict}\n"
        f"average effect {result.effect:+.3g}{rel} per week, {level}% CI [{result.ci_low:.3g}, {result.ci_high:.3g}],"
        f" p = {result.p_value:.3f}",
        fontsize=10,
    )
    ax.text(0.0, 1.02, "before", transform=ax.transAxes, fontsize=8, color="0.3")
    ax.annotate(
        "after",
        xy=(start, 1.02),
        xycoords=("data", "axes fraction"),
        fontsize=8,
        color="0.3",
        xytext=(4, 0),
        textcoords="offset points",
    )
    return fig
