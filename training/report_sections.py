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
from ml.io.schemas import Experiment, Incident, parse_series_key, series_key
from ml.registry.runs import list_recorded, recorded_plot
from ml.reporting.learning import MATURITY_RULES, maturity_level
from ml.reporting.page import Figure, Finding, Section, Table
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
    warnings = runtime.warnings()
    by_team: dict[str, list[dict[str, Any]]] = {}
    for s in series:
        by_team.setdefault(s["team"] or s["service"] or "all", []).append(s)
    risk = {w["series"]: float(w["probability"]) for w in warnings}
    shifts = Counter(e["series"] for e in signals if e.get("kind") == "shift")

    def worst(item: tuple[str, list[dict[str, Any]]]) -> tuple[float, int, str]:
        team, items = item
        return (
            -max(risk.get(s["series"], 0.0) for s in items),
            -sum(shifts[s["series"]] for s in items),
            team,
        )

    for team, items in sorted(
        by_team.items(), key=worst
    ):  # worst first: highest chance of crossing, then shifts
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
                collapsed=True,
                badge=_team_badge(items, risk, shifts),
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


def _team_badge(items: Sequence[dict[str, Any]], risk: dict[str, float], shifts: Counter[str]) -> str:
    top = max(items, key=lambda s: risk.get(s["series"], 0.0))
    parts = []
    if risk.get(top["series"]):
        parts.append(f"{100 * risk[top['series']]:.0f}% chance {top['indicator']} crosses its threshold")
    n = sum(shifts[s["series"]] for s in items)
    if n:
        parts.append(f"{n} shift{'s' if n > 1 else ''}")
    return ": " + ", ".join(parts) if parts else ""


# ---------------------------------------------------------------------------------------------- why it moved


def _change(e: dict[str, Any]) -> str:
    return f"{e['direction']} {float(e['magnitude']):+.3g}"


def causes_section(runtime: Any | None, version: str | None, weeks: int = 26) -> Section:
    """Recent shifts with their top causes in plain words, and the shifts with no convincing cause."""
    from ml.causes import when_text  # imports scipy: only when the report is written

    sec = Section(
        id="causes",
        title="3. Why it moved",
        summary="For each recent shift, its most likely causes: the teams or services that moved the total, a "
        "failure pattern whose incidents rose, a change or experiment that started just before. Where no cause is "
        "convincing, it says so rather than blame the least bad one.",
    )
    if runtime is None:
        sec.empty = "No indicator forecaster yet: run `recur train all --data FOLDER --promote`."
        return sec
    shifts = runtime.explanations()
    if not shifts and not runtime.signals():
        sec.empty = "No shift to explain."
        return sec
    if not shifts:
        sec.empty = "This forecaster was trained without explanations: retrain it with `recur train all`."
        return sec
    last = pd.Timestamp(runtime.history["ds"].max())
    start = last - pd.Timedelta(weeks=weeks)
    window = [e for e in shifts if pd.Timestamp(e["date"]) >= start]
    recent = window or shifts[:10]  # none recent: the latest ones
    heading = f"Shifts since {start.date().isoformat()}" if window else f"The {len(recent)} latest shifts"
    explained = [e for e in recent if e["verdict"] == "explained"]
    abstained = [e for e in recent if e["verdict"] != "explained"]
    rows = [
        [
            e["series"],
            when_text(e),
            _change(e),
            c["summary"],
            c["contribution"] and 100 * c["contribution"],
            100 * c["confidence"],
        ]
        for e in explained
        for c in e["causes"][:2]
    ]
    if rows:
        sec.tables.append(
            Table(
                f"{heading} and their most likely causes",
                [
                    "series",
                    "date (range it may lie in)",
                    "change",
                    "cause",
                    "share of the change (%)",
                    "confidence (%)",
                ],
                rows,
                note="Up to two causes per shift, most confident first; `recur explain` lists every candidate with "
                "its evidence.",
            )
        )
    sec.tables.append(
        Table(
            "No convincing cause",
            [
                "series",
                "date (range it may lie in)",
                "change",
                "best candidate (not blamed)",
                "its confidence (%)",
            ],
            [
                [e["series"], when_text(e), _change(e)]
                + (
                    [e["causes"][0]["summary"], 100 * e["causes"][0]["confidence"]]
                    if e["causes"]
                    else ["none", None]
                )
                for e in abstained
            ],
            note="None: every recent shift has a convincing cause." if not abstained else None,
        )
    )
    sec.summary += f" {heading}: {len(explained)} explained, {len(abstained)} with no convincing cause."
    sec.data = {"model_version": version, "signals": recent}
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
        title="4. Experiments",
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
    order = {"worsened": 0, "improved": 1, "inconclusive": 2}
    recorded = sorted(recorded, key=lambda r: (order.get(str(r["verdict"]), 3), str(r["id"])))  # worst first
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
                collapsed=True,
                badge=f": {r['verdict'] or 'not scored'}",
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
        title="6. Suggested experiments",
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
        series_id = series_key("incidents", team=team) if team else None
        mde, why = (
            _mde(forecaster, series_id) if series_id in known else (None, "no indicator series for this team")
        )
        sec.cards.append(
            {
                "title": f"Pattern {p['id']}: {p['name']} ({label})",
                "problem": f"{p['size']} incidents of this pattern ({p.get('recent', 0)} in the last 6 months), "
                f"mostly {service or 'across services'} / team "
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


# ---------------------------------------------------------------------------------------------- executive summary

QUARTER = dt.timedelta(days=91)


def pattern_growth_finding(patterns_rt: Any | None) -> Finding | None:
    """The patterns that grew most this quarter (the 91 days up to the latest incident) against the quarter
    before, and the service most of this quarter's incidents hit."""
    if patterns_rt is None or not patterns_rt.incidents:
        return None
    last = max(i.started_at for i in patterns_rt.incidents)
    start, before = last - QUARTER, last - 2 * QUARTER
    now: Counter[int] = Counter()
    prev: Counter[int] = Counter()
    where: dict[int, Counter[str]] = {}
    for inc in patterns_rt.incidents:
        pid = patterns_rt.assignments.get(inc.id, -1)
        if pid < 0:
            continue
        if inc.started_at > start:
            now[pid] += 1
            where.setdefault(pid, Counter())[inc.service or "unknown service"] += 1
        elif inc.started_at > before:
            prev[pid] += 1
    grown = sorted(((now[p] - prev[p], now[p], p) for p in now if now[p] > prev[p]), reverse=True)[:2]
    if not grown:
        top = now.most_common(1)
        text = (
            f"No failure pattern grew this quarter; the most frequent was {patterns_rt.pattern_name(top[0][0])!r} "
            f"({top[0][1]} incidents)"
            if top
            else "No clustered incident this quarter"
        )
        return Finding(
            text, f"Quarter {start.date()} to {last.date()} against the quarter before.", "patterns", "good"
        )
    parts = []
    for delta, n, pid in grown:
        service, hits = where[pid].most_common(1)[0]
        pct = f", {100 * delta / prev[pid]:+.0f}%" if prev[pid] else ""
        parts.append(
            f"{patterns_rt.pattern_name(pid)!r} grew to {n} incidents from {prev[pid]}{pct}, most in {service} ({hits})"
        )
    return Finding(
        "Fastest growing this quarter: " + "; ".join(parts),
        f"Quarter {start.date()} to {last.date()} against the quarter before.",
        "patterns",
        "bad",
    )


def indicator_risk_finding(forecaster: Any | None) -> Finding | None:
    if forecaster is None:
        return None
    warnings = sorted(forecaster.warnings(), key=lambda w: -float(w["probability"]))
    if not warnings:
        return None
    at_risk = [w for w in warnings if float(w["probability"]) >= 0.5]
    top = warnings[0]
    words = "above" if top["direction"] in ("above", "up", "upper") else "below"
    head = (
        f"{len(at_risk)} indicator{'s are' if len(at_risk) != 1 else ' is'} likely to cross "
        f"{'their thresholds' if len(at_risk) != 1 else 'its threshold'}; "
        if at_risk
        else "No indicator is more likely than not to cross its threshold; "
    )
    return Finding(
        head
        + f"highest: {top['series']} has a {100 * float(top['probability']):.0f}% chance of going {words} "
        f"{top['threshold']:g} within {top['horizon']} weeks",
        "Chance from the forecast distribution of the chosen model per series.",
        "indicators",
        "bad" if at_risk else "good",
    )


def experiments_finding(recorded: Sequence[dict[str, Any]], since: dt.datetime | None) -> Finding | None:
    """Experiments scored since the last report (all of them when there is none) that worked or failed."""
    if not recorded:
        return None
    new = [r for r in recorded if since is None or pd.Timestamp(r["scored_at"]) > pd.Timestamp(since)]
    when = "since the last report" if since is not None else "so far"
    if not new:
        return Finding(
            f"No experiment was scored {when}",
            f"{len(recorded)} experiments are recorded; see their latest verdicts.",
            "experiments",
            "info",
        )
    counts = Counter(str(r["verdict"]) for r in new)

    def named(verdict: str) -> str:
        rows = [r for r in new if r["verdict"] == verdict]
        shown = ", ".join(
            f"{r['id']}" + ("" if r["relative_effect"] is None else f" ({100 * r['relative_effect']:+.0f}%)")
            for r in rows[:3]
        )
        return f"{len(rows)} {'worked' if verdict == 'improved' else 'made things worse'} ({shown})"

    parts = [named(v) for v in ("improved", "worsened") if counts[v]]
    if counts["inconclusive"]:
        parts.append(f"{counts['inconclusive']} inconclusive")
    return Finding(
        f"Experiments {when}: " + "; ".join(parts),
        "Effects against a counterfactual from the pre-period and control teams, 95% intervals.",
        "experiments",
        "bad" if counts["worsened"] else ("good" if counts["improved"] else "info"),
    )


def learning_finding(health: dict[str, Any] | None) -> Finding | None:
    """The overall learning-health level and the one rule that would raise it."""
    if not health:
        return None
    overall = health["overall"]
    level = maturity_level(overall)
    nxt = next((r for r in MATURITY_RULES if r.level == level + 1), None)
    if nxt is None:
        return Finding(
            f"Learning health is at level {level} of 5, the top",
            "Every maturity rule is met.",
            "learning",
            "good",
        )
    value = overall.get(nxt.measure)
    shown = (
        "no data"
        if value is None
        else (
            f"{100 * value:.0f}%"
            if nxt.measure.endswith("rate") or nxt.measure.startswith("postmortems")
            else f"{value:.0f}"
        )
    )
    return Finding(
        f"Learning health is at level {level} of 5; to reach {nxt.level}: {nxt.meaning}",
        f"{nxt.measure.replace('_', ' ')} is {shown} now; the rule is {nxt.op} {nxt.threshold:g}.",
        "learning",
        "info" if level >= 3 else "bad",
    )


def executive_summary(
    patterns_rt: Any | None,
    forecaster: Any | None,
    sections: Sequence[Section],
    last_report_at: dt.datetime | None,
) -> list[Finding]:
    """3-5 headline findings with numbers, in the order of the sections they link to."""
    by_id = {s.id: s for s in sections}
    recorded = by_id["experiments"].data.get("experiments", []) if "experiments" in by_id else []
    health = by_id["learning"].data if "learning" in by_id else None
    findings = [
        pattern_growth_finding(patterns_rt),
        indicator_risk_finding(forecaster),
        experiments_finding(recorded, last_report_at),
        learning_finding(health or None),
    ]
    out = [f for f in findings if f is not None]
    if "suggestions" in by_id and by_id["suggestions"].cards:
        n = len(by_id["suggestions"].cards)
        out.append(
            Finding(
                f"{n} pattern{'s' if n > 1 else ''} worth an experiment",
                "Recurring patterns with no experiment on them, with a candidate fix from past action items.",
                "suggestions",
                "info",
            )
        )
    return out[:5]
