"""MLflow models-from-code entry for the incident-patterns model."""

from mlflow.models import set_model

from ml.registry_models import PatternsPyfunc

set_model(PatternsPyfunc())
