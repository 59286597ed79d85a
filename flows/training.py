"""Train, backtest against the baselines, register, and promote only a better model; with
simulate.on_train, also replay the planning policy on recent history."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from prefect import flow

from flows.common import checked_input, tracked_run
from replenish.settings import load_settings
from replenish.tracking import ModelRegistry
from tasks.data import complete_data
from tasks.forecasting import (
    backtest_forecasters,
    build_features,
    combine_features,
    fit_ensemble,
    split_backtest,
    split_sales_by_store,
    train_forecaster,
)
from tasks.runners import ConfiguredTaskRunner
from tasks.simulation import log_simulation, simulate_planning_policies
from tasks.tracking import RegistrationResult, log_backtest, register_forecaster


@dataclass(frozen=True)
class TrainingSummary:
    mlflow_run_id: str
    metrics: dict[str, float]
    registration: RegistrationResult


@flow(name="replenish-train", log_prints=True, task_runner=ConfiguredTaskRunner())
def training_flow(config_file: str | None = None, overrides: list[str] | None = None) -> TrainingSummary:
    settings = load_settings(Path(config_file) if config_file else None, overrides or [])
    with tracked_run(settings, "train") as (raw, tracker):
        checked = checked_input(settings, raw, tracker)
        data = complete_data(checked, settings.data)
        settings = settings.for_frequency(data.frequency)
        features = combine_features(build_features.map(split_sales_by_store(data.sales)).result())
        windows = split_backtest(features, settings.forecast)
        # One fit per origin; the last, fitted up to the holdout, is the model that gets registered
        # and the only one whose training curves go to the run.
        trained = [
            train_forecaster(
                window.history, settings.forecast, settings.work_dir, tracker if window is windows[-1] else None
            )
            for window in windows
        ]
        backtest = backtest_forecasters(features, windows, trained, settings.forecast)
        metrics = log_backtest(tracker, backtest, trained[-1])
        # The combination learns from the origins before the holdout; the better of it and the LSTM on the
        # holdout is registered.
        ensemble = fit_ensemble(backtest, trained[-1], settings.forecast)
        candidates = {"lstm": trained[-1].predictor, **({"ensemble": ensemble} if ensemble is not None else {})}
        registry = ModelRegistry.open(settings)
        registration = register_forecaster(registry, tracker, candidates, windows[-1], backtest.scores)
        if settings.simulate.on_train:
            log_simulation(settings.data, tracker, simulate_planning_policies(checked.tables, settings))
    return TrainingSummary(tracker.run_id, metrics, registration)
