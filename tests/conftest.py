from __future__ import annotations

import os
from pathlib import Path

import pytest

from training.settings import Settings

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "data" / "sample"


def reopens_experiment(exp_id: str, start: str, name: str = "Canary gate") -> dict[str, object]:
    """An experiment definition on weekly reopens: payments treated, search and storage as controls."""
    return {
        "id": exp_id,
        "name": name,
        "hypothesis": {
            "problem": "Pushes break production",
            "solution": "A canary gate",
            "metric": "reopens",
        },
        "indicator": "reopens",
        "treated": "payments",
        "controls": ["search", "storage"],
        "start": start,
        "desired_direction": "decrease",
    }


GITHUB_STATUS = ROOT.parent / "shared" / "data" / "github-status"


@pytest.fixture(scope="session")
def sample_dir() -> Path:
    if not (SAMPLE / "incidents.jsonl").exists():
        pytest.fail("data/sample is missing: run `python data/generate.py`")
    return SAMPLE


@pytest.fixture(scope="session")
def store(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """Train the pattern model on the sample into a fresh SQLite store (once per session)."""
    from training.patterns import train_patterns

    root = tmp_path_factory.mktemp("store")
    env = {
        "RECUR_MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}",
        "RECUR_MLFLOW_ARTIFACT_ROOT": str(root / "artifacts"),
        "RECUR_CACHE_DIR": str(Path(os.environ.get("RECUR_TEST_CACHE", root / "cache"))),
    }
    settings = Settings(
        mlflow_tracking_uri=env["RECUR_MLFLOW_TRACKING_URI"],
        mlflow_artifact_root=Path(env["RECUR_MLFLOW_ARTIFACT_ROOT"]),
        cache_dir=Path(env["RECUR_CACHE_DIR"]),
    )
    result = train_patterns(settings, [SAMPLE / "incidents.jsonl"], promote=True, show_progress=False)
    return {"env": env, "settings": settings, "result": result, "root": root}


@pytest.fixture(scope="session")
def indicators_store(store: dict[str, object], tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """The sample indicators trained (fast candidates) with the causes of their shifts (as `recur train all`
    does: incidents' patterns from the pattern model trained above, experiments, change log), and its experiments
    scored into the same store."""
    from training.experiments import score_experiments
    from training.explain import gather_inputs
    from training.indicators import train_indicators

    out = tmp_path_factory.mktemp("indicators")
    settings = store["settings"]
    why = gather_inputs(
        settings,
        incidents_paths=[SAMPLE / "incidents.jsonl"],
        experiments_paths=[SAMPLE / "experiments.yaml"],
        changes_paths=[p for p in (SAMPLE / "changes.csv",) if p.exists()],
        patterns_version=store["result"]["version"],  # type: ignore[index]
    )
    result = train_indicators(
        settings,
        [SAMPLE / "indicators.csv"],
        out=out,
        executor="local",
        promote=True,
        candidates=["auto_ets", "auto_theta"],
        thresholds_path=SAMPLE / "config" / "thresholds.yaml",
        explain_inputs=why,
    )
    scored = score_experiments(settings, [SAMPLE / "indicators.csv"], [SAMPLE / "experiments.yaml"])
    return {**store, "indicators": result, "experiments": scored, "out": out}
