from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "data" / "sample"
GITHUB_STATUS = ROOT.parent / "shared" / "data" / "github-status"


@pytest.fixture(scope="session")
def sample_dir() -> Path:
    if not (SAMPLE / "incidents.jsonl").exists():
        pytest.fail("data/sample is missing: run `python data/generate.py`")
    return SAMPLE
