"""What training records of the forecaster it registers: each candidate's score on the holdout (the last
backtest window), and the tags of the version registered: which forecaster it is, how every candidate
scored, and the contract planning checks before it asks the version for a forecast.  No Prefect here;
tasks.tracking.register_forecaster registers and promotes."""

from __future__ import annotations

import json
from dataclasses import asdict

import pandas as pd

from models.backtest import BacktestWindow
from models.ensemble.estimator import EnsemblePredictor
from models.evaluation import score_forecasts
from models.features import CATEGORY_COLUMNS, COVARIATE_COLUMNS
from models.forecast_contract import ForecasterContract
from models.lstm.estimator import LSTMPredictor
from models.pyfunc import Predictor
from replenish.frequency import frequency_of

# The version tag that says which forecaster a version is: "lstm" or "ensemble".
FORECASTER_TAG = "forecaster"
Candidate = LSTMPredictor | EnsemblePredictor


def holdout_metric(candidate: str) -> str:
    """The one name of a candidate's holdout score, as the registration computes it (holdout_rmsse): the
    run's metric, the version's tag and description, and the promotion reason all use it."""
    return f"holdout_pyfunc_{candidate}_rmsse"


def holdout_rmsse(holdout: BacktestWindow, model_input: pd.DataFrame, forecaster: Predictor) -> float:
    """RMSSE on the holdout of a forecast made from ``model_input``: the same input the planning flow
    gives the champion, so candidates and champion are scored alike."""
    forecast = forecaster.predict(model_input)
    scored = score_forecasts({"model": forecast.assign(cutoff=holdout.cutoff)}, holdout.actual, holdout.history)
    return scored.metrics["model_rmsse"]


def forecaster_tags(kind: str, predictor: Candidate, holdout_scores: dict[str, float]) -> dict[str, str]:
    """What a version is (the LSTM or the ensemble, and the ensemble's members and weights), and how each
    candidate forecast the holdout."""
    tags = {FORECASTER_TAG: kind, **{holdout_metric(name): f"{score:.4f}" for name, score in holdout_scores.items()}}
    if isinstance(predictor, EnsemblePredictor):
        tags.update(
            {
                "ensemble.members": ",".join(predictor.combination.members),
                "ensemble.config": json.dumps(asdict(predictor.config)),
                "ensemble.weights": json.dumps(predictor.combination.weights),
            }
        )
    return tags


def version_tags(
    kind: str, predictor: Candidate, holdout: BacktestWindow, holdout_scores: dict[str, float]
) -> dict[str, str]:
    """The registered version's tags: its contract (planning checks it before it asks the model for a
    forecast; the final fit learnt from the holdout's history) and forecaster_tags."""
    contract = ForecasterContract.of_model(
        predictor.horizon,
        frequency_of(holdout.history["date"]),
        predictor.quantiles,
        [*CATEGORY_COLUMNS, *COVARIATE_COLUMNS],
        holdout.history,
    )
    return {**contract.as_tags(), **forecaster_tags(kind, predictor, holdout_scores)}
