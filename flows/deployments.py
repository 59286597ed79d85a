"""The scheduled deployments: daily planning, weekly monitoring, training and the policy simulation on demand."""

from __future__ import annotations

from prefect.deployments.runner import RunnerDeployment

from flows.main import main_flow
from flows.monitoring import monitoring_flow
from flows.planning import planning_flow
from flows.schedules import DAILY_PLANNING_CRON, WEEKLY_MONITORING_CRON
from flows.simulation import simulation_flow
from flows.training import training_flow


def replenish_deployments(config_file: str | None, overrides: list[str]) -> list[RunnerDeployment]:
    parameters = {"config_file": config_file, "overrides": overrides}
    return [
        planning_flow.to_deployment(
            name="daily-planning", cron=DAILY_PLANNING_CRON, parameters=parameters, tags=["replenish"]
        ),
        monitoring_flow.to_deployment(
            name="weekly-monitoring", cron=WEEKLY_MONITORING_CRON, parameters=parameters, tags=["replenish"]
        ),
        training_flow.to_deployment(name="train-on-demand", parameters=parameters, tags=["replenish"]),
        main_flow.to_deployment(name="main-on-demand", parameters=parameters, tags=["replenish"]),
        simulation_flow.to_deployment(name="simulate-on-demand", parameters=parameters, tags=["replenish"]),
    ]
