"""The feedback loop: score the champion on the sales that arrived, retrain when it degraded."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from prefect import flow

from flows.common import tracked_run, validated_input
from flows.training import TrainingSummary, training_flow
from replenish.settings import load_settings
from tasks.data import load_data
from tasks.monitoring import (
    MonitoringReport,
    assess_champion,
    find_champion_forecast,
    record_monitoring,
    record_retraining_outcome,
    trigger_training_deployment,
)


@dataclass(frozen=True)
class MonitoringSummary:
    mlflow_run_id: str
    report: MonitoringReport
    training: TrainingSummary | None  # when retraining ran here as a subflow
    training_flow_run_id: str | None  # when retraining was handed to the training deployment


@flow(name="replenish-monitor", log_prints=True)
def monitoring_flow(config_file: str | None = None, overrides: list[str] | None = None) -> MonitoringSummary:
    settings = load_settings(Path(config_file) if config_file else None, overrides or [])
    raw = load_data(settings.data)
    training, deployment_run = None, None
    with tracked_run(settings, raw, "monitor") as run_id:
        data = validated_input(settings, raw, run_id)
        report = assess_champion(settings, data, find_champion_forecast(settings))
        record_monitoring(settings, run_id, report)
        if report.decision.retrain and settings.orchestration.prefect_api_url:
            deployment_run = trigger_training_deployment(settings, config_file, overrides or [])
        elif report.decision.retrain:
            training = training_flow(config_file, overrides)
            record_retraining_outcome(settings, run_id, training.registration.promoted, training.registration.reason)
    return MonitoringSummary(run_id, report, training, deployment_run)
