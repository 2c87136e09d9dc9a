"""Heat maps of failure patterns: counts per pattern x service, team or month, recurrence and trends.

Inputs are the incidents, their pattern assignments (incident id -> pattern id, ``-1`` for unclustered) and the
pattern names. Tables are pandas DataFrames: a tidy frame (one row per pattern and column value, zeros included)
and a pivot table whose index is ``(pattern_id, pattern)`` and whose columns are the services, teams or months
(``YYYY-MM``). Every pivot table has a row for ``unclustered`` and sums to the number of incidents counted.

Renders: self-contained interactive HTML (plotly, with plotly.js inlined: no network needed to open it), PNG
(matplotlib, a colour map that stays readable in greyscale, counts annotated) and CSV; ``heatmap_json`` gives the
API shape (rows, columns, values).

Trend per pattern: :func:`ml.patterns.pattern_trend` (the pattern model's own Poisson-regression trend over the
last 6 windows of 30 days), so the heat map and the pattern model agree.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from ml.errors import InputError
from ml.io.schemas import EARLIEST_DATE, LATEST_DATE, Incident, to_utc
from ml.patterns.ids import UNCLUSTERED, UNCLUSTERED_ID

log = logging.getLogger(__name__)

By = Literal["service", "team", "month"]
OnMissing = Literal["raise", "unclustered"]

NONE_LABEL = "(none)"
#: Over a span of more months than this, a month heat map has a column only for months with incidents (one
#: incident dated 1969 in a 2024 corpus adds one column, not 660).
MAX_MONTH_SPAN = 120
_BY_VALUES: tuple[str, ...] = ("service", "team", "month")
_AXIS_LABELS = {"service": "Service", "team": "Team", "month": "Month started (UTC)"}


# --------------------------------------------------------------------------------------------- inputs


def _pattern_ids(
    incidents: Sequence[Incident],
    assignments: Mapping[str, int] | Sequence[int],
    on_missing: OnMissing,
) -> np.ndarray:
    if isinstance(assignments, Mapping):
        missing = [inc.id for inc in incidents if inc.id not in assignments]
        if missing and on_missing == "raise":
            raise InputError(
                f"assignments has no pattern for {len(missing)} incident(s), e.g. {missing[:3]}; "
                "pass on_missing='unclustered' to count them as unclustered",
                field="assignments",
                value=missing[:10],
            )
        raw = [assignments.get(inc.id, UNCLUSTERED_ID) for inc in incidents]
    else:
        if isinstance(assignments, str | bytes) or len(assignments) != len(incidents):
            raise InputError(
                f"assignments has {len(assignments)} entries for {len(incidents)} incidents",
                field="assignments",
                value=len(assignments),
            )
        raw = list(assignments)
    out = np.empty(len(raw), dtype=np.int64)
    for i, value in enumerate(raw):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < UNCLUSTERED_ID:
            raise InputError(
                f"pattern id for incident {incidents[i].id!r} must be an int >= -1, got {value!r}",
                field="assignments",
                value=value,
            )
        out[i] = int(value)
    return out


def _name_of(pattern_id: int, pattern_names: Mapping[int, str]) -> str:
    if pattern_id == UNCLUSTERED_ID:
        return UNCLUSTERED
    name = pattern_names.get(pattern_id)
    return name if name else f"pattern {pattern_id}"


def _as_utc_datetime(value: dt.date | dt.datetime, name: str) -> dt.datetime:
    """`value` as aware UTC, clamped to the schema's date range (no incident lies outside it, and pandas
    timestamps end in 1677 and 2262), so any ``since`` a caller passes is safe."""
    if not isinstance(value, dt.date):
        raise InputError(f"{name} must be a date or datetime, got {value!r}", field=name, value=value)
    if value.year < EARLIEST_DATE.year:
        return dt.datetime(EARLIEST_DATE.year, 1, 1, tzinfo=dt.UTC)
    if value.year > LATEST_DATE.year:
        return dt.datetime(LATEST_DATE.year + 1, 1, 1, tzinfo=dt.UTC)
    if isinstance(value, dt.datetime):
        return to_utc(value)
    return dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)


def incident_frame(
    incidents: Sequence[Incident],
    assignments: Mapping[str, int] | Sequence[int],
    pattern_names: Mapping[int, str] | None = None,
    *,
    since: dt.date | dt.datetime | None = None,
    on_missing: OnMissing = "raise",
) -> pd.DataFrame:
    """One row per incident: id, started_at (UTC), month (``YYYY-MM``), service, team, pattern_id, pattern.

    Missing service/team become ``"(none)"``. ``since`` keeps incidents started on or after it.
    """
    names = dict(pattern_names or {})
    pids = _pattern_ids(incidents, assignments, on_missing)
    frame = pd.DataFrame(
        {
            "id": [inc.id for inc in incidents],
            "started_at": pd.to_datetime([inc.started_at for inc in incidents], utc=True),
            "service": [inc.service or NONE_LABEL for inc in incidents],
            "team": [inc.team or NONE_LABEL for inc in incidents],
            "pattern_id": pids,
            "pattern": [_name_of(int(p), names) for p in pids],
        }
    )
    if frame.empty:
        frame["started_at"] = pd.Series(dtype="datetime64[ns, UTC]")
    frame["month"] = frame["started_at"].dt.strftime("%Y-%m")
    if since is not None:
        start = pd.Timestamp(_as_utc_datetime(since, "since"))
        frame = frame[frame["started_at"] >= start].reset_index(drop=True)
    return frame[["id", "started_at", "month", "service", "team", "pattern_id", "pattern"]]


# --------------------------------------------------------------------------------------------- tables


def _row_index(frame: pd.DataFrame, pattern_names: Mapping[int, str]) -> pd.MultiIndex:
    """Every known pattern (busiest first), then unclustered last."""
    counts = frame["pattern_id"].value_counts()
    ids = set(int(p) for p in pattern_names) | set(int(p) for p in counts.index)
    ids.discard(UNCLUSTERED_ID)
    ordered = sorted(ids, key=lambda p: (-int(counts.get(p, 0)), p))
    ordered.append(UNCLUSTERED_ID)
    return pd.MultiIndex.from_tuples(
        [(p, _name_of(p, pattern_names)) for p in ordered], names=["pattern_id", "pattern"]
    )


def _month_range(first: str, last: str) -> list[str]:
    periods = pd.period_range(pd.Period(first, freq="M"), pd.Period(last, freq="M"), freq="M")
    return [p.strftime("%Y-%m") for p in periods]


def _columns(frame: pd.DataFrame, by: str, since: dt.date | dt.datetime | None) -> list[str]:
    if frame.empty:
        return []
    if by == "month":
        first = frame["month"].min()
        if since is not None:
            first = min(first, _as_utc_datetime(since, "since").strftime("%Y-%m"))
        months = _month_range(first, frame["month"].max())
        if len(months) > MAX_MONTH_SPAN:
            return sorted(set(frame["month"]))
        return months
    counts = frame[by].value_counts()
    return sorted(counts.index, key=lambda c: (c == NONE_LABEL, -int(counts[c]), c))


def heatmap_table(
    incidents: Sequence[Incident],
    assignments: Mapping[str, int] | Sequence[int],
    pattern_names: Mapping[int, str] | None = None,
    by: By = "service",
    since: dt.date | dt.datetime | None = None,
    *,
    on_missing: OnMissing = "raise",
) -> pd.DataFrame:
    """Pivot table of incident counts: index ``(pattern_id, pattern)``, one column per service/team/month.

    Rows: every pattern in ``pattern_names`` or the assignments (busiest first), then ``unclustered``. Columns:
    services or teams busiest first (``"(none)"`` last), or every month from the first to the last (gaps are
    zero columns; over more than ``MAX_MONTH_SPAN`` months, only the months with incidents). Values are ints
    and sum to the number of incidents started on or after ``since``.
    """
    if by not in _BY_VALUES:
        raise InputError(f"by must be one of {_BY_VALUES}, got {by!r}", field="by", value=by)
    names = dict(pattern_names or {})
    frame = incident_frame(incidents, assignments, names, since=since, on_missing=on_missing)
    rows = _row_index(frame, names)
    cols = _columns(frame, by, since)
    counts = frame.groupby(["pattern_id", frame[by]]).size()
    values = np.zeros((len(rows), len(cols)), dtype=np.int64)
    row_pos = {pid: i for i, pid in enumerate(rows.get_level_values("pattern_id"))}
    col_pos = {c: j for j, c in enumerate(cols)}
    for (pid, col), n in counts.items():
        values[row_pos[int(pid)], col_pos[col]] = int(n)
    table = pd.DataFrame(values, index=rows, columns=pd.Index(cols, name=by))
    log.debug("Heat map - %d patterns x %d %s values, %d incidents", len(rows), len(cols), by, values.sum())
    return table


def heatmap_counts(
    incidents: Sequence[Incident],
    assignments: Mapping[str, int] | Sequence[int],
    pattern_names: Mapping[int, str] | None = None,
    by: By = "service",
    since: dt.date | dt.datetime | None = None,
    *,
    on_missing: OnMissing = "raise",
) -> pd.DataFrame:
    """The same counts as :func:`heatmap_table`, tidy: columns ``pattern_id, pattern, <by>, count`` (zeros kept)."""
    table = heatmap_table(incidents, assignments, pattern_names, by=by, since=since, on_missing=on_missing)
    return tidy(table)


def tidy(table: pd.DataFrame) -> pd.DataFrame:
    """Long form of a pivot table from :func:`heatmap_table`: ``pattern_id, pattern, <by>, count``."""
    by = table.columns.name or "column"
    long = table.stack(future_stack=True) if len(table.columns) else pd.Series(dtype=np.int64)
    out = (
        long.rename("count").reset_index()
        if len(long)
        else pd.DataFrame(columns=["pattern_id", "pattern", by])
    )
    if "count" not in out:
        out["count"] = pd.Series(dtype=np.int64)
    out.columns = ["pattern_id", "pattern", by, "count"]
    return out.astype({"pattern_id": np.int64, "count": np.int64})


def heatmap_json(table: pd.DataFrame) -> dict[str, Any]:
    """API shape of a pivot table: ``{"by", "rows": [{pattern_id, pattern, total}], "columns", "values", "total"}``."""
    rows = [
        {"pattern_id": int(pid), "pattern": str(name), "total": int(total)}
        for (pid, name), total in zip(table.index, table.sum(axis=1), strict=True)
    ]
    return {
        "by": table.columns.name,
        "rows": rows,
        "columns": [str(c) for c in table.columns],
        "values": table.to_numpy(dtype=np.int64).tolist(),
        "total": int(table.to_numpy().sum()),
    }


# --------------------------------------------------------------------------------------------- recurrence


def recurrence_table(
    incidents: Sequence[Incident],
    assignments: Mapping[str, int] | Sequence[int],
    pattern_names: Mapping[int, str] | None = None,
    since: dt.date | dt.datetime | None = None,
    *,
    on_missing: OnMissing = "raise",
) -> pd.DataFrame:
    """Recurrence per pattern: how often a failure came back after its first occurrence.

    Columns: ``pattern_id, pattern, incidents, repeats`` (incidents after the first), ``repeat_rate``
    (repeats / incidents), ``repeats_same_service`` (repeats on a service the pattern had already hit),
    ``services, teams`` (distinct counts), ``first_seen, last_seen`` (dates), ``median_days_between``.
    Unclustered incidents are not a pattern and have no row. Sorted by repeats, most first.
    """
    names = dict(pattern_names or {})
    frame = incident_frame(incidents, assignments, names, since=since, on_missing=on_missing)
    frame = frame[frame["pattern_id"] != UNCLUSTERED_ID].sort_values(["started_at", "id"])
    records = []
    for pid, group in frame.groupby("pattern_id", sort=False):
        n = len(group)
        gaps = group["started_at"].diff().dropna().dt.total_seconds() / 86400.0
        per_service = group.groupby("service").size()
        records.append(
            {
                "pattern_id": int(pid),
                "pattern": _name_of(int(pid), names),
                "incidents": n,
                "repeats": n - 1,
                "repeat_rate": (n - 1) / n,
                "repeats_same_service": int((per_service[per_service.index != NONE_LABEL] - 1).sum()),
                "services": int(group.loc[group["service"] != NONE_LABEL, "service"].nunique()),
                "teams": int(group.loc[group["team"] != NONE_LABEL, "team"].nunique()),
                "first_seen": group["started_at"].iloc[0].date(),
                "last_seen": group["started_at"].iloc[-1].date(),
                "median_days_between": float(gaps.median()) if len(gaps) else math.nan,
            }
        )
    columns = [
        "pattern_id",
        "pattern",
        "incidents",
        "repeats",
        "repeat_rate",
        "repeats_same_service",
        "services",
        "teams",
        "first_seen",
        "last_seen",
        "median_days_between",
    ]
    out = pd.DataFrame.from_records(records, columns=columns)
    return out.sort_values(["repeats", "pattern_id"], ascending=[False, True]).reset_index(drop=True)


# --------------------------------------------------------------------------------------------- trend


def trend_table(
    incidents: Sequence[Incident],
    assignments: Mapping[str, int] | Sequence[int],
    pattern_names: Mapping[int, str] | None = None,
    *,
    periods: int = 6,
    period_days: int = 30,
    as_of: dt.date | dt.datetime | None = None,
    alpha: float = 0.05,
    on_missing: OnMissing = "raise",
) -> pd.DataFrame:
    """Rising / falling / flat per pattern over the last ``periods`` windows of ``period_days`` days (6 x 30 by
    default) ending at ``as_of`` (default: the latest incident start).

    Uses :func:`ml.patterns.pattern_trend` (Poisson regression of the counts per window, quasi-Poisson when
    over-dispersed), so the heat map and the pattern model report the same trend. Columns: ``pattern_id,
    pattern, trend, slope`` (log rate change per window), ``monthly_change`` (``exp(slope) - 1``), ``p_value,
    incidents`` (in the window), ``counts`` (list, oldest window first). Unclustered incidents have no row.
    """
    from ml.patterns.trends import pattern_trend

    if isinstance(periods, bool) or not isinstance(periods, int) or periods < 3:
        raise InputError(f"periods must be an int >= 3, got {periods!r}", field="periods", value=periods)
    if isinstance(period_days, bool) or not isinstance(period_days, int) or period_days < 1:
        raise InputError(
            f"period_days must be a positive int, got {period_days!r}", field="period_days", value=period_days
        )
    if not 0.0 < alpha < 1.0:
        raise InputError(f"alpha must be in (0, 1), got {alpha!r}", field="alpha", value=alpha)
    names = dict(pattern_names or {})
    frame = incident_frame(incidents, assignments, names, on_missing=on_missing)
    columns = ["pattern_id", "pattern", "trend", "slope", "monthly_change", "p_value", "incidents", "counts"]
    if frame.empty and as_of is None:
        return pd.DataFrame(columns=columns)
    end = _as_utc_datetime(as_of, "as_of") if as_of is not None else frame["started_at"].max().to_pydatetime()
    records = []
    for pid, name in _row_index(frame, names):
        if pid == UNCLUSTERED_ID:
            continue
        starts = [ts.to_pydatetime() for ts in frame.loc[frame["pattern_id"] == pid, "started_at"]]
        trend = pattern_trend(starts, end, periods, period_days, alpha)
        records.append(
            {
                "pattern_id": int(pid),
                "pattern": name,
                "trend": trend.direction,
                "slope": trend.slope,
                "monthly_change": trend.monthly_change,
                "p_value": trend.p_value,
                "incidents": int(sum(trend.counts)),
                "counts": list(trend.counts),
            }
        )
    return pd.DataFrame.from_records(records, columns=columns)


# --------------------------------------------------------------------------------------------- renders


def _labels(table: pd.DataFrame, width: int = 42) -> list[str]:
    out = []
    for entry in table.index:
        name = str(entry[1] if isinstance(entry, tuple) else entry)
        out.append(name if len(name) <= width else name[: width - 1] + "\u2026")
    return out


def _check_table(table: pd.DataFrame) -> None:
    if not isinstance(table, pd.DataFrame):
        raise InputError(f"table must be a DataFrame, got {type(table).__name__}", field="table", value=None)
    if table.shape[0] == 0 or table.shape[1] == 0:
        raise InputError(
            f"table is empty (shape {table.shape}): nothing to draw", field="table", value=table.shape
        )


def render_png(
    table: pd.DataFrame,
    title: str,
    path: str | Path,
    *,
    cmap: str = "viridis",
    annotate: bool = True,
    dpi: int = 150,
) -> Path:
    """Write the heat map as a PNG: counts annotated in each cell, axis labels and a labelled colour bar.

    ``viridis`` (default) and ``Greys`` stay readable when printed in greyscale. Returns the path written.
    """
    _check_table(table)
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    values = table.to_numpy(dtype=float)
    n_rows, n_cols = values.shape
    by = table.columns.name or "column"
    width = min(4.0 + 0.55 * n_cols, 30.0)
    height = min(2.0 + 0.42 * n_rows, 30.0)
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    vmax = max(float(values.max()), 1.0)
    image = ax.imshow(values, cmap=cmap, vmin=0.0, vmax=vmax, aspect="auto", interpolation="nearest")
    ax.set_xticks(
        range(n_cols), [str(c) for c in table.columns], rotation=45 if n_cols > 4 else 0, ha="right"
    )
    ax.set_yticks(range(n_rows), _labels(table))
    ax.tick_params(labelsize=9)
    ax.set_xlabel(_AXIS_LABELS.get(str(by), str(by).capitalize()))
    ax.set_ylabel("Failure pattern")
    ax.set_title(title)
    bar = fig.colorbar(image, ax=ax, shrink=0.9)
    bar.set_label("Incidents (count)")
    bar.locator = MaxNLocator(integer=True)
    bar.update_ticks()
    if annotate and n_rows * n_cols <= 2500:
        colours = np.asarray(image.cmap(image.norm(values)), dtype=float)
        luminance = 0.2126 * colours[..., 0] + 0.7152 * colours[..., 1] + 0.0722 * colours[..., 2]
        size = 8 if n_rows * n_cols <= 400 else 6
        for i in range(n_rows):
            for j in range(n_cols):
                ax.text(
                    j,
                    i,
                    f"{int(values[i, j])}",
                    ha="center",
                    va="center",
                    fontsize=size,
                    color="black" if luminance[i, j] > 0.5 else "white",
                )
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=dpi, format="png")
    return out


def render_html(
    table: pd.DataFrame,
    title: str,
    path: str | Path,
    *,
    self_contained: bool = True,
    colorscale: str = "Viridis",
) -> Path:
    """Write an interactive plotly heat map. ``self_contained`` inlines plotly.js (no network needed to view);
    otherwise the page loads plotly.js from its CDN. Returns the path written."""
    _check_table(table)
    import plotly.graph_objects as go

    by = table.columns.name or "column"
    values = table.to_numpy(dtype=np.int64)
    labels = _labels(table, width=60)
    columns = [str(c) for c in table.columns]
    fig = go.Figure(
        go.Heatmap(
            z=values,
            x=columns,
            y=labels,
            colorscale=colorscale,
            zmin=0,
            texttemplate="%{z}",
            hovertemplate="pattern: %{y}<br>" + f"{by}: " + "%{x}<br>incidents: %{z}<extra></extra>",
            colorbar={"title": {"text": "Incidents (count)"}},
        )
    )
    fig.update_layout(
        title={"text": title},
        xaxis={"title": {"text": _AXIS_LABELS.get(str(by), str(by))}, "type": "category"},
        yaxis={"title": {"text": "Failure pattern"}, "autorange": "reversed", "type": "category"},
        height=max(360, 140 + 28 * len(labels)),
        template="plotly_white",
    )
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.write_html(
        out, include_plotlyjs=True if self_contained else "cdn", full_html=True, include_mathjax=False
    )
    return out


def render_csv(table: pd.DataFrame, path: str | Path) -> Path:
    """Write the pivot table as CSV (``pattern_id, pattern`` then one column per service/team/month)."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(out, index=True)
    return out
