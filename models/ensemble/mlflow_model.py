"""MLflow "model from code" entry point: logged as the model's code instead of a pickled object."""

from mlflow.models import set_model

from models.ensemble.estimator import EnsemblePredictor
from models.pyfunc import ForecasterPyfunc

set_model(ForecasterPyfunc(EnsemblePredictor))
