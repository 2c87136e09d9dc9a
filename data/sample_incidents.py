"""The sample's incidents: when each pattern strikes, one postmortem per incident (JSONL records and Markdown
postmortems), ids, references between incidents and the key action items of the fading patterns.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import yaml
from sample_spec import (
    DST_DATES,
    ONE_OFF,
    ONE_OFFS,
    OWNER,
    PATTERN_BY_SLUG,
    PATTERNS,
    RED_HERRING_SENTENCES,
    SECONDARY,
    SERVICES,
    SHARED,
    TEAM_SERVICES,
    TEAMS,
    UTC,
    WINDOW_END,
    WINDOW_START,
    PatternSpec,
    Rand,
    iso,
    lognormal_minutes,
)
from sample_text import Renderer, draw_action_items, draw_tags, draw_timeline, make_values

N_DAYS = (WINDOW_END.date() - WINDOW_START.date()).days + 1
N_INCIDENTS = 600
ONE_OFF_SHARE = 0.10
N_POSTMORTEMS = 12
# How much of the text says nothing about the cause (difficulty knobs for pattern mining)
GENERIC_TITLE_SHARE = 0.45  # titles that are symptom-only ("Elevated errors on payments-api")
GENERIC_SUMMARY_SHARE = 0.35  # summaries that are symptom-only

SEVERITIES = ("SEV1", "SEV2", "SEV3", "SEV4", "SEV5")
ONE_OFF_SEVERITY = (0.04, 0.14, 0.36, 0.34, 0.12)
HOUR_PROFILES: dict[str, np.ndarray] = {
    "business": np.array([0.4] * 8 + [1.5] * 5 + [3.0] * 10 + [0.4]),
    "uniform": np.ones(24),
    "night": np.array([2.5] * 7 + [1.0] * 17),
    "peak": np.array([0.7] * 12 + [3.0] * 10 + [0.7] * 2),
    "midnight": np.array([4.0, 4.0] + [0.5] * 20 + [4.0, 4.0]),
}
WEEKEND_FACTOR = {"business": 0.25, "uniform": 0.9, "night": 0.9, "peak": 0.8, "midnight": 1.0}


def _day(d: int) -> dt.date:
    return WINDOW_START.date() + dt.timedelta(days=d)


def pattern_day_weights(spec: PatternSpec, rng: Rand) -> np.ndarray:
    """Expected incidents per day (up to a common scale) for a pattern: trend shape x weekday effect."""
    days = [_day(d) for d in range(N_DAYS)]
    t = np.arange(N_DAYS) / (N_DAYS - 1)
    if spec.trend == "flat":
        shape = np.ones(N_DAYS)
    elif spec.trend == "rising":
        shape = 0.35 + 1.3 * t
    elif spec.trend == "fading":
        if spec.key_date is None:
            raise ValueError(f"pattern {spec.slug!r}: a fading pattern needs key_date")
        shape = np.array([1.0 if d <= spec.key_date else 0.15 for d in days])
    elif spec.trend == "emerging":
        if spec.emerge_date is None:
            raise ValueError(f"pattern {spec.slug!r}: an emerging pattern needs emerge_date")
        e = (spec.emerge_date - WINDOW_START.date()).days
        shape = np.array([0.0 if i < e else 0.4 + 1.4 * (i - e) / (N_DAYS - e) for i in range(N_DAYS)])
    elif spec.trend == "seasonal":
        peak = np.array(
            [min(abs(d.timetuple().tm_yday - 332), 365 - abs(d.timetuple().tm_yday - 332)) for d in days]
        )
        shape = (0.5 + 3.0 * np.exp(-0.5 * (peak / 12.0) ** 2)) * (0.85 + 0.3 * t)
    elif spec.trend == "spiky":
        shape = np.array(
            [
                0.25
                + 5.0 * any(abs((d - x).days) <= 1 for x in DST_DATES)
                + 1.2 * (d.day == 1 or (d + dt.timedelta(days=1)).day == 1)
                + 4.0 * ((d.month, d.day) in ((12, 31), (1, 1)))
                for d in days
            ]
        )
    elif spec.trend == "bursty":
        shape = np.ones(N_DAYS)
        for start in rng.sample(range(N_DAYS - 2), 5):
            shape[start : start + 2] += 8.0
    else:
        raise ValueError(f"unknown trend {spec.trend!r}")
    weekend = np.array([WEEKEND_FACTOR[spec.hours] if d.weekday() >= 5 else 1.0 for d in days])
    return spec.base_rate * shape * weekend


def sample_start(rng: Rand, day: int, hours: str) -> dt.datetime:
    prof = HOUR_PROFILES[hours]
    hour = int(rng.weighted(list(range(24)), prof))
    base = dt.datetime.combine(_day(day), dt.time(hour), tzinfo=UTC)
    return base + dt.timedelta(minutes=rng.int(0, 59))


@dataclass
class Draft:
    """An incident before ids are assigned (action items carry no id yet)."""

    pattern: str
    title: str
    summary: str
    impact: str | None
    timeline: str | None
    root_cause: str | None
    contributing_factors: list[str]
    action_items: list[dict[str, Any]]
    service: str
    team: str
    severity: str
    started_at: dt.datetime
    detected_at: dt.datetime | None
    resolved_at: dt.datetime | None
    reopened: int
    tags: list[str]
    pii: list[tuple[str, str, str]] = field(default_factory=list)  # (field, kind, value)
    one_off: int | None = None
    id: str = ""


def _pick_service(rng: Rand, preferred: Sequence[str]) -> tuple[str, str]:
    service = rng.pick(preferred) if rng.chance(0.65) else rng.pick(SERVICES)
    team = OWNER[service] if rng.chance(0.92) else rng.pick(TEAMS)
    return service, team


def _times(
    rng: Rand, started: dt.datetime, detect_median: float, resolve_median: float
) -> tuple[dt.datetime | None, dt.datetime | None]:
    detect = lognormal_minutes(rng, detect_median, 1.0, 1.0, 36 * 60.0)
    resolve = lognormal_minutes(rng, resolve_median, 0.9, 5.0, 72 * 60.0)
    detected: dt.datetime | None = started + dt.timedelta(minutes=round(detect))
    resolved: dt.datetime | None = started + dt.timedelta(minutes=round(detect + resolve))
    if resolved is not None and resolved > WINDOW_END:
        resolved = None
    if rng.chance(0.01):
        detected = None
    return detected, resolved


def _find_pii(r: Renderer, d: Draft) -> list[tuple[str, str, str]]:
    used = r.used()
    values = [(k, used[k]) for k in ("handle", "handle2", "email", "ip") if k in used]
    fields: dict[str, str] = {
        "title": d.title,
        "summary": d.summary,
        "impact": d.impact or "",
        "timeline": d.timeline or "",
        "root_cause": d.root_cause or "",
        "contributing_factors": "\n".join(d.contributing_factors),
        "action_items": "\n".join(a["title"] for a in d.action_items),
    }
    out = []
    for fname, text in fields.items():
        for key, value in values:
            if value and value in text:
                kind = {"handle": "handle", "handle2": "handle", "email": "email", "ip": "ip"}[key]
                out.append((fname, kind, value))
    return out


def build_incident(
    rng: Rand,
    spec: PatternSpec | None,
    started: dt.datetime,
    form: str,
    one_off: int | None = None,
    team: str | None = None,
) -> Draft:
    """Write one postmortem. `spec` None means a one-off incident (scenario index `one_off`); `team` set: one of
    that team's services, handled by that team (the planted pattern bursts)."""
    if spec is None:
        if one_off is None:
            raise ValueError("a one-off incident needs its scenario index")
        service, team = _pick_service(rng, SERVICES)
        severity = rng.weighted(SEVERITIES, ONE_OFF_SEVERITY)
        detected, resolved = _times(rng, started, 8.0, 90.0)
        reopened = 1 if rng.chance(0.07) else 0
        slug = ONE_OFF
        texts: dict[str, list[str]] = {}
    else:
        service, team = (rng.pick(TEAM_SERVICES[team]), team) if team else _pick_service(rng, spec.services)
        severity = rng.weighted(SEVERITIES, spec.severity)
        detected, resolved = _times(rng, started, spec.detect_median_min, spec.resolve_median_min)
        reopened = (2 if rng.chance(0.2) else 1) if rng.chance(spec.reopen_p) else 0
        slug = spec.slug
        texts = spec.texts
    duration = (resolved - started).total_seconds() / 60.0 if resolved else None
    r = Renderer(rng, make_values(rng, service, team, started, duration, severity, slug), [texts, SHARED])
    # the body, by length
    if spec is None:
        title_t, summary_t, root_t, mitigation, action_t = ONE_OFFS[one_off or 0]
        title = r.render(title_t if rng.chance(0.8) else rng.pick(SHARED["generic_title"]))
        summary_parts = [r.render(summary_t)]
        root_parts = [r.render(root_t)]
        actions_pool = [action_t]
    else:
        title = r.render(
            rng.pick(SHARED["generic_title"] if rng.chance(GENERIC_TITLE_SHARE) else texts["title"])
        )
        generic_summary = rng.chance(GENERIC_SUMMARY_SHARE)
        summary_parts = [
            r.render(rng.pick(SHARED["summary_generic"] if generic_summary else texts["summary"]))
        ]
        root_parts = [r.render(rng.pick(texts["root_cause"]))]
        mitigation = None
        actions_pool = texts["action"]
    if form == "short":
        root_cause = root_parts[0] if (spec is not None and generic_summary) or rng.chance(0.5) else None
        impact = None
        timeline = None
        n_factors, n_actions, n_tags = rng.int(0, 1), rng.int(0, 2), rng.int(0, 2)
    else:
        long = form == "long"
        if rng.chance(0.8 if long else 0.4):
            summary_parts.append(r.render(rng.pick(SHARED["summary_follow"])))
        if long and rng.chance(0.3):
            summary_parts.append(r.render(rng.pick(SHARED["filler"])))
        n_detail = (rng.int(1, 2) if long else int(rng.chance(0.3))) if "detail" in texts else 0
        for d in rng.sample(texts.get("detail", []), n_detail):
            root_parts.append(r.render(d))
        secondary = [text for p, text in SECONDARY if p != slug]
        for text in rng.sample(
            secondary, int(rng.chance(0.7 if long else 0.5)) + int(long and rng.chance(0.3))
        ):
            root_parts.insert(1, r.render(text))
        if long and rng.chance(0.4):
            root_parts.append(r.render(rng.pick(RED_HERRING_SENTENCES)))
        if long and rng.chance(0.3):
            root_parts.append(r.render(rng.pick(SHARED["filler"])))
        root_cause = "\n\n".join(root_parts) if long else " ".join(root_parts)
        impact_pool = texts.get("impact", []) + SHARED["impact_generic"]
        impact = " ".join(r.render(x) for x in rng.sample(impact_pool, 2 if long else 1))
        timeline = draw_timeline(
            rng, r, texts, rng.int(7, 11) if long else rng.int(4, 6), started, detected, resolved, mitigation
        )
        n_factors = rng.int(2, 5) if long else rng.int(1, 3)
        n_actions = rng.int(2, 5) if long else rng.int(1, 3)
        n_tags = rng.int(1, 4)
    summary = " ".join(summary_parts)
    factors: list[str] = []
    for _ in range(n_factors):
        pool = texts["factor"] if "factor" in texts and rng.chance(0.7) else SHARED["factor_generic"]
        fac = r.render(rng.pick(pool))
        if fac not in factors:
            factors.append(fac)
    created_from = resolved or (detected or started)
    items = draw_action_items(rng, r, list(actions_pool), n_actions, created_from) if resolved else []
    tags = draw_tags(rng, r, texts.get("tag", []), n_tags)
    draft = Draft(
        pattern=slug,
        title=title,
        summary=summary,
        impact=impact,
        timeline=timeline,
        root_cause=root_cause,
        contributing_factors=factors,
        action_items=items,
        service=service,
        team=team,
        severity=severity,
        started_at=started,
        detected_at=detected,
        resolved_at=resolved,
        reopened=reopened,
        tags=tags,
        one_off=one_off,
    )
    for text in [draft.title, draft.summary, draft.root_cause or "", draft.timeline or ""]:
        if "{" in text or "<<" in text or ">>" in text:
            raise RuntimeError(f"unrendered template text: {text!r}")
    draft.pii = _find_pii(r, draft)
    return draft


def _forms(rng: Rand) -> str:
    return rng.weighted(["short", "medium", "long"], [0.2, 0.5, 0.3])


def generate_incidents(rng: Rand) -> tuple[list[Draft], dict[str, dict[str, Any]]]:
    """The ~600 JSONL incidents (chronological) and, per fading pattern, its key action item."""
    weights = np.stack([pattern_day_weights(p, rng) for p in PATTERNS])  # (patterns, days)
    n_one = int(round(N_INCIDENTS * ONE_OFF_SHARE))
    n_rec = N_INCIDENTS - n_one
    counts = rng.g.multinomial(n_rec, (weights / weights.sum()).ravel()).reshape(weights.shape)
    plan: list[tuple[dt.datetime, PatternSpec | None, int | None]] = []
    for pi, spec in enumerate(PATTERNS):
        for day in np.flatnonzero(counts[pi]):
            for _ in range(int(counts[pi, day])):
                plan.append((sample_start(rng, int(day), spec.hours), spec, None))
    reserved = set(rng.sample(range(len(ONE_OFFS)), 2))  # kept for the Markdown postmortems
    avail = [i for i in range(len(ONE_OFFS)) if i not in reserved]
    scenario_uses = avail + rng.sample(avail, max(n_one - len(avail), 0))
    for idx in scenario_uses[:n_one]:
        plan.append((sample_start(rng, rng.int(0, N_DAYS - 1), "uniform"), None, int(idx)))
    plan.sort(key=lambda x: (x[0], x[1].slug if x[1] else ONE_OFF))
    drafts = [build_incident(rng, spec, started, _forms(rng), idx) for started, spec, idx in plan]
    drafts.sort(key=lambda d: d.started_at)
    # key action items: created after the last incident of the pattern that precedes the key date
    keys: dict[str, dict[str, Any]] = {}
    for spec in PATTERNS:
        if spec.key_action is None or spec.key_date is None:
            continue
        cutoff = dt.datetime.combine(spec.key_date, dt.time(16, 0), tzinfo=UTC)
        before = [
            d
            for d in drafts
            if d.pattern == spec.slug
            and d.resolved_at is not None
            and d.resolved_at < cutoff - dt.timedelta(days=10)
        ]
        host = before[-1]
        host_resolved = host.resolved_at or host.started_at  # always resolved (filtered above)
        item = {
            "title": spec.key_action,
            "status": "done",
            "created_at": host_resolved + dt.timedelta(hours=rng.uniform(6, 60)),
            "closed_at": cutoff,
            "key": spec.slug,
        }
        host.action_items.insert(0, item)
        host.action_items.sort(key=lambda a: a["created_at"])
        keys[spec.slug] = item
    return drafts, keys


def generate_burst_incidents(
    rng: Rand, bursts: Sequence[tuple[str, str, dt.date, dt.date, int]]
) -> list[Draft]:
    """Postmortems of the planted pattern bursts: per (team, pattern, first day, end day, count), `count` incidents
    of that pattern handled by that team, on days drawn uniformly in [first day, end day)."""
    out: list[Draft] = []
    for team, slug, first, end, count in bursts:
        spec = PATTERN_BY_SLUG[slug]
        lo, hi = (first - WINDOW_START.date()).days, (end - WINDOW_START.date()).days - 1
        days = sorted(rng.int(lo, hi) for _ in range(count))
        for day in days:
            out.append(build_incident(rng, spec, sample_start(rng, day, spec.hours), _forms(rng), team=team))
    out.sort(key=lambda d: d.started_at)
    return out


def assign_ids(drafts: list[Draft], prefix: str, width: int, ai_start: int, first: int = 1) -> int:
    """Give incidents ids from `first` and their action items ids (in order); return the next free action-item
    number."""
    n = ai_start
    for i, d in enumerate(drafts, start=first):
        d_id = f"{prefix}{i:0{width}d}"
        d.id = d_id
        for item in d.action_items:
            item["id"] = f"AI-{n:04d}"
            n += 1
    return n


def add_references(rng: Rand, drafts: list[Draft]) -> None:
    """Some postmortems mention an earlier incident of the same pattern, as real ones do."""
    last: dict[str, str] = {}
    for d in drafts:
        if d.pattern != ONE_OFF and d.pattern in last and rng.chance(0.08):
            ref = last[d.pattern]
            d.summary += " " + rng.pick(
                [f"Similar to {ref}.", f"See also {ref}.", f"This looks like a repeat of {ref}."]
            )
        last[d.pattern] = d.id


def _metadata(d: Draft) -> dict[str, Any]:
    """Who, when and which pattern: the fields an incident record and a postmortem's front matter share."""
    return {
        "service": d.service,
        "team": d.team,
        "severity": d.severity,
        "started_at": iso(d.started_at),
        "detected_at": iso(d.detected_at) if d.detected_at else None,
        "resolved_at": iso(d.resolved_at) if d.resolved_at else None,
        "reopened": d.reopened,
        "tags": d.tags,
        "pattern": d.pattern,
    }


def incident_record(d: Draft) -> dict[str, Any]:
    return {
        "id": d.id,
        "title": d.title,
        "summary": d.summary,
        "impact": d.impact,
        "timeline": d.timeline,
        "root_cause": d.root_cause,
        "contributing_factors": d.contributing_factors,
        "action_items": [
            {
                "id": a["id"],
                "title": a["title"],
                "status": a["status"],
                "created_at": iso(a["created_at"]),
                "closed_at": iso(a["closed_at"]) if a["closed_at"] else None,
            }
            for a in d.action_items
        ],
        **_metadata(d),
    }


def generate_postmortems(rng: Rand, used_one_offs: set[int]) -> list[Draft]:
    slugs = rng.sample([p.slug for p in PATTERNS], N_POSTMORTEMS - 2)
    plan: list[tuple[dt.datetime, PatternSpec | None, int | None]] = []
    for slug in slugs:
        spec = PATTERN_BY_SLUG[slug]
        w = pattern_day_weights(spec, rng)
        day = int(rng.g.choice(N_DAYS, p=w / w.sum()))
        plan.append((sample_start(rng, day, spec.hours), spec, None))
    fresh = [i for i in range(len(ONE_OFFS)) if i not in used_one_offs] or list(range(len(ONE_OFFS)))
    for idx in rng.sample(fresh, 2):
        plan.append((sample_start(rng, rng.int(0, N_DAYS - 40), "uniform"), None, int(idx)))
    plan.sort(key=lambda x: x[0])
    drafts = []
    for started, spec, idx in plan:
        d = build_incident(rng, spec, started, "long", idx)
        while d.resolved_at is None:  # postmortems are written after resolution
            d = build_incident(rng, spec, started - dt.timedelta(days=30), "long", idx)
        drafts.append(d)
    return drafts


def postmortem_markdown(d: Draft) -> str:
    front = {
        "id": d.id,
        "title": d.title,
        **_metadata(d),
    }
    fm = yaml.safe_dump(front, sort_keys=False, allow_unicode=True, default_flow_style=None, width=1000)
    out = ["---", fm.rstrip("\n"), "---", "", f"# {d.title}", "", "## Summary", "", d.summary, ""]
    if d.impact:
        out += ["## Impact", "", d.impact, ""]
    if d.timeline:
        out += ["## Timeline", ""] + [f"- {line}" for line in d.timeline.splitlines()] + [""]
    if d.root_cause:
        out += ["## Root cause", "", d.root_cause, ""]
    out += ["## Contributing factors", ""] + [f"- {f}" for f in d.contributing_factors] + [""]
    out += ["## Action items", ""]
    for a in d.action_items:
        mark = {"done": "x", "open": " ", "wontfix": "~"}[a["status"]]
        meta = f"created {a['created_at']:%Y-%m-%d}"
        if a["closed_at"] is not None:
            meta += f", closed {a['closed_at']:%Y-%m-%d}"
        out.append(f"- [{mark}] {a['id']}: {a['title']} ({meta})")
    return "\n".join(out).rstrip("\n") + "\n"
