"""MLflow pyfunc flavour of the ensemble predictor: the same input and output frames as the LSTM's."""

from __future__ import annotations

from pathlib import Path

import mlflow.pyfunc
import pandas as pd

from models.ensemble.estimator import EnsemblePredictor
from models.lstm.pyfunc import as_model_input


class EnsembleForecasterPyfunc(mlflow.pyfunc.PythonModel):
    """Forecasts the configured horizon after each series' last date in the input frame."""

    def load_context(self, context: mlflow.pyfunc.PythonModelContext) -> None:
        self.predictor = EnsemblePredictor.load(Path(context.artifacts["predictor"]))

    def predict(self, context: mlflow.pyfunc.PythonModelContext, model_input: pd.DataFrame,
                params: dict | None = None) -> pd.DataFrame:
        return self.predictor.predict(as_model_input(model_input))
