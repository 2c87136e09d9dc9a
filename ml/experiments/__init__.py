"""Process experiments: the counterfactual impact scorer, its effect estimate, checks and verdict; hygiene (overlaps,
load) and planning (MDE, power, likely effect)."""

from ml._exports import lazy_exports

_NAMES = {
    "CounterfactualModel": "counterfactual",
    "EffectEstimate": "effect",
    "estimate_effect": "effect",
    "placebo_scores": "effect",
    "Calibration": "calibration",
    "calibrated_factor": "calibration",
    "DiDCheck": "checks",
    "MannWhitneyCheck": "checks",
    "ImpactResult": "results",
    "verdict_for": "results",
    "ImpactScorer": "impact",
    "plot_impact": "plots",
    "ExperimentSpan": "hygiene",
    "Overlap": "hygiene",
    "find_overlaps": "hygiene",
    "overlaps_with": "hygiene",
    "experiment_load": "hygiene",
    "ExperimentPlan": "planning",
    "plan_experiment": "planning",
}

__getattr__, __all__ = lazy_exports(__name__, _NAMES)
