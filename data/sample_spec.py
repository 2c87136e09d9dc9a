"""What the sample in data/sample is drawn from: the time window, teams, people and names, the failure patterns,
one-off scenarios and experiment texts (all text read from data/templates/sample/*.yaml), and the seeded draws.

Template syntax (see shared.yaml): {name} is a slot (an incident-level value or a pool, rendered recursively),
{^name} capitalises its first letter, {,name} lower-cases it; <<a|b|c>> picks one alternative (may be empty).
Draws index the lists, so their order is part of the seed. A missing or malformed template file stops with one
line naming it.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from template_files import build_entries, load_templates, reading

TEMPLATES = Path(__file__).resolve().parent / "templates" / "sample"
# The files of TEMPLATES and what each holds at its top level (a list, or the keys of a mapping).
TEMPLATE_SHAPES: dict[str, type[list[Any]] | tuple[str, ...]] = {
    "names": (
        "team_services",
        "people",
        "email_domains",
        "regions",
        "config_keys",
        "vendors",
        "cert_domains",
    ),
    "slots": ("pools", "ranges"),
    "shared": (
        "pools",
        "red_herrings",
        "secondary",
        "time_events",
        "traffic_events",
        "red_herring_sentences",
    ),
    "patterns": list,
    "one_offs": list,
    "experiment_texts": list,
}

_T = load_templates(TEMPLATES, TEMPLATE_SHAPES)
_NAMES: dict[str, Any] = _T["names"]
SLOTS: dict[str, dict[str, list[Any]]] = _T["slots"]  # incident-level slots drawn from a list or a range

UTC = dt.UTC
WINDOW_START = dt.datetime(2024, 11, 1, tzinfo=UTC)
WINDOW_END = dt.datetime(2026, 10, 31, 23, 59, tzinfo=UTC)  # also the "as of" date of the sample
ONE_OFF = "one-off"

with reading(TEMPLATES / "names.yaml"):
    TEAM_SERVICES: dict[str, tuple[str, str]] = {t: (s[0], s[1]) for t, s in _NAMES["team_services"].items()}
    PEOPLE: list[tuple[str, str]] = [(p[0], p[1]) for p in _NAMES["people"]]
    EMAIL_DOMAINS: list[str] = _NAMES["email_domains"]
    REGIONS: list[str] = _NAMES["regions"]
    CONFIG_KEYS: list[tuple[str, str, str]] = [(k[0], k[1], k[2]) for k in _NAMES["config_keys"]]
    VENDORS: list[tuple[str, str, str]] = [(v[0], v[1], v[2]) for v in _NAMES["vendors"]]
    CERT_DOMAINS: list[str] = _NAMES["cert_domains"]
TEAMS = list(TEAM_SERVICES)
SERVICES = [s for pair in TEAM_SERVICES.values() for s in pair]
OWNER = {s: t for t, pair in TEAM_SERVICES.items() for s in pair}

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

with reading(TEMPLATES / "shared.yaml"):
    SHARED: dict[str, list[str]] = _T["shared"]["pools"]
    TIME_EVENTS: list[str] = _T["shared"]["time_events"]
    TRAFFIC_EVENTS: dict[str, list[str]] = _T["shared"]["traffic_events"]
    RED_HERRING_SENTENCES: list[str] = _T["shared"]["red_herring_sentences"]
    # Red herrings: (pattern they belong to, phrase). A pattern never uses its own.
    RED_HERRINGS: list[tuple[str, str]] = [(h["pattern"], h["text"]) for h in _T["shared"]["red_herrings"]]
    # Secondary mechanisms: (pattern whose vocabulary they borrow, sentence). Real incidents rarely have one
    # cause; these put other patterns' words into a postmortem. A pattern never gets its own.
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


PATTERNS: list[PatternSpec] = build_entries(
    TEMPLATES / "patterns.yaml",
    _T["patterns"],
    lambda p: PatternSpec(**{**p, "services": tuple(p["services"]), "severity": tuple(p["severity"])}),
)
PATTERN_BY_SLUG = {p.slug: p for p in PATTERNS}

# One-off incidents: (title, summary, root cause, mitigation, action item). Each is used at most twice.
ONE_OFFS: list[tuple[str, str, str, str, str]] = build_entries(
    TEMPLATES / "one_offs.yaml",
    _T["one_offs"],
    lambda o: (o["title"], o["summary"], o["root_cause"], o["mitigation"], o["action"]),
)


@dataclass(frozen=True)
class ExperimentText:
    name: str
    indicator: str
    direction: str
    problem: str
    solution: str
    metric: str


EXPERIMENTS: list[ExperimentText] = build_entries(
    TEMPLATES / "experiment_texts.yaml", _T["experiment_texts"], lambda e: ExperimentText(**e)
)

# ---------------------------------------------------------------------------------------------- draws


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


def lognormal_minutes(rng: Rand, median: float, sigma: float, lo: float, hi: float) -> float:
    return float(min(max(median * math.exp(sigma * rng.g.standard_normal()), lo), hi))
