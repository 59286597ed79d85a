"""The feedback loop: score the champion on the sales that arrived, retrain when it degraded."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from prefect import flow, tags

from flows.common import tracked_run, validated_input
from flows.training import TrainingSummary, training_flow
from models.monitoring import MonitoringReport
from replenish.orchestration import process_tag
from replenish.settings import load_settings
from replenish.tracking import ModelRegistry
from tasks.monitoring import (
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
    training, deployment_run = None, None
    with tracked_run(settings, "monitor") as (raw, tracker):
        data = validated_input(settings, raw, tracker)
        registry = ModelRegistry.open(settings)
        report = assess_champion(settings.monitoring, registry, data, find_champion_forecast(registry, tracker))
        record_monitoring(tracker, report)
        if report.decision.retrain and settings.orchestration.prefect_api_url:
            deployment_run = trigger_training_deployment(settings.orchestration, config_file, overrides or [])
        elif report.decision.retrain:
            # Its flow run carries this process's tag, as the command's own flow runs do; its tasks do not.
            with tags(process_tag()):
                training = training_flow(config_file, overrides)
            record_retraining_outcome(tracker, training.registration.promoted, training.registration.reason)
    return MonitoringSummary(tracker.run_id, report, training, deployment_run)
