"""MLflow models-from-code entry for the incident-patterns model."""

from mlflow.models import set_model

from ml.registry.runtimes import PatternsPyfunc

set_model(PatternsPyfunc())
