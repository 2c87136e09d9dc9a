"""Leading indicators: regular date grids, forecasting candidates, backtest selection, and shift detection."""

from ml._exports import lazy_exports

_NAMES = {
    "NOMINAL_SEASON": "grid",
    "Grid": "grid",
    "infer_frequency": "grid",
    "to_grid": "grid",
    "fill_gaps": "grid",
    "ALL_CANDIDATES": "forecasting",
    "DEFAULT_CANDIDATES": "forecasting",
    "FAST_CANDIDATES": "forecasting",
    "ForecastConfig": "forecasting",
    "Threshold": "forecasting",
    "SeriesForecaster": "forecasting",
    "SeriesModel": "forecasting",
    "ForecastBundle": "forecasting",
    "fit_series": "forecasting",
    "fit_many": "forecasting",
    "load_model": "forecasting",
    "evaluate_selection": "forecasting",
    "mase": "forecasting",
    "smape": "forecasting",
    "coverage": "forecasting",
    "ChangeDetector": "signals",
    "MonitorConfig": "signals",
    "detect_signals": "signals",
    "monitor": "signals",
    "rank_events": "signals",
}

__getattr__, __all__ = lazy_exports(__name__, _NAMES)
