"""The end-to-end job: train (and maybe promote) a forecaster, then plan with the champion."""

from __future__ import annotations

from dataclasses import dataclass

from prefect import flow

from flows.planning import PlanningSummary, planning_flow
from flows.training import TrainingSummary, training_flow


@dataclass(frozen=True)
class MainRunSummary:
    training: TrainingSummary
    planning: PlanningSummary


@flow(name="replenish-main", log_prints=True)
def main_flow(config_file: str | None = None, overrides: list[str] | None = None) -> MainRunSummary:
    training = training_flow(config_file, overrides)
    planning = planning_flow(config_file, overrides)
    return MainRunSummary(training, planning)
