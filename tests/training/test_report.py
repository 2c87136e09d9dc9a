"""The leadership report: every section has content on the sample, a readable page on empty input, and it
renders in a real headless Chromium with no console error."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from tests.browser import chromium, chromium_env
from tests.conftest import SAMPLE
from training.report import write_report
from training.settings import Settings

pytestmark = pytest.mark.slow

SECTIONS = ("patterns", "indicators", "causes", "experiments", "learning", "suggestions")


def render(html: Path, out: Path) -> tuple[str, str]:
    """Screenshot the page and dump its DOM; returns (dom, stderr log)."""
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={out / 'profile'}",
        "--enable-logging=stderr",
        "--v=0",
        "--window-size=1280,4000",
    ]
    shot = subprocess.run(
        [chromium(), *flags, f"--screenshot={out / 'shot.png'}", html.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        env=chromium_env(),
    )
    dom = subprocess.run(
        [chromium(), *flags, "--dump-dom", html.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        env=chromium_env(),
    )
    return dom.stdout, shot.stderr + dom.stderr


def console_errors(log: str) -> list[str]:
    return [ln for ln in log.splitlines() if "CONSOLE" in ln or "Uncaught" in ln]


def test_report_on_the_sample(indicators_store: dict, tmp_path: Path) -> None:
    out = tmp_path / "report"
    result = write_report(
        indicators_store["settings"],
        out,
        incidents_paths=[SAMPLE / "incidents.jsonl"],
        experiments_paths=[SAMPLE / "experiments.yaml"],
    )
    by_id = {s["id"]: s for s in result["sections"]}
    assert [s for s in SECTIONS if not by_id[s]["has_content"]] == []
    assert result["slides"] >= 5 and len(list((out / "slides").glob("*.png"))) == result["slides"]
    html = (out / "index.html").read_text()
    assert "<script" not in html and "http://" not in html and "https://" not in html  # self-contained
    dom, log = render(out / "index.html", tmp_path)
    assert console_errors(log) == []
    for s in SECTIONS:
        assert f'data-section="{s}"' in dom
    assert dom.count("<img") >= result["slides"]
    assert (tmp_path / "shot.png").stat().st_size > 50_000
    assert "Maturity rules" in dom
    # Why it moved: the shifts with their causes in words, and the ones with no convincing cause
    causes = html.split('data-section="causes"', 1)[1].split("</section>", 1)[0]
    assert "Why it moved" in causes and "No convincing cause" in causes and "accounts for" in causes
    # the patterns table has exactly one of its two headings: rising patterns, or (none rising) the largest ones
    assert ("Top rising patterns" in dom) != ("the largest patterns" in dom)


def test_report_opens_on_what_matters(indicators_store: dict, tmp_path: Path) -> None:
    """First screen: 3-5 headline findings with numbers, each linking to its section; small multiples folded,
    worst first; the store's location nowhere on the page; one printed page per section."""
    settings = indicators_store["settings"]
    out = tmp_path / "report"
    write_report(
        settings,
        out,
        incidents_paths=[SAMPLE / "incidents.jsonl"],
        experiments_paths=[SAMPLE / "experiments.yaml"],
    )
    html = (out / "index.html").read_text()
    data = json.loads((out / "report.json").read_text())
    findings = data["summary"]
    assert 3 <= len(findings) <= 5
    assert {f["section"] for f in findings} <= set(SECTIONS)
    assert {"patterns", "indicators", "learning"} <= {f["section"] for f in findings}
    assert all(re.search(r"\d", f["headline"] + f["detail"]) for f in findings)  # every finding has a number
    # The summary comes before every section, and each finding links to its section.
    assert html.index('data-section="summary"') < min(html.index(f'data-section="{s}"') for s in SECTIONS)
    summary = html.split('data-section="summary"', 1)[1].split("</section>", 1)[0]
    assert [m for m in re.findall(r'href="#(\w+)"', summary)] == [f["section"] for f in findings]
    learning = next(f for f in findings if f["section"] == "learning")
    assert re.search(r"level [1-5] of 5", learning["headline"])
    # Small multiples are collapsed (<details> without open), worst first (highest chance of crossing first).
    indicators = html.split('data-section="indicators"', 1)[1].split("</section>", 1)[0]
    folded = re.findall(
        r'<details class="multiple"><summary>([^<]*)<span class="badge">([^<]*)</span>', indicators
    )
    assert folded and '<details class="multiple" open' not in html
    chances = [float(m.group(1)) if (m := re.search(r"(\d+)% chance", b)) else 0.0 for _t, b in folded]
    assert chances == sorted(chances, reverse=True)
    # Never the store's location; one printed page per section.
    for secret in (settings.tracking_uri, str(indicators_store["root"]), "sqlite", "mlflow.db"):
        assert secret not in html
    assert "@media print" in html and "break-before:page" in html
    dom, log = render(out / "index.html", tmp_path)
    assert console_errors(log) == []
    assert 'id="summary"' in dom


def test_report_on_empty_input(tmp_path: Path) -> None:
    settings = Settings(
        mlflow_tracking_uri=f"sqlite:///{tmp_path / 'empty.db'}",
        mlflow_artifact_root=tmp_path / "artifacts",
        cache_dir=tmp_path / "cache",
    )
    empty = tmp_path / "incidents.jsonl"
    empty.write_text("")
    out = tmp_path / "report"
    result = write_report(settings, out, incidents_paths=[empty], experiments_paths=[])
    assert all(not s["has_content"] and s["empty"] for s in result["sections"])
    dom, log = render(out / "index.html", tmp_path)
    assert console_errors(log) == []
    assert dom.count('class="empty"') == len(SECTIONS)
    assert "No pattern model yet" in dom and "No postmortems to measure yet" in dom
