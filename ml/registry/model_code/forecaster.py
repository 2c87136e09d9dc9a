"""MLflow models-from-code entry for the indicator-forecaster model."""

from mlflow.models import set_model

from ml.registry.runtimes import ForecasterPyfunc

set_model(ForecasterPyfunc())
