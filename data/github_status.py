"""The GitHub status corpus as Recur input files: postmortems and weekly incident counts per component.

``../shared/data/github-status/incidents.jsonl`` holds GitHub's public status-page incidents (2010 onwards: a name,
the status updates as HTML, the impact and the affected components). This script writes, into OUT:

- ``incidents.jsonl``: one Recur incident each (title = the incident's name, summary = its updates as plain text,
  service = its first listed component or ``unspecified``, severity from the impact: critical SEV1, major SEV2,
  minor SEV3, none SEV4). The text is left as published: Recur redacts it when it reads the file.
- ``indicators.csv``: the weekly count of incidents (``indicator`` = ``incidents``) per component (``service``),
  Monday weeks from the first to the last incident, zero-filled; their sum over services is the aggregate that
  ``recur explain`` analyses with its slices.

    python data/github_status.py OUT [--source ../shared/data/github-status/incidents.jsonl] [--since YYYY-MM-DD]
    recur train patterns --incidents OUT/incidents.jsonl      # optional: pattern causes need a champion
    recur explain --indicators OUT/indicators.csv --incidents OUT/incidents.jsonl --since 2023-01-01
"""

from __future__ import annotations

import argparse
import datetime as dt
import html
import json
import re
import sys
from pathlib import Path
from typing import Any

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ml.indicators.incident_counts import weekly_incident_counts  # noqa: E402

SOURCE = ROOT.parent / "shared" / "data" / "github-status" / "incidents.jsonl"
# Names of one component across the years; the status page's footer is not a component.
ALIASES = {
    "GitHub Pages": "Pages",
    "GitHub Actions": "Actions",
    "GitHub Packages": "Packages",
    "Issues, PRs, Dashboard, Projects": "Issues",
    "Issues, PRs, Projects": "Issues",
    "Issues, Pull Requests, Projects": "Issues",
}
DROP = {"Visit www.githubstatus.com for more information"}
SEVERITY = {"critical": "SEV1", "major": "SEV2", "minor": "SEV3", "none": "SEV4"}
_TAG = re.compile(r"<[^<>]{0,2000}>")  # bounded: linear on any input
_SPACE = re.compile(r"\s+")


def plain(text: str) -> str:
    """HTML to one line of text (tags dropped, entities decoded, whitespace collapsed)."""
    return _SPACE.sub(" ", html.unescape(_TAG.sub(" ", text))).strip()


def _when(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def component(row: dict[str, Any]) -> str:
    named = [ALIASES.get(c, c) for c in row.get("components") or []]
    named = [c for c in named if c not in DROP]
    return named[0] if named else "unspecified"


def convert(source: Path, out: Path, since: dt.date | None = None) -> tuple[int, int]:
    """Write OUT/incidents.jsonl and OUT/indicators.csv; (incidents, indicator rows) written."""
    rows = [json.loads(line) for line in source.read_text(encoding="utf-8").splitlines() if line.strip()]
    if since is not None:
        rows = [r for r in rows if _when(r["started_at"]).date() >= since]
    if not rows:
        raise ValueError(f"{source}: no incident{' since ' + since.isoformat() if since else ''}")
    out.mkdir(parents=True, exist_ok=True)
    dated: list[tuple[dt.date, str]] = []
    with (out / "incidents.jsonl").open("w", encoding="utf-8") as f:
        for r in rows:
            started = _when(r["started_at"])
            service = component(r)
            summary = plain(r.get("text") or "") or r["name"]
            record = {
                "id": r["id"],
                "title": r["name"],
                "summary": summary,
                "service": service,
                "severity": SEVERITY.get(str(r.get("impact")), None),
                "started_at": started.isoformat(),
                "resolved_at": _when(r["resolved_at"]).isoformat() if r.get("resolved_at") else None,
            }
            if record["resolved_at"] is not None and record["resolved_at"] < record["started_at"]:
                record["resolved_at"] = None
            f.write(json.dumps(record) + "\n")
            dated.append((started.date(), service))
    # the counts `recur explain --incidents` makes of the same file
    counts = weekly_incident_counts(
        pd.DataFrame({"date": pd.to_datetime([d for d, _ in dated]), "service": [s for _, s in dated]})
    )
    counts["ds"] = counts["ds"].dt.date.map(dt.date.isoformat)
    counts["y"] = counts["y"].astype(int)
    counts.to_csv(out / "indicators.csv", index=False, columns=["indicator", "ds", "y", "service"])
    n = len(counts)
    return len(rows), n


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    ap.add_argument("out", type=Path, help="folder to write incidents.jsonl and indicators.csv into")
    ap.add_argument("--source", type=Path, default=SOURCE, help="the corpus's incidents.jsonl")
    ap.add_argument("--since", type=dt.date.fromisoformat, default=None, help="only incidents from this date")
    args = ap.parse_args(argv)
    if not args.source.is_file():
        sys.stderr.write(f"error: {args.source}: no such file (the GitHub status corpus)\n")
        return 2
    try:
        n_inc, n_rows = convert(args.source, args.out, args.since)
    except (ValueError, KeyError, OSError) as exc:
        sys.stderr.write(f"error: {args.source}: {exc}\n")
        return 2
    sys.stdout.write(
        f"wrote {n_inc} incidents to {args.out / 'incidents.jsonl'} and {n_rows} weekly counts to "
        f"{args.out / 'indicators.csv'}\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
