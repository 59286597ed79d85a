"""Plan orders with the registered champion on the latest validated data, and publish the plan."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from prefect import flow, unmapped

from flows.common import tracked_run, validated_input
from replenish.plan_output import PublishedPlan
from replenish.settings import load_settings
from replenish.tracking import ModelRegistry
from tasks.planning import (
    build_plan_report,
    build_planning_problem,
    calibrate_scenarios,
    estimate_plan_outlook,
    forecast_planning_horizon,
    merge_plans,
    optimize_orders,
    publish_plan,
    split_by_store,
)
from tasks.runners import ConfiguredTaskRunner


@dataclass(frozen=True)
class PlanningSummary:
    mlflow_run_id: str
    plan: PublishedPlan
    report_path: Path


@flow(name="replenish-plan", log_prints=True, task_runner=ConfiguredTaskRunner())
def planning_flow(config_file: str | None = None, overrides: list[str] | None = None) -> PlanningSummary:
    settings = load_settings(Path(config_file) if config_file else None, overrides or [])
    with tracked_run(settings, "plan") as (raw, tracker):
        data = validated_input(settings, raw, tracker)
        settings = settings.for_frequency(data.frequency)
        registry = ModelRegistry.open(settings)
        forecast = forecast_planning_horizon(settings.planning, registry, tracker, data.sales)
        calibration = calibrate_scenarios(settings.planning, registry, tracker, data)
        problem = build_planning_problem(data, forecast, settings.planning, calibration)
        parts = split_by_store(problem, settings.planning)
        plan = merge_plans(optimize_orders.map(parts, unmapped(settings.planning)).result(), settings.planning)
        outlook = estimate_plan_outlook(problem, plan, forecast, settings.planning, calibration)
        report = build_plan_report(
            settings.planning, settings.data, tracker, problem, plan, forecast, data.sales, outlook
        )
        published = publish_plan(settings.planning, settings.output_dir, tracker, problem, plan, report)
    return PlanningSummary(tracker.run_id, published, published.report_path)
