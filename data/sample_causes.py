"""Causes planted in the sample's indicator series, with their truth (issue #16, "why did it move?").

Drawn from their own random stream after the series are simulated, so every other file of the sample stays as it
was except where a cause is planted:

* slices: a large level shift in one team's series (2.4-3 noise sds of the aggregate, the indicator summed or
  averaged over the teams) that makes the aggregate shift; the aggregate's truth is that team;
* pattern bursts: for 6 weeks one team's `incidents` rise (3.2-3.8 noise sds, under 1.6 sds of the aggregate) and
  5-8 postmortems of one failure pattern, handled by that team, are added to incidents.jsonl; the truth of the rise
  is that pattern;
* changes: a level shift (2.5-3.5 noise sds, under 1.4 sds of the aggregate) 1-3 weeks after an entry of the
  change log for the same team; the truth is that change;
* distractors: more change-log entries (some org-wide) that precede no shift of their team within six weeks.

Permanent shifts go only to series that take part in no experiment (an experiment's controls never move, so its
effect stays measurable); the pattern bursts, which end, go to `incidents` series where no experiment's scoring
sees them (see `_Planter.bursts`), so the experiments' truth and verdicts are unchanged. The truth
(`truth/causes.csv`) also names the experiment behind each non-null experiment's shift, the team behind every
shift of at least 2 aggregate sds (existing ones too), and `none` for team shifts nothing explains.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field

import numpy as np
from sample_series import IND_BY_NAME, INDICATORS, N_WEEKS, WEEK0, ExperimentPlan, Series
from sample_spec import PATTERN_BY_SLUG, TEAM_SERVICES, TEAMS, TEMPLATES, Rand
from template_files import build_entries, load_templates

N_SLICES = 6
N_BURSTS = 6
N_CHANGES = 6
N_DISTRACTORS = 14
N_ORG_WIDE = 3  # distractors that name no team
AGG_TRUTH_SIGMA = 2.0  # a team shift of at least this many aggregate noise sds is the aggregate's cause
IMPACT_WEEKS = (
    52  # weeks before an experiment's start that the impact model fits (no burst there on its teams)
)
# weeks before any experiment's start where its placebo windows are scored (no burst there): four placebos of 8
# weeks, each 4 weeks earlier than the next (ml.experiments.calibration)
PLACEBO_WEEKS = 20
# Patterns a burst may use: not the fading ones (their key action item sits on their last incident before the fix)
# nor the rising ones (whose profile a test checks)
BURST_PATTERNS = (
    "dns-change",
    "connection-pool-exhaustion",
    "bad-deploy-rollback",
    "credential-expiry",
    "third-party-outage",
    "autoscaling-lag",
    "clock-timezone-bug",
)


@dataclass(frozen=True)
class ChangeText:
    kind: str
    texts: list[str]
    org: list[str]


CHANGE_TEXTS: list[ChangeText] = build_entries(
    TEMPLATES / "changes.yaml",
    load_templates(TEMPLATES, {"changes": list})["changes"],
    lambda c: ChangeText(kind=c["kind"], texts=list(c["texts"]), org=list(c["org"])),
)


@dataclass
class Change:
    ds: dt.date
    team: str  # "" = org-wide
    kind: str
    description: str
    id: str = ""


@dataclass(frozen=True)
class Burst:
    team: str
    pattern: str
    start: int  # first week of the burst
    end: int  # first week after it
    n_incidents: int


@dataclass
class Causes:
    changes: list[Change] = field(default_factory=list)
    bursts: list[Burst] = field(default_factory=list)
    # (series, week, cause_kind, cause_key or a Change whose id is known once all are drawn)
    truth: list[tuple[str, int, str, str | Change]] = field(default_factory=list)

    def truth_rows(self) -> list[list[str]]:
        rows = [
            [
                series,
                (WEEK0 + dt.timedelta(weeks=w)).isoformat(),
                kind,
                key.id if isinstance(key, Change) else key,
            ]
            for series, w, kind, key in self.truth
        ]
        return sorted(rows)


def _monday(week: int) -> dt.date:
    return WEEK0 + dt.timedelta(weeks=week)


def _agg_sigma(series: dict[tuple[str, str], Series], indicator: str) -> float:
    """Noise sd of the aggregate, in team units (a team shift of m moves the mean aggregate by m/teams too)."""
    return math.sqrt(sum(series[(indicator, t)].noise_sd ** 2 for t in TEAMS))


def _apply(rng: Rand, s: Series, start: int, end: int, magnitude: float, kind: str) -> None:
    """Move weeks [start, end) of `s` by `magnitude` and record the shift(s) (a burst records its end too)."""
    spec = IND_BY_NAME[s.indicator]
    for i in range(start, end):
        y = s.values[i]
        if spec.kind == "count":
            if magnitude >= 0:
                y += float(rng.g.poisson(magnitude))
            elif i in s.outliers:
                y = max(y - round(-magnitude), 0.0)  # keep the outlier's excess
            else:  # thinning: Poisson(mean) -> Poisson(mean + magnitude)
                mean = max(s.expected(i), 0.1)
                y = float(rng.g.binomial(int(y), min(max((mean + magnitude) / mean, 0.0), 1.0)))
            s.values[i] = round(y)
        else:
            y = max(y + magnitude, 0.01 * s.level)
            if spec.upper is not None:
                y = min(y, spec.upper)
            s.values[i] = round(y, spec.decimals)
    s.shifts.append((start, round(magnitude, 4), kind))
    if end < N_WEEKS:
        s.shifts.append((end, round(-magnitude, 4), kind))
    s.shifts.sort()


def _sign(rng: Rand, s: Series, week: int, size: float, net: float | None = None) -> float:
    """Back towards the level: down after net rises (of `s`, or `net` given: of its aggregate) where 40% of the
    series' level remains, up after net drops, either way at random when nothing has moved it yet."""
    if net is None:
        net = sum(m for j, m, _ in s.shifts if j <= week)
    down = (net > 0 or (net == 0 and rng.chance(0.5))) and s.expected(week) - size >= 0.4 * s.level
    return -size if down else size


class _Planter:
    def __init__(self, rng: Rand, series: dict[tuple[str, str], Series], plans: list[ExperimentPlan]) -> None:
        self.rng, self.series, self.plans = rng, series, plans
        self.involved: dict[tuple[str, str], list[int]] = {}
        for p in plans:
            for t in [p.treated, *p.controls]:
                self.involved.setdefault((p.text.indicator, t), []).append(p.start)
        self.free = [k for k in series if k not in self.involved]
        self.slices: dict[str, list[int]] = {}  # indicator -> weeks of its planted slices
        self.causes = Causes()

    def team_weeks(self, team: str) -> list[int]:
        """Weeks where some series of `team` shifts or an experiment on it starts."""
        weeks = [j for (_, t), s in self.series.items() if t == team for j, _, _ in s.shifts]
        return weeks + [p.start for p in self.plans if p.treated == team]

    def change_weeks(self, team: str) -> list[int]:
        return [(c.ds - WEEK0).days // 7 for c in self.causes.changes if c.team in (team, "")]

    def quiet(self, s: Series, week: int, spacing: int = 12) -> bool:
        return (
            12 <= week <= N_WEEKS - 12
            and all(abs(week - j) >= spacing for j, _, _ in s.shifts)
            and all(abs(week - o) >= 5 for o in s.outliers)
        )

    # ------------------------------------------------------------------------------------------ kinds

    def bursts(self) -> None:
        """Up to two bursts per team in the `incidents` series, all of one length and size, none starting with
        another, where no experiment on `incidents` sees them: not in the 52 weeks before (the impact model's
        fitted window) or after the start of an experiment on the team, nor in the 20 weeks before any experiment's
        start (where its placebo windows, taken from every team, are scored)."""
        if ("incidents", TEAMS[0]) not in self.series:
            return
        usable = [p for p in BURST_PATTERNS if p in PATTERN_BY_SLUG]
        patterns = self.rng.sample(usable, len(usable))
        length = self.rng.int(6, 6)  # a draw kept so that the stream is as it was
        sd = float(np.mean([self.series[("incidents", t)].noise_sd for t in TEAMS]))
        size = min(self.rng.uniform(3.2, 3.8) * sd, 1.6 * _agg_sigma(self.series, "incidents"))
        exps = [p for p in self.plans if p.text.indicator == "incidents"]

        def allowed(team: str, a: int) -> bool:
            s, end = self.series[("incidents", team)], a + length
            return (
                all(not (a - 2 <= j < end + 2) for j, _, _ in s.shifts)
                and all(not (a - 4 <= o < end + 4) for o in s.outliers)
                and all(
                    end <= p.start - (PLACEBO_WEEKS if team not in [p.treated, *p.controls] else IMPACT_WEEKS)
                    or (a >= p.start and team not in [p.treated, *p.controls])
                    for p in exps
                )
                and all(abs(a - b.start) >= 2 for b in self.causes.bursts)
                and sum(b.start < end and a < b.end for b in self.causes.bursts) <= 2
            )

        for _ in range(N_BURSTS):
            cands = [
                (team, a)
                for team in TEAMS
                if sum(b.team == team for b in self.causes.bursts) < 2
                for a in range(8, N_WEEKS - 11 - length)
                if allowed(team, a)
            ]
            if not cands or not patterns:
                return
            team, a = self.rng.pick(cands)
            s = self.series[("incidents", team)]
            # a pattern that prefers none of the team's services, so that the burst stands out from its base rate
            rare = [p for p in patterns if not set(PATTERN_BY_SLUG[p].services) & set(TEAM_SERVICES[team])]
            pattern = (rare or patterns)[-1]
            patterns.remove(pattern)
            burst = Burst(team, pattern, a, a + length, self.rng.int(5, 8))
            _apply(self.rng, s, a, a + length, size, "pattern")
            self.causes.bursts.append(burst)
            self.causes.truth.append((s.key, a, "pattern", burst.pattern))

    def slice_shifts(self) -> None:
        for _ in range(N_SLICES):
            cands = []
            for key in self.free:
                s = self.series[key]
                others = [j for (ind, _), o in self.series.items() if ind == key[0] for j, _, _ in o.shifts]
                cands += [
                    (key, w)
                    for w in range(14, N_WEEKS - 11)
                    if self.quiet(s, w) and all(abs(w - j) >= 12 for j in others)
                ]
            if not cands:
                return
            fewest = min(len(self.slices.get(k[0], [])) for k, _ in cands)  # spread over the indicators
            key, w = self.rng.pick([(k, w) for k, w in cands if len(self.slices.get(k[0], [])) == fewest])
            s = self.series[key]
            size = self.rng.uniform(2.4, 3.0) * _agg_sigma(self.series, key[0])
            net = sum(
                m for (ind, _), o in self.series.items() if ind == key[0] for j, m, _ in o.shifts if j <= w
            )
            _apply(self.rng, s, w, N_WEEKS, _sign(self.rng, s, w, size, net), "slice")
            self.slices.setdefault(key[0], []).append(w)

    def change_shifts(self) -> None:
        for _ in range(N_CHANGES):
            cands = []
            for key in self.free:
                s, team = self.series[key], key[1]
                near = self.team_weeks(team) + self.change_weeks(team)
                cands += [
                    (key, w)
                    for w in range(14, N_WEEKS - 11)
                    if self.quiet(s, w)
                    and all(abs(w - j) >= 7 for j in near)
                    and all(abs(w - j) >= 10 for j in self.slices.get(key[0], []))
                ]
            if not cands:
                return
            key, w = self.rng.pick(cands)
            s, team = self.series[key], key[1]
            size = min(self.rng.uniform(2.5, 3.5) * s.noise_sd, 1.4 * _agg_sigma(self.series, key[0]))
            text = self.rng.pick(CHANGE_TEXTS)
            desc = self.rng.pick(text.texts).format(team=team, service=self.rng.pick(TEAM_SERVICES[team]))
            change = Change(_monday(w) - dt.timedelta(days=self.rng.int(7, 21)), team, text.kind, desc)
            _apply(self.rng, s, w, N_WEEKS, _sign(self.rng, s, w, size), "change")
            self.causes.changes.append(change)
            self.causes.truth.append((s.key, w, "change", change))

    def distractors(self) -> None:
        """Change-log entries that precede no shift of their team (any team: org-wide) within six weeks."""
        for i in range(N_DISTRACTORS):
            for _attempt in range(200):
                team = "" if i < N_ORG_WIDE else self.rng.pick(TEAMS)
                ds = _monday(self.rng.int(1, N_WEEKS - 1)) + dt.timedelta(days=self.rng.int(0, 4))
                weeks = [j for t in ([team] if team else TEAMS) for j in self.team_weeks(t)]
                if all(not (0 <= (_monday(j) - ds).days <= 42) for j in weeks):
                    break
            else:
                continue
            text = self.rng.pick(CHANGE_TEXTS)
            if team:
                desc = self.rng.pick(text.texts).format(team=team, service=self.rng.pick(TEAM_SERVICES[team]))
            else:
                desc = self.rng.pick(text.org)
            self.causes.changes.append(Change(ds, team, text.kind, desc))

    # ------------------------------------------------------------------------------------------ truth

    def explained(self) -> None:
        """Truth rows of experiments, of aggregates moved by one team, and `none` for unexplained team shifts."""
        for p in self.plans:
            if not p.is_null:
                self.causes.truth.append(
                    (self.series[(p.text.indicator, p.treated)].key, p.start, "experiment", p.id)
                )
        for spec in INDICATORS:
            agg = _agg_sigma(self.series, spec.name)
            for team in TEAMS:
                s = self.series[(spec.name, team)]
                for j, m, kind in s.shifts:
                    if kind in ("shift", "slice"):
                        self.causes.truth.append((s.key, j, "none", ""))
                    if kind not in ("pattern", "change") and abs(m) >= AGG_TRUTH_SIGMA * agg:
                        self.causes.truth.append((spec.name, j, "slice", f"team={team}"))
                        if kind == "experiment":
                            exp = next(
                                p
                                for p in self.plans
                                if p.start == j and p.treated == team and p.text.indicator == spec.name
                            )
                            self.causes.truth.append((spec.name, j, "experiment", exp.id))


def plant_causes(rng: Rand, series: dict[tuple[str, str], Series], plans: list[ExperimentPlan]) -> Causes:
    """Plant the causes into the simulated `series` (values and shifts change in place); return them and the truth."""
    planter = _Planter(rng, series, plans)
    planter.bursts()
    planter.slice_shifts()
    planter.change_shifts()
    planter.distractors()
    planter.explained()
    causes = planter.causes
    causes.changes.sort(key=lambda c: (c.ds, c.team, c.description))
    for i, c in enumerate(causes.changes, start=1):
        c.id = f"CHG-{i:03d}"
    return causes


def burst_plan(causes: Causes) -> list[tuple[str, str, dt.date, dt.date, int]]:
    """The bursts as (team, pattern, first day, end day, incidents) for the incident generator."""
    return [(b.team, b.pattern, _monday(b.start), _monday(b.end), b.n_incidents) for b in causes.bursts]


__all__ = ["Causes", "Change", "burst_plan", "plant_causes"]
