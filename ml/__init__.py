"""Recur's pure library, one subpackage per capability.

- ``ml.io``: record schemas and validating readers;
- ``ml.text``: redaction, documents, embeddings;
- ``ml.patterns``: failure patterns, heat maps, similar incidents;
- ``ml.indicators``: forecasts and shift detection;
- ``ml.experiments``: experiment impact scoring;
- ``ml.reporting``: learning health, charts, the report page;
- ``ml.registry``: the MLflow pyfunc runtimes (the only part that imports mlflow).

No environment reads, no settings, no run logging: ``training`` and ``serving`` pass plain values in.
"""
