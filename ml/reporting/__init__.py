"""The leadership report: learning health from action items, static charts, and the report page."""

from ml._exports import lazy_exports

_NAMES = {
    "MaturityRule": "learning",
    "MATURITY_RULES": "learning",
    "learning_health": "learning",
    "maturity_level": "learning",
    "repeat_incidents": "learning",
    "mttr_trend": "learning",
    "unit_of": "plots",
    "forecast_png": "plots",
    "small_multiples_png": "plots",
    "Figure": "page",
    "Section": "page",
    "Table": "page",
    "fig_to_png": "page",
    "render_html": "page",
    "report_json": "page",
}

__getattr__, __all__ = lazy_exports(__name__, _NAMES)
