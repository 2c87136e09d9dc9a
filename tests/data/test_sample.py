"""The committed sample in data/sample: reproducible, valid against the schemas, and consistent with its truth."""

from __future__ import annotations

import collections
import csv
import datetime as dt
import importlib.util
import json
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from ml.io.schemas import Experiment, Incident, series_key

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "data" / "sample"
WINDOW = (dt.datetime(2024, 11, 1, tzinfo=dt.UTC), dt.datetime(2026, 11, 1, tzinfo=dt.UTC))
LAST_WEEK = dt.date(2026, 10, 26)
ACTION_LINE = re.compile(
    r"^- \[(?P<mark>[ x~])\] (?P<id>AI-\d+): (?P<title>.+) "
    r"\(created (?P<created>\d{4}-\d{2}-\d{2})(?:, closed (?P<closed>\d{4}-\d{2}-\d{2}))?\)$"
)


@pytest.fixture(scope="module")
def gen() -> ModuleType:
    spec = importlib.util.spec_from_file_location("recur_sample_generate", ROOT / "data" / "generate.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look the module up while the class is built
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def rows() -> list[dict[str, Any]]:
    with open(SAMPLE / "incidents.jsonl", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


@pytest.fixture(scope="module")
def incidents(rows: list[dict[str, Any]]) -> list[Incident]:
    return [Incident.model_validate(r) for r in rows]


@pytest.fixture(scope="module")
def wide() -> pd.DataFrame:
    ind = pd.read_csv(SAMPLE / "indicators.csv")
    ind["series"] = [series_key(i, team=t) for i, t in zip(ind.indicator, ind.team, strict=True)]
    return ind.pivot(index="ds", columns="series", values="y")


@pytest.fixture(scope="module")
def noise_sd() -> pd.Series:
    return pd.read_csv(SAMPLE / "truth" / "series.csv").set_index("series")["noise_sd"]


@pytest.fixture(scope="module")
def experiments() -> list[Experiment]:
    return [Experiment.model_validate(e) for e in yaml.safe_load((SAMPLE / "experiments.yaml").read_text())]


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _csv_rows(name: str) -> list[dict[str, str]]:
    with open(SAMPLE / "truth" / name, encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


# ---------------------------------------------------------------------------------------------- reproducibility


def test_committed_sample_equals_a_fresh_regeneration(gen: ModuleType, tmp_path: Path) -> None:
    gen.generate(tmp_path / "s", seed=7)
    fresh = _files(tmp_path / "s")
    # data/sample/config/ holds hand-written settings that the generator does not produce
    committed = {k: v for k, v in _files(SAMPLE).items() if not k.startswith("config/")}
    assert sorted(fresh) == sorted(committed)
    changed = [name for name in fresh if fresh[name] != committed[name]]
    assert changed == [], f"regenerate with `python data/generate.py`: {changed}"


def test_another_seed_gives_other_data(gen: ModuleType, tmp_path: Path) -> None:
    gen.generate(tmp_path / "s8", seed=8)
    assert (tmp_path / "s8" / "incidents.jsonl").read_bytes() != (SAMPLE / "incidents.jsonl").read_bytes()
    assert (tmp_path / "s8" / "indicators.csv").read_bytes() != (SAMPLE / "indicators.csv").read_bytes()


def test_sample_is_small() -> None:
    assert sum(len(b) for b in _files(SAMPLE).values()) < 4_000_000


# ---------------------------------------------------------------------------------------------- incidents


def test_incidents_validate_and_are_sane(rows: list[dict[str, Any]], incidents: list[Incident]) -> None:
    assert 550 <= len(incidents) <= 650
    ids = [i.id for i in incidents]
    assert len(set(ids)) == len(ids) and all(re.fullmatch(r"INC-\d{4}", i) for i in ids)
    # exactly the schema's fields, pattern included; no analyst labels (root_cause_category is optional: the
    # benchmark adds them to a share of the hard sample to measure how labels help)
    assert set(rows[0]) == set(Incident.model_fields) - {"root_cause_category"}
    assert len({i.team for i in incidents}) == 6 and 10 <= len({i.service for i in incidents}) <= 14
    for inc in incidents:
        assert WINDOW[0] <= inc.started_at < WINDOW[1]
        assert inc.pattern
    sev = collections.Counter(i.severity for i in incidents)
    assert sev["SEV3"] + sev["SEV4"] > 0.5 * len(incidents) and sev["SEV1"] < sev["SEV2"] < sev["SEV3"]
    assert sum(i.reopened == 0 for i in incidents) > 0.8 * len(incidents)
    gaps = np.array([(i.detected_at - i.started_at).total_seconds() / 60 for i in incidents if i.detected_at])
    ttr = np.array([i.ttr_hours for i in incidents if i.ttr_hours is not None])
    assert 2 <= np.median(gaps) <= 30 and gaps.max() > 120  # minutes, with a long tail
    assert 0.5 <= np.median(ttr) <= 4 and ttr.max() > 8  # hours, with a long tail


def test_action_items_are_consistent(incidents: list[Incident]) -> None:
    items = [(inc, a) for inc in incidents for a in inc.action_items]
    assert len({a.id for _, a in items}) == len(items)
    statuses = collections.Counter(a.status for _, a in items)
    assert set(statuses) == {"done", "open", "wontfix"}
    for inc, a in items:
        assert a.created_at is not None and a.created_at >= inc.started_at
        assert (a.closed_at is None) == (a.status == "open")
        assert a.closed_at is None or a.closed_at < WINDOW[1]


def test_patterns_counts_and_one_offs(incidents: list[Incident]) -> None:
    counts = collections.Counter(i.pattern for i in incidents)
    recurring = {p: n for p, n in counts.items() if p != "one-off"}
    assert len(recurring) == 12 and min(recurring.values()) >= 15
    assert 0.07 <= counts["one-off"] / len(incidents) <= 0.13
    truth = {r["incident_id"]: r["pattern"] for r in _csv_rows("incident_patterns.csv")}
    assert all(truth[i.id] == i.pattern for i in incidents)


def test_templates_have_enough_phrasings(gen: ModuleType) -> None:
    for p in gen.PATTERNS:
        assert len(p.texts["root_cause"]) >= 6, p.slug
        assert len(p.texts["summary"]) >= 5, p.slug


def _tokens(inc: Incident) -> set[str]:
    text = " ".join([inc.title, inc.summary, inc.root_cause or ""]).lower()
    return set(re.findall(r"[a-z][a-z0-9_\-]+", text))


def test_no_single_keyword_identifies_a_pattern(incidents: list[Incident]) -> None:
    docs = [_tokens(i) for i in incidents]
    df = collections.Counter(t for d in docs for t in d)
    for pattern in {i.pattern for i in incidents} - {"one-off"}:
        idx = [k for k, i in enumerate(incidents) if i.pattern == pattern]
        inside = collections.Counter(t for k in idx for t in docs[k])
        for tok, n in inside.items():
            recall, precision = n / len(idx), n / df[tok]
            assert not (recall >= 0.8 and precision >= 0.9), (pattern, tok, recall, precision)


def test_texts_vary_in_length_and_shape(incidents: list[Incident]) -> None:
    lengths = np.array([len(i.summary) + len(i.root_cause or "") + len(i.timeline or "") for i in incidents])
    assert (lengths < 300).mean() > 0.05 and (lengths > 1200).mean() > 0.1
    assert 0.1 < np.mean([i.timeline is None for i in incidents]) < 0.4
    assert any(i.root_cause and "\n\n" in i.root_cause for i in incidents)  # multi-paragraph ones
    shared = ["timeout", "latency", "deploy", "rollback", "retr"]
    for word in shared:  # shared vocabulary: each of these shows up in most patterns
        pats = {i.pattern for i in incidents if word in (i.summary + " " + (i.root_cause or "")).lower()}
        assert len(pats) >= 6, (word, pats)


def test_pii_truth_points_at_real_occurrences(incidents: list[Incident]) -> None:
    by_id = {i.id: i for i in incidents}
    rows = _csv_rows("pii.csv")
    kinds = collections.Counter(r["kind"] for r in rows)
    assert kinds["email"] >= 20 and kinds["handle"] >= 50 and kinds["ip"] >= 10
    for r in rows:
        inc = by_id.get(r["incident_id"])
        if inc is None:
            continue  # a Markdown postmortem
        value = getattr(inc, r["field"])
        text = "\n".join(a.title for a in value) if r["field"] == "action_items" else value
        text = "\n".join(text) if isinstance(text, list) else text
        assert r["value"] in text, r


def test_fading_patterns_fade_after_their_key_action(incidents: list[Incident]) -> None:
    items = {a.id: a for i in incidents for a in i.action_items}
    fading = [r for r in _csv_rows("patterns.csv") if r["key_action_item_id"]]
    assert len(fading) >= 2
    for r in fading:
        key = items[r["key_action_item_id"]]
        closed = dt.datetime.fromisoformat(r["key_action_closed_at"].replace("Z", "+00:00"))
        assert key.status == "done" and key.closed_at == closed
        starts = [i.started_at for i in incidents if i.pattern == r["pattern"]]
        before = sum(s < closed for s in starts) / ((closed - WINDOW[0]).days or 1)
        after = sum(s >= closed for s in starts) / ((WINDOW[1] - closed).days or 1)
        assert after < 0.5 * before, r["pattern"]


def test_rising_and_emerging_patterns(incidents: list[Incident]) -> None:
    mid = dt.datetime(2025, 11, 1, tzinfo=dt.UTC)
    for pattern in ("retry-storm", "cache-stampede"):
        first = sum(i.pattern == pattern and i.started_at < mid for i in incidents)
        second = sum(i.pattern == pattern and i.started_at >= mid for i in incidents)
        assert second > 1.3 * first, pattern


# ---------------------------------------------------------------------------------------------- postmortems


def _parse_postmortem(text: str) -> dict[str, Any]:
    assert text.startswith("---\n")
    end = text.index("\n---\n", 4)
    raw: dict[str, Any] = yaml.safe_load(text[4:end])
    sections: dict[str, list[str]] = {}
    current = None
    for line in text[end + 5 :].splitlines():
        if line.startswith("## "):
            current = line[3:].strip().lower()
            sections[current] = []
        elif current is not None:
            sections[current].append(line)
    body = {k: "\n".join(v).strip() for k, v in sections.items()}
    raw.update(summary=body["summary"], impact=body.get("impact"), root_cause=body.get("root cause"))
    raw["timeline"] = body.get("timeline")
    raw["contributing_factors"] = [ln[2:] for ln in body["contributing factors"].splitlines() if ln]
    raw["action_items"] = []
    for ln in body["action items"].splitlines():
        m = ACTION_LINE.match(ln)
        assert m, f"action item line does not follow the documented format: {ln!r}"
        status = {"x": "done", " ": "open", "~": "wontfix"}[m["mark"]]
        raw["action_items"].append(
            {
                "id": m["id"],
                "title": m["title"],
                "status": status,
                "created_at": m["created"],
                "closed_at": m["closed"],
            }
        )
    return raw


def test_postmortems_validate(incidents: list[Incident]) -> None:
    files = sorted((SAMPLE / "postmortems").glob("*.md"))
    assert 10 <= len(files) <= 14
    pms = [Incident.model_validate(_parse_postmortem(f.read_text(encoding="utf-8"))) for f in files]
    ids = {i.id for i in incidents}
    truth = {r["incident_id"]: r["pattern"] for r in _csv_rows("incident_patterns.csv")}
    for pm, f in zip(pms, files, strict=True):
        assert f.stem == pm.id and pm.id not in ids
        assert truth[pm.id] == pm.pattern
        assert pm.resolved_at is not None and pm.timeline and pm.root_cause and pm.action_items
    ai_ids = [a.id for i in incidents + pms for a in i.action_items]
    assert len(set(ai_ids)) == len(ai_ids)


# ---------------------------------------------------------------------------------------------- indicators


def test_indicators_shape_and_ranges(wide: pd.DataFrame) -> None:
    raw = pd.read_csv(SAMPLE / "indicators.csv")
    assert list(raw.columns) == ["indicator", "ds", "y", "team"]
    assert not raw.duplicated(["indicator", "ds", "team"]).any()
    dates = [dt.date.fromisoformat(d) for d in wide.index]
    assert len(dates) == 104 and dates[-1] == LAST_WEEK and all(d.weekday() == 0 for d in dates)
    assert np.all(np.diff([d.toordinal() for d in dates]) == 7)
    assert wide.shape[1] == 36 and not wide.isna().any().any()
    for indicator in ("incidents", "reopens", "skipped_checklist_items", "manual_retries"):
        block = raw.loc[raw.indicator == indicator, "y"]
        assert (block >= 0).all() and (block == block.round()).all(), indicator
    cfr = raw.loc[raw.indicator == "change_failure_rate", "y"]
    assert ((cfr >= 0) & (cfr <= 1)).all()
    assert (raw.loc[raw.indicator == "mttr_hours", "y"] > 0).all()


def test_series_truth_matches_the_data(wide: pd.DataFrame) -> None:
    truth = pd.read_csv(SAMPLE / "truth" / "series.csv")
    assert set(truth.series) == set(wide.columns)
    assert truth.ar_phi.between(0.3, 0.6).all()


def test_level_shifts_are_visible(wide: pd.DataFrame, noise_sd: pd.Series) -> None:
    shifts = pd.read_csv(SAMPLE / "truth" / "shifts.csv")
    assert set(shifts.kind) == {"shift", "experiment", "slice", "pattern", "change"}
    assert (
        9 <= shifts[shifts.kind.isin(["shift", "experiment"])].series.nunique() <= 16
    )  # about a third of 36
    dates = list(wide.index)
    for _, group in shifts.groupby("series"):
        starts = sorted(dates.index(d) for d in group.date)
        for r in group.itertuples():
            sd = noise_sd[r.series]
            if r.kind == "shift":
                assert 2.0 <= abs(r.magnitude) / sd <= 4.0 + 1e-6, r
            y, i = wide[r.series], dates.index(r.date)
            # compare the weeks up to the next shift (at most 12) with those since the previous one (at most 12)
            after = min([j for j in starts if j > i] + [i + 12, len(dates)])
            before = max([j for j in starts if j < i] + [i - 12, 0])
            diff = y.iloc[i:after].mean() - y.iloc[before:i].mean()
            assert np.sign(diff) == np.sign(r.magnitude) and abs(diff - r.magnitude) < 2.0 * sd, (r, diff)


def test_outliers_are_isolated_spikes(wide: pd.DataFrame, noise_sd: pd.Series) -> None:
    outliers = pd.read_csv(SAMPLE / "truth" / "outliers.csv")
    assert len(outliers) >= 15
    dates = list(wide.index)
    for series, group in outliers.groupby("series"):
        idx = sorted(dates.index(d) for d in group.date)
        assert all(b - a > 1 for a, b in zip(idx, idx[1:], strict=False))
        y = wide[series].to_numpy()
        for i in idx:
            neighbours = np.r_[y[max(i - 4, 0) : i], y[i + 1 : i + 5]]
            assert abs(y[i] - np.median(neighbours)) > 2.0 * noise_sd[series], (series, dates[i])


# ---------------------------------------------------------------------------------------------- experiments


def test_experiments_validate(experiments: list[Experiment], wide: pd.DataFrame) -> None:
    assert 10 <= len(experiments) <= 14
    assert len({e.id for e in experiments}) == len(experiments)
    dates = [dt.date.fromisoformat(d) for d in wide.index]
    for e in experiments:
        assert e.dimension == "team" and 2 <= len(e.controls) <= 3
        assert e.treated_series in wide.columns and all(c in wide.columns for c in e.control_series)
        assert e.start in dates
        pre, post = dates.index(e.start), len(dates) - dates.index(e.start)
        assert pre >= 26 and post >= 8
        assert e.end is None or e.end in dates


def test_experiment_truth_is_consistent(
    experiments: list[Experiment], wide: pd.DataFrame, noise_sd: pd.Series
) -> None:
    truth = {r["id"]: r for r in _csv_rows("experiments.csv")}
    assert set(truth) == {e.id for e in experiments}
    shifts = pd.read_csv(SAMPLE / "truth" / "shifts.csv")
    null = [e for e in experiments if truth[e.id]["is_null"] == "true"]
    assert abs(len(null) - len(experiments) / 3) <= 1
    wrong = 0
    for e in experiments:
        t = truth[e.id]
        effect, rel = float(t["true_effect"]), float(t["true_relative_effect"])
        sd = noise_sd[e.treated_series]
        rows = shifts[(shifts.series == e.treated_series) & (shifts.kind == "experiment")]
        # controls receive nothing but the early pattern bursts, which end before the experiment starts
        on_controls = shifts[shifts.series.isin(e.control_series)]
        assert set(on_controls.kind) <= {"pattern"} and (on_controls.date < e.start.isoformat()).all(), e.id
        if t["is_null"] == "true":
            assert effect == 0 and rel == 0 and rows.empty
        else:
            assert 2.5 <= abs(effect) / sd <= 4.0 + 1e-6, e.id
            assert list(rows.date) == [e.start.isoformat()] and float(rows.magnitude.iloc[0]) == effect
            assert np.sign(rel) == np.sign(effect)
            wrong += (effect > 0) != (e.desired_direction == "increase")
        # treated minus controls, after minus before, moves by about the true effect
        pre = wide.index < e.start.isoformat()
        treated = wide.loc[~pre, e.treated_series].mean() - wide.loc[pre, e.treated_series].mean()
        ctrl = wide.loc[:, e.control_series].mean(axis=1)
        did = treated - (ctrl[~pre].mean() - ctrl[pre].mean())
        assert abs(did - effect) < 1.0 * sd, (e.id, did, effect)
    assert wrong == 1


# ---------------------------------------------------------------------------------------------- causes (issue #16)


def test_change_log_format() -> None:
    changes = pd.read_csv(SAMPLE / "changes.csv", dtype=str, keep_default_na=False)
    assert list(changes.columns) == ["ds", "team", "kind", "description", "id"]
    assert changes.id.is_unique and changes.id.str.fullmatch(r"CHG-\d{3}").all()
    assert list(changes.ds) == sorted(changes.ds) and all(dt.date.fromisoformat(d) for d in changes.ds)
    teams = set(pd.read_csv(SAMPLE / "indicators.csv").team)
    assert set(changes.team) <= teams | {""} and (changes.team == "").any()
    assert (changes.description.str.len() > 10).all() and changes.kind.str.fullmatch(r"[a-z-]+").all()


def test_causes_truth_agrees_with_the_data(
    wide: pd.DataFrame, noise_sd: pd.Series, incidents: list[Incident], experiments: list[Experiment]
) -> None:
    truth = pd.read_csv(SAMPLE / "truth" / "causes.csv", dtype=str, keep_default_na=False)
    assert list(truth.columns) == ["series", "date", "cause_kind", "cause_key"]
    kinds = collections.Counter(truth.drop_duplicates(["series", "date"]).cause_kind)
    assert all(kinds[k] >= 6 for k in ("slice", "pattern", "change", "none")), kinds
    shifts = pd.read_csv(SAMPLE / "truth" / "shifts.csv")
    changes = pd.read_csv(SAMPLE / "changes.csv", dtype=str, keep_default_na=False).set_index("id")
    exps = {e.id: e for e in experiments}
    null = {r["id"] for r in _csv_rows("experiments.csv") if r["is_null"] == "true"}
    dates = list(wide.index)

    def shift_at(series: str, date: str) -> pd.DataFrame:
        return shifts[(shifts.series == series) & (shifts.date == date)]

    for r in truth.itertuples():
        day = dt.date.fromisoformat(r.date)
        if "/" not in r.series:  # an aggregate: one team's shift moved it
            assert r.cause_kind in ("slice", "experiment"), r
            if r.cause_kind == "slice":
                team = r.cause_key.removeprefix("team=")
                part = series_key(r.series, team=team)
                row = shift_at(part, r.date)
                parts = [c for c in wide.columns if c.startswith(r.series + "/")]
                agg_sd = float(np.sqrt((noise_sd[parts] ** 2).sum()))
                assert len(row) == 1 and abs(row.magnitude.iloc[0]) >= 2.0 * agg_sd - 1e-6, r
                i = dates.index(r.date)
                own = wide[part].iloc[i : i + 8].mean() - wide[part].iloc[i - 8 : i].mean()
                rest = wide[[p for p in parts if p != part]].sum(axis=1)
                rest_diff = rest.iloc[i : i + 8].mean() - rest.iloc[i - 8 : i].mean()
                # the team's change is large for the aggregate and larger than the other teams' together
                assert np.sign(own) == np.sign(row.magnitude.iloc[0]) and abs(own) > 1.5 * agg_sd, (r, own)
                assert abs(own) > abs(rest_diff), (r, own, rest_diff)
            continue
        indicator, team = r.series.split("/team=")
        row = shift_at(r.series, r.date)
        assert len(row) == 1, r
        kind = row.kind.iloc[0]
        if r.cause_kind == "experiment":
            e = exps[r.cause_key]
            assert kind == "experiment" and r.cause_key not in null
            assert e.treated_series == r.series and e.start == day, r
        elif r.cause_kind == "change":
            c = changes.loc[r.cause_key]
            assert kind == "change" and c.team == team, r
            assert 7 <= (day - dt.date.fromisoformat(c.ds)).days <= 21, r
        elif r.cause_kind == "pattern":
            assert kind == "pattern" and indicator == "incidents" and row.magnitude.iloc[0] > 0, r
            later = shifts[(shifts.series == r.series) & (shifts.date > r.date)]
            end = dt.date.fromisoformat(later.date.min())  # the burst's end
            inside = [
                i
                for i in incidents
                if i.pattern == r.cause_key and i.team == team and day <= i.started_at.date() < end
            ]
            outside = [
                i for i in incidents if i.pattern == r.cause_key and i.team == team and i not in inside
            ]
            weeks_in = (end - day).days / 7
            assert len(inside) >= 5, r
            assert len(inside) / weeks_in > 4 * len(outside) / (104 - weeks_in), (
                r,
                len(inside),
                len(outside),
            )
        else:
            assert r.cause_kind == "none" and kind in ("shift", "slice"), r
            before = [
                dt.date.fromisoformat(c.ds) for c in changes.itertuples() if c.team in ("", team)
            ]  # nothing in the change log explains it
            assert not any(0 <= (day - d).days <= 42 for d in before), r
            assert not any(
                e.treated_series == r.series and abs((e.start - day).days) <= 28 for e in exps.values()
            )
    # every team shift is in the truth (a burst by its start)
    explained = set(zip(truth.series, truth.date, strict=True))
    onsets = shifts[(shifts.kind != "pattern") | (shifts.magnitude > 0)]
    assert set(zip(onsets.series, onsets.date, strict=True)) <= explained
