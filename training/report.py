"""`recur report`: the weekly leadership page, built from the current champions and the MLflow runs.

Writes ``index.html`` (self-contained), ``report.json`` (the same sections as data) and ``slides/*.png`` (one
image per chart, for slides) to the output folder, and logs them to the MLflow experiment ``leadership-report``
so the API can serve the latest report.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import mlflow

from ml.errors import ModelUnavailableError
from ml.io.schemas import Incident
from ml.registry.names import FORECASTER_MODEL, PATTERNS_MODEL
from ml.reporting.learning import learning_health
from ml.reporting.page import Figure, Finding, Section, Table, fig_to_png, render_html, report_json
from training import tracking
from training.champions import load_runtime
from training.ingest import load_experiments, load_incidents
from training.settings import Settings

log = logging.getLogger(__name__)

EXPERIMENT = "leadership-report"
TITLE = "Recur: what keeps failing, and is it getting better?"


# ---------------------------------------------------------------------------------------------- patterns


def _png_of_table(table: Any, title: str) -> bytes:
    import tempfile

    from ml.patterns.heatmap import render_png

    with tempfile.TemporaryDirectory() as tmp:
        return render_png(table, title, Path(tmp) / "h.png", dpi=110).read_bytes()


def patterns_section(runtime: Any | None, version: str | None, since: dt.date | None) -> Section:
    sec = Section(
        id="patterns",
        title="1. Failure patterns",
        summary="Recurring root causes mined from postmortems, where they hit, and which are rising.",
    )
    if runtime is None:
        sec.empty = "No pattern model yet: run `recur train patterns --incidents PATH --promote`."
        return sec
    incidents = runtime.incidents
    if not incidents:
        sec.empty = "The pattern model holds no incidents."
        return sec
    last = max(i.started_at for i in incidents).date()
    year_ago = since or (last - dt.timedelta(days=365))
    by_service = _nonzero_rows(runtime.heatmap_table("service", "month", year_ago))
    two_years = since or (last - dt.timedelta(days=730))
    by_month = _nonzero_rows(runtime.heatmap_table("month", "month", two_years))
    for table, what, start in ((by_service, "service", year_ago), (by_month, "month", two_years)):
        if table.shape[1] == 0:  # no incident since `start` (e.g. --since after the latest one)
            sec.summary += f" No incident since {start.isoformat()}: no heat map by {what}."
            continue
        sec.figures.append(
            Figure(
                f"Incidents per pattern and {what} since {start.isoformat()}",
                _png_of_table(table, f"Incidents per failure pattern and {what} (since {start.isoformat()})"),
                f"Heat map of incident counts, failure patterns by {what}",
                f"patterns_by_{what}",
            )
        )
    patterns = runtime.patterns()
    rising = sorted((p for p in patterns if p["trend"] == "rising"), key=lambda p: -(p["trend_slope"] or 0))
    rows = [
        [
            p["id"],
            p["name"],
            p["size"],
            p["trend"],
            round(100 * _monthly_change(p), 0) if p.get("trend_slope") is not None else None,
            "; ".join(f"{r['id']}: {r['title']}" for r in p["representatives"][:3]),
        ]
        for p in (rising or sorted(patterns, key=lambda p: -p["size"]))[:5]
    ]
    sec.tables.append(
        Table(
            "Top rising patterns" if rising else "No pattern is rising significantly; the largest patterns",
            ["id", "pattern", "incidents", "trend", "change per month (%)", "representative incidents"],
            rows,
            note=f"Pattern model {PATTERNS_MODEL} v{version}; trend over the last 6 months (Poisson regression).",
        )
    )
    sec.tables.append(
        Table(
            "All patterns",
            ["id", "pattern", "incidents", "trend", "keywords"],
            [[p["id"], p["name"], p["size"], p["trend"], ", ".join(p["keywords"][:6])] for p in patterns],
            note=f"{runtime.unclustered_count()} incidents are unclustered (one-offs).",
        )
    )
    sec.data = {"model_version": version, "patterns": patterns, "rising": [p["id"] for p in rising]}
    return sec


def _nonzero_rows(table: Any) -> Any:
    """Drop patterns with no incident in the window (a heat map of zeros says nothing)."""
    keep = table.sum(axis=1) > 0
    return table[keep] if keep.any() else table


def _monthly_change(p: dict[str, Any]) -> float:
    import math

    return math.exp(float(p["trend_slope"] or 0.0)) - 1.0


# ---------------------------------------------------------------------------------------------- learning health


def _mttr_figure(trend: Sequence[dict[str, Any]]) -> Figure:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 3.2))
    months = [r["month"] for r in trend]
    ax.plot(months, [r["median_ttr_hours"] for r in trend], color="black", marker="o", linewidth=1.5)
    ax.set_title("Median time to resolve per month")
    ax.set_xlabel("Month")
    ax.set_ylabel("Median time to resolve (hours)")
    step = max(1, len(months) // 12)
    ax.set_xticks(range(0, len(months), step), months[::step], rotation=45, ha="right")
    ax.grid(alpha=0.3)
    return Figure("MTTR trend", fig_to_png(fig), "Line chart of monthly median time to resolve", "mttr_trend")


def learning_section(incidents: Sequence[Incident], assignments: dict[str, int]) -> Section:
    sec = Section(
        id="learning",
        title="5. Learning health",
        summary="Do postmortems turn into shipped improvements, and do the fixed patterns stay fixed?",
    )
    if not incidents:
        sec.empty = "No postmortems to measure yet."
        return sec
    health = learning_health(incidents, assignments)
    o = health["overall"]
    sec.tables.append(
        Table(
            "Overall",
            [
                "incidents",
                "action items",
                "completion rate (%)",
                "median days to improvement",
                "median TTR (h)",
                "repeat rate after fix (%)",
            ],
            [
                [
                    o["incidents"],
                    o["action_items"],
                    None if o["completion_rate"] is None else 100 * o["completion_rate"],
                    o["median_days_to_improvement"],
                    o["mttr_hours"],
                    None if o["repeat_rate"] is None else 100 * o["repeat_rate"],
                ]
            ],
        )
    )
    sec.tables.append(
        Table(
            "Per team, with maturity level (1-5)",
            [
                "team",
                "incidents",
                "completion rate (%)",
                "median days to improvement",
                "median TTR (h)",
                "repeat rate (%)",
                "maturity",
            ],
            [
                [
                    t["team"],
                    t["incidents"],
                    None if t["completion_rate"] is None else 100 * t["completion_rate"],
                    t["median_days_to_improvement"],
                    t["mttr_hours"],
                    None if t["repeat_rate"] is None else 100 * t["repeat_rate"],
                    t["maturity"],
                ]
                for t in health["teams"]
            ],
            note="Empty cells: no data for that measure (for example no action item closed yet).",
        )
    )
    sec.tables.append(
        Table(
            "Maturity rules (a team's level is 1 plus the rules it meets in order)",
            ["level", "measure", "rule", "meaning"],
            [
                [r["level"], r["measure"], f"{r['op']} {r['threshold']}", r["meaning"]]
                for r in health["rules"]
            ],
        )
    )
    if health["patterns"]:
        sec.tables.append(
            Table(
                "Repeat incidents per pattern after its first fix shipped",
                ["pattern", "incidents", "first fix shipped", "repeats after fix", "repeat rate (%)"],
                [
                    [
                        p["pattern_id"],
                        p["incidents"],
                        p["first_fix_shipped"] or "no fix yet",
                        p["repeats_after_fix"],
                        None if p["repeat_rate"] is None else 100 * p["repeat_rate"],
                    ]
                    for p in health["patterns"]
                ],
            )
        )
    if len(health["mttr_trend"]) >= 2:
        sec.figures.append(_mttr_figure(health["mttr_trend"]))
    sec.data = health
    return sec


# ---------------------------------------------------------------------------------------------- assembly


def _try_runtime(settings: Settings, name: str) -> tuple[Any | None, str | None]:
    try:
        return load_runtime(settings, name)
    except ModelUnavailableError as exc:
        log.warning("Report - %s", exc.message)
        return None, None


def _last_report_at(settings: Settings) -> dt.datetime | None:
    """When the previous report was logged (the start of the newest ``leadership-report`` run), or ``None``."""
    from mlflow.tracking import MlflowClient

    try:
        client = MlflowClient(tracking_uri=settings.tracking_uri)
        exp = client.get_experiment_by_name(EXPERIMENT)
        if exp is None:
            return None
        runs = client.search_runs([exp.experiment_id], order_by=["attributes.start_time DESC"], max_results=1)
    except Exception as exc:  # a store that is down leaves the summary without "since the last report"
        log.warning("Report - cannot read the previous report's date: %s", type(exc).__name__)
        return None
    return dt.datetime.fromtimestamp(runs[0].info.start_time / 1000, tz=dt.UTC) if runs else None


def build_report(
    settings: Settings,
    incidents_paths: Sequence[Path],
    experiments_paths: Sequence[Path],
    since: dt.date | None = None,
) -> tuple[list[Section], list[Finding]]:
    """The sections and, first, the executive summary's findings that link to them."""
    from training import report_sections

    last = _last_report_at(settings)
    patterns_rt, _v = _try_runtime(settings, PATTERNS_MODEL)
    forecaster_rt, _fv = _try_runtime(settings, FORECASTER_MODEL)
    sections = build_sections(
        settings, incidents_paths, experiments_paths, since, runtimes=(patterns_rt, _v, forecaster_rt, _fv)
    )
    return sections, report_sections.executive_summary(patterns_rt, forecaster_rt, sections, last)


def build_sections(
    settings: Settings,
    incidents_paths: Sequence[Path],
    experiments_paths: Sequence[Path],
    since: dt.date | None = None,
    runtimes: tuple[Any, str | None, Any, str | None] | None = None,
) -> list[Section]:
    from training import report_sections

    if runtimes is None:
        patterns_rt, patterns_v = _try_runtime(settings, PATTERNS_MODEL)
        forecaster_rt, forecaster_v = _try_runtime(settings, FORECASTER_MODEL)
    else:
        patterns_rt, patterns_v, forecaster_rt, forecaster_v = runtimes
    incidents: list[Incident] = []
    for p in incidents_paths:
        if p.exists():
            incidents += load_incidents(p).records  # redacted, once, here
    experiments = []
    for p in experiments_paths:
        if p.exists():
            experiments += load_experiments(p).records  # redacted, once, here
    assignments = patterns_rt.assignments if patterns_rt is not None else {}
    return [
        patterns_section(patterns_rt, patterns_v, since),
        report_sections.indicators_section(forecaster_rt, forecaster_v),
        report_sections.causes_section(forecaster_rt, forecaster_v),
        report_sections.experiments_section(settings, experiments, forecaster_rt),
        learning_section(incidents, assignments),
        report_sections.suggestions_section(patterns_rt, forecaster_rt, experiments, incidents),
    ]


def write_report(
    settings: Settings,
    out: Path,
    *,
    incidents_paths: Sequence[Path],
    experiments_paths: Sequence[Path] = (),
    since: dt.date | None = None,
    log_to_mlflow: bool = True,
) -> dict[str, Any]:
    tracking.configure(settings)
    sections, findings = build_report(settings, incidents_paths, experiments_paths, since)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    # The store's location (a file path, a server URI) is for operators, never for the readers of the page.
    subtitle = f"Generated {now.strftime('%Y-%m-%d %H:%M UTC')} from the current champion models"
    out.mkdir(parents=True, exist_ok=True)
    slides = out / "slides"
    slides.mkdir(exist_ok=True)
    for old in slides.glob("*.png"):
        old.unlink()
    html_text = render_html(TITLE, subtitle, sections, findings)
    data = report_json(TITLE, now, sections, findings)
    (out / "index.html").write_text(html_text, encoding="utf-8")
    (out / "report.json").write_text(json.dumps(data, indent=2, default=str), encoding="utf-8")
    n = 0
    for s in sections:
        for f in s.figures:
            n += 1
            (slides / f"{n:02d}_{f.name}.png").write_bytes(f.png)
    run_id = None
    if log_to_mlflow:
        with tracking.run(EXPERIMENT, settings, run_name="report", tags={"recur.job": "report"}) as run:
            mlflow.log_artifact(str(out / "index.html"))
            mlflow.log_artifact(str(out / "report.json"))
            mlflow.log_metrics({"sections_with_content": float(sum(s.has_content for s in sections))})
            run_id = run.info.run_id
    return {
        "out": str(out),
        "index": str(out / "index.html"),
        "run_id": run_id,
        "sections": [
            {"id": s.id, "title": s.title, "has_content": s.has_content, "empty": s.empty} for s in sections
        ],
        "slides": n,
        "summary": [f.headline for f in findings],
    }
