"""MLflow models-from-code entry for the incident-patterns model."""

from mlflow.models import set_model

from ml.registry.pyfunc import PatternsPyfunc

set_model(PatternsPyfunc())
