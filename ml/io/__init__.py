"""Incident, indicator, experiment and change-log records: the pydantic schemas and the validating readers."""

from ml._exports import lazy_exports

_NAMES = {
    "to_utc": "schemas",
    "ActionItem": "schemas",
    "Incident": "schemas",
    "IndicatorObservation": "schemas",
    "series_key": "schemas",
    "parse_series_key": "schemas",
    "Hypothesis": "schemas",
    "Experiment": "schemas",
    "Change": "schemas",
    "Reject": "readers",
    "ReadResult": "readers",
    "parse_markdown_postmortem": "readers",
    "read_incidents": "readers",
    "read_indicators": "readers",
    "indicators_frame": "readers",
    "read_experiments": "readers",
    "read_changes": "readers",
    "changes_frame": "readers",
    "detect_kind": "readers",
    "read_path": "readers",
}

__getattr__, __all__ = lazy_exports(__name__, _NAMES)
