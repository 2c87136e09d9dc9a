"""Why did it move? Candidate causes for indicator shifts: slices, failure patterns, changes and experiments."""

from ml._exports import lazy_exports

_NAMES = {
    "Cause": "cause",
    "ExplainConfig": "cause",
    "SeriesData": "aggregates",
    "build_series": "aggregates",
    "detect_shifts": "aggregates",
    "adjust_for_season": "season",
    "slice_causes": "slices",
    "pattern_causes": "bursts",
    "change_causes": "changes",
    "experiment_causes": "changes",
    "candidate_shifts": "candidates",
    "explain_signals": "explain",
    "signal_id": "explain",
    "date_range": "explain",
    "when_text": "explain",
}

__getattr__, __all__ = lazy_exports(__name__, _NAMES)
