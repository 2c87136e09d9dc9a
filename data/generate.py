"""Seeded generator for Recur's sample data (incidents, postmortems, indicators, experiments, truth).

    python data/generate.py --seed 7 --out data/sample

The same seed gives byte-identical files. Only the standard library, numpy and pyyaml are used.
See data/README.md for the formats and the ground truth.

Incident texts are built from per-pattern template pools (several titles, summaries, root causes, timeline
events, contributing factors and action items per failure pattern), slots filled per incident (services,
versions, regions, numbers, people, hosts, IPs) and a shared vocabulary pool used by every pattern, so that
patterns overlap in wording the way real postmortems do. All text, names and experiment texts are read from
data/templates/sample/*.yaml; this module is the command line and writes the files.

The modules beside this one hold the parts (data/ holds scripts, not a package; they import each other by name):
sample_spec.py (templates, names, patterns, seeded draws), sample_text.py (template rendering, slot values,
timelines, action items), sample_incidents.py (incidents and postmortems), sample_series.py (indicators,
experiments, shifts) and template_files.py (reading the YAML templates); hard.py writes data/sample-hard.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:  # imported by file path (tests, benchmarks): make the sibling modules importable
    sys.path.insert(0, _HERE)

from sample_causes import burst_plan, plant_causes  # noqa: E402
from sample_incidents import (  # noqa: E402
    add_references,
    assign_ids,
    generate_burst_incidents,
    generate_incidents,
    generate_postmortems,
    incident_record,
    postmortem_markdown,
)
from sample_series import INDICATORS, build_series, plan_experiments, plan_shifts, simulate, week_dates  # noqa: E402
from sample_spec import ONE_OFF, PATTERNS, TEAMS, Rand, iso  # noqa: E402

__all__ = ["PATTERNS", "generate", "main"]

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
    # the fifth stream plants the causes (sample_causes.py): the other streams draw what they drew before it
    streams = [Rand(s) for s in np.random.SeedSequence(seed).spawn(5)]
    inc_rng, pm_rng, ind_rng, ref_rng, cause_rng = streams

    drafts, keys = generate_incidents(inc_rng)
    next_ai = assign_ids(drafts, "INC-", 4, 1)
    add_references(ref_rng, drafts)
    used = {d.one_off for d in drafts if d.one_off is not None}
    pms = generate_postmortems(pm_rng, used)
    next_ai = assign_ids(pms, "PM-", 3, next_ai)

    series = build_series(ind_rng)
    plans = plan_experiments(ind_rng, series)
    plan_shifts(ind_rng, series, plans)
    simulate(ind_rng, series)
    causes = plant_causes(cause_rng, series, plans)
    # the bursts' postmortems: ids after the others (INC-0601...), written in date order with them
    bursts = generate_burst_incidents(cause_rng, burst_plan(causes))
    assign_ids(bursts, "INC-", 4, next_ai, first=len(drafts) + 1)
    drafts = sorted(drafts + bursts, key=lambda d: d.started_at)

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
    _write_text(
        out / "changes.csv",
        _csv(
            [["ds", "team", "kind", "description", "id"]]
            + [[c.ds.isoformat(), c.team, c.kind, c.description, c.id] for c in causes.changes]
        ),
    )

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
    _write_text(
        truth / "causes.csv", _csv([["series", "date", "cause_kind", "cause_key"], *causes.truth_rows()])
    )
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
    for pattern in PATTERNS:
        key = keys.get(pattern.slug)
        pat_rows.append(
            [
                pattern.slug,
                pattern.trend,
                sum(d.pattern == pattern.slug for d in drafts),
                key["id"] if key else "",
                iso(key["closed_at"]) if key else "",
                pattern.description,
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
        "changes": len(causes.changes),
        "planted causes": len(causes.truth),
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
