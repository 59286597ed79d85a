"""Forecast the planning horizon with the champion, solve the replenishment LP, publish the plan."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import pandas as pd
from prefect import task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from models.lstm.pyfunc import as_model_input
from optimization.replenishment_lp import (
    CostSettings,
    ModelOptions,
    PlanningProblem,
    PlanResult,
    SolverSettings,
    solve_replenishment_plan,
)
from optimization.decomposition import merge_results, split_by_location
from optimization.uncertainty import planning_demand
from replenish import tracking
from replenish.data.tables import RetailData
from replenish.report import plan_report, render_html, report_markdown
from replenish.settings import PlanningSettings, Settings


FORECAST_ARTIFACT = "forecast/forecast.csv"
REPORT_ARTIFACT_FOLDER = "report"
PUBLISHED_TAG = "plan_published"
REPORT_TAG = "plan_report_published"


class ChampionMissingError(LookupError):
    """Planning needs a registered champion model."""


@dataclass(frozen=True)
class PublishedPlan:
    plan_path: Path
    demand_path: Path
    explained_path: Path
    orders: int
    units: float
    planned_cost: float
    expected_fill_rate: float
    solver_status: str


@task(name="forecast-planning-horizon", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=[2, 10])
def forecast_planning_horizon(settings: Settings, run_id: str, sales: pd.DataFrame) -> pd.DataFrame:
    """Quantile forecasts of the days after the snapshot, from the registered champion model.

    The forecast is logged with the champion's version, so monitoring can later score it against
    the sales that actually happened."""
    champion = tracking.champion_version(settings)
    if champion is None:
        raise ChampionMissingError(
            f"no model has alias 'champion' in {settings.tracking.registered_model_name!r} "
            f"(registry {settings.mlflow_registry_uri}); run `replenish train` first")
    forecast = tracking.load_champion(settings).predict(as_model_input(sales))
    tracking.log_table(settings, run_id, forecast, FORECAST_ARTIFACT)
    tracking.set_tags(settings, run_id, {
        "model_version": str(champion.version),
        "forecast_origin": f"{sales['date'].max():%Y-%m-%d}",
    })
    return forecast


def planning_problem(data: RetailData, forecast: pd.DataFrame, planning: PlanningSettings) -> PlanningProblem:
    start_date = data.snapshot_date + pd.Timedelta(days=1)
    horizon = forecast[forecast["date"] < start_date + pd.Timedelta(days=planning.horizon_days)]
    by_period = horizon.assign(period=(horizon["date"] - start_date).dt.days).drop(columns="date")
    lead_times = data.items.set_index("item_id")["lead_time_days"]
    keys = by_period[["item_id", "store_id"]].drop_duplicates()
    protection = pd.Series(
        (keys["item_id"].map(lead_times) + planning.review_days).to_numpy(),
        index=pd.MultiIndex.from_frame(keys),
    )
    demand, safety_stock = planning_demand(
        by_period,
        planning.uncertainty_mode,
        demand_level=planning.demand_quantile,
        service_level=planning.service_level,
        protection_periods=protection,
        n_scenarios=planning.n_scenarios,
        seed=planning.scenario_seed,
        period_correlation=planning.scenario_period_correlation,
    )
    return PlanningProblem(
        start_date=start_date,
        n_periods=planning.horizon_days,
        demand=demand.reset_index(drop=True),
        items=data.items,
        on_hand=data.inventory,
        open_orders=data.open_orders,
        capacity=data.capacity,
        safety_stock=safety_stock,
    )


@task(name="build-planning-problem", cache_policy=NO_CACHE)
def build_planning_problem(data: RetailData, forecast: pd.DataFrame, planning: PlanningSettings) -> PlanningProblem:
    return planning_problem(data, forecast, planning)


@task(name="optimize-orders", cache_policy=NO_CACHE)
def optimize_orders(problem: PlanningProblem, planning: PlanningSettings) -> PlanResult:
    return solve_replenishment_plan(
        problem,
        CostSettings(shortage_cost_multiplier=planning.shortage_cost_multiplier,
                     order_cost_per_unit=planning.order_cost_per_unit,
                     fixed_order_cost=planning.fixed_order_cost,
                     ending_stock_value_share=planning.ending_stock_value_share),
        SolverSettings(time_limit_seconds=planning.solver_time_limit_seconds,
                       mip_rel_gap=planning.solver_mip_rel_gap,
                       backend=planning.solver_backend),
        ModelOptions(shortage_mode=planning.shortage_mode,
                     integer_orders=planning.integer_orders,
                     max_order_quantity=planning.max_order_quantity,
                     budget_per_period=planning.budget_per_period,
                     review_periods=planning.review_days,
                     soft_constraints=planning.soft_constraints,
                     violation_penalty=planning.violation_penalty,
                     decompose_by_location=planning.decompose_by_location,
                     workers=planning.solver_workers),
    )


@task(name="split-by-location", cache_policy=NO_CACHE)
def split_by_store(problem: PlanningProblem, planning: PlanningSettings) -> list[PlanningProblem]:
    """One problem per store, solved apart; a budget shared across stores keeps them together."""
    return [problem] if planning.budget_per_period is not None else split_by_location(problem)


@task(name="merge-plans", cache_policy=NO_CACHE)
def merge_plans(plans: list[PlanResult]) -> PlanResult:
    return plans[0] if len(plans) == 1 else merge_results(plans)


def explained_orders(plan: PlanResult) -> pd.DataFrame:
    """Each order with why: demand over lead time plus review, safety stock, on hand, pipeline, binding limits."""
    keys = ["item_id", "store_id", "order_date"]
    # A plan without orders explains them in an untyped empty frame, which would not merge on dates.
    explanation = plan.explanations.drop(columns=["quantity"], errors="ignore").astype(
        {"order_date": plan.orders["order_date"].dtype})
    return plan.orders[[*keys, "quantity", "arrival_date"]].merge(explanation, on=keys, how="left")


def write_csv_atomically(table: pd.DataFrame, path: Path) -> None:
    write_atomically(path, lambda stream: table.to_csv(stream, index=False))


def write_atomically(path: Path, write: Callable[[TextIO], object]) -> None:
    """Readers see the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", newline="", encoding="utf-8") as stream:
            write(stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


@task(name="publish-plan", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=[2, 10])
def publish_plan(settings: Settings, run_id: str, problem: PlanningProblem, plan: PlanResult) -> PublishedPlan:
    """Idempotent: a retried task (or flow) that finds this run already published writes nothing again."""
    orders = plan.orders[["item_id", "store_id", "order_date", "quantity", "arrival_date"]]
    published = PublishedPlan(settings.plan_path, settings.output_dir / "plan_demand.csv",
                              settings.output_dir / "order_plan_explained.csv", len(orders),
                              float(orders["quantity"].sum()), plan.objective, plan.expected_fill_rate,
                              plan.solver_status)
    if tracking.run_tags(settings, run_id).get(PUBLISHED_TAG) == "true":
        return published
    demand = problem.demand.assign(date=problem.start_date + pd.to_timedelta(problem.demand["period"], unit="D"))
    write_csv_atomically(demand[["item_id", "store_id", "date", "demand"]], published.demand_path)
    write_csv_atomically(explained_orders(plan), published.explained_path)
    # The plan goes last: it is what downstream systems pick up.
    write_csv_atomically(orders, settings.plan_path)
    tracking.log_table(settings, run_id, orders, "plan/order_plan.csv")
    tracking.log_table(settings, run_id, explained_orders(plan), "plan/order_plan_explained.csv")
    tracking.log_table(settings, run_id, plan.inventory, "plan/projected_inventory.csv")
    if not plan.violations.empty:
        tracking.log_table(settings, run_id, plan.violations, "plan/constraint_violations.csv")
    tracking.log_metrics(settings, run_id, {
        "plan_orders": len(orders),
        "plan_units": float(orders["quantity"].sum()),
        "plan_cost": plan.objective,
        "plan_expected_fill_rate": plan.expected_fill_rate,
        "plan_solve_seconds": plan.solve_seconds,
        **{f"plan_cost_{part}": value for part, value in plan.cost_breakdown.items()},
    })
    tracking.set_tags(settings, run_id, {"plan_path": str(settings.plan_path), "solver_status": plan.solver_status,
                                         PUBLISHED_TAG: "true"})
    return published


@task(name="write-plan-report", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=[2, 10])
def write_plan_report(settings: Settings, run_id: str, problem: PlanningProblem, plan: PlanResult,
                      forecast: pd.DataFrame, history: pd.DataFrame) -> Path:
    """The HTML report of a published plan, next to it, in MLflow and linked from Prefect.

    Idempotent like publish_plan: a retry that finds the report already logged writes nothing again."""
    path = settings.output_dir / "plan_report.html"
    if tracking.run_tags(settings, run_id).get(REPORT_TAG) == "true":
        return path
    report = plan_report(problem, plan, explained_orders(plan), forecast, history,
                         settings.planning.budget_per_period, settings.planning.review_days)
    write_atomically(path, lambda stream: stream.write(render_html(report, run_id)))
    tracking.client_for(settings).log_artifact(run_id, str(path), REPORT_ARTIFACT_FOLDER)
    create_markdown_artifact(key="plan-report", description="The plan report: KPIs, top orders, charts",
                             markdown=report_markdown(report, path, run_id,
                                                      f"{REPORT_ARTIFACT_FOLDER}/{path.name}"))
    tracking.set_tags(settings, run_id, {REPORT_TAG: "true"})
    return path
