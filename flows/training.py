"""Train, backtest against the baselines, register, and promote only a better model."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from prefect import flow

from flows.common import map_partitions, tracked_run, validated_input
from replenish.settings import load_settings
from tasks.data import load_data
from tasks.forecasting import (
    backtest_forecasters,
    build_features,
    combine_features,
    split_backtest,
    split_sales_by_store,
    train_forecaster,
)
from tasks.tracking import RegistrationResult, log_backtest, register_forecaster


@dataclass(frozen=True)
class TrainingSummary:
    mlflow_run_id: str
    metrics: dict[str, float]
    registration: RegistrationResult


@flow(name="replenish-train", log_prints=True)
def training_flow(config_file: str | None = None, overrides: list[str] | None = None) -> TrainingSummary:
    settings = load_settings(Path(config_file) if config_file else None, overrides or [])
    raw = load_data(settings.data)
    with tracked_run(settings, raw, "train") as run_id:
        data = validated_input(settings, raw, run_id)
        features = combine_features(map_partitions(settings, build_features, split_sales_by_store(data.sales)))
        windows = split_backtest(features, settings)
        # One fit per origin; the last, fitted up to the holdout, is the model that gets registered
        # and the only one whose training curves go to the run.
        trained = [train_forecaster(window.history, settings, run_id if window is windows[-1] else None)
                   for window in windows]
        backtest = backtest_forecasters(features, windows, trained, settings)
        metrics = log_backtest(settings, run_id, backtest, trained[-1])
        registration = register_forecaster(settings, run_id, trained[-1].predictor, windows[-1], metrics)
    return TrainingSummary(run_id, metrics, registration)
