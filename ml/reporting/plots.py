"""Static charts for people (reports, slides, the API's PNG endpoints): titles, axis labels with units, and
styles that stay readable in grey scale (line styles and markers carry the meaning, not colour alone)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

UNITS = {
    "incidents": "incidents per week",
    "reopens": "reopened incidents per week",
    "skipped_checklist_items": "skipped checklist items per week",
    "manual_retries": "manual retries per week",
    "mttr_hours": "hours",
    "change_failure_rate": "share of changes (0-1)",
}


def unit_of(indicator: str) -> str:
    return UNITS.get(indicator, "value")


def _figure(width: float, height: float) -> tuple[Any, Any]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot()


def forecast_axes(
    ax: Any,
    history: pd.DataFrame,
    forecast: Sequence[Mapping[str, Any]],
    signals: Sequence[Mapping[str, Any]] = (),
    title: str = "",
    ylabel: str = "",
    level: int = 80,
) -> None:
    """Draw history (solid), forecast (dashed) with its interval (grey band) and shifts (vertical lines)."""
    ax.plot(pd.to_datetime(history["ds"]), history["y"], color="black", linewidth=1.2, label="observed")
    if forecast:
        f = pd.DataFrame(list(forecast))
        fds = pd.to_datetime(f["ds"])
        ax.fill_between(
            fds, f["yhat_lower"], f["yhat_upper"], color="0.75", alpha=0.7, label=f"{level}% interval"
        )
        ax.plot(fds, f["yhat"], color="0.25", linestyle="--", linewidth=1.4, label="forecast")
    shown = False
    for s in signals:
        if s.get("kind", "shift") != "shift":
            continue
        ax.axvline(
            pd.Timestamp(s["date"]),
            color="0.35",
            linestyle=":",
            linewidth=1.2,
            label=None if shown else "detected shift",
        )
        shown = True
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("Week")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)


def forecast_png(
    history: pd.DataFrame,
    forecast: Sequence[Mapping[str, Any]],
    signals: Sequence[Mapping[str, Any]] = (),
    title: str = "",
    ylabel: str = "",
    dpi: int = 110,
) -> bytes:
    import io

    fig, ax = _figure(8, 3.2)
    forecast_axes(ax, history, forecast, signals, title, ylabel)
    ax.legend(loc="upper left", fontsize=8)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def small_multiples_png(
    panels: Sequence[tuple[str, pd.DataFrame, Sequence[Mapping[str, Any]], Sequence[Mapping[str, Any]]]],
    title: str,
    ylabel: str,
    ncols: int = 3,
    dpi: int = 100,
) -> bytes:
    """One panel per series (label, history, forecast rows, signals), sharing the y label."""
    import io

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    n = max(1, len(panels))
    nrows = int(np.ceil(n / ncols))
    fig = Figure(figsize=(4.2 * ncols, 2.6 * nrows), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for i, ax in enumerate(axes.flat):
        if i >= len(panels):
            ax.set_visible(False)
            continue
        label, hist, fc, sig = panels[i]
        forecast_axes(ax, hist, fc, sig, label, ylabel)
        ax.tick_params(axis="x", labelrotation=30, labelsize=7)
        if i == 0:
            ax.legend(loc="upper left", fontsize=7)
    fig.suptitle(title, fontsize=12)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()
