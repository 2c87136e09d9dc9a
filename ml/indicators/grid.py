"""Regular date grids for indicator series: frequency inference, gap detection and filling.

Shared by forecasting and shift detection (``signals``), so that neither imports the other for it.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ml.errors import InputError

#: The nominal seasonal period per frequency kind (7 days a week, 52 weeks a year).
NOMINAL_SEASON = {"D": 7, "W": 52}

_WEEKDAYS = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")


def _freq_kind(freq: str) -> str:
    """``"D"`` or ``"W"`` for a supported pandas alias (``D``, ``W``, ``W-MON`` ...); InputError otherwise."""
    f = str(freq).upper()
    if f == "D":
        return "D"
    if f == "W" or (f.startswith("W-") and f[2:] in _WEEKDAYS):
        return "W"
    raise InputError(
        f"unsupported frequency {freq!r}: only daily ('D') or weekly ('W-MON' ...)", field="freq", value=freq
    )


def _to_dates(ds: Iterable[Any]) -> pd.DatetimeIndex:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            idx = pd.DatetimeIndex(pd.to_datetime(list(ds), utc=True))
    except (ValueError, TypeError) as exc:
        raise InputError(f"ds holds a value that is not a date: {exc}", field="ds") from exc
    if idx.hasnans:
        raise InputError("ds holds a missing date", field="ds")
    # calendar dates: drop the time of day and the timezone (UTC)
    return pd.DatetimeIndex(idx.tz_convert(None).normalize())


def infer_frequency(ds: Iterable[Any]) -> str:
    """Infer ``"D"`` (daily) or ``"W-XXX"`` (weekly, anchored on the weekday of the dates) from the dates.

    Gaps are allowed (missing weeks or days) as long as most consecutive dates are one step apart; anything
    else raises :class:`InputError` naming the first date off the grid: monthly data, weekly data on varying
    weekdays, irregular timestamps.
    """
    idx = _to_dates(ds).unique().sort_values()
    if len(idx) < 2:
        raise InputError(
            f"cannot infer a frequency from {len(idx)} distinct date(s)", field="ds", value=len(idx)
        )
    days = np.diff(idx.asi8) // (86_400 * 10**9)
    step = int(np.gcd.reduce(days.astype(np.int64)))
    median = float(np.median(days))
    if step == 7 and median == 7:
        return f"W-{_WEEKDAYS[idx[0].weekday()]}"
    if step == 1 and median == 1:
        return "D"
    bad = int(np.argmax(days % 7 != 0)) if median >= 7 else int(np.argmax(days != 1))
    raise InputError(
        f"irregular dates: neither daily nor weekly (median gap {median:g} days; {idx[bad + 1].date()} is "
        f"{int(days[bad])} days after the previous date)",
        field="ds",
        value=str(idx[bad + 1].date()),
    )


@dataclass
class Grid:
    """A series on a regular date grid: ``y`` has NaN where the grid has no observation."""

    dates: pd.DatetimeIndex
    y: np.ndarray
    freq: str
    notes: list[str]

    @property
    def kind(self) -> str:
        return _freq_kind(self.freq)

    @property
    def observed(self) -> np.ndarray:
        observed: np.ndarray = np.isfinite(self.y)
        return observed


def to_grid(ds: Sequence[Any], y: Sequence[float | None], freq: str | None = None) -> Grid:
    """Validate a series and put it on a regular grid (see the module docstring); notes say what was done."""
    if len(ds) != len(y):
        raise InputError(f"ds and y differ in length ({len(ds)} vs {len(y)})", field="y", value=len(y))
    if len(ds) == 0:
        raise InputError("the series is empty", field="y", value=0)
    dates = _to_dates(ds)
    try:
        values = np.array([np.nan if v is None else float(v) for v in y], dtype=float)
    except (TypeError, ValueError) as exc:
        raise InputError(f"y holds a value that is not a number: {exc}", field="y") from exc
    if np.isinf(values).any():
        i = int(np.argmax(np.isinf(values)))
        raise InputError(f"y is infinite on {dates[i].date()}", field="y", value=str(values[i]))
    if dates.has_duplicates:
        dup = dates[dates.duplicated()][0]
        raise InputError(
            f"duplicate date {dup.date()} in one series (aggregate first)", field="ds", value=str(dup.date())
        )
    notes: list[str] = []
    order = np.argsort(dates.asi8, kind="stable")
    dates, values = dates[order], values[order]
    if freq is None:
        if len(dates) < 2:
            freq = f"W-{_WEEKDAYS[dates[0].weekday()]}"
            notes.append("a single date: frequency cannot be inferred, weekly assumed")
        else:
            freq = infer_frequency(dates)
    else:
        kind = _freq_kind(freq)
        freq = "D" if kind == "D" else f"W-{_WEEKDAYS[dates[0].weekday()]}"
    grid = pd.date_range(dates[0], dates[-1], freq=freq)
    pos = grid.get_indexer(dates)
    if (pos < 0).any():
        bad = dates[int(np.argmax(pos < 0))]
        raise InputError(f"date {bad.date()} is off the {freq} grid", field="ds", value=str(bad.date()))
    full = np.full(len(grid), np.nan)
    full[pos] = values
    n_gap = int(np.isnan(full).sum())
    if n_gap:
        notes.append(
            f"{n_gap} of {len(grid)} dates on the {freq} grid have no value (gaps or missing values): filled by "
            "linear interpolation for fitting, left out of every backtest score"
        )
    return Grid(dates=grid, y=full, freq=freq, notes=notes)


def fill_gaps(y: np.ndarray) -> np.ndarray:
    """Linear interpolation of NaNs; leading/trailing NaNs take the nearest observed value."""
    ok = np.isfinite(y)
    if ok.all() or not ok.any():
        return y.astype(float, copy=True)
    x = np.arange(len(y))
    filled: np.ndarray = np.interp(x, x[ok], y[ok])
    return filled


def _future_dates(last: pd.Timestamp, freq: str, h: int) -> pd.DatetimeIndex:
    return pd.date_range(last, periods=h + 1, freq=freq)[1:]
