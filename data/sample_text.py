"""Writing the text of one sample incident: the template Renderer, the incident-level slot values (services,
versions, people, hosts, IPs, numbers), timelines, action items and tags. See sample_spec for the template syntax.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Callable
from typing import Any

from sample_spec import (
    CERT_DOMAINS,
    CONFIG_KEYS,
    DST_DATES,
    EMAIL_DOMAINS,
    PEOPLE,
    RED_HERRINGS,
    REGIONS,
    SERVICES,
    SHARED,
    SLOTS,
    TIME_EVENTS,
    TRAFFIC_EVENTS,
    VENDORS,
    WINDOW_END,
    Rand,
    lognormal_minutes,
)


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


def person_handle(first: str, last: str, style: int) -> str:
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
        "handle": lambda: person_handle(*people[0], hstyle),
        "handle2": lambda: person_handle(*people[1], hstyle),
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
        "cert_domain": lambda: rng.pick(CERT_DOMAINS),
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
        name, kind, action = rng.pick(VENDORS)
        return {"vendor": name, "vendor_kind": kind, "vendor_action": action}

    for k in ("vendor", "vendor_kind", "vendor_action"):
        f[k] = vendor

    def config() -> dict[str, str]:
        key, old, new = rng.pick(CONFIG_KEYS)
        return {"config_key": key, "old_val": old, "new_val": new}

    for k in ("config_key", "old_val", "new_val"):
        f[k] = config
    return f


def draw_timeline(
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


def draw_action_items(
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
            closed = created + dt.timedelta(days=lognormal_minutes(rng, 18.0, 0.9, 0.5, 240.0))
            if closed > WINDOW_END:
                status, closed = "open", None
        items.append({"title": title, "status": status, "created_at": created, "closed_at": closed})
    return sorted(items, key=lambda a: a["created_at"])


def draw_tags(rng: Rand, r: Renderer, pattern_tags: list[str], k: int) -> list[str]:
    tags: list[str] = []
    for _ in range(k):
        pool = pattern_tags if pattern_tags and rng.chance(0.55) else SHARED["tag_generic"]
        tag = r.render(rng.pick(pool))
        if tag not in tags:
            tags.append(tag)
    return tags
