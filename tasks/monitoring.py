"""Score the champion's logged forecasts against the sales that have arrived, and decide on retraining."""

from __future__ import annotations

import pandas as pd
from prefect import task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from models.monitoring import LoggedForecast, MonitoringReport, assess
from models.monitoring_config import MonitoringThresholds
from replenish.data.tables import RetailData
from replenish.report import monitoring_markdown
from replenish.settings import OrchestrationSettings
from replenish.tracking import ModelRegistry, RunTracker
from tasks.planning import FORECAST_ARTIFACT
from tasks.runs import MLFLOW_RETRIES


@task(name="find-champion-forecast", cache_policy=NO_CACHE, **MLFLOW_RETRIES)
def find_champion_forecast(registry: ModelRegistry, tracker: RunTracker) -> LoggedForecast | None:
    """The newest forecast a planning run of the tracker's experiment made with the current champion."""
    champion = registry.champion()
    if champion is None:
        return None
    run = tracker.experiment.latest_run({"job": "plan", "model_version": str(champion.version)})
    if run is None:
        return None
    # Ids stay text, as in the sales: "0042" and 42 are different items.
    forecast = tracker.experiment.run(run.info.run_id).load_table(
        FORECAST_ARTIFACT, parse_dates=["date"], dtype={"item_id": str, "store_id": str}
    )
    return LoggedForecast(
        run.info.run_id, str(champion.version), pd.Timestamp(run.data.tags["forecast_origin"]), forecast
    )


@task(name="assess-champion", cache_policy=NO_CACHE)
def assess_champion(
    thresholds: MonitoringThresholds, registry: ModelRegistry, data: RetailData, logged: LoggedForecast | None
) -> MonitoringReport:
    validation_rmsse = registry.version_metric(logged.model_version, "lstm_rmsse") if logged is not None else None
    return assess(data.sales, logged, validation_rmsse, thresholds)


@task(name="record-monitoring", cache_policy=NO_CACHE, **MLFLOW_RETRIES)
def record_monitoring(tracker: RunTracker, report: MonitoringReport) -> None:
    tracker.log_metrics(
        {
            **{f"recent_{name}": value for name, value in report.performance.items()},
            **report.drift,
            "retrain": float(report.decision.retrain),
        },
    )
    tracker.set_tags(
        {
            "monitored_model_version": report.model_version or "none",
            "retrain": str(report.decision.retrain),
            "retrain_reasons": "; ".join(report.decision.reasons)[:5000],
        },
    )
    create_markdown_artifact(
        key="monitoring-decision",
        markdown=monitoring_markdown(report, tracker.link),
        description="Why the champion was or was not retrained",
    )


@task(name="record-retraining-outcome", cache_policy=NO_CACHE, **MLFLOW_RETRIES)
def record_retraining_outcome(tracker: RunTracker, promoted: bool, reason: str) -> None:
    tracker.set_tags({"retrained_model_promoted": str(promoted), "promotion_reason": reason})
    create_markdown_artifact(
        key="monitoring-promotion",
        markdown=f"# Retraining: {'promoted' if promoted else 'not promoted'}\n{reason}\n\nMonitoring: {tracker.link}.",
        description="Outcome of the retraining that monitoring started",
    )


@task(name="trigger-training-deployment", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=[5, 30])
def trigger_training_deployment(
    orchestration: OrchestrationSettings, config_file: str | None, overrides: list[str]
) -> str:
    from prefect.deployments import run_deployment

    flow_run = run_deployment(
        orchestration.training_deployment,
        parameters={"config_file": config_file, "overrides": overrides},
        timeout=0,
    )
    return str(flow_run.id)
