"""Why it moved on a real incident history with planted slice effects (issue #16's goal on hidden real data).

    python bench/bench_planted.py [--trials 100] [--weeks 104] [--sizes 1,2,3] [--seed 0] [--teams K] [--sparse]
                                  [--effect add|scale|drop]

Base: the GitHub status corpus (../shared/data/github-status/incidents.jsonl), weekly incident counts per
component (the first listed, names normalised as in bench_retrieval; none listed: "unspecified"), the aggregate
being their sum, as ``bench_causes.py`` reads it. Each trial takes a window of ``--weeks`` weeks of that real
history, a component and a week D at least 30 weeks from either end of the window, all drawn at random, and plants
a sustained rise in that component from D on: every week gets Poisson(lam) more incidents, lam = size x the
aggregate's noise sd (a robust sd, 1.4826 x the median absolute deviation of its weekly differences / sqrt(2), over
the window's weeks before D). ``explain_signals`` then runs on the window with no other input (no incidents, no
change log), as ``recur explain --indicators`` would. Scored per size:

- detected: the aggregate has a shift within 14 days of D;
- top-1 / top-3: that shift's first cause / one of its first three is ``component=<the planted one>``;
- part found: the planted component's own series has a shift within 14 days of D;
- date range holds D: of the detected, how many explanations' ``date_range`` (the dates the shift may have
  happened between) holds D.

``--effect``: the kind of effect planted. ``add`` (default) as above. ``scale``: the component fails ``size`` times
as often from D (each week's count c gets Poisson((size - 1) x c) more: its real bursts and quiet weeks grow with
it; e.g. ``--sizes 2,3``). ``drop``: a share ``size`` of its incidents stop from D (each removed with probability
``size``, e.g. ``--sizes 0.5,1``; the baseline then names the component that fell most). For both the component is
drawn among those with at least 0.5 incidents a week before D in the window (the busiest when none has), since
scaling a silent one changes nothing; the figure "mean" is what the effect added a week from D.

``--teams K``: two dimensions, as a company's history has them: the components become ``service`` values owned by
K made-up teams (the i-th component by name goes to ``team<i mod K>``), so there are per-team aggregates too. The
planted service is then named by ``service=<it>`` (its team x service pair is the same set of series); scored on
the total and on its team's aggregate (``team found`` / ``team top-1``).

``--sparse``: the input holds only the rows with an incident, as an export grouped by component and week has
them (no row for a week without one); the explanation should not change (absent weeks of a count are zeros,
:mod:`ml.indicators.completion`) except where the window's first or last weeks had no incident at all, so that
the span the rows cover is shorter.

Size 0 is the same windows with nothing planted: the share where the real history already has an aggregate shift
within 14 days of D, and how often a slice is then named with confidence >= 0.8 (no planted truth there; what the
real data holds). Baseline, on the same windows and told the true date: the component whose mean over the 12 weeks
from D minus its mean over the 12 weeks before rose most (a naive attribution that knows when; it cannot abstain).
Blind baseline, not told the date: PELT with a BIC penalty (2 sd^2 log n, sd from the MAD of the weekly
differences) on the total; detected when one of its change points lies within 14 days of D, top-1 when the same
naive attribution at the nearest one names the planted component (size 0: how often a change point lies there).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_causes import GITHUB, cpu_seconds, github_frames, pelt_bic  # noqa: E402

from ml.causes import explain_signals  # noqa: E402
from ml.indicators.changepoints import mad_sd  # noqa: E402

TOL_DAYS = 14
MARGIN = 30  # weeks between D and either end of the window
BLAME = 0.8
BASE_WEEKS = 12
#: Fewest incidents a week before D a component needs to be scaled or dropped (``--effect scale|drop``).
BUSY = 0.5


def plant(
    window: pd.DataFrame,
    comp: str,
    d: pd.Timestamp,
    size: float,
    rng: np.random.Generator,
    col: str = "component",
    effect: str = "add",
) -> tuple[pd.DataFrame, float]:
    """The window with the effect planted in ``comp`` from ``d``; and the weekly mean it adds there (see the module
    docstring: ``add`` Poisson(size x the total's noise sd) a week, ``scale`` each week's count times ``size`` on
    average, ``drop`` each incident removed with probability ``size``)."""
    out = window.copy()
    hit = (out[col] == comp) & (out.ds >= d)
    if size <= 0:
        return out, 0.0
    y = out.loc[hit, "y"].to_numpy(dtype=float)
    if effect == "add":
        total = window.groupby("ds").y.sum().sort_index()
        sd = mad_sd(np.diff(total[total.index < d].to_numpy(dtype=float))) / math.sqrt(2)
        # a floor: a quiet stretch of a sparse total has a median difference of 0
        new = y + rng.poisson(size * max(sd, 0.5), len(y))
    elif effect == "scale":
        new = y + rng.poisson((size - 1.0) * y)
    else:
        new = rng.binomial(y.astype(int), 1.0 - size).astype(float)
    out.loc[hit, "y"] = new
    return out, float(new.mean() - y.mean()) if len(y) else 0.0


def busy_component(window: pd.DataFrame, d: pd.Timestamp, rng: np.random.Generator, col: str) -> str:
    """A component drawn among those with at least ``BUSY`` incidents a week before ``d`` in the window (the
    busiest when none has): scaling or dropping a silent one changes nothing."""
    before = window[window.ds < d].groupby(col).y.mean()
    busy = sorted(before[before >= BUSY].index)
    return str(rng.choice(busy)) if busy else str(before.idxmax())


def baseline(window: pd.DataFrame, d: pd.Timestamp, col: str = "component", fall: bool = False) -> str:
    """The component whose mean rose (``fall``: fell) most from the BASE_WEEKS weeks before ``d`` to the
    BASE_WEEKS from it."""
    span = pd.Timedelta(weeks=BASE_WEEKS)
    before = window[(window.ds >= d - span) & (window.ds < d)].groupby(col).y.mean()
    after = window[(window.ds >= d) & (window.ds < d + span)].groupby(col).y.mean()
    rise = after.reindex(before.index, fill_value=0.0) - before
    return str(rise.idxmin() if fall else rise.idxmax())


def blind_baseline(
    window: pd.DataFrame, d: pd.Timestamp, col: str = "component", fall: bool = False
) -> tuple[bool, str | None]:
    """A standard blind pipeline, not told the date: PELT with a BIC penalty (2 sd^2 log n, sd from the MAD of
    the weekly differences, segments of at least 4 weeks) on the total's weekly counts; (a change point within
    ``TOL_DAYS`` of ``d``, the component :func:`baseline` names at the nearest one)."""
    dates = pelt_bic(window.groupby("ds").y.sum().sort_index(), floor=0.5)
    hits = [x for x in dates if abs((x - d).days) <= TOL_DAYS]
    if not hits:
        return False, None
    at = min(hits, key=lambda x: abs((x - d).days))
    return True, baseline(window, at, col, fall)


def near(results: list[dict[str, Any]], series: str, d: pd.Timestamp) -> dict[str, Any] | None:
    hits = [
        r for r in results if r["series"] == series and abs((pd.Timestamp(r["date"]) - d).days) <= TOL_DAYS
    ]
    return min(hits, key=lambda r: abs((pd.Timestamp(r["date"]) - d).days)) if hits else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=100, help="windows per size (default 100)")
    ap.add_argument("--weeks", type=int, default=104, help="weeks of history per window (default 104)")
    ap.add_argument("--sizes", default="1,2,3", help="planted rises, in aggregate noise sds (default 1,2,3)")
    ap.add_argument("--seed", type=int, default=0, help="random seed of the draws (default 0)")
    ap.add_argument("--misses", action="store_true", help="list every planted rise not named first")
    ap.add_argument(
        "--effect",
        choices=["add", "scale", "drop"],
        default="add",
        help="add: Poisson(size x the total's noise sd) more a week (default); scale: each week's count x size on "
        "average; drop: each incident removed with probability size (sizes then 0-1)",
    )
    ap.add_argument(
        "--teams",
        type=int,
        default=0,
        help="K > 0: components become services of K made-up teams (default 0)",
    )
    ap.add_argument(
        "--sparse",
        action="store_true",
        help="keep only the rows with an incident (no zero rows) in the input",
    )
    args = ap.parse_args()
    if not GITHUB.exists():
        sys.exit(f"bench_planted: the GitHub status corpus is absent ({GITHUB})")
    if args.weeks < 2 * MARGIN + 4:
        ap.error(f"--weeks must be at least {2 * MARGIN + 4}")
    try:
        sizes = [float(s) for s in args.sizes.split(",") if s.strip()]
    except ValueError:
        ap.error(f"--sizes takes numbers separated by commas, got {args.sizes!r}")
    bad = [
        x for x in sizes if (args.effect == "drop" and not 0 < x <= 1) or (args.effect == "scale" and x <= 1)
    ]
    if bad:
        ap.error(
            f"--sizes for --effect {args.effect} must be {'in (0, 1]' if args.effect == 'drop' else '> 1'}"
        )
    if args.teams < 0:
        ap.error(f"--teams must be 0 or more, got {args.teams}")
    long, _ = github_frames(fit_patterns=False)
    weeks = np.sort(long.ds.unique())
    comps = sorted(long.component.unique())
    col = "service" if args.teams else "component"
    team_of = {c: f"team{i % args.teams}" for i, c in enumerate(comps)} if args.teams else {}
    if args.teams:
        long = long.rename(columns={"component": "service"})
        long["team"] = long.service.map(team_of)
    rng = np.random.default_rng(args.seed)
    draws = []
    for _ in range(args.trials):
        a = int(rng.integers(0, len(weeks) - args.weeks))
        d = pd.Timestamp(weeks[a + int(rng.integers(MARGIN, args.weeks - MARGIN))])
        draws.append(
            (pd.Timestamp(weeks[a]), pd.Timestamp(weeks[a + args.weeks - 1]), str(rng.choice(comps)), d)
        )
    print(
        f"## Planted slice effects ({args.effect}) on the GitHub status corpus: {len(comps)} components, "
        f"{len(weeks)} weeks; "
        f"{args.trials} windows of {args.weeks} weeks per size, seed {args.seed}"
        + (f"; the components are services of {args.teams} teams" if args.teams else "")
        + ("; only the rows with an incident given" if args.sparse else "")
    )
    start_cpu, start_wall = cpu_seconds(), time.perf_counter()
    for size in [0.0, *sizes]:
        rows = []
        for i, (lo, hi, comp, d) in enumerate(draws):
            window = long[(long.ds >= lo) & (long.ds <= hi)]
            rng_i = np.random.default_rng(args.seed * 1000 + i)
            if args.effect != "add":
                comp = busy_component(window, d, rng_i, col)
            planted, lam = plant(window, comp, d, size, rng_i, col, args.effect)
            results = explain_signals(planted[planted.y != 0] if args.sparse else planted)
            agg = near(results, "incidents", d)
            got = [c["key"] for c in agg["causes"]] if agg else []
            want = f"{col}={comp}"
            wants = {want, f"service={comp},team={team_of[comp]}"} if args.teams else {want}
            leaf = f"incidents/team={team_of[comp]}/service={comp}" if args.teams else f"incidents/{want}"
            row = {
                "lam": lam,
                "detected": agg is not None,
                "top1": bool(got) and got[0] in wants,
                "top3": bool(wants & set(got[:3])),
                "blamed": agg is not None
                and any(c["kind"] == "slice" and c["confidence"] >= BLAME for c in agg["causes"]),
                "part": near(results, leaf, d) is not None,
                "baseline": baseline(planted, d, col, args.effect == "drop") == comp,
            }
            span = [pd.Timestamp(x) for x in (agg or {}).get("date_range") or []]
            row["in_range"] = bool(span) and span[0] <= d <= span[1]
            blind, named = blind_baseline(planted, d, col, args.effect == "drop")
            row |= {"blind": blind, "blind_top1": named == comp}
            if args.teams:
                team = near(results, f"incidents/team={team_of[comp]}", d)
                row["team"] = team is not None
                row["team_top1"] = bool(team and team["causes"]) and team["causes"][0]["key"] in wants
            rows.append(row)
            if args.misses and size > 0 and not rows[-1]["top1"]:
                top = (
                    ", ".join(f"{c['key']} ({c['confidence']:.2f})" for c in agg["causes"][:3]) if agg else ""
                )
                print(
                    f"  miss: size {size:g} {want} from {d.date()} (window {lo.date()}..{hi.date()}): "
                    + (f"shift {agg['date']} {agg['verdict']}; {top or 'no cause'}" if agg else "no shift")
                )
        t = pd.DataFrame(rows)
        if size == 0:
            print(
                f"size 0 (nothing planted): an aggregate shift within {TOL_DAYS} days of D in "
                f"{t.detected.mean():.3f} of windows, a slice named with confidence >= {BLAME} in "
                f"{t.blamed.mean():.3f}  |  blind baseline: a change point within {TOL_DAYS} days of D in "
                f"{t.blind.mean():.3f}"
            )
            continue
        print(
            f"size {size:g} (mean {t.lam.mean():+.2f} incidents a week): detected {t.detected.mean():.3f}  "
            f"top-1 {t.top1.mean():.3f}  top-3 {t.top3.mean():.3f}  part found {t.part.mean():.3f}  "
            + (f"team found {t.team.mean():.3f}  team top-1 {t.team_top1.mean():.3f}  " if args.teams else "")
            + f"date range holds D {int(t.in_range.sum())}/{int(t.detected.sum())}  "
            f"|  baseline told the date: top-1 {t.baseline.mean():.3f}  |  blind baseline: detected "
            f"{t.blind.mean():.3f} top-1 {t.blind_top1.mean():.3f}"
        )
    print(
        f"explain_signals: {cpu_seconds() - start_cpu:.0f} CPU s, {time.perf_counter() - start_wall:.0f} s wall "
        f"(load average {' '.join(f'{x:.1f}' for x in os.getloadavg())})"
    )


if __name__ == "__main__":
    main()
