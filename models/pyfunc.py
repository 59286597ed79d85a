"""The MLflow pyfunc flavour every forecaster shares: a long sales frame in, quantile forecasts out."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import pandas as pd
from mlflow.pyfunc import PythonModel, PythonModelContext

# The columns and dtypes a caller passes; the model signature is inferred from an example in this shape.
INPUT_DTYPES = {
    "item_id": "str",
    "store_id": "str",
    "dept_id": "str",
    "cat_id": "str",
    "date": "datetime64[ns]",
    "units": "int64",
    "price": "float64",
    "promo": "int64",
    "event": "int64",
    "snap": "int64",
    "available": "int64",
}


# Columns a source may lack, or leave empty on days it did not record, and what their absence stands
# for: no SNAP programme, an unseen group.
INPUT_DEFAULTS = {"snap": 0, "dept_id": "unknown", "cat_id": "unknown"}


def as_model_input(sales: pd.DataFrame) -> pd.DataFrame:
    filled = sales.assign(
        **{
            column: sales[column].fillna(value) if column in sales else value
            for column, value in INPUT_DEFAULTS.items()
        }
    )
    return filled[list(INPUT_DTYPES)].astype(INPUT_DTYPES).reset_index(drop=True)


class Predictor(Protocol):
    def predict(self, sales: pd.DataFrame) -> pd.DataFrame: ...


class SavedPredictor(Protocol):
    def load(self, directory: Path) -> Predictor: ...


class ForecasterPyfunc(PythonModel):
    """Forecasts the configured horizon after each series' last date in the input frame, with the
    predictor saved in the model's "predictor" artifact (a folder `predictor_type.load` reads)."""

    def __init__(self, predictor_type: SavedPredictor) -> None:
        self.predictor_type = predictor_type

    def load_context(self, context: PythonModelContext) -> None:
        self.predictor = self.predictor_type.load(Path(context.artifacts["predictor"]))

    def predict(
        self, context: PythonModelContext, model_input: pd.DataFrame, params: dict | None = None
    ) -> pd.DataFrame:
        return self.predictor.predict(as_model_input(model_input))
