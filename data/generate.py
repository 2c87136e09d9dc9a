"""Seeded generator for Recur's sample data (incidents, postmortems, indicators, experiments, truth).

    python data/generate.py --seed 7 --out data/sample

The same seed gives byte-identical files. Only the standard library, numpy and pyyaml are used.
See data/README.md for the formats and the ground truth.

Incident texts are built from per-pattern template pools (several titles, summaries, root causes, timeline
events, contributing factors and action items per failure pattern), slots filled per incident (services,
versions, regions, numbers, people, hosts, IPs) and a shared vocabulary pool used by every pattern, so that
patterns overlap in wording the way real postmortems do. All text, names and experiment texts are read from
data/templates/sample/*.yaml; this module holds the drawing logic and the numeric parameters.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import functools
import io
import json
import math
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

TEMPLATES = Path(__file__).resolve().parent / "templates" / "sample"


def load_templates(folder: Path = TEMPLATES) -> dict[str, Any]:
    """Every `*.yaml` in `folder`, keyed by file stem (the text pools, names and experiment texts)."""
    out: dict[str, Any] = {}
    for path in sorted(folder.glob("*.yaml")):
        with open(path, encoding="utf-8") as fh:
            out[path.stem] = yaml.safe_load(fh)
    return out


_T = load_templates()
_NAMES: dict[str, Any] = _T["names"]
SLOTS: dict[str, dict[str, list[Any]]] = _T["slots"]  # incident-level slots drawn from a list or a range

UTC = dt.UTC
WINDOW_START = dt.datetime(2024, 11, 1, tzinfo=UTC)
WINDOW_END = dt.datetime(2026, 10, 31, 23, 59, tzinfo=UTC)  # also the "as of" date of the sample
N_DAYS = (WINDOW_END.date() - WINDOW_START.date()).days + 1
WEEK0 = dt.date(2024, 11, 4)  # first Monday of the indicator series
N_WEEKS = 104  # last week: 2026-10-26
N_INCIDENTS = 600
ONE_OFF_SHARE = 0.10
N_POSTMORTEMS = 12
ONE_OFF = "one-off"
# How much of the text says nothing about the cause (difficulty knobs for pattern mining)
GENERIC_TITLE_SHARE = 0.45  # titles that are symptom-only ("Elevated errors on payments-api")
GENERIC_SUMMARY_SHARE = 0.35  # summaries that are symptom-only

TEAM_SERVICES: dict[str, tuple[str, str]] = {t: (s[0], s[1]) for t, s in _NAMES["team_services"].items()}
TEAMS = list(TEAM_SERVICES)
SERVICES = [s for pair in TEAM_SERVICES.values() for s in pair]
OWNER = {s: t for t, pair in TEAM_SERVICES.items() for s in pair}

PEOPLE: list[tuple[str, str]] = [(p[0], p[1]) for p in _NAMES["people"]]
EMAIL_DOMAINS: list[str] = _NAMES["email_domains"]
REGIONS: list[str] = _NAMES["regions"]

# DST transitions in the window (EU and US) and other clock-sensitive days.
DST_DATES = [
    dt.date(2025, 3, 9),
    dt.date(2025, 3, 30),
    dt.date(2025, 10, 26),
    dt.date(2025, 11, 2),
    dt.date(2026, 3, 8),
    dt.date(2026, 3, 29),
    dt.date(2026, 10, 25),
]

# ---------------------------------------------------------------------------------------------- text pools
# All text lives in data/templates/sample/*.yaml (syntax in shared.yaml). Template syntax: {name} is a slot (an
# incident-level value or a pool, rendered recursively), {^name} capitalises its first letter, {,name} lower-cases
# it; <<a|b|c>> picks one alternative (may be empty). Draws index the lists, so their order is part of the seed.

SHARED: dict[str, list[str]] = _T["shared"]["pools"]
TIME_EVENTS: list[str] = _T["shared"]["time_events"]
TRAFFIC_EVENTS: dict[str, list[str]] = _T["shared"]["traffic_events"]
RED_HERRING_SENTENCES: list[str] = _T["shared"]["red_herring_sentences"]

# Red herrings: (pattern they belong to, phrase). A pattern never uses its own.
RED_HERRINGS: list[tuple[str, str]] = [(h["pattern"], h["text"]) for h in _T["shared"]["red_herrings"]]

# Secondary mechanisms: (pattern whose vocabulary they borrow, sentence). Real incidents rarely have one cause;
# these put other patterns' words into a postmortem. A pattern never gets its own.
SECONDARY: list[tuple[str, str]] = [(s["pattern"], s["text"]) for s in _T["shared"]["secondary"]]


@dataclass(frozen=True)
class PatternSpec:
    """Everything the generator knows about one recurring failure pattern."""

    slug: str
    description: str
    base_rate: float
    trend: str  # flat | rising | fading | emerging | seasonal | spiky | bursty
    services: tuple[str, ...]
    hours: str  # business | uniform | night | peak | midnight
    detect_median_min: float
    resolve_median_min: float
    severity: tuple[float, float, float, float, float]
    reopen_p: float
    texts: dict[str, list[str]]
    key_action: str | None = None
    key_date: dt.date | None = None
    emerge_date: dt.date | None = None


PATTERNS: list[PatternSpec] = [
    PatternSpec(**{**p, "services": tuple(p["services"]), "severity": tuple(p["severity"])})
    for p in _T["patterns"]
]
PATTERN_BY_SLUG = {p.slug: p for p in PATTERNS}

# One-off incidents: (title, summary, root cause, mitigation, action item). Each is used at most twice.
ONE_OFFS: list[tuple[str, str, str, str, str]] = [
    (o["title"], o["summary"], o["root_cause"], o["mitigation"], o["action"]) for o in _T["one_offs"]
]

# ---------------------------------------------------------------------------------------------- helpers


class Rand:
    """Thin wrapper around a numpy Generator with the draws the generator needs."""

    def __init__(self, seed: int | np.random.SeedSequence) -> None:
        self.g = np.random.default_rng(seed)

    def pick(self, seq: Sequence[Any]) -> Any:
        return seq[int(self.g.integers(len(seq)))]

    def chance(self, p: float) -> bool:
        return bool(self.g.random() < p)

    def int(self, lo: int, hi: int) -> int:
        """Uniform integer in [lo, hi]."""
        return int(self.g.integers(lo, hi + 1))

    def uniform(self, lo: float, hi: float) -> float:
        return float(self.g.uniform(lo, hi))

    def weighted(self, seq: Sequence[Any], weights: Sequence[float]) -> Any:
        w = np.asarray(weights, dtype=float)
        return seq[int(self.g.choice(len(seq), p=w / w.sum()))]

    def sample(self, seq: Sequence[Any], k: int) -> list[Any]:
        k = min(k, len(seq))
        idx = self.g.choice(len(seq), size=k, replace=False)
        return [seq[int(i)] for i in idx]


def iso(ts: dt.datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def human_duration(minutes: float) -> str:
    m = int(round(minutes))
    if m < 60:
        return f"{m} minutes"
    h, r = divmod(m, 60)
    if h >= 24:
        d, h = divmod(h, 24)
        return f"{d} day{'s' if d > 1 else ''} {h} hours" if h else f"{d} day{'s' if d > 1 else ''}"
    hours = f"{h} hour{'s' if h > 1 else ''}"
    return f"{hours} {r} minutes" if r >= 5 else hours


_TOKEN = re.compile(r"<<([^<>]*)>>|\{([\^,]?)(\w+)\}")


class Renderer:
    """Fills templates: incident-level values (computed once, on first use) and pools (drawn per use)."""

    def __init__(
        self,
        rng: Rand,
        values: dict[str, Callable[[], Any]],
        pools: list[dict[str, list[str]]],
    ) -> None:
        self.rng = rng
        self._factories = values
        self._values: dict[str, str] = {}
        self._pools = pools

    def value(self, name: str) -> str:
        if name not in self._values:
            produced = self._factories[name]()
            if isinstance(produced, dict):  # a factory that sets several related values at once
                for k, v in produced.items():
                    self._values.setdefault(k, self.render(str(v)))
            else:
                self._values[name] = self.render(str(produced))
        return self._values[name]

    def has_value(self, name: str) -> bool:
        return name in self._values

    def used(self) -> dict[str, str]:
        return dict(self._values)

    def render(self, template: str, depth: int = 0) -> str:
        if depth > 8:
            raise RuntimeError(f"template nesting too deep: {template!r}")

        def repl(m: re.Match[str]) -> str:
            if m.group(1) is not None:
                return self.render(self.rng.pick(m.group(1).split("|")), depth + 1)
            mod, name = m.group(2), m.group(3)
            if name in self._factories or name in self._values:
                text = self.value(name)
            else:
                for pool in self._pools:
                    if name in pool:
                        text = self.render(self.rng.pick(pool[name]), depth + 1)
                        break
                else:
                    raise KeyError(f"unknown template slot {{{name}}} in {template!r}")
            if mod == "^" and text:
                text = text[0].upper() + text[1:]
            elif mod == "," and text and not text[:2].isupper():
                text = text[0].lower() + text[1:]
            return text

        return _TOKEN.sub(repl, template)


# ---------------------------------------------------------------------------------------------- values


def _person(rng: Rand) -> tuple[str, str]:
    first, last = rng.pick(PEOPLE)
    return first, last


def _handle(first: str, last: str, style: int) -> str:
    if style == 0:
        return f"@{first[0].lower()}{last.lower()}"
    if style == 1:
        return f"@{first.lower()}.{last[0].lower()}"
    return f"@{first.lower()}"


def _email(first: str, last: str, rng: Rand) -> str:
    dom = rng.pick(EMAIL_DOMAINS)
    local = rng.pick([f"{first}.{last}", f"{first[0]}{last}", f"{first}"]).lower()
    return f"{local}@{dom}"


def _ip(rng: Rand) -> str:
    kind = rng.int(0, 4)
    if kind == 0:
        return f"10.{rng.int(0, 255)}.{rng.int(0, 255)}.{rng.int(1, 254)}"
    if kind == 1:
        return f"172.{rng.int(16, 31)}.{rng.int(0, 255)}.{rng.int(1, 254)}"
    if kind == 2:
        return f"192.168.{rng.int(0, 255)}.{rng.int(1, 254)}"
    if kind == 3:
        return f"203.0.113.{rng.int(1, 254)}"
    return f"198.51.100.{rng.int(1, 254)}"


def _version(rng: Rand) -> dict[str, str]:
    style = rng.int(0, 2)
    if style == 0:
        a, b, c = rng.int(1, 9), rng.int(0, 40), rng.int(0, 12)
        prev = f"v{a}.{b}.{c - 1}" if c > 0 else f"v{a}.{max(b - 1, 0)}.{rng.int(3, 9)}"
        return {"version": f"v{a}.{b}.{c}", "prev_version": prev}
    if style == 1:
        n = rng.int(1000, 9999)
        return {"version": f"r{n}", "prev_version": f"r{n - rng.int(1, 3)}"}
    sha = "".join(rng.pick("0123456789abcdef") for _ in range(7))
    old = "".join(rng.pick("0123456789abcdef") for _ in range(7))
    return {"version": f"build {sha}", "prev_version": f"build {old}"}


_CONFIG_KEYS: list[tuple[str, str, str]] = [(k[0], k[1], k[2]) for k in _NAMES["config_keys"]]
_VENDORS: list[tuple[str, str, str]] = [(v[0], v[1], v[2]) for v in _NAMES["vendors"]]
_CERT_DOMAINS: list[str] = _NAMES["cert_domains"]


def _time_event(started: dt.datetime) -> str:
    d = started.date()
    if any(abs((d - x).days) <= 2 for x in DST_DATES):
        return "the daylight-saving change"
    if (d.month, d.day) in ((12, 31), (1, 1), (1, 2)):
        return "the new year"
    if d.day >= 28 or d.day == 1:
        return "month end"
    return TIME_EVENTS[(d.day + started.hour) % 4]


def _traffic_event(rng: Rand, started: dt.datetime) -> str:
    d = started.date()
    if d.month == 11 and d.day >= 20 or d.month == 12 and d.day <= 2:
        return rng.pick(TRAFFIC_EVENTS["black_friday"])
    if d.month == 12:
        return rng.pick(TRAFFIC_EVENTS["december"])
    return rng.pick(TRAFFIC_EVENTS["other"])


def _scaled_int(rng: Rand, lo: int, hi: int, times: int) -> int:
    return rng.int(lo, hi) * times


def make_values(
    rng: Rand,
    service: str,
    team: str,
    started: dt.datetime,
    duration_min: float | None,
    severity: str,
    pattern: str,
) -> dict[str, Callable[[], Any]]:
    """Factories for every incident-level slot; each runs at most once per incident (on first use)."""
    others = [s for s in SERVICES if s != service]
    people = rng.sample(PEOPLE, 3)
    hstyle = rng.int(0, 2)
    herrings = [h for p, h in RED_HERRINGS if p != pattern]
    f: dict[str, Callable[[], Any]] = {
        "service": lambda: service,
        "team": lambda: team,
        "severity": lambda: severity,
        "dep": lambda: rng.pick(others),
        "region": lambda: rng.pick(REGIONS),
        "users": lambda: rng.pick(SHARED["users"]),
        "handle": lambda: _handle(*people[0], hstyle),
        "handle2": lambda: _handle(*people[1], hstyle),
        "email": lambda: _email(*people[2], rng),
        "ip": lambda: _ip(rng),
        "host": lambda: rng.pick(
            [
                f"{service}-{rng.int(1, 40)}",
                f"{service}-{rng.pick(['a', 'b', 'c'])}{rng.int(1, 9)}.{rng.pick(REGIONS)}.internal",
                f"ip-10-{rng.int(0, 255)}-{rng.int(0, 255)}-{rng.int(1, 254)}",
                f"node-{rng.int(100, 999)}",
            ]
        ),
        "start_time": lambda: started.strftime("%H:%M"),
        "end_time": lambda: (started + dt.timedelta(minutes=duration_min or 240)).strftime("%H:%M"),
        "duration": lambda: human_duration(duration_min) if duration_min is not None else "several hours",
        "chan": lambda: f"{started:%m%d}-{service}",
        "red_herring": lambda: rng.pick(herrings),
        "n_req": lambda: f"{rng.int(2, 900) * 100:,}",
        "n_users": lambda: f"{rng.int(1, 400) * 50:,}",
        "time_event": lambda: _time_event(started),
        "n_conc": lambda: f"{rng.int(2, 50) * 100:,}",
        "old_month": lambda: (started - dt.timedelta(days=rng.int(40, 200))).strftime("%B %Y"),
        "old_date": lambda: (started - dt.timedelta(days=rng.int(5, 40))).strftime("%Y-%m-%d"),
        "traffic_event": lambda: _traffic_event(rng, started),
        "pr_lines": lambda: f"{rng.int(6, 60) * 50:,}",
        "pr": lambda: rng.pick([f"PR #{rng.int(1000, 9999)}", f"merge request !{rng.int(100, 999)}"]),
        "change_id": lambda: f"CHG-{rng.int(1000, 9999)}",
        "ticket": lambda: f"{rng.pick(['OPS', 'INFRA', 'PLAT', 'SRE'])}-{rng.int(100, 4999)}",
        "record": lambda: rng.pick(
            [
                "api.internal.example.com",
                f"{service}.svc.example.net",
                "db-primary.internal",
                "payments.example.com",
                "search.internal",
                f"{rng.pick(others)}.internal",
            ]
        ),
        "cert_domain": lambda: rng.pick(_CERT_DOMAINS),
        "kernel": lambda: f"5.{rng.int(4, 19)}.{rng.int(0, 120)}",
        "app_version": lambda: f"{rng.int(3, 9)}.{rng.int(0, 30)}.{rng.int(0, 9)}",
    }
    for name, pool in SLOTS["pools"].items():
        f[name] = functools.partial(rng.pick, pool)
    for name, (lo, hi, *times) in SLOTS["ranges"].items():
        f[name] = functools.partial(_scaled_int, rng, lo, hi, times[0] if times else 1)
    f["version"] = lambda: _version(rng)
    f["prev_version"] = lambda: _version(rng)

    def vendor() -> dict[str, str]:
        name, kind, action = rng.pick(_VENDORS)
        return {"vendor": name, "vendor_kind": kind, "vendor_action": action}

    for k in ("vendor", "vendor_kind", "vendor_action"):
        f[k] = vendor

    def config() -> dict[str, str]:
        key, old, new = rng.pick(_CONFIG_KEYS)
        return {"config_key": key, "old_val": old, "new_val": new}

    for k in ("config_key", "old_val", "new_val"):
        f[k] = config
    return f


# ---------------------------------------------------------------------------------------------- incidents

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


def _lognormal_minutes(rng: Rand, median: float, sigma: float, lo: float, hi: float) -> float:
    return float(min(max(median * math.exp(sigma * rng.g.standard_normal()), lo), hi))


def _timeline(
    rng: Rand,
    r: Renderer,
    texts: dict[str, list[str]],
    n: int,
    started: dt.datetime,
    detected: dt.datetime | None,
    resolved: dt.datetime | None,
    mitigation: str | None = None,
) -> str:
    det = detected or started + dt.timedelta(minutes=rng.int(2, 20))
    end = resolved or det + dt.timedelta(hours=rng.int(2, 8))
    span = max((end - det).total_seconds() / 60.0, 4.0)
    events: list[tuple[dt.datetime, str]] = []
    if "start_event" in texts and rng.chance(0.6):
        events.append((started, r.render(rng.pick(texts["start_event"]))))
    det_pool = texts.get("detect_event", []) if rng.chance(0.5) else []
    events.append((det, r.render(rng.pick(det_pool or SHARED["detect_generic"]))))
    n_mid = max(n - len(events) - 2, 1)
    offsets = sorted(rng.uniform(0.03, 0.55) for _ in range(n_mid))
    diagnose = list(texts.get("diagnose_event", []))
    investigate = list(SHARED["investigate_generic"])
    for i, off in enumerate(offsets):
        use_pattern = diagnose and (i == len(offsets) - 1 or rng.chance(0.35))
        pool = diagnose if use_pattern else investigate
        text = pool.pop(int(rng.g.integers(len(pool))))
        events.append((det + dt.timedelta(minutes=off * span), r.render(text)))
        if not investigate:
            investigate = list(SHARED["investigate_generic"])
    mit_t = det + dt.timedelta(minutes=rng.uniform(0.6, 0.9) * span)
    if mitigation is not None:
        events.append((mit_t, r.render(mitigation)))
    elif "mitigate_event" in texts:
        events.append((mit_t, r.render(rng.pick(texts["mitigate_event"]))))
    if resolved is not None:
        events.append((resolved, r.render(rng.pick(SHARED["resolve_generic"]))))
    else:
        events.append((end, "Still monitoring; incident remains open."))
    style = rng.int(0, 3)
    lines = []
    for t, text in events:
        if style == 0:
            lines.append(f"{t:%H:%M} UTC - {text}")
        elif style == 1:
            lines.append(f"[{t:%Y-%m-%d %H:%M}] {text}")
        elif style == 2:
            lines.append(f"{t:%H:%M}Z {text}")
        else:
            lines.append(f"T+{int((t - started).total_seconds() // 60)}m: {text}")
    return "\n".join(lines)


def _action_items(
    rng: Rand, r: Renderer, pattern_actions: list[str], k: int, created_from: dt.datetime
) -> list[dict[str, Any]]:
    titles: list[str] = []
    pool_p = list(pattern_actions)
    pool_g = list(SHARED["action_generic"])
    while len(titles) < k and (pool_p or pool_g):
        pool = pool_p if pool_p and (not pool_g or rng.chance(0.7)) else pool_g
        title = r.render(pool.pop(int(rng.g.integers(len(pool)))))
        if title not in titles:
            titles.append(title)
    items = []
    for title in titles:
        created = created_from + dt.timedelta(hours=rng.uniform(4, 120))
        status = rng.weighted(["done", "open", "wontfix"], [0.55, 0.30, 0.15])
        closed: dt.datetime | None = None
        if status != "open":
            closed = created + dt.timedelta(days=_lognormal_minutes(rng, 18.0, 0.9, 0.5, 240.0))
            if closed > WINDOW_END:
                status, closed = "open", None
        items.append({"title": title, "status": status, "created_at": created, "closed_at": closed})
    return sorted(items, key=lambda a: a["created_at"])


def _tags(rng: Rand, r: Renderer, pattern_tags: list[str], k: int) -> list[str]:
    tags: list[str] = []
    for _ in range(k):
        pool = pattern_tags if pattern_tags and rng.chance(0.55) else SHARED["tag_generic"]
        tag = r.render(rng.pick(pool))
        if tag not in tags:
            tags.append(tag)
    return tags


def _pick_service(rng: Rand, preferred: Sequence[str]) -> tuple[str, str]:
    service = rng.pick(preferred) if rng.chance(0.65) else rng.pick(SERVICES)
    team = OWNER[service] if rng.chance(0.92) else rng.pick(TEAMS)
    return service, team


def _times(
    rng: Rand, started: dt.datetime, detect_median: float, resolve_median: float
) -> tuple[dt.datetime | None, dt.datetime | None]:
    detect = _lognormal_minutes(rng, detect_median, 1.0, 1.0, 36 * 60.0)
    resolve = _lognormal_minutes(rng, resolve_median, 0.9, 5.0, 72 * 60.0)
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
    rng: Rand, spec: PatternSpec | None, started: dt.datetime, form: str, one_off: int | None = None
) -> Draft:
    """Write one postmortem. `spec` None means a one-off incident (scenario index `one_off`)."""
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
        service, team = _pick_service(rng, spec.services)
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
        timeline = _timeline(
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
    items = _action_items(rng, r, list(actions_pool), n_actions, created_from) if resolved else []
    tags = _tags(rng, r, texts.get("tag", []), n_tags)
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


def assign_ids(drafts: list[Draft], prefix: str, width: int, ai_start: int) -> int:
    """Give incidents and their action items ids (in order); return the next free action-item number."""
    n = ai_start
    for i, d in enumerate(drafts, start=1):
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


# ---------------------------------------------------------------------------------------------- indicators


@dataclass(frozen=True)
class IndicatorSpec:
    name: str
    kind: str  # count | continuous
    level: tuple[float, float]
    noise: tuple[float, float]  # count: AR sd as a fraction of level; continuous: AR sd in units
    season_frac: float  # common seasonal amplitude, as a fraction of the typical level
    trend_frac: float  # common trend over the two years is within +-trend_frac of the typical level
    decimals: int
    upper: float | None = None


INDICATORS: list[IndicatorSpec] = [
    IndicatorSpec("incidents", "count", (9, 14), (0.05, 0.10), 0.10, 0.25, 0),
    IndicatorSpec("reopens", "count", (7, 11), (0.05, 0.10), 0.08, 0.20, 0),
    IndicatorSpec("skipped_checklist_items", "count", (18, 30), (0.05, 0.10), 0.10, 0.30, 0),
    IndicatorSpec("manual_retries", "count", (25, 45), (0.05, 0.10), 0.12, 0.30, 0),
    IndicatorSpec("mttr_hours", "continuous", (3.0, 7.0), (0.4, 0.8), 0.06, 0.20, 2),
    IndicatorSpec("change_failure_rate", "continuous", (0.10, 0.25), (0.015, 0.03), 0.05, 0.25, 4, 1.0),
]
IND_BY_NAME = {s.name: s for s in INDICATORS}


@dataclass(frozen=True)
class ExperimentText:
    name: str
    indicator: str
    direction: str
    problem: str
    solution: str
    metric: str


EXPERIMENTS: list[ExperimentText] = [ExperimentText(**e) for e in _T["experiment_texts"]]


def week_dates() -> list[dt.date]:
    return [WEEK0 + dt.timedelta(weeks=i) for i in range(N_WEEKS)]


@dataclass
class Series:
    indicator: str
    team: str
    level: float
    slope: float  # units per week
    season_amp: float
    season_phase: float
    phi: float
    ar_sd: float  # marginal sd of the AR(1) component
    noise_sd: float  # total week-to-week noise sd (AR + Poisson for counts)
    shifts: list[tuple[int, float, str]] = field(default_factory=list)  # (week index, magnitude, kind)
    outliers: list[int] = field(default_factory=list)
    values: list[float] = field(default_factory=list)

    @property
    def key(self) -> str:
        return f"{self.indicator}/team={self.team}"

    def expected(self, i: int, with_shifts: bool = True) -> float:
        """The mean of the series in week `i` (level + trend + seasonality + shifts)."""
        d = WEEK0 + dt.timedelta(weeks=i)
        season = self.season_amp * math.sin(2 * math.pi * d.timetuple().tm_yday / 365.25 + self.season_phase)
        mean = self.level + self.slope * (i - (N_WEEKS - 1) / 2) + season
        if with_shifts:
            mean += sum(m for j, m, _ in self.shifts if i >= j)
        return mean


def build_series(rng: Rand) -> dict[tuple[str, str], Series]:
    series: dict[tuple[str, str], Series] = {}
    for spec in INDICATORS:
        ref = sum(spec.level) / 2
        slope = rng.uniform(-spec.trend_frac, spec.trend_frac) * ref / (N_WEEKS - 1)
        amp = spec.season_frac * ref
        phase = rng.uniform(0, 2 * math.pi)
        for team in TEAMS:
            level = rng.uniform(*spec.level)
            if spec.kind == "count":
                ar_sd = rng.uniform(*spec.noise) * level
                noise_sd = math.sqrt(level + ar_sd**2)
            else:
                ar_sd = rng.uniform(*spec.noise)
                noise_sd = ar_sd
            series[(spec.name, team)] = Series(
                indicator=spec.name,
                team=team,
                level=level,
                slope=slope + float(rng.g.normal(0, 0.3 * noise_sd / N_WEEKS)),
                season_amp=amp * (1 + float(rng.g.normal(0, 0.1))),
                season_phase=phase + float(rng.g.normal(0, 0.15)),
                phi=rng.uniform(0.3, 0.6),
                ar_sd=ar_sd,
                noise_sd=noise_sd,
            )
    return series


@dataclass
class ExperimentPlan:
    id: str
    text: ExperimentText
    treated: str
    controls: list[str]
    start: int
    end: int | None
    is_null: bool
    wrong_direction: bool
    true_effect: float = 0.0
    true_relative_effect: float = 0.0
    min_effect: float = 0.0
    owner: str = ""


def plan_experiments(rng: Rand, series: dict[tuple[str, str], Series]) -> list[ExperimentPlan]:
    n = len(EXPERIMENTS)
    null_idx = set(rng.sample(range(n), n // 3))
    wrong_idx = rng.pick([i for i in range(n) if i not in null_idx])
    plans: list[ExperimentPlan] = []
    by_indicator: dict[str, list[int]] = {}
    for i, e in enumerate(EXPERIMENTS):
        by_indicator.setdefault(e.indicator, []).append(i)
    assignment: dict[int, tuple[str, list[str]]] = {}
    for indicator in [s.name for s in INDICATORS]:
        idxs = by_indicator.get(indicator, [])
        teams = rng.sample(TEAMS, len(TEAMS))
        treated = teams[: len(idxs)]
        pool = teams[len(idxs) :]
        for i, t in zip(idxs, treated, strict=True):
            k = min(rng.int(2, 3), len(pool))
            assignment[i] = (t, sorted(rng.sample(pool, k)))
    for i, e in enumerate(EXPERIMENTS):
        treated, controls = assignment[i]
        start = rng.int(28, N_WEEKS - 10)
        end = start + rng.int(12, 20) if rng.chance(0.25) else None
        if end is not None and end >= N_WEEKS:
            end = None
        first, last = rng.pick(PEOPLE)
        plans.append(
            ExperimentPlan(
                id=f"EXP-{i + 1:03d}",
                text=e,
                treated=treated,
                controls=controls,
                start=start,
                end=end,
                is_null=i in null_idx,
                wrong_direction=i == wrong_idx,
                owner=_handle(first, last, 0),
            )
        )
    for p in plans:
        s = series[(p.text.indicator, p.treated)]
        spec = IND_BY_NAME[p.text.indicator]
        pre_mean = float(np.mean([s.expected(i) for i in range(p.start - 26, p.start)]))
        p.min_effect = round(s.noise_sd, 1 if spec.kind == "count" else (2 if spec.decimals == 2 else 3))
        if p.is_null:
            continue
        sign = -1.0 if p.text.direction == "decrease" else 1.0
        if p.wrong_direction:
            sign = -sign
        # a decrease may not take more than 60% off the level (counts stay positive)
        hi = 4.0 if sign > 0 else min(4.0, 0.6 * pre_mean / s.noise_sd)
        # 2.5-4 noise SDs: an 8-week post period detects that reliably (about 2 SDs is the 80%-power limit)
        effect = round(sign * rng.uniform(2.5, max(hi, 2.6)) * s.noise_sd, 4)
        p.true_effect = effect
        p.true_relative_effect = round(effect / pre_mean, 4)
        s.shifts.append((p.start, effect, "experiment"))
    return plans


def plan_shifts(rng: Rand, series: dict[tuple[str, str], Series], plans: list[ExperimentPlan]) -> None:
    """Level shifts in about a third of the series together with the experiment effects."""
    involved = {(p.text.indicator, t) for p in plans for t in [p.treated, *p.controls]}
    free = [k for k in series if k not in involved]
    chosen = rng.sample(free, min(5, len(free)))
    for j, key in enumerate(chosen):
        s = series[key]
        n_shifts = 2 if j == 0 else 1
        idxs = sorted(rng.sample(range(12, N_WEEKS - 10, 4), n_shifts))
        if n_shifts == 2 and idxs[1] - idxs[0] < 20:
            idxs[1] = min(idxs[0] + 24, N_WEEKS - 10)
        sign = 1.0 if rng.chance(0.6) else -1.0
        for idx in idxs:
            size = rng.uniform(2.0, 4.0) * s.noise_sd
            if sign < 0 and size > 0.6 * s.expected(idx - 1):
                sign = 1.0  # too big a drop for this level: shift up instead
            s.shifts.append((idx, round(sign * size, 4), "shift"))
            sign = -sign  # a second shift in the same series goes back the other way
        s.shifts.sort()


def simulate(rng: Rand, series: dict[tuple[str, str], Series]) -> None:
    for (name, _team), s in series.items():
        spec = IND_BY_NAME[name]
        innov = s.ar_sd * math.sqrt(1 - s.phi**2)
        e = float(rng.g.normal(0, s.ar_sd))
        values: list[float] = []
        for i in range(N_WEEKS):
            if i > 0:
                e = s.phi * e + float(rng.g.normal(0, innov))
            mean = s.expected(i) + e
            if spec.kind == "count":
                y = float(rng.g.poisson(max(mean, 0.1)))
            else:
                y = max(mean, 0.01 * s.level)
            values.append(y)
        # isolated outliers, away from shifts and from each other
        blocked = {j + k for j, _, _ in s.shifts for k in range(-2, 3)}
        n_out = min(int(rng.g.poisson(1.0)), 3)
        for _ in range(n_out):
            cands = [i for i in range(3, N_WEEKS - 3) if i not in blocked]
            if not cands:
                break
            i = rng.pick(cands)
            up = spec.kind == "count" or rng.chance(0.8)
            size = rng.uniform(4.0, 7.0) * s.noise_sd
            values[i] = values[i] + size if up else max(values[i] - size, 0.0)
            s.outliers.append(i)
            blocked |= {i + k for k in range(-3, 4)}
        s.outliers.sort()
        if spec.upper is not None:
            values = [min(v, spec.upper) for v in values]
        s.values = [round(v) if spec.kind == "count" else round(v, spec.decimals) for v in values]


# ---------------------------------------------------------------------------------------------- writing


class _NoAliasDumper(yaml.SafeDumper):
    """Safe dumper that writes repeated values (the same date object) in full instead of as &anchors."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _fmt(v: float, decimals: int) -> str:
    return str(int(v)) if decimals == 0 else f"{v:.{decimals}f}"


def _write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="\n") as fh:
        fh.write(text)


def _csv(rows: list[list[Any]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerows(rows)
    return buf.getvalue()


def generate(out: Path, seed: int = 7) -> dict[str, int]:
    """Write the whole sample under `out`; return a few counts."""
    streams = [Rand(s) for s in np.random.SeedSequence(seed).spawn(4)]
    inc_rng, pm_rng, ind_rng, ref_rng = streams

    drafts, keys = generate_incidents(inc_rng)
    next_ai = assign_ids(drafts, "INC-", 4, 1)
    add_references(ref_rng, drafts)
    used = {d.one_off for d in drafts if d.one_off is not None}
    pms = generate_postmortems(pm_rng, used)
    assign_ids(pms, "PM-", 3, next_ai)

    series = build_series(ind_rng)
    plans = plan_experiments(ind_rng, series)
    plan_shifts(ind_rng, series, plans)
    simulate(ind_rng, series)

    out.mkdir(parents=True, exist_ok=True)
    for old in sorted((out / "postmortems").glob("*.md")) if (out / "postmortems").exists() else []:
        old.unlink()
    lines = [json.dumps(incident_record(d), ensure_ascii=False) for d in drafts]
    _write_text(out / "incidents.jsonl", "\n".join(lines) + "\n")
    for d in pms:
        _write_text(out / "postmortems" / f"{d.id}.md", postmortem_markdown(d))

    dates = week_dates()
    rows: list[list[Any]] = [["indicator", "ds", "y", "team"]]
    for spec in INDICATORS:
        for team in TEAMS:
            s = series[(spec.name, team)]
            rows += [
                [spec.name, dates[i].isoformat(), _fmt(v, spec.decimals), team]
                for i, v in enumerate(s.values)
            ]
    _write_text(out / "indicators.csv", _csv(rows))

    exps = []
    for p in plans:
        e: dict[str, Any] = {
            "id": p.id,
            "name": p.text.name,
            "hypothesis": {"problem": p.text.problem, "solution": p.text.solution, "metric": p.text.metric},
            "indicator": p.text.indicator,
            "dimension": "team",
            "treated": p.treated,
            "controls": p.controls,
            "start": dates[p.start],
        }
        if p.end is not None:
            e["end"] = dates[p.end]
        e.update({"desired_direction": p.text.direction, "min_effect": p.min_effect, "owner": p.owner})
        exps.append(e)
    header = "# Process experiments on the sample indicators (see data/README.md). Generated by data/generate.py.\n"
    _write_text(
        out / "experiments.yaml",
        header + yaml.dump(exps, Dumper=_NoAliasDumper, sort_keys=False, allow_unicode=True, width=100),
    )

    truth = out / "truth"
    all_drafts = drafts + pms
    _write_text(
        truth / "incident_patterns.csv",
        _csv([["incident_id", "pattern"]] + [[d.id, d.pattern] for d in all_drafts]),
    )
    shift_rows: list[list[Any]] = [["series", "date", "magnitude", "kind"]]
    outlier_rows: list[list[Any]] = [["series", "date"]]
    series_rows: list[list[Any]] = [
        [
            "series",
            "indicator",
            "team",
            "kind",
            "level",
            "trend_per_week",
            "season_amplitude",
            "ar_phi",
            "noise_sd",
        ]
    ]
    for spec in INDICATORS:
        for team in TEAMS:
            s = series[(spec.name, team)]
            for idx, mag, kind in s.shifts:
                shift_rows.append([s.key, dates[idx].isoformat(), f"{mag:.4f}", kind])
            outlier_rows += [[s.key, dates[i].isoformat()] for i in s.outliers]
            series_rows.append(
                [
                    s.key,
                    spec.name,
                    team,
                    spec.kind,
                    f"{s.level:.4f}",
                    f"{s.slope:.6f}",
                    f"{s.season_amp:.4f}",
                    f"{s.phi:.3f}",
                    f"{s.noise_sd:.4f}",
                ]
            )
    _write_text(truth / "shifts.csv", _csv(shift_rows))
    _write_text(truth / "outliers.csv", _csv(outlier_rows))
    _write_text(truth / "series.csv", _csv(series_rows))
    _write_text(
        truth / "experiments.csv",
        _csv(
            [["id", "true_effect", "true_relative_effect", "is_null"]]
            + [
                [p.id, f"{p.true_effect:.4f}", f"{p.true_relative_effect:.4f}", str(p.is_null).lower()]
                for p in plans
            ]
        ),
    )
    pat_rows: list[list[Any]] = [
        ["pattern", "trend", "n_incidents", "key_action_item_id", "key_action_closed_at", "description"]
    ]
    for spec in PATTERNS:
        key = keys.get(spec.slug)
        pat_rows.append(
            [
                spec.slug,
                spec.trend,
                sum(d.pattern == spec.slug for d in drafts),
                key["id"] if key else "",
                iso(key["closed_at"]) if key else "",
                spec.description,
            ]
        )
    pat_rows.append([ONE_OFF, "none", sum(d.pattern == ONE_OFF for d in drafts), "", "", "Unique causes"])
    _write_text(truth / "patterns.csv", _csv(pat_rows))
    pii_rows: list[list[Any]] = [["incident_id", "field", "kind", "value"]]
    for d in all_drafts:
        pii_rows += [[d.id, f, k, v] for f, k, v in d.pii]
    _write_text(truth / "pii.csv", _csv(pii_rows))
    return {
        "incidents": len(drafts),
        "postmortems": len(pms),
        "series": len(series),
        "experiments": len(plans),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=7, help="random seed (default 7, the committed sample)")
    parser.add_argument(
        "--out", type=Path, default=None, help="output folder (default data/sample, or data/sample-hard)"
    )
    parser.add_argument("--hard", action="store_true", help="write the hard sample (data/hard.py) instead")
    args = parser.parse_args(argv)
    if args.hard:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from hard import generate_hard  # data/hard.py

        out = args.out or Path(__file__).resolve().parent / "sample-hard"
        counts = generate_hard(out, args.seed)
        print(", ".join(f"{v} {k}" for k, v in counts.items()), f"written to {out}")
        return 0
    args.out = args.out or Path(__file__).resolve().parent / "sample"
    counts = generate(args.out, args.seed)
    print(", ".join(f"{v} {k}" for k, v in counts.items()), f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
