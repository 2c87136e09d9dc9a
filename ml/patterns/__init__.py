"""Failure patterns: clustering, labelling, stable ids, trends, heat maps and the similar-incident index."""

from ml._exports import lazy_exports

_NAMES = {
    "NOISE": "ids",
    "UNCLUSTERED": "ids",
    "UNCLUSTERED_ID": "ids",
    "ONE_OFF": "ids",
    "PatternClusterer": "clustering",
    "clustering_metrics": "geometry",
    "l2_normalize": "geometry",
    "PatternLabeller": "labelling",
    "PatternMatch": "labelling",
    "match_patterns": "labelling",
    "c_tf_idf": "labelling",
    "Pattern": "model",
    "PatternModel": "model",
    "Trend": "trends",
    "pattern_trend": "trends",
    "heatmap_table": "heatmap",
    "heatmap_counts": "heatmap",
    "heatmap_json": "heatmap",
    "recurrence_table": "heatmap",
    "trend_table": "heatmap",
    "render_png": "heatmap",
    "render_html": "heatmap",
    "render_csv": "heatmap",
    "RootCauseView": "views",
    "HybridFeatures": "features",
    "LexicalProjector": "features",
    "GranularitySearch": "granularity",
    "split_labels": "model",
    "Clusterer": "stages",
    "DocumentView": "stages",
    "Labeller": "stages",
    "Match": "similarity",
    "MatchReasons": "similarity",
    "SimilarityIndex": "similarity",
}

__getattr__, __all__ = lazy_exports(__name__, _NAMES)
