"""Weekly incident counts from an incident history: the indicator to analyse when there are only incidents.

A team that has postmortems but no indicator export still wants to know when its incident rate moved and why.
:func:`weekly_incident_counts` turns the incidents' start dates into the long frame every indicator job reads:
indicator ``incidents``, one series per combination of the dimension values the incidents carry (``team``,
``service``), Monday weeks from the week of the first incident to the week of the last, a 0 for a week without
one. A dimension no incident names is left out; where only some incidents name it, the others count under
``unspecified`` (as a status page lists an incident without a component), so they are one more part of the
aggregate and not taken for a total given with its parts. Dates are taken as given: ``recur explain`` passes the
UTC day each incident started (its reader keeps times in UTC), the day pattern causes date it by too.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

__all__ = ["INCIDENTS_INDICATOR", "MAX_GAP_DAYS", "UNSPECIFIED", "main_stretch", "weekly_incident_counts"]

#: Name of the derived indicator.
INCIDENTS_INDICATOR = "incidents"
#: Value of a dimension for an incident that does not name one while others do.
UNSPECIFIED = "unspecified"
#: A gap between consecutive incidents longer than this splits the history into stretches (:func:`main_stretch`).
MAX_GAP_DAYS = 365


def main_stretch(dates: pd.Series) -> pd.Series:
    """Which incidents lie in the stretch of the history that holds most of them, the history being cut wherever
    consecutive incidents are more than ``MAX_GAP_DAYS`` apart (ties: the latest stretch). One incident with a
    mistyped year (2122 for 2022) would otherwise add a century of empty weeks to the counts: their zeros shrink the
    noise estimate, and ordinary weekly swings pass for shifts."""
    days = pd.to_datetime(dates)
    if len(days) == 0:
        return pd.Series(True, index=dates.index)
    order = days.sort_values(kind="stable")
    gaps = order.diff().dt.days.fillna(0).to_numpy()
    stretch = pd.Series((gaps > MAX_GAP_DAYS).cumsum(), index=order.index)
    sizes = stretch.value_counts()
    best = max(sizes.index, key=lambda k: (sizes[k], k))
    return (stretch == best).reindex(dates.index)


def weekly_incident_counts(
    incidents: pd.DataFrame, dims: Sequence[str] = ("team", "service")
) -> pd.DataFrame:
    """``indicator, ds, y`` + the dimension columns some incident names: the weekly count of ``incidents`` (a
    ``date`` column of days, the dimension columns of strings, "" or None when unset) per combination of
    dimension values, zero-filled (see the module docstring). An empty frame gives an empty frame."""
    present = [
        d for d in dims if d in incidents and incidents[d].fillna("").astype(str).str.strip().ne("").any()
    ]
    columns = ["indicator", "ds", "y", *present]
    if not len(incidents):
        return pd.DataFrame(columns=columns)
    days = pd.to_datetime(incidents["date"]).dt.normalize()
    if days.dt.tz is not None:
        days = days.dt.tz_localize(None)
    weeks = days - pd.to_timedelta(days.dt.weekday, unit="D")
    keys = pd.DataFrame(
        {d: incidents[d].fillna("").astype(str).str.strip() for d in present}, index=incidents.index
    )
    keys = keys.replace("", UNSPECIFIED)
    keys["ds"] = weeks
    counts = keys.groupby([*present, "ds"], sort=True).size().rename("y")
    grid = pd.date_range(weeks.min(), weeks.max(), freq="7D")
    if present:
        combos = keys[present].drop_duplicates().sort_values(present).itertuples(index=False, name=None)
        full: pd.Index = pd.MultiIndex.from_tuples(
            [(*combo, week) for combo in combos for week in grid], names=[*present, "ds"]
        )
    else:
        full = pd.DatetimeIndex(grid, name="ds")
    out = counts.reindex(full, fill_value=0).astype(float).reset_index()
    out.insert(0, "indicator", INCIDENTS_INDICATOR)
    return out[columns]
