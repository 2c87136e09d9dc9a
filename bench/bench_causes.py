"""Why did it move? Accuracy of ``ml.causes.explain_signals`` on the sample's planted causes (issue #16).

    python bench/bench_causes.py [--patterns truth|model] [--seeds 7,42,1,2,3] [--no-github] [--no-github-patterns]

1. Sample (data/sample): indicators.csv, incidents.jsonl, experiments.yaml and changes.csv go to explain_signals,
   which detects the shifts itself (every team series and the aggregates). Incident pattern ids are the truth
   labels (``pattern`` of each incident; default) or, with ``--patterns model``, the ids of a PatternModel fitted
   on the sample, each scored as the truth pattern most of its incidents carry. Scored against
   ``truth/causes.csv``: a planted shift is found when a detected shift of that series lies within 14 days of it;
   top-1 / top-3 = the planted cause is the first / among the first three causes (a shift with several rows in
   the truth, e.g. an aggregate moved by a team's experiment, accepts any of them; an undetected shift counts as
   a miss). No-cause shifts (``none``) are "blamed" when a cause with confidence >= 0.8 is named. Every miss is
   listed. Targets: top-1 >= 0.80, top-3 >= 0.95, no-cause blamed <= 5%. Also printed: top-1 and top-3 over the
   planted shifts found (the ranking alone, detection aside).
   ``--seeds 7,42,1,2,3``: the sample is generated with each generator seed (data/generate.py; seed 7 is the
   committed sample) into a temporary folder and scored the same way; per-seed figures, then the pooled ones (all
   planted causes and no-cause shifts of all seeds together), so that the figure is not tuned to one sample.
   Also printed: how many shifts (all, those found at a candidate date, and those a team's values show but not
   once the shared season is out, whose explanation says the season may explain them) lie at no true shift, i.e.
   more than 14 days from every shift of that series (an aggregate: of any team) in ``truth/shifts.csv``,
   planted or not. Detection baseline, not told the dates: PELT with a BIC penalty (2 sd^2 log n, sd from the MAD
   of the weekly differences) on every team series and aggregate, and with half that penalty: the planted shifts
   with one of its change points within 14 days, and how many of its change points lie at no true shift (the
   share of planted shifts any detector finds before it floods the series with false ones).
2. GitHub status corpus (../shared/data/github-status/incidents.jsonl, when present): weekly incident counts per
   component (the first listed, names normalised as in bench_retrieval; none listed: "unspecified"), the
   aggregate being all components; the shifts found and their top causes are printed. Pattern ids come from a
   PatternModel fitted on the corpus first (about 45 CPU s); ``--no-github-patterns`` gives none (so no pattern
   causes).
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import json
import logging
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from ml.causes import explain_signals  # noqa: E402
from ml.indicators.incident_counts import weekly_incident_counts  # noqa: E402

SAMPLE = ROOT / "data" / "sample"
GITHUB = ROOT.parent / "shared" / "data" / "github-status" / "incidents.jsonl"
TOL_DAYS = 14
BLAME = 0.8


def cpu_seconds() -> float:
    """CPU seconds of this process and its finished children (worker processes)."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _cause_text(c: dict[str, Any]) -> str:
    return f"{c['kind']}:{c['key']} ({c['confidence']:.2f})"


# ---------------------------------------------------------------------------------------------- sample


def sample_incidents(mode: str, folder: Path = SAMPLE) -> pd.DataFrame:
    rows = [
        json.loads(line) for line in (folder / "incidents.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    frame = pd.DataFrame(
        {
            "id": [r["id"] for r in rows],
            "date": pd.to_datetime([r["started_at"] for r in rows], utc=True),
            "team": [r["team"] for r in rows],
            "service": [r["service"] for r in rows],
            "truth": [r["pattern"] for r in rows],
        }
    )
    if mode == "truth":
        frame["pattern_id"] = frame["truth"]
    else:
        from ml.io.schemas import Incident
        from ml.patterns.model import PatternModel

        start = cpu_seconds()
        model = PatternModel().fit([Incident.model_validate(r) for r in rows])
        ids = [str(model.assignments_[r["id"]]) for r in rows]
        # a model pattern is scored as the truth pattern most of its incidents carry
        majority = {
            pid: collections.Counter(
                t for p, t in zip(ids, frame["truth"], strict=True) if p == pid
            ).most_common(1)[0][0]
            for pid in set(ids)
        }
        frame["pattern_id"] = [majority[p] if p != "-1" else "-1" for p in ids]
        quality = {
            k: round(float(v), 3) for k, v in model.metrics_.items() if k in ("ari", "gate_ari", "nmi")
        }
        print(f"PatternModel fitted on {len(rows)} incidents in {cpu_seconds() - start:.0f} CPU s; {quality}")
    frame["pattern_name"] = frame["pattern_id"]
    return frame.drop(columns="truth")


def score(results: list[dict[str, Any]], truth: pd.DataFrame, tol_days: int = TOL_DAYS) -> dict[str, Any]:
    by_series: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
    for r in results:
        by_series[r["series"]].append(r)
    rows = []
    for (series, date), group in truth.groupby(["series", "date"], sort=True):
        want = {(k, v) for k, v in zip(group.cause_kind, group.cause_key, strict=True)}
        kind = "none" if ("none", "") in want else sorted(want)[0][0] if len(want) == 1 else "slice"
        day = dt.date.fromisoformat(date)
        near = [
            r
            for r in by_series.get(series, [])
            if abs((dt.date.fromisoformat(r["date"]) - day).days) <= tol_days
        ]
        hit = min(near, key=lambda r: abs((dt.date.fromisoformat(r["date"]) - day).days)) if near else None
        causes = hit["causes"] if hit else []
        got = [(c["kind"], c["key"]) for c in causes]
        rows.append(
            {
                "series": series,
                "date": date,
                "kind": kind,
                "want": " | ".join(f"{k}:{v}" if v else k for k, v in sorted(want)),
                "found": hit is not None,
                "top1": bool(got) and got[0] in want,
                "top3": any(g in want for g in got[:3]),
                "blamed": any(c["confidence"] >= BLAME for c in causes),
                "verdict": hit["verdict"] if hit else "not detected",
                "detected": hit["date"] if hit else "",
                "causes": ", ".join(_cause_text(c) for c in causes[:3]) or "-",
            }
        )
    return {"rows": pd.DataFrame(rows)}


def explain_sample(mode: str, folder: Path) -> tuple[list[dict[str, Any]], pd.DataFrame, float, float]:
    """(explanations, scored truth rows, CPU s, wall s) of the sample in ``folder``."""
    indicators = pd.read_csv(folder / "indicators.csv")
    truth = pd.read_csv(folder / "truth" / "causes.csv", dtype=str, keep_default_na=False)
    changes = pd.read_csv(folder / "changes.csv", dtype=str, keep_default_na=False)
    experiments = yaml.safe_load((folder / "experiments.yaml").read_text(encoding="utf-8"))
    incidents = sample_incidents(mode, folder)
    start_cpu, start_wall = cpu_seconds(), time.perf_counter()
    results = explain_signals(indicators, None, incidents, experiments, changes)
    cpu, wall = cpu_seconds() - start_cpu, time.perf_counter() - start_wall
    rows = score(results, truth)["rows"]
    rows["truth_series"] = rows.series.isin(set(truth.series))
    rows["oracle_z"] = oracle_z(rows, indicators, folder)
    rows["top3_28"] = score(results, truth, tol_days=28)["rows"]["top3"].to_numpy()
    nearest = []  # (days off, whether its date range holds the planted date, its width in weeks) of the nearest
    for r in rows.itertuples():
        mine = [x for x in results if x["series"] == r.series]
        d = pd.Timestamp(r.date)
        x = min(mine, key=lambda x: abs(pd.Timestamp(x["date"]) - d)) if mine else None
        span = [pd.Timestamp(v) for v in x.get("date_range") or []] if x else []
        nearest.append(
            (
                abs((pd.Timestamp(x["date"]) - d).days) if x else math.inf,
                bool(span) and span[0] <= d <= span[1],
                (span[1] - span[0]).days / 7 if span else math.nan,
            )
        )
    rows["gap"], rows["in_range"], rows["range_weeks"] = (
        zip(*nearest, strict=True) if nearest else ([], [], [])
    )
    counts = []
    for col, penalty in (("blind", 2.0), ("blind_half", 1.0)):  # BIC, and half of it
        blind = blind_shifts(indicators, penalty)
        rows[col] = [
            any(abs((x - pd.Timestamp(r.date)).days) <= TOL_DAYS for x in blind.get(r.series, []))
            for r in rows.itertuples()
        ]
        events = [{"series": s, "date": str(x.date())} for s, xs in blind.items() for x in xs]
        counts += [len(events), false_shifts(events, folder)[2]]
    rows.attrs["blind"] = tuple(counts)
    return results, rows, cpu, wall


def oracle_z(rows: pd.DataFrame, indicators: pd.DataFrame, folder: Path) -> list[float]:
    """How plainly the data shows each truth row's shift, told the truth: |z| of the step at the planted date
    with the generator's own segments (every shift of the series in ``truth/shifts.csv``; an aggregate: of
    any of its teams), the difference of the segment means either side against the AR(1) noise around all
    the true segment means, as the detector's segment test. No detector can do better than the truth's
    segments; a planted shift with a small oracle |z| is one the data does not show (e.g. a count series whose
    level rose after earlier shifts, so its Poisson noise outgrew the noise the shift was sized on, or an
    aggregate whose other teams drifted the other way)."""
    from ml.causes.aggregates import is_mean_indicator
    from ml.causes.candidates import segment_test
    from ml.causes.cause import ExplainConfig

    shifts = pd.read_csv(folder / "truth" / "shifts.csv")
    shifts["indicator"] = shifts.series.str.split("/").str[0]
    frame = indicators.assign(ds=pd.to_datetime(indicators.ds))
    cfg = ExplainConfig()
    out = []
    for r in rows.itertuples():
        indicator = r.series.split("/")[0]
        y = series_values(frame, r.series, is_mean_indicator(indicator, cfg))
        mine = shifts[shifts.series == r.series] if "/" in r.series else shifts[shifts.indicator == indicator]
        d = pd.Timestamp(r.date)
        true = sorted({pd.Timestamp(x) for x in mine.date} - {d})
        idx = pd.DatetimeIndex(y.index)
        res = segment_test(y.to_numpy(dtype=float), idx, true, d, (idx[-1] - idx[0]).days + 1, 2)
        out.append(abs(res[0]) / res[1] if res is not None else float("nan"))
    return out


def series_values(frame: pd.DataFrame, series: str, mean: bool) -> pd.Series:
    """Weekly values of ``series`` (``indicator/team=T``, or an indicator: the sum, or for a ``mean`` indicator
    the mean, of its teams) from the long indicators ``frame`` (``ds`` as dates)."""
    indicator, _, team = series.partition("/team=")
    part = frame[frame.indicator == indicator]
    if team:
        return part[part.team == team].set_index("ds").y.sort_index()
    g = part.groupby("ds").y
    return (g.mean() if mean else g.sum()).sort_index()


def pelt_bic(y: pd.Series, penalty: float = 2.0, floor: float = 0.0) -> list[pd.Timestamp]:
    """A standard blind detector, the baseline of detection: the dates of the change points PELT finds in ``y``
    with a BIC penalty (``penalty`` sd^2 log n, sd from the MAD of the differences, at least ``floor``; segments
    of at least 4 points)."""
    from ml.indicators.changepoints import mad_sd, pelt_l2

    v = y.to_numpy(dtype=float)
    sd = max(mad_sd(np.diff(v)) / math.sqrt(2), floor)
    cps = pelt_l2(v, penalty * sd**2 * math.log(len(v)), 4) if sd > 0 else []
    return [pd.Timestamp(y.index[c]) for c in cps]


def blind_shifts(indicators: pd.DataFrame, penalty: float = 2.0) -> dict[str, list[pd.Timestamp]]:
    """:func:`pelt_bic` on every team series and aggregate; the change points' dates by series."""
    from ml.causes.aggregates import is_mean_indicator
    from ml.causes.cause import ExplainConfig

    frame = indicators.assign(ds=pd.to_datetime(indicators.ds))
    cfg = ExplainConfig()
    names = [f"{i}/team={t}" for i, t in sorted(set(zip(frame.indicator, frame.team, strict=True)))]
    return {
        sid: pelt_bic(series_values(frame, sid, is_mean_indicator(sid.split("/")[0], cfg)), penalty)
        for sid in [*sorted(frame.indicator.unique()), *names]
    }


def blind_line(rows: pd.DataFrame, n_cps: int, n_false: int, n_half: int, n_half_false: int) -> str:
    """The blind baseline's detection beside Recur's: planted shifts with a change point within 14 days, and how
    many of its change points lie at no true shift; with the BIC penalty and with half of it."""
    planted = rows[rows.kind != "none"]
    n = len(planted)
    return (
        f"detection baseline (PELT with a BIC penalty on every series, not told the dates): planted shifts with a "
        f"change point within {TOL_DAYS} days {int(planted.blind.sum())}/{n} = {planted.blind.mean():.3f} "
        f"(Recur: {int(planted.found.sum())}/{n} = {planted.found.mean():.3f}); {n_cps} change points, "
        f"{n_false} at no true shift; with half the penalty {int(planted.blind_half.sum())}/{n} = "
        f"{planted.blind_half.mean():.3f}, {n_half} change points, {n_half_false} at no true shift"
    )


def range_line(rows: pd.DataFrame) -> str:
    """How often the date range of the nearest shift holds the planted date: found within 14 days, and 15-63 off."""
    planted = rows[rows.kind != "none"]
    found, off = planted[planted.gap <= TOL_DAYS], planted[(planted.gap > TOL_DAYS) & (planted.gap <= 63)]
    return (
        f"date ranges: of the {len(found)} planted shifts found within {TOL_DAYS} days, "
        f"{int(found.in_range.sum())} ranges hold the planted date (median {found.range_weeks.median():.0f} weeks "
        f"wide); of the {len(off)} whose nearest shift is 15-63 days off, {int(off.in_range.sum())}"
    )


def given_found(rows: pd.DataFrame) -> str:
    """The ranking alone: top-1 and top-3 over the planted shifts that a detected shift lies within 14 days of."""
    got = rows[(rows.kind != "none") & rows.found]
    n = len(got)
    return (
        f"top-1 {got.top1.mean() if n else 0:.3f} ({int(got.top1.sum())}/{n}), "
        f"top-3 {got.top3.mean() if n else 0:.3f} ({int(got.top3.sum())}/{n})"
    )


def by_oracle(rows: pd.DataFrame) -> str:
    """Planted causes by oracle |z| band: n and top-3 in each."""
    planted = rows[rows.kind != "none"]
    parts = []
    for lo, hi in ((0.0, 3.0), (3.0, 5.0), (5.0, math.inf)):
        g = planted[(planted.oracle_z >= lo) & (planted.oracle_z < hi)]
        band = f"|z| >= {lo:g}" if hi == math.inf else f"{lo:g} <= |z| < {hi:g}"
        parts.append(f"{band}: n={len(g)} top-3 {g.top3.mean() if len(g) else float('nan'):.3f}")
    return "; ".join(parts) + f" (all, a shift found within 28 days: top-3 {planted.top3_28.mean():.3f})"


def seasonal(r: dict[str, Any]) -> bool:
    """A shift the detector finds on a team's values but not once the shared season is out (its notes say so)."""
    return any("the season may explain it" in n for n in r.get("notes") or [])


def false_shifts(results: list[dict[str, Any]], folder: Path) -> tuple[int, int, int, int, int]:
    """(shifts found at a candidate date, of those at no true shift, all shifts at no true shift, shifts the
    shared season may explain, of those at no true shift): a shift is true when the series (for an aggregate: one
    of its teams) has a shift in ``truth/shifts.csv`` (any kind, planted or not, a burst's end too) within 14
    days."""
    shifts = pd.read_csv(folder / "truth" / "shifts.csv")
    shifts["indicator"] = shifts.series.str.split("/").str[0]
    days = pd.to_datetime(shifts.date)

    def true(r: dict[str, Any]) -> bool:
        mine = shifts.series == r["series"] if "/" in r["series"] else shifts.indicator == r["series"]
        return bool((abs(days[mine] - pd.Timestamp(r["date"])).dt.days <= TOL_DAYS).any())

    at = [r for r in results if str(r.get("detail") or "").startswith("found at the date of")]
    season = [r for r in results if seasonal(r)]
    return (
        len(at),
        sum(not true(r) for r in at),
        sum(not true(r) for r in results),
        len(season),
        sum(not true(r) for r in season),
    )


def figures(rows: pd.DataFrame) -> str:
    """One line: planted n, detected, top-1, top-3, no-cause blamed."""
    planted, none = rows[rows.kind != "none"], rows[rows.kind == "none"]
    nd = none[none.found]
    n = len(planted)
    return (
        f"planted n={n:<3} detected {int(planted.found.sum()):>3}  "
        f"top-1 {planted.top1.mean():.3f} ({int(planted.top1.sum())}/{n})  "
        f"top-3 {planted.top3.mean():.3f} ({int(planted.top3.sum())}/{n})  "
        f"no-cause blamed {int(nd.blamed.sum())}/{len(nd)} = {nd.blamed.mean() if len(nd) else 0:.3f} "
        f"(of {len(none)})"
    )


def print_misses(rows: pd.DataFrame, prefix: str = "") -> None:
    planted, none = rows[rows.kind != "none"], rows[rows.kind == "none"]
    nd = none[none.found]
    misses = pd.concat([planted[~planted.top1], nd[nd.blamed]])
    for r in misses.itertuples():
        where = f"detected {r.detected}" if r.found else "not detected within 14 days"
        print(
            f"  {prefix}{r.series:<42} {r.date}  truth {r.want:<38} oracle |z| {r.oracle_z:4.1f}  {where}; "
            f"found: {r.causes}"
        )


def run_sample(mode: str) -> None:
    results, rows, cpu, wall = explain_sample(mode, SAMPLE)
    planted, none = rows[rows.kind != "none"], rows[rows.kind == "none"]
    print(
        f"## Sample (pattern ids: {'truth labels' if mode == 'truth' else 'PatternModel fitted on the sample'})"
    )
    print(
        f"explain_signals: {len(results)} shifts explained in {cpu:.1f} CPU s ({wall:.1f} s wall, "
        f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())})"
    )
    n = len(planted)
    print(
        f"planted causes      n={n}  detected {int(planted.found.sum())}/{n}  "
        f"top-1 {planted.top1.mean():.3f} ({int(planted.top1.sum())}/{n})  "
        f"top-3 {planted.top3.mean():.3f} ({int(planted.top3.sum())}/{n})   targets 0.80 / 0.95"
    )
    print(f"  by oracle |z| at the planted date (the truth's own segments): {by_oracle(rows)}")
    print(f"  the ranking alone, on the planted shifts found within {TOL_DAYS} days: {given_found(rows)}")
    print(f"  {blind_line(rows, *rows.attrs['blind'])}")
    print(f"  {range_line(rows)}")
    for kind, g in planted.groupby("kind"):
        print(
            f"  {kind:<11} n={len(g):<3} detected {int(g.found.sum())}  top-1 {int(g.top1.sum())}  "
            f"top-3 {int(g.top3.sum())}"
        )
    nd = none[none.found]
    print(
        f"no-cause shifts     n={len(none)}  detected {len(nd)}  blamed (conf >= {BLAME}) "
        f"{int(nd.blamed.sum())}/{len(nd)} = {nd.blamed.mean() if len(nd) else 0:.3f}   target <= 0.05; "
        f"verdict 'no convincing cause' {int((nd.verdict == 'no convincing cause').sum())}/{len(nd)}"
    )
    if len(pd.concat([planted[~planted.top1], nd[nd.blamed]])):
        print("\nmisses (top-1 wrong or not detected; blamed no-cause shifts):")
        print_misses(rows)
    at = [r for r in results if str(r.get("detail") or "").startswith("found at the date of")]
    print(
        f"\nshifts found at a candidate date (a change, experiment start or pattern burst): {len(at)}"
        + "".join(f"\n  {r['series']} {r['date']}: {r['detail']}" for r in at)
    )
    truth_series = set(rows.series)
    other = [r for r in results if r["series"] not in truth_series]
    print(f"\n(shifts on series without a truth row: {len(other)}; not scored)")


def run_seeds(mode: str, seeds: list[int]) -> None:
    """The sample generated with each seed, scored; per-seed and pooled figures."""
    gen = ROOT / "data" / "generate.py"
    print(
        f"## Samples generated with seeds {', '.join(map(str, seeds))} "
        f"(pattern ids: {'truth labels' if mode == 'truth' else 'PatternModel fitted on each sample'})"
    )
    pooled, cpu_all, false_all = [], 0.0, []
    blind_all: list[tuple[int, ...]] = []
    with tempfile.TemporaryDirectory(prefix="bench-causes-") as tmp:
        for seed in seeds:
            folder = Path(tmp) / f"seed-{seed}"
            done = subprocess.run(
                [sys.executable, str(gen), "--seed", str(seed), "--out", str(folder)],
                capture_output=True,
                text=True,
            )
            if done.returncode != 0:
                last = (done.stderr.strip().splitlines() or ["no message"])[-1]
                sys.exit(f"bench_causes: data/generate.py --seed {seed} failed: {last}")
            results, rows, cpu, _ = explain_sample(mode, folder)
            cpu_all += cpu
            rows.insert(0, "seed", seed)
            pooled.append(rows)
            blind_all.append(rows.attrs["blind"])
            at, at_false, all_false, season, season_false = false_shifts(results, folder)
            false_all.append((len(results), at, at_false, all_false, season, season_false))
            print(
                f"seed {seed:<4} {figures(rows)}  [{len(results)} shifts, {all_false} at no true shift; "
                f"{at} at a candidate date, {at_false} at no true shift]"
            )
    allrows = pd.concat(pooled, ignore_index=True)
    n, at, at_false, all_false, season, season_false = (sum(x) for x in zip(*false_all, strict=True))
    print(f"pooled    {figures(allrows)}   targets top-1 >= 0.80, top-3 >= 0.95, blamed <= 0.05")
    print(f"  by oracle |z| at the planted date (the truth's own segments): {by_oracle(allrows)}")
    print(f"  the ranking alone, on the planted shifts found within {TOL_DAYS} days: {given_found(allrows)}")
    print(f"  {blind_line(allrows, *(sum(x) for x in zip(*blind_all, strict=True)))}")
    print(f"  {range_line(allrows)}")
    print(
        f"  shifts {n}, {all_false} at no true shift (within 14 days of a shift in truth/shifts.csv); "
        f"found at a candidate date {at}, {at_false} at no true shift; "
        f"the shared season may explain {season} (found on a team's values only), {season_false} at no true shift"
    )
    for kind, g in allrows[allrows.kind != "none"].groupby("kind"):
        print(
            f"  {kind:<11} n={len(g):<3} detected {int(g.found.sum()):<3} top-1 {int(g.top1.sum()):<3} "
            f"top-3 {int(g.top3.sum())}"
        )
    print(
        f"explain_signals: {cpu_all:.1f} CPU s over {len(seeds)} samples (load average "
        f"{' '.join(f'{x:.1f}' for x in os.getloadavg())})"
    )
    print("\nmisses (top-1 wrong or not detected; blamed no-cause shifts):")
    for seed, rows in allrows.groupby("seed", sort=False):
        print_misses(rows, f"seed {seed:<4} ")


# ---------------------------------------------------------------------------------------------- GitHub


def github_frames(fit_patterns: bool) -> tuple[pd.DataFrame, pd.DataFrame]:
    from bench_retrieval import COMPONENT_ALIASES, DROP_COMPONENTS

    rows = [json.loads(line) for line in GITHUB.read_text(encoding="utf-8").splitlines()]
    comps = []
    for r in rows:
        named = [COMPONENT_ALIASES.get(c, c) for c in r.get("components") or []]
        named = [c for c in named if c not in DROP_COMPONENTS]
        comps.append(named[0] if named else "unspecified")
    inc = pd.DataFrame(
        {
            "id": [r["id"] for r in rows],
            "date": pd.to_datetime([r["started_at"] for r in rows], utc=True),
            "component": comps,
        }
    )
    long = weekly_incident_counts(inc.assign(date=inc["date"].dt.tz_convert(None)), ("component",))
    if fit_patterns:
        from ml.io.schemas import Incident
        from ml.patterns.model import PatternModel
        from ml.text.documents import redact, strip_html

        start = cpu_seconds()
        docs = [
            Incident(
                id=r["id"],
                title=r["name"],
                summary=redact(strip_html(r["text"])) or r["name"],
                started_at=dt.datetime.fromisoformat(r["started_at"].replace("Z", "+00:00")),
            )
            for r in rows
        ]
        model = PatternModel().fit(docs)
        names = {str(p.id): p.name for p in model.patterns_}
        inc["pattern_id"] = [str(model.assignments_[r["id"]]) for r in rows]
        inc["pattern_name"] = [names.get(p, p) for p in inc["pattern_id"]]
        print(f"PatternModel fitted on {len(rows)} GitHub incidents in {cpu_seconds() - start:.0f} CPU s")
    return long, inc


def run_github(fit_patterns: bool) -> None:
    if not GITHUB.exists():
        print(f"\nGitHub status corpus absent ({GITHUB}), skipped")
        return
    long, inc = github_frames(fit_patterns)
    start = cpu_seconds()
    results = explain_signals(long, None, inc if fit_patterns else None)
    per = long.groupby("component").y.sum().sort_values(ascending=False)
    print(
        f"\n## GitHub status corpus: {len(inc)} incidents, {long.ds.nunique()} weeks, {len(per)} components "
        f"({', '.join(f'{c} {n}' for c, n in per.items())}); "
        f"pattern causes: {'PatternModel fitted on the corpus' if fit_patterns else 'none (no pattern ids given)'}"
    )
    agg = [r for r in results if "/" not in r["series"]]
    named = [r for r in results if "/" in r["series"] and r["verdict"] == "explained"]
    per_series = collections.Counter(r["series"] for r in results if "/" in r["series"])
    print(
        f"{len(results)} shifts in {cpu_seconds() - start:.1f} CPU s: {len(agg)} of the aggregate, per component "
        + ", ".join(f"{k.split('=', 1)[1]} {n}" for k, n in per_series.most_common())
    )
    print(f"aggregate shifts ({sum(r['verdict'] == 'explained' for r in agg)} explained), newest first:")
    for r in agg + named:
        top = ", ".join(_cause_text(c) for c in r["causes"][:3]) or "-"
        print(f"  {r['date']}  {r['series']:<34} {r['magnitude']:+7.2f}/week  {r['verdict']:<19} {top}")
    for r in [r for r in agg if r["verdict"] == "explained"][:3] + named[:3]:
        print(f"  e.g. {r['series']} {r['date']}: {r['causes'][0]['summary']}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--patterns", choices=["truth", "model"], default="truth", help="sample pattern ids")
    ap.add_argument(
        "--seeds",
        default="",
        help="comma-separated generator seeds: score samples generated with each (7 = the committed sample) "
        "instead of data/sample; per-seed and pooled figures",
    )
    ap.add_argument("--no-github", action="store_true", help="skip the GitHub status corpus")
    ap.add_argument(
        "--no-github-patterns",
        action="store_true",
        help="no PatternModel on the GitHub corpus (no pattern causes there; saves about 45 CPU s)",
    )
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    try:
        seeds = [int(x) for x in args.seeds.split(",") if x.strip()]
    except ValueError:
        ap.error(f"--seeds takes comma-separated integers, got {args.seeds!r}")
    if seeds:
        run_seeds(args.patterns, seeds)
    else:
        run_sample(args.patterns)
    if not args.no_github:
        run_github(not args.no_github_patterns)


if __name__ == "__main__":
    main()
