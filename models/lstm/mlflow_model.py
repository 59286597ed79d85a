"""MLflow "model from code" entry point: logged as the model's code instead of a pickled object."""

from mlflow.models import set_model

from models.lstm.estimator import LSTMPredictor
from models.pyfunc import ForecasterPyfunc

set_model(ForecasterPyfunc(LSTMPredictor))
