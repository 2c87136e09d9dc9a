"""Report sections that draw on the indicator forecaster and the experiment registry."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ml.report import Section
from ml.schemas import Experiment
from ml.settings import Settings

log = logging.getLogger(__name__)


def indicators_section(runtime: Any | None, version: str | None) -> Section:
    sec = Section(
        id="indicators",
        title="2. Leading indicators",
        summary="Per team: forecasts with 80% intervals, recent meaningful shifts, and early warnings.",
    )
    if runtime is None:
        sec.empty = "No indicator forecaster yet: run `recur train indicators --indicators PATH --promote`."
    return sec


def experiments_section(
    settings: Settings, experiments: Sequence[Experiment], indicators_paths: Sequence[Path]
) -> Section:
    sec = Section(
        id="experiments",
        title="3. Experiments",
        summary="Did each process change move its indicator? Effect with 95% interval and an honest verdict.",
    )
    if not experiments:
        sec.empty = "No experiments yet: describe one in YAML and run `recur experiment score`."
    return sec


def suggestions_section(
    patterns_rt: Any | None, forecaster_rt: Any | None, experiments: Sequence[Experiment]
) -> Section:
    sec = Section(
        id="suggestions",
        title="5. Suggested experiments",
        summary="Rising patterns with no experiment on them, as hypothesis cards to pick from.",
    )
    if patterns_rt is None:
        sec.empty = "No pattern model yet, so no rising pattern to suggest an experiment for."
    return sec
