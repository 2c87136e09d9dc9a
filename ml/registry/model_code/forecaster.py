"""MLflow models-from-code entry for the indicator-forecaster model."""

from mlflow.models import set_model

from ml.registry.pyfunc import ForecasterPyfunc

set_model(ForecasterPyfunc())
