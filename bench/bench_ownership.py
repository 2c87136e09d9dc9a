"""A change log by team, indicators by service: do the incidents' owners name the right change?

    python bench/bench_ownership.py [--trials 40] [--seed 0] [--stray 0.15]

Simulated (seeded) weekly incident counts of six services over two years (Poisson, 6 a week each); three teams own
two services each, and the incidents (20 per service, naming team and service) say so, but ``--stray`` (15%) of
each service's incidents are filed by another team. In each trial one service
rises by ``size`` x its noise sd at a random week, and the change log holds the owner's change (3 days before the
rise) and, within a week of it, a change of each other team (the distractors: a busy change log). ``explain_signals``
runs blind (it finds the shifts itself), with and without the incidents. Scored on the rising service's shift
within 14 days of the rise (its top cause is the owner's change: top-1; among the first three: top-3; a
distractor named with confidence >= 0.8: blamed) and on the total's (the owner's change among its causes).

Baseline: the same runs without the incidents, where a team's change is on a dimension the series are not split on
(partial agreement for every team, and no cause of the total's).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_planted import near  # noqa: E402

from ml.causes import explain_signals  # noqa: E402

WEEKS = pd.date_range("2024-01-01", periods=104, freq="W-MON")
OWNER = {
    "checkout": "payments",
    "ledger": "payments",
    "search": "growth",
    "feed": "growth",
    "auth": "identity",
}
OWNER["sessions"] = "identity"
RATE = 6.0
BLAME = 0.8


def trial(
    rng: np.random.Generator, size: float, stray: float
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, str, int]:
    """(indicators, incidents, changes, rising service, week of the rise)."""
    service = str(rng.choice(sorted(OWNER)))
    week = int(rng.integers(30, 80))
    rows = []
    for svc in sorted(OWNER):
        lam = np.full(len(WEEKS), RATE)
        if svc == service:
            lam[week:] += size * np.sqrt(RATE)
        rows += [
            {"indicator": "incidents", "ds": d, "y": float(y), "service": svc}
            for d, y in zip(WEEKS, rng.poisson(lam), strict=True)
        ]
    teams = sorted(set(OWNER.values()))
    incidents = pd.DataFrame(
        [
            {
                "id": f"INC-{svc}-{i}",
                "date": WEEKS[i * 5],
                # a share of each service's incidents is filed by another team (mislabelled, or helping out)
                "team": str(rng.choice([t for t in teams if t != team])) if rng.random() < stray else team,
                "service": svc,
            }
            for svc, team in sorted(OWNER.items())
            for i in range(20)
        ]
    )
    start = WEEKS[week] - pd.Timedelta(days=3)
    owner = OWNER[service]
    changes = [{"ds": start, "team": owner, "kind": "deploy", "description": "the cause", "id": "CHG-TRUE"}]
    for k, team in enumerate(sorted(set(OWNER.values()) - {owner})):
        when = start + pd.Timedelta(days=int(rng.integers(-7, 8)))
        changes.append(
            {"ds": when, "team": team, "kind": "deploy", "description": "other", "id": f"CHG-D{k}"}
        )
    return pd.DataFrame(rows), incidents, pd.DataFrame(changes), service, week


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=40, help="trials per size (default 40)")
    ap.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    ap.add_argument(
        "--stray",
        type=float,
        default=0.15,
        help="share of each service's incidents filed by another team (default 0.15)",
    )
    args = ap.parse_args()
    print(
        f"## A team's change on indicators split by service: {len(OWNER)} services of "
        f"{len(set(OWNER.values()))} teams ({args.stray:.0%} of each service's incidents filed by another team), "
        f"{args.trials} trials per size, seed {args.seed}"
    )
    start = time.process_time()
    for size in (1.5, 3.0):
        scores: dict[str, list[float]] = {}
        for t in range(args.trials):
            rng = np.random.default_rng(args.seed * 1000 + t)
            frame, incidents, changes, service, week = trial(rng, size, args.stray)
            for mode, inc in (("with incidents", incidents), ("baseline, without", None)):
                res = explain_signals(frame, incidents=inc, changes=changes)
                leaf = near(res, f"incidents/service={service}", WEEKS[week])
                keys = [c["key"] for c in leaf["causes"]] if leaf else []
                total = near(res, "incidents", WEEKS[week])
                got = scores.setdefault(mode, [0.0] * 6)
                got[0] += leaf is not None
                got[1] += bool(keys) and keys[0] == "CHG-TRUE"
                got[2] += "CHG-TRUE" in keys[:3]
                got[3] += bool(leaf) and any(
                    c["key"].startswith("CHG-D") and c["confidence"] >= BLAME for c in leaf["causes"]
                )
                got[4] += total is not None
                got[5] += bool(total) and "CHG-TRUE" in [c["key"] for c in total["causes"]]
        for mode, (found, top1, top3, blamed, tot, tot_named) in scores.items():
            n = args.trials
            print(
                f"size {size:g} sd, {mode:<18} service shift found {found / n:.3f}  top-1 {top1 / n:.3f}  "
                f"top-3 {top3 / n:.3f}  a distractor blamed {blamed / n:.3f}  |  total's shift found "
                f"{tot / n:.3f}, the owner's change among its causes {tot_named / n:.3f}"
            )
    print(f"explain_signals: {time.process_time() - start:.0f} CPU s")


if __name__ == "__main__":
    main()
