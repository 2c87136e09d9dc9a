"""`recur explain --incidents` end to end on real incidents with a planted slice effect (issue #16, the CLI path).

    python bench/bench_planted_cli.py [--trials 20] [--seed 5]

Each trial takes two years of the GitHub status corpus's incidents (../shared/data/github-status/incidents.jsonl;
the window's start drawn among 2016-2021), their components made services (the first listed, names normalised as in
bench_retrieval; none: "unspecified") of 4 made-up teams (the i-th component by name runs in ``team<i mod 4>``),
a service and a week D 30-74 weeks into the window, drawn at random. From D on, each week gets 0-2 more incidents of
that service (mean 1.2 a week), each a copy of the title and text of one of its real incidents (a planted effect
that looks like the service's own failures). The incidents are written as JSONL and ``recur explain --incidents
FILE --json`` runs on them in a subprocess, as a user would (weekly counts by team x service; pattern causes from
the champion ``incident-patterns`` model of the default store, if there is one). Scored: the total (``incidents``)
has a shift within 14 days of D, and its first cause is the planted service (``service=<it>``, or that service with
its team). Baseline, told the date: the service whose weekly mean over the 12 weeks from D minus the 12 weeks
before rose most. About 8 s a trial.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import re
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from bench_causes import GITHUB  # noqa: E402
from bench_retrieval import COMPONENT_ALIASES, DROP_COMPONENTS  # noqa: E402

TOL_DAYS = 14
BASE_WEEKS = 12
_TAG = re.compile(r"<[^>]{0,2000}>")


def component(r: dict) -> str:
    named = [COMPONENT_ALIASES.get(c, c) for c in r.get("components") or []]
    named = [c for c in named if c not in DROP_COMPONENTS]
    return named[0] if named else "unspecified"


def baseline(rows: list[dict], d: dt.date) -> str:
    """The service whose mean rose most from the BASE_WEEKS weeks before ``d`` to the BASE_WEEKS from it."""
    span = dt.timedelta(weeks=BASE_WEEKS)
    before, after = Counter(), Counter()
    for r in rows:
        day = dt.date.fromisoformat(r["started_at"][:10])
        if d - span <= day < d:
            before[r["service"]] += 1
        elif d <= day < d + span:
            after[r["service"]] += 1
    services = set(before) | set(after)
    return str(max(sorted(services), key=lambda s: after[s] - before[s]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=20, help="windows (default 20)")
    ap.add_argument("--seed", type=int, default=5, help="random seed of the draws (default 5)")
    args = ap.parse_args()
    if not GITHUB.exists():
        sys.exit(f"bench_planted_cli: the GitHub status corpus is absent ({GITHUB})")
    corpus = [json.loads(line) for line in GITHUB.read_text(encoding="utf-8").splitlines()]
    comps = sorted({component(r) for r in corpus})
    team = {c: f"team{i % 4}" for i, c in enumerate(comps)}
    rng = random.Random(args.seed)
    recur = str(Path(sys.executable).with_name("recur"))
    found = top1 = base = 0
    with tempfile.TemporaryDirectory(prefix="bench-planted-cli-") as tmp:
        path = Path(tmp) / "incidents.jsonl"
        for trial in range(args.trials):
            lo = dt.date(2016, 1, 4) + dt.timedelta(weeks=rng.randint(0, 300))
            hi = lo + dt.timedelta(weeks=104)
            d = lo + dt.timedelta(weeks=rng.randint(30, 74))
            svc = rng.choice(comps)
            window = [r for r in corpus if lo.isoformat() <= r["started_at"][:10] < hi.isoformat()]
            pool = [r for r in corpus if component(r) == svc]
            rows = [
                {
                    "id": r["id"],
                    "title": r["name"],
                    "summary": _TAG.sub(" ", r["text"])[:1500],
                    "started_at": r["started_at"],
                    "service": component(r),
                    "team": team[component(r)],
                }
                for r in window
            ]
            week, k = d, 0
            while week < hi:
                for _ in range(rng.choice([0, 1, 1, 2, 2])):
                    k += 1
                    src = rng.choice(pool)
                    at = dt.datetime(week.year, week.month, week.day, rng.randint(0, 23)) + dt.timedelta(
                        days=rng.randint(0, 6)
                    )
                    rows.append(
                        {
                            "id": f"planted-{k}",
                            "title": src["name"],
                            "summary": _TAG.sub(" ", src["text"])[:1500],
                            "started_at": at.isoformat() + "Z",
                            "service": svc,
                            "team": team[svc],
                        }
                    )
                week += dt.timedelta(days=7)
            path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
            done = subprocess.run(
                [recur, "explain", "--incidents", str(path), "--json"],
                capture_output=True,
                text=True,
                cwd=tmp,
            )
            if done.returncode != 0:
                last = (done.stderr.strip().splitlines() or ["no message"])[-1]
                sys.exit(f"bench_planted_cli: recur explain failed (exit {done.returncode}): {last}")
            near = [
                s
                for s in json.loads(done.stdout)["signals"]
                if s["series"] == "incidents" and abs((dt.date.fromisoformat(s["date"]) - d).days) <= TOL_DAYS
            ]
            causes = near[0]["causes"] if near else []
            first = causes[0]["key"] if causes else ""
            ok = first in (f"service={svc}", f"service={svc},team={team[svc]}")
            b = baseline(rows, d) == svc
            found, top1, base = found + bool(near), top1 + ok, base + b
            top = ", ".join(f"{c['kind']}:{c['key']} ({c['confidence']:.2f})" for c in causes[:3]) or "-"
            print(
                f"{trial:3d} {svc:<15} D {d}  {len(window)} incidents + {k} planted  "
                + (f"total's shift {near[0]['date']}: {top}" if near else "no shift of the total near D")
            )
    n = max(args.trials, 1)
    print(
        f"total's shift within {TOL_DAYS} days of D {found}/{args.trials} = {found / n:.2f}; planted service first "
        f"{top1}/{args.trials} = {top1 / n:.2f}  |  baseline told the date: {base}/{args.trials} = {base / n:.2f}"
    )


if __name__ == "__main__":
    main()
