"""Leading indicators: regular date grids, forecasting candidates, backtest selection, and shift detection."""

from ml._exports import lazy_exports

_NAMES = {
    "NOMINAL_SEASON": "grid",
    "Grid": "grid",
    "infer_frequency": "grid",
    "to_grid": "grid",
    "fill_gaps": "grid",
    "complete_counts": "completion",
    "looks_like_mean": "completion",
    "ALL_CANDIDATES": "config",
    "DEFAULT_CANDIDATES": "config",
    "FAST_CANDIDATES": "config",
    "ForecastConfig": "config",
    "Threshold": "config",
    "ForecastingCandidate": "candidates",
    "Prediction": "candidates",
    "make_candidate": "candidates",
    "candidate_from_dict": "candidates",
    "SeriesForecaster": "forecasting",
    "SeriesModel": "series_model",
    "ForecastBundle": "forecasting",
    "fit_series": "forecasting",
    "fit_many": "forecasting",
    "load_model": "forecasting",
    "evaluate_selection": "backtest",
    "backtest_cutoffs": "backtest",
    "mase": "metrics",
    "smape": "metrics",
    "coverage": "metrics",
    "crossing_probability": "metrics",
    "ChangeDetector": "signals",
    "MonitorConfig": "monitoring",
    "detect_signals": "signals",
    "monitor": "monitoring",
    "rank_events": "events",
}

__getattr__, __all__ = lazy_exports(__name__, _NAMES)
