"""A realistic hard sample of postmortems with ground truth: `data/sample-hard/`.

Unlike `data/sample`, whose patterns each have their own vocabulary, every category here is told with the
same words ("config", "rollout", "latency", "errors", "deploy", "customers", service, vendor and product
names); the root-cause category shows only in the mechanism described in the root cause (and, more faintly, in
the summary or timeline). All text lives in `data/templates/hard/*.yaml`; this module only draws from it.

    python data/generate.py --hard --seed 7 --out data/sample-hard

Deterministic for a seed (byte-identical output); standard library, numpy and pyyaml only.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import logging
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:  # imported by file path (tests, benchmarks): make the sibling modules importable
    sys.path.insert(0, _HERE)

from template_files import load_templates as _load_files  # noqa: E402
from template_files import require_keys, template_error  # noqa: E402

logger = logging.getLogger(__name__)

TEMPLATES = Path(__file__).resolve().parent / "templates" / "hard"
N_INCIDENTS = 460
START = dt.datetime(2024, 11, 1, tzinfo=dt.UTC)
END = dt.datetime(2026, 10, 31, tzinfo=dt.UTC)
EMPTY_ROOT_CAUSE_SHARE = 0.15
# Share of incidents whose summary carries a one-sentence hint of the mechanism (the rest are symptom-only).
SUMMARY_HINT_SHARE = 0.7
TITLE_HINT_SHARE = 0.1
TIMELINE_SHARE = 0.65
SEVERITIES = (("SEV1", 0.05), ("SEV2", 0.2), ("SEV3", 0.45), ("SEV4", 0.25), ("SEV5", 0.05))
TIMELINE_STYLES = ("utc", "bracket", "zulu", "relative")
CONNECTOR_SHARE = 0.3
_LOWER_AFTER_CONNECTOR = frozenset(
    "a an the our each every this these those all most some one its their when because with once from".split()
)

_SLOT = re.compile(r"\{([a-z0-9_]{1,30})\}")
_CHOICE = re.compile(r"<<([^<>]{1,600})>>")
_SENTENCE_END = re.compile(r"[.!?](?=\s|$)")


# The files of TEMPLATES and the keys each must hold (`()`: a mapping of any keys); nested keys in _check_shape.
TEMPLATE_KEYS: dict[str, tuple[str, ...]] = {
    "categories": (),
    "names": ("products", "internal_services", "vendors", "host_prefixes", "handles"),
    "shared": (
        "mitigation",
        "connectors",
        "investigating",
        "background",
        "propagation",
        "red_herring",
        "timeline",
        "factors",
        "actions",
        "impact",
        "tags",
    ),
    "symptoms": (),
    "voices": (),
}
_CATEGORY_KEYS = ("share", "description", "mechanisms", "actions", "factors")
_MECHANISM_KEYS = ("symptoms", "hint", "mitigation", "steps", "timeline")
_VOICE_KEYS = (
    "weight",
    "summary_open",
    "impact_line",
    "mitigation_line",
    "apology_share",
    "apology",
    "intro_share",
    "rc_intro",
    "close_share",
    "rc_close",
    "timeline_share",
)


def load_templates(folder: Path = TEMPLATES) -> dict[str, Any]:
    """The template files of `folder`, keyed by file stem; a missing or malformed one stops with one line naming it."""
    t = _load_files(folder, TEMPLATE_KEYS)
    _check_shape(folder, t)
    return t


def _check_shape(folder: Path, t: dict[str, Any]) -> None:
    """The nested keys the generator reads, so that a malformed file is named instead of failing mid-way."""
    require_keys(
        folder / "shared.yaml",
        t["shared"]["timeline"],
        ("detect", "investigate", "red_herring", "resolve"),
        "timeline",
    )
    for name, symptom in t["symptoms"].items():
        require_keys(folder / "symptoms.yaml", symptom, ("titles", "noun", "verb"), name)
    for name, voice in t["voices"].items():
        require_keys(folder / "voices.yaml", voice, _VOICE_KEYS, name)
    path = folder / "categories.yaml"
    for cat, spec in t["categories"].items():
        require_keys(path, spec, _CATEGORY_KEYS, cat)
        require_keys(path, spec["mechanisms"], (), f"{cat}.mechanisms")
        for mech, mspec in spec["mechanisms"].items():
            require_keys(path, mspec, _MECHANISM_KEYS, f"{cat}.mechanisms.{mech}")
            unknown = [s for s in mspec["symptoms"] if s not in t["symptoms"]]
            if unknown:
                raise template_error(
                    path, f"{cat}.mechanisms.{mech}: unknown symptoms {', '.join(map(str, unknown))}"
                )


def category_counts(shares: dict[str, float], n: int) -> dict[str, int]:
    """Exact counts for `n` incidents by the largest remainder, so sizes do not depend on the seed."""
    total = sum(shares.values())
    raw = {k: n * v / total for k, v in shares.items()}
    counts = {k: int(v) for k, v in raw.items()}
    rest = sorted(shares, key=lambda k: (-(raw[k] - counts[k]), k))
    for k in rest[: n - sum(counts.values())]:
        counts[k] += 1
    return counts


def _iso(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _duration_text(minutes: int) -> str:
    def unit(k: int, name: str) -> str:
        return f"{k} {name}" if k == 1 else f"{k} {name}s"

    if minutes < 90:
        return unit(minutes, "minute")
    hours, rest = divmod(minutes, 60)
    if hours >= 48:
        return unit(hours // 24, "day")
    return f"{unit(hours, 'hour')} and {unit(rest, 'minute')}" if rest else unit(hours, "hour")


@dataclass
class Draw:
    """Seeded choices: every random decision of the generator goes through one numpy Generator."""

    rng: np.random.Generator

    def pick(self, seq: Sequence[Any]) -> Any:
        return seq[int(self.rng.integers(len(seq)))]

    def sample(self, seq: Sequence[Any], k: int) -> list[Any]:
        k = min(k, len(seq))
        return [seq[int(i)] for i in self.rng.choice(len(seq), size=k, replace=False)]

    def chance(self, p: float) -> bool:
        return bool(self.rng.random() < p)

    def between(self, lo: int, hi: int) -> int:
        return int(self.rng.integers(lo, hi + 1))

    def weighted(self, items: Sequence[tuple[Any, float]]) -> Any:
        w = np.asarray([x[1] for x in items], dtype=float)
        return items[int(self.rng.choice(len(items), p=w / w.sum()))][0]


@dataclass
class Context:
    """Slot values of one incident, drawn lazily and then fixed, so one incident names one product."""

    draw: Draw
    names: dict[str, Any]
    fixed: dict[str, str] = field(default_factory=dict)

    def __getitem__(self, slot: str) -> str:
        if slot not in self.fixed:
            self.fixed[slot] = self._make(slot)
        return self.fixed[slot]

    def _make(self, slot: str) -> str:
        d, names = self.draw, self.names
        numbers: dict[str, Callable[[], str]] = {
            "pct": lambda: str(d.between(3, 65)),
            "pct_small": lambda: str(d.between(1, 9)),
            "n": lambda: str(d.between(2, 12)),
            "n_big": lambda: f"{d.between(2, 400) * 100:,}",
            "limit": lambda: str(d.pick([32, 50, 64, 100, 128, 200, 256, 500, 1024])),
            "minutes": lambda: str(d.between(3, 55)),
            "hours": lambda: str(d.between(2, 30)),
            "version": lambda: f"{d.between(1, 9)}.{d.between(0, 40)}.{d.between(0, 12)}",
            "ticket": lambda: f"CHG-{d.between(1000, 9999)}",
            "host": lambda: f"{d.pick(names['host_prefixes'])}-{d.between(1, 96):02d}",
        }
        if slot in numbers:
            return numbers[slot]()
        base = slot.rstrip("0123456789")
        if base in ("svc", "product", "service", "team"):
            return self._service_slot(slot)
        if base == "vendor_kind":
            self["vendor" + slot[len(base) :]]
            return self.fixed[slot]
        if base == "vendor":
            vendor = d.pick(names["vendors"])
            self.fixed["vendor_kind" + slot[len(base) :]] = vendor["kind"]
            return str(vendor["name"])
        if base == "person":
            return "@" + str(d.pick(names["handles"]))
        if base in names and isinstance(names[base], list):
            used = {v for k, v in self.fixed.items() if k.rstrip("0123456789") == base}
            return str(d.pick([x for x in names[base] if x not in used] or names[base]))
        raise KeyError(f"unknown template slot {{{slot}}}")

    def _service_slot(self, slot: str) -> str:
        if "product" not in self.fixed:
            own = self.draw.pick(self.names["products"])
            self.fixed.update(product=own["product"], service=own["service"], team=own["team"])
            if slot in self.fixed:
                return self.fixed[slot]
        used = {v for k, v in self.fixed.items() if k.startswith(("svc", "service"))}
        pool = [s for s in self.names["internal_services"] if s not in used]
        return str(self.draw.pick(pool))


class Filler:
    """Fills `<<a|b|c>>` choices, then `{slot}` names, in a template string."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def __call__(self, text: str) -> str:
        text = _CHOICE.sub(lambda m: self.ctx.draw.pick(m.group(1).split("|")), text)
        filled = _SLOT.sub(lambda m: self.ctx[m.group(1)], text)
        # A sentence that opens with a symptom phrase ("elevated error rates on ...") gets a capital letter;
        # names (services, regions) keep their own spelling.
        return filled[:1].upper() + filled[1:] if text.startswith("{symptom") else filled


@dataclass
class Story:
    """What one incident is about: category, mechanism, voice and the symptom customers saw."""

    category: str
    mechanism: str
    spec: dict[str, Any]
    cat_spec: dict[str, Any]
    voice: dict[str, Any]
    voice_name: str
    symptom: dict[str, Any]
    empty_root_cause: bool


def _count(sentences: list[str]) -> int:
    return sum(len(_SENTENCE_END.findall(s)) for s in sentences)


def _join(sentences: list[str]) -> str:
    return " ".join(s.strip() for s in sentences if s and s.strip())


def _connect(connector: str, sentence: str) -> str:
    """`connector` + `sentence`, lower-casing the sentence's first word when it is a plain article or the like."""
    first, _, rest = sentence.partition(" ")
    if first.lower() in _LOWER_AFTER_CONNECTOR:
        first = first.lower()
    return f"{connector} {first} {rest}".strip()


def _title(story: Story, fill: Filler, d: Draw) -> str:
    if story.spec.get("titles") and d.chance(TITLE_HINT_SHARE):
        return fill(d.pick(story.spec["titles"]))
    return fill(d.pick(story.symptom["titles"]))


def _summary(story: Story, fill: Filler, d: Draw, t: dict[str, Any], empty_rc: bool) -> str:
    v, shared = story.voice, t["shared"]
    parts = [fill(d.pick(v["summary_open"]))]
    if d.chance(SUMMARY_HINT_SHARE if not empty_rc else 0.5):
        parts.append(fill(d.pick(story.spec["hint"])))
    if d.chance(0.6):
        parts.append(fill(d.pick(v["impact_line"])))
    if d.chance(0.6):
        mitigation = d.pick(story.spec["mitigation"] + shared["mitigation"])
        parts.append(fill(d.pick(v["mitigation_line"]).replace("{mitigation}", mitigation)))
    if empty_rc and d.chance(0.5):
        parts.append(fill(d.pick(shared["investigating"])))
    if d.chance(v["apology_share"]):
        parts.append(fill(d.pick(v["apology"])))
    if _count(parts) < 2:
        parts.append(fill(d.pick(v["impact_line"])))
    while _count(parts) > 5:
        parts.pop(-1)
    return _join(parts)


def _root_cause(story: Story, fill: Filler, d: Draw, t: dict[str, Any]) -> str:
    v, shared = story.voice, t["shared"]
    steps = story.spec["steps"]
    keep = sorted(d.sample(range(len(steps)), d.between(max(2, len(steps) - 2), len(steps))))
    mechanism = [fill(d.pick(steps[i])) for i in keep]
    for k in range(1, len(mechanism)):
        if d.chance(CONNECTOR_SHARE):
            mechanism[k] = _connect(d.pick(shared["connectors"]), mechanism[k])
    before: list[str] = []
    if d.chance(v["intro_share"]):
        before.append(fill(d.pick(v["rc_intro"])))
    before += [fill(s) for s in d.sample(shared["background"], d.between(0, 1))]
    after = [fill(s) for s in d.sample(shared["propagation"], d.between(0, 2))]
    if d.chance(0.3):
        after.append(fill(d.pick(shared["red_herring"])))
    if d.chance(v["close_share"]):
        after.append(fill(d.pick(v["rc_close"])))
    while _count(before + mechanism + after) < 3:
        after.insert(0, fill(d.pick(shared["propagation"])))
    sentences = before + mechanism + after
    while _count(sentences) > 10:
        sentences.pop(-1)
    if len(sentences) >= 6 and v.get("paragraphs"):
        cut = len(before) if before else 2
        return _join(sentences[:cut]) + "\n\n" + _join(sentences[cut:])
    return _join(sentences)


def _timeline(story: Story, fill: Filler, d: Draw, t: dict[str, Any], times: dict[str, dt.datetime]) -> str:
    shared = t["shared"]["timeline"]
    start, detect, end = (
        times["started_at"],
        times["detected_at"] or times["started_at"],
        times["resolved_at"],
    )
    events: list[tuple[dt.datetime, str]] = [(detect, d.pick(shared["detect"]))]
    span = max((end - detect).total_seconds(), 600.0)
    middle = d.sample(shared["investigate"], d.between(1, 3))
    if d.chance(0.35):
        middle.append(d.pick(shared["red_herring"]))
    # The mechanism's own lines (a clue, then the fix) keep their order among the generic ones.
    clues = [
        story.spec["timeline"][i]
        for i in sorted(d.sample(range(len(story.spec["timeline"])), d.between(1, 2)))
    ]
    slots = sorted(d.sample(range(len(middle) + len(clues)), len(clues)))
    for slot, clue in zip(slots, clues, strict=True):
        middle.insert(slot, clue)
    offsets = sorted(float(x) for x in d.rng.uniform(0.1, 0.85, size=len(middle)))
    events += [
        (detect + dt.timedelta(seconds=span * o), text) for o, text in zip(offsets, middle, strict=True)
    ]
    events.append((end, d.pick(shared["resolve"])))
    style = d.pick(TIMELINE_STYLES)
    lines = []
    for when, text in events:
        if style == "utc":
            stamp = when.strftime("%H:%M UTC -")
        elif style == "bracket":
            stamp = when.strftime("[%Y-%m-%d %H:%M]")
        elif style == "zulu":
            stamp = when.strftime("%H:%MZ")
        else:
            stamp = f"T+{int((when - start).total_seconds() // 60)}m:"
        lines.append(f"{stamp} {fill(text)}")
    return "\n".join(lines)


def _action_items(
    story: Story, fill: Filler, d: Draw, t: dict[str, Any], end: dt.datetime, n0: int
) -> list[dict[str, Any]]:
    pool = story.cat_spec["actions"] + t["shared"]["actions"]
    items = []
    for k, title in enumerate(d.sample(pool, d.between(0, 4))):
        created = end + dt.timedelta(hours=d.between(2, 24 * 6))
        status = d.weighted((("done", 0.55), ("open", 0.35), ("wontfix", 0.1)))
        closed = created + dt.timedelta(hours=d.between(24, 24 * 90))
        if status != "open" and closed > END:
            status = "open"
        items.append(
            {
                "id": f"AI-H{n0 + k:04d}",
                "title": fill(title),
                "status": status,
                "created_at": _iso(created),
                "closed_at": _iso(closed) if status != "open" else None,
            }
        )
    return items


def _times(d: Draw, start: dt.datetime) -> dict[str, dt.datetime | None]:
    detect = start + dt.timedelta(minutes=int(min(d.rng.lognormal(2.3, 0.9), 600)))
    resolve = detect + dt.timedelta(minutes=int(min(d.rng.lognormal(4.2, 0.9), 60 * 24 * 4)) + 5)
    return {"started_at": start, "detected_at": None if d.chance(0.04) else detect, "resolved_at": resolve}


def _incident(
    n: int, story: Story, start: dt.datetime, d: Draw, t: dict[str, Any], action_no: int
) -> dict[str, Any]:
    ctx = Context(d, t["names"])
    fill = Filler(ctx)
    times = _times(d, start)
    end = times["resolved_at"]
    assert end is not None
    ctx.fixed.update(
        date=start.strftime("%B %-d"),
        t0=start.strftime("%H:%M"),
        t1=end.strftime("%H:%M"),
        duration=_duration_text(int((end - start).total_seconds() // 60)),
        symptom=d.pick(story.symptom["noun"]),
        symptom_verb=d.pick(story.symptom["verb"]),
    )
    empty_rc = story.empty_root_cause
    title = _title(story, fill, d)
    summary = _summary(story, fill, d, t, empty_rc)
    timeline = _timeline(story, fill, d, t, times) if d.chance(story.voice["timeline_share"]) else None
    root_cause = None if empty_rc else _root_cause(story, fill, d, t)
    factors_pool = story.cat_spec["factors"] + t["shared"]["factors"]
    factors = [fill(f) for f in d.sample(factors_pool, d.between(0, 4))]
    impact = fill(d.pick(t["shared"]["impact"])) if d.chance(0.7) else None
    tags = sorted({fill(x) for x in d.sample(t["shared"]["tags"], d.between(0, 4))})
    return {
        "id": f"HARD-{n:04d}",
        "title": title,
        "summary": summary,
        "impact": impact,
        "timeline": timeline,
        "root_cause": root_cause,
        "contributing_factors": factors,
        "action_items": _action_items(story, fill, d, t, end, action_no),
        "service": ctx["service"],
        "team": ctx["team"],
        "severity": d.weighted(SEVERITIES),
        "started_at": _iso(start),
        "detected_at": _iso(times["detected_at"]) if times["detected_at"] else None,
        "resolved_at": _iso(end),
        "reopened": d.weighted(((0, 0.9), (1, 0.08), (2, 0.02))),
        "tags": tags,
        "pattern": story.category,
    }


def _stories(d: Draw, t: dict[str, Any], n: int) -> list[tuple[str, str]]:
    cats = t["categories"]
    counts = category_counts({k: float(v["share"]) for k, v in cats.items()}, n)
    labels: list[tuple[str, str]] = []
    for cat in sorted(counts):
        mechs = sorted(cats[cat]["mechanisms"])
        # Every mechanism is used; the rest are drawn uniformly.
        chosen = [mechs[i % len(mechs)] for i in range(min(counts[cat], len(mechs)))]
        chosen += [d.pick(mechs) for _ in range(counts[cat] - len(chosen))]
        labels += [(cat, m) for m in chosen]
    return [labels[int(i)] for i in d.rng.permutation(len(labels))]


def _csv(rows: list[list[Any]]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    return buf.getvalue()


def generate_hard(out: Path, seed: int = 7, n: int = N_INCIDENTS) -> dict[str, int]:
    """Write `incidents.jsonl` and `truth/` for `n` incidents into `out`; returns counts."""
    t = load_templates()
    d = Draw(np.random.default_rng(seed))
    labels = _stories(d, t, n)
    span = (END - START).total_seconds()
    starts = sorted(START + dt.timedelta(minutes=int(x // 60)) for x in d.rng.uniform(0, span, size=n))
    voices = [(name, float(v["weight"])) for name, v in t["voices"].items()]
    # Exactly this many root causes are left empty, whichever the seed.
    empty = set(d.sample(range(n), round(EMPTY_ROOT_CAUSE_SHARE * n)))
    rows: list[dict[str, Any]] = []
    stories: list[Story] = []
    action_no = 1
    for i, ((cat, mech), start) in enumerate(zip(labels, starts, strict=True)):
        cat_spec = t["categories"][cat]
        spec = cat_spec["mechanisms"][mech]
        symptom = t["symptoms"][d.pick(spec["symptoms"])]
        voice = d.weighted(voices)
        story = Story(cat, mech, spec, cat_spec, t["voices"][voice], voice, symptom, i in empty)
        row = _incident(i + 1, story, start, d, t, action_no)
        action_no += len(row["action_items"])
        rows.append(row)
        stories.append(story)
    out.mkdir(parents=True, exist_ok=True)
    (out / "truth").mkdir(exist_ok=True)
    with open(out / "incidents.jsonl", "w", encoding="utf-8", newline="\n") as fh:
        fh.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    truth = [["id", "category"]] + [[r["id"], r["pattern"]] for r in rows]
    (out / "truth" / "incident_categories.csv").write_text(_csv(truth), encoding="utf-8")
    mech_rows = [["id", "category", "mechanism", "voice"]]
    mech_rows += [
        [r["id"], s.category, s.mechanism, s.voice_name] for r, s in zip(rows, stories, strict=True)
    ]
    (out / "truth" / "incident_mechanisms.csv").write_text(_csv(mech_rows), encoding="utf-8")
    cats = [["category", "n_incidents", "share", "description"]]
    for cat, spec in t["categories"].items():
        k = sum(r["pattern"] == cat for r in rows)
        cats.append([cat, k, f"{k / n:.3f}", " ".join(str(spec["description"]).split())])
    (out / "truth" / "categories.csv").write_text(_csv(cats), encoding="utf-8")
    logger.info("Hard sample - %d incidents in %d categories written to %s", n, len(cats) - 1, out)
    return {
        "incidents": n,
        "categories": len(cats) - 1,
        "empty_root_causes": sum(r["root_cause"] is None for r in rows),
    }
