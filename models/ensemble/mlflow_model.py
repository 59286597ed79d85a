"""MLflow "model from code" entry point: logged as the model's code instead of a pickled object."""

from mlflow.models import set_model

from models.ensemble.pyfunc import EnsembleForecasterPyfunc

set_model(EnsembleForecasterPyfunc())
