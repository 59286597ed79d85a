"""Train, evaluate against seasonal naive, register, and promote only a better model."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from prefect import flow

from flows.common import map_partitions, tracked_run, validated_input
from replenish.settings import load_settings
from tasks.data import load_data
from tasks.forecasting import (
    build_features,
    combine_features,
    evaluate_forecaster,
    split_holdout,
    split_sales_by_store,
    train_forecaster,
)
from tasks.tracking import RegistrationResult, log_evaluation, register_forecaster, score_champion


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
        split = split_holdout(features, settings.forecast.horizon_days)
        predictor = train_forecaster(split.train, settings, run_id)
        holdout = evaluate_forecaster(predictor, split)
        log_evaluation(settings, run_id, split, holdout)
        champion_rmsse = score_champion(settings, split, holdout)
        registration = register_forecaster(settings, run_id, predictor, split, holdout, champion_rmsse)
    return TrainingSummary(run_id, holdout.evaluation.metrics, registration)
