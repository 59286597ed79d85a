"""Record the run in MLflow and manage the model registry."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from models.evaluation import evaluate_holdout
from models.lstm.estimator import LSTMPredictor
from models.lstm.pyfunc import as_model_input
from replenish import tracking
from replenish.data.tables import RawTables
from replenish.plots import holdout_forecast_figure
from replenish.settings import Settings
from tasks.forecasting import HoldoutResult, HoldoutSplit

MLFLOW_RETRIES = {"retries": 3, "retry_delay_seconds": [1, 5, 15]}


@dataclass(frozen=True)
class RegistrationResult:
    model_name: str
    version: str
    candidate_rmsse: float
    champion_rmsse: float | None
    promoted: bool
    reason: str


@task(name="start-tracking-run", cache_policy=NO_CACHE, **MLFLOW_RETRIES)
def start_tracking_run(settings: Settings, raw: RawTables, job: str) -> str:
    run_name = f"{job}-{flow_run.get_name() or 'local'}-{pd.Timestamp.now():%Y%m%d-%H%M%S}"
    tags = {
        "job": job,
        "data_source": raw.sources.get("sales", "unknown"),
        "data_format": settings.data.format,
        "data_hash": tracking.data_fingerprint(raw.sales),
        "git_commit": tracking.git_commit(),
        "prefect_flow_run_id": str(flow_run.get_id() or "none"),
    }
    return tracking.start_run(settings, run_name, tags)


@task(name="log-evaluation", cache_policy=NO_CACHE, **MLFLOW_RETRIES)
def log_evaluation(settings: Settings, run_id: str, split: HoldoutSplit, result: HoldoutResult) -> None:
    tracking.log_metrics(settings, run_id, result.evaluation.metrics)
    tracking.log_table(settings, run_id, result.evaluation.per_series, "evaluation/holdout_metrics_per_series.csv")
    figure = holdout_forecast_figure(split.train, split.actual, result.lstm_forecast, result.naive_forecast)
    tracking.log_figure(settings, run_id, figure, "plots/holdout_forecast.png")


@task(name="score-champion", cache_policy=NO_CACHE, **MLFLOW_RETRIES)
def score_champion(settings: Settings, split: HoldoutSplit, result: HoldoutResult) -> float | None:
    """The current champion's RMSSE on this run's holdout, so candidate and champion are judged alike."""
    if tracking.champion_version(settings) is None:
        return None
    champion_forecast = tracking.load_champion(settings).predict(as_model_input(split.train))
    scored = evaluate_holdout(split.train, split.actual, champion_forecast, result.naive_forecast)
    return scored.metrics["lstm_rmsse"]


@task(name="register-forecaster", cache_policy=NO_CACHE)
def register_forecaster(settings: Settings, run_id: str, predictor: LSTMPredictor, split: HoldoutSplit,
                        result: HoldoutResult, champion_rmsse: float | None) -> RegistrationResult:
    example_series = split.train.groupby(["item_id", "store_id"]).ngroup() == 0
    version = tracking.log_forecaster(settings, run_id, predictor, split.train[example_series])
    candidate_rmsse = result.evaluation.metrics["lstm_rmsse"]
    decision = tracking.decide_promotion(candidate_rmsse, champion_rmsse)
    tracking.promote(settings, version, decision)
    tracking.set_tags(settings, run_id, {"model_version": version.version, "promoted": str(decision.promote),
                                         "promotion_reason": decision.reason})
    return RegistrationResult(settings.tracking.registered_model_name, version.version, candidate_rmsse,
                              champion_rmsse, decision.promote, decision.reason)


@task(name="finish-tracking-run", cache_policy=NO_CACHE, **MLFLOW_RETRIES)
def finish_tracking_run(settings: Settings, run_id: str, status: str) -> None:
    tracking.end_run(settings, run_id, status)
