"""Report sections that draw on the indicator forecaster, the experiment runs and the rising patterns."""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections import Counter
from collections.abc import Sequence
from typing import Any

import pandas as pd

from ml.errors import RecurError
from ml.io.schemas import Experiment, Incident, parse_series_key
from ml.registry.runs import list_recorded, recorded_plot
from ml.reporting.page import Figure, Section, Table
from training.settings import Settings

log = logging.getLogger(__name__)

WINDOW = 13  # weeks: a quarter


# ---------------------------------------------------------------------------------------------- indicators


def indicators_section(runtime: Any | None, version: str | None) -> Section:
    from ml.reporting.plots import small_multiples_png, unit_of

    sec = Section(
        id="indicators",
        title="2. Leading indicators",
        summary="Per team: forecasts with 80% intervals, the recent meaningful shifts (not noise), and early warnings.",
    )
    if runtime is None:
        sec.empty = "No indicator forecaster yet: run `recur train indicators --indicators PATH --promote`."
        return sec
    series = [s for s in runtime.series() if s["status"] != "error"]
    if not series:
        sec.empty = "The forecaster holds no usable series."
        return sec
    signals = runtime.signals()
    by_team: dict[str, list[dict[str, Any]]] = {}
    for s in series:
        by_team.setdefault(s["team"] or s["service"] or "all", []).append(s)
    for team, items in sorted(by_team.items()):
        panels = []
        for s in sorted(items, key=lambda s: s["indicator"]):
            hist = runtime.series_history(s["series"]).tail(52)
            fc = runtime.forecast(s["series"], 13)["points"]
            sig = [e for e in signals if e["series"] == s["series"]]
            panels.append((f"{s['indicator']} ({unit_of(s['indicator'])})", hist, fc, sig))
        sec.figures.append(
            Figure(
                f"Team {team}: last year, forecast and 80% interval",
                small_multiples_png(panels, f"Team {team}: leading indicators", "value"),
                f"Charts of the leading indicators of team {team}",
                f"indicators_{re.sub(r'[^A-Za-z0-9_-]', '_', team)}",
            )
        )
    last = max(pd.Timestamp(s["last_ds"]) for s in series if s["last_ds"])
    recent = [
        e
        for e in signals
        if e.get("kind") == "shift" and pd.Timestamp(e["date"]) >= last - pd.Timedelta(weeks=26)
    ]
    sec.tables.append(
        Table(
            "Meaningful changes in the last 26 weeks (level shifts the noise cannot explain)",
            ["series", "date", "direction", "change", "in noise SDs", "confidence"],
            [
                [
                    e["series"],
                    str(e["date"])[:10],
                    e["direction"],
                    e["magnitude"],
                    e.get("magnitude_sigma"),
                    e["confidence"],
                ]
                for e in recent
            ],
            note="None detected."
            if not recent
            else "Isolated outliers are not listed: they are noise, not shifts.",
        )
    )
    warnings = runtime.warnings()
    if warnings:
        sec.tables.append(
            Table(
                "Early warnings: chance of crossing the threshold within the horizon",
                ["series", "threshold", "direction", "horizon (weeks)", "probability (%)"],
                [
                    [w["series"], w["threshold"], w["direction"], w["horizon"], 100 * w["probability"]]
                    for w in sorted(warnings, key=lambda w: -w["probability"])
                ],
            )
        )
    sec.tables.append(
        Table(
            "Model chosen per series by backtest",
            ["series", "model", "backtest MASE", "seasonal-naive MASE"],
            [[s["series"], s["model"], s["mase"], s["baseline_mase"]] for s in series],
            note=f"Forecaster indicator-forecaster v{version}. MASE below 1 beats a naive forecast.",
        )
    )
    sec.data = {"model_version": version, "signals": recent, "warnings": warnings}
    return sec


# ---------------------------------------------------------------------------------------------- experiments


def _velocity(history: pd.DataFrame, experiments: Sequence[Experiment]) -> Table | None:
    if history is None or history.empty:
        return None
    starts: dict[str, dt.date] = {}
    for e in experiments:
        starts[e.treated] = min(starts.get(e.treated, e.start), e.start)
    rows = []
    for sid, part in history.groupby("series"):
        key = parse_series_key(str(sid))
        team = key["team"] or key["service"]
        if team is None:
            continue
        part = part.sort_values("ds")
        after = part.tail(WINDOW)
        if team in starts:
            before = part[part["ds"] < pd.Timestamp(starts[team])].tail(WINDOW)
            label = f"{WINDOW} weeks before {starts[team].isoformat()}"
        else:
            before = part.iloc[-2 * WINDOW : -WINDOW]
            label = "the quarter before (no experiment)"
        if len(before) < 4 or len(after) < 4:
            continue
        b, a = float(before["y"].mean()), float(after["y"].mean())
        rows.append([team, key["indicator"], label, b, a, None if b == 0 else 100 * (a - b) / abs(b)])
    if not rows:
        return None
    rows.sort(key=lambda r: (r[0], r[1]))
    return Table(
        "Process velocity: each team's indicators before its first experiment and in the latest quarter",
        ["team", "indicator", "before", "mean before", "mean latest 13 weeks", "change (%)"],
        rows,
        note="Descriptive only: the verdicts above are the causal estimates (they account for controls and noise).",
    )


def experiments_section(
    settings: Settings, experiments: Sequence[Experiment], forecaster: Any | None
) -> Section:
    sec = Section(
        id="experiments",
        title="3. Experiments",
        summary="Did each process change move its indicator? Effect with 95% interval, against a counterfactual "
        "built from the pre-period and control teams.",
    )
    try:
        recorded = list_recorded(settings.tracking_uri)
    except Exception as exc:  # an unreachable tracking server must not break the whole report
        log.warning("Report - cannot read recorded experiments: %s", exc)
        recorded = []
    if not recorded:
        sec.empty = "No experiment recorded yet: describe one in YAML and run `recur experiment score`."
        return sec
    for r in recorded:
        rel = "" if r["relative_effect"] is None else f" ({100 * r['relative_effect']:+.0f}%)"
        sec.cards.append(
            {
                "title": f"{r['id']}: {r['name']}",
                "verdict": (r["verdict"] or "").upper(),
                "problem": r["hypothesis"]["problem"],
                "solution": r["hypothesis"]["solution"],
                "metric": r["hypothesis"]["metric"],
                "treated": r["treated"],
                "effect per week": f"{r['effect']:+.3g}{rel}, 95% CI [{r['ci_low']:.3g}, {r['ci_high']:.3g}]",
                "p-value": f"{r['p_value']:.3f}",
            }
        )
        try:
            png = recorded_plot(settings.tracking_uri, r["id"])
        except RecurError:
            continue
        sec.figures.append(
            Figure(
                f"{r['id']}: before, after and counterfactual",
                png,
                f"Impact plot of {r['id']}",
                f"experiment_{r['id']}",
            )
        )
    history = forecaster.history if forecaster is not None else None
    velocity = _velocity(history, experiments)
    if velocity is not None:
        sec.tables.append(velocity)
    counts = Counter(r["verdict"] for r in recorded)
    sec.summary += (
        f" {len(recorded)} experiments: "
        + ", ".join(f"{counts[v]} {v}" for v in ("improved", "worsened", "inconclusive"))
        + "."
    )
    sec.data = {"experiments": recorded}
    return sec


# ---------------------------------------------------------------------------------------------- suggestions


def _mentions(exp: Experiment, keywords: Sequence[str]) -> bool:
    text = f"{exp.name} {exp.hypothesis.problem} {exp.hypothesis.solution}".lower()
    words = [k for k in keywords if len(k) > 3]
    return sum(1 for k in words if k.lower() in text) >= 2


def _mde(forecaster: Any | None, series_id: str) -> tuple[float | None, str]:
    """The minimum detectable effect of an 8-week experiment on this series, from its own noise (a placebo
    scoring of the last 8 weeks with the impact model)."""
    if forecaster is None:
        return None, "no forecaster: noise unknown"
    try:
        from ml.experiments.impact import ImpactScorer

        hist = forecaster.series_history(series_id)
        start = pd.Timestamp(hist["ds"].iloc[-8]).date()
        key = parse_series_key(series_id)
        dim, treated = ("team", key["team"]) if key["team"] else ("service", key["service"])
        exp = Experiment(
            id="MDE",
            name="mde",
            hypothesis={"problem": "p", "solution": "s", "metric": "m"},
            indicator=str(key["indicator"]),
            dimension=dim,
            treated=str(treated),
            start=start,
        )
        data = hist.assign(series=series_id)[["series", "ds", "y"]]
        res = ImpactScorer(calibrate=False).score(exp, data)
        return float(res.mde), f"MDE for 8 post weeks at 80% power, from the noise of {series_id}"
    except RecurError as exc:
        return None, exc.message


def suggestions_section(
    patterns_rt: Any | None,
    forecaster: Any | None,
    experiments: Sequence[Experiment],
    incidents: Sequence[Incident],
) -> Section:
    sec = Section(
        id="suggestions",
        title="5. Suggested experiments",
        summary="Rising patterns with no experiment on them, as hypothesis cards: the problem, a candidate fix from "
        "past action items, the indicator to watch and the smallest effect an 8-week test could detect.",
    )
    if patterns_rt is None:
        sec.empty = "No pattern model yet, so no rising pattern to suggest an experiment for."
        return sec
    patterns = patterns_rt.patterns()
    rising = [p for p in patterns if p["trend"] == "rising"]
    label = "rising"
    candidates = rising
    if not rising:  # nothing rises significantly: suggest for the patterns that recur most right now
        label = "recurring, not rising"
        candidates = sorted((p for p in patterns if p.get("recent")), key=lambda p: -p["recent"])[:3]
        sec.summary += (
            " No pattern is rising significantly, so these are the most frequent of the last 6 months."
        )
    open_ = [p for p in candidates if not any(_mentions(e, p["keywords"]) for e in experiments)]
    if not open_:
        sec.empty = (
            "Every rising pattern already has an experiment."
            if rising
            else "No recurring pattern without an experiment in the last 6 months."
        )
        return sec
    by_id = {i.id: i for i in incidents}
    known = {s["series"] for s in forecaster.series()} if forecaster is not None else set()
    for p in open_:
        members = [iid for iid, pid in patterns_rt.assignments.items() if pid == p["id"]]
        teams = Counter(patterns_rt.index.get(i).team for i in members if i in patterns_rt.index)
        services = Counter(patterns_rt.index.get(i).service for i in members if i in patterns_rt.index)
        team = next((t for t, _ in teams.most_common() if t), None)
        service = next((s for s, _ in services.most_common() if s), None)
        fixes = Counter(
            a.title
            for i in members
            if i in by_id
            for a in by_id[i].action_items
            if a.status in ("done", "open")
        )
        solution = (
            "Candidates from past action items: " + "; ".join(f"'{t}'" for t, _ in fixes.most_common(2))
            if fixes
            else "Define a prevention step addressing: " + ", ".join(p["keywords"][:4])
        )
        series_id = f"incidents/team={team}" if team else None
        mde, why = (
            _mde(forecaster, series_id) if series_id in known else (None, "no indicator series for this team")
        )
        sec.cards.append(
            {
                "title": f"Pattern {p['id']}: {p['name']} ({label})",
                "problem": f"{p['size']} incidents of this pattern ({p.get('recent', 0)} in the last 6 months), mostly {service or 'across services'} / team "
                f"{team or 'several'}; e.g. {p['representatives'][0]['title'] if p['representatives'] else ''}",
                "solution": solution,
                "metric": f"weekly incidents of team {team}" if team else "weekly incidents",
                "indicator to watch": series_id or "(none)",
                "minimum detectable effect": "unknown" if mde is None else f"{mde:.3g} per week",
                "note": why,
            }
        )
    sec.data = {"suggestions": sec.cards}
    return sec
