"""Process experiments: the counterfactual impact scorer, its effect estimate, checks and verdict."""

from ml._exports import lazy_exports

_NAMES = {
    "CounterfactualModel": "impact",
    "EffectEstimate": "impact",
    "ImpactResult": "impact",
    "ImpactScorer": "impact",
    "estimate_effect": "impact",
    "plot_impact": "impact",
    "verdict_for": "impact",
}

__getattr__, __all__ = lazy_exports(__name__, _NAMES)
