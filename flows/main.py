"""The end-to-end job: data in, a validated, forecast-driven order plan out, all of it recorded in MLflow."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from prefect import flow

from replenish.settings import load_settings
from tasks.data import complete_data, load_data
from tasks.forecasting import build_features, evaluate_forecaster, split_holdout, train_forecaster
from tasks.planning import PublishedPlan, build_planning_problem, forecast_planning_horizon, optimize_orders, publish_plan
from tasks.tracking import (
    RegistrationResult,
    finish_tracking_run,
    log_evaluation,
    register_forecaster,
    score_champion,
    start_tracking_run,
)
from tasks.validation import report_validation, require_valid_data, validate_data


@dataclass(frozen=True)
class MainRunSummary:
    mlflow_run_id: str
    tracking_uri: str
    metrics: dict[str, float]
    registration: RegistrationResult
    plan: PublishedPlan


@flow(name="replenish-main", log_prints=True)
def main_flow(config_file: str | None = None, overrides: list[str] | None = None) -> MainRunSummary:
    settings = load_settings(Path(config_file) if config_file else None, overrides or [])
    raw = load_data(settings.data)
    run_id = start_tracking_run(settings, raw, "main")
    try:
        checked = validate_data(raw, settings, run_id)
        report_validation(settings, run_id, checked)
        data = complete_data(require_valid_data(checked), settings.data)
        features = build_features(data.sales)
        split = split_holdout(features, settings.forecast.horizon_days)
        predictor = train_forecaster(split.train, settings, run_id)
        holdout = evaluate_forecaster(predictor, split)
        log_evaluation(settings, run_id, split, holdout)
        champion_rmsse = score_champion(settings, split, holdout)
        registration = register_forecaster(settings, run_id, predictor, split, holdout, champion_rmsse)
        forecast = forecast_planning_horizon(settings, data.sales)
        problem = build_planning_problem(data, forecast, settings.planning)
        plan = optimize_orders(problem, settings.planning)
        published = publish_plan(settings, run_id, problem, plan)
    except BaseException:
        finish_tracking_run(settings, run_id, "FAILED")
        raise
    finish_tracking_run(settings, run_id, "FINISHED")
    return MainRunSummary(run_id, settings.mlflow_tracking_uri, holdout.evaluation.metrics, registration, published)
