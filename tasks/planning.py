"""Forecast the planning horizon with the champion, solve the replenishment LP, publish the plan."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
from prefect import task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from models.forecast_contract import (
    ForecastContractError,
    ForecasterContract,
    cover_planned_days,
    require_coverage,
)
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
from replenish.publishing import PLANS_FOLDER, Content, plan_folder_name, publish_unit
from replenish.report import PlanReport, plan_report, render_html, report_markdown
from replenish.settings import PlanningSettings, Settings


FORECAST_ARTIFACT = "forecast/forecast.csv"
REPORT_ARTIFACT_FOLDER = "report"
PUBLISHED_TAG = "plan_published"
EXPLAINED_FILE = "order_plan_explained.csv"
DEMAND_FILE = "plan_demand.csv"
REPORT_FILE = "plan_report.html"


class ChampionMissingError(LookupError):
    """Planning needs a registered champion model."""


@dataclass(frozen=True)
class PublishedPlan:
    plan_path: Path
    demand_path: Path
    explained_path: Path
    report_path: Path
    folder: Path  # output/plans/<created>-<run id>: the paths above read it through output/current
    orders: int
    units: float
    planned_cost: float
    expected_fill_rate: float
    solver_status: str


def _not_a_contract_refusal(task: object, task_run: object, state: object) -> bool:
    """A refusal that names what is missing comes back the same on every try: retry only the rest."""
    return not isinstance(state.result(raise_on_failure=False), (ChampionMissingError, ForecastContractError))


def quantiles_needed(planning: PlanningSettings) -> set[float]:
    """The forecast quantiles the plan reads: its demand quantile, and the median safety stocks start from."""
    return {planning.demand_quantile, *([0.5] if planning.uncertainty_mode == "quantile" else [])}


def planned_dates(snapshot_date: pd.Timestamp, planning: PlanningSettings) -> pd.DatetimeIndex:
    return pd.date_range(snapshot_date + pd.Timedelta(days=1), periods=planning.horizon_days, freq="D")


@task(name="forecast-planning-horizon", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=[2, 10],
      retry_condition_fn=_not_a_contract_refusal)
def forecast_planning_horizon(settings: Settings, run_id: str, sales: pd.DataFrame) -> pd.DataFrame:
    """Quantile forecasts of the planned days after the snapshot, from the registered champion model.

    The champion's recorded contract must give the plan's days and quantiles (versions registered
    before models recorded one are taken as they are). The forecast is logged with the champion's
    version, as the model made it, so monitoring can later score it against the sales that actually
    happened. What the plan gets covers every item-store on every planned day: a gap is refused or,
    with planning.missing_forecast=naive, filled by seasonal naive (the metric plan_series_naive_fallback
    counts the item-stores)."""
    champion = tracking.champion_version(settings)
    if champion is None:
        raise ChampionMissingError(
            f"no model has alias 'champion' in {settings.tracking.registered_model_name!r} "
            f"(registry {settings.mlflow_registry_uri}); run `replenish train` first")
    contract = ForecasterContract.from_tags(champion.tags)
    if contract is not None:
        contract.require(settings.planning.horizon_days, quantiles_needed(settings.planning),
                         f"champion version {champion.version} of {settings.tracking.registered_model_name!r}")
    forecast = tracking.load_champion(settings).predict(as_model_input(sales))
    tracking.log_table(settings, run_id, forecast, FORECAST_ARTIFACT)
    tracking.set_tags(settings, run_id, {
        "model_version": str(champion.version),
        "forecast_origin": f"{sales['date'].max():%Y-%m-%d}",
    })
    covered = cover_planned_days(forecast, sales, planned_dates(sales["date"].max(), settings.planning),
                                 settings.planning.missing_forecast)
    tracking.log_metrics(settings, run_id, {"plan_series_naive_fallback": covered.naive_fallback_series})
    return covered.forecast


def planning_problem(data: RetailData, forecast: pd.DataFrame, planning: PlanningSettings) -> PlanningProblem:
    """The LP's inputs. A forecast that lacks an item-store of the inventory on a planned day is
    refused: the demand grid would read the gap as zero demand."""
    dates = planned_dates(data.snapshot_date, planning)
    require_coverage(forecast, data.inventory, dates)
    start_date = dates[0]
    horizon = forecast[forecast["date"].isin(dates)]
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


def planned_orders(plan: PlanResult) -> pd.DataFrame:
    return plan.orders[["item_id", "store_id", "order_date", "quantity", "arrival_date"]]


def plan_files(settings: Settings, run_id: str, problem: PlanningProblem, plan: PlanResult,
               report: PlanReport) -> dict[str, Content]:
    """The files published together as one plan, by their names in the output folder."""
    demand = problem.demand.assign(date=problem.start_date + pd.to_timedelta(problem.demand["period"], unit="D"))
    return {
        settings.plan_path.name: planned_orders(plan),
        EXPLAINED_FILE: explained_orders(plan),
        DEMAND_FILE: demand[["item_id", "store_id", "date", "demand"]],
        REPORT_FILE: render_html(report, run_id),
    }


@task(name="build-plan-report", cache_policy=NO_CACHE)
def build_plan_report(problem: PlanningProblem, plan: PlanResult, forecast: pd.DataFrame, history: pd.DataFrame,
                      planning: PlanningSettings) -> PlanReport:
    return plan_report(problem, plan, explained_orders(plan), forecast, history,
                       planning.budget_per_period, planning.review_days)


@task(name="publish-plan", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=[2, 10])
def publish_plan(settings: Settings, run_id: str, problem: PlanningProblem, plan: PlanResult,
                 report: PlanReport) -> PublishedPlan:
    """The plan's files and its report as one unit, then logged to MLflow and linked from Prefect.

    Idempotent: a retried task (or flow) that finds this run already published writes nothing again."""
    run = tracking.client_for(settings).get_run(run_id)
    created = datetime.fromtimestamp(run.info.start_time / 1000, timezone.utc)  # the same on every retry
    orders = planned_orders(plan)
    output = settings.output_dir
    published = PublishedPlan(settings.plan_path, output / DEMAND_FILE, output / EXPLAINED_FILE, output / REPORT_FILE,
                              output / PLANS_FOLDER / plan_folder_name(run_id, created), len(orders),
                              float(orders["quantity"].sum()), plan.objective, plan.expected_fill_rate,
                              plan.solver_status)
    if run.data.tags.get(PUBLISHED_TAG) == "true":
        return published
    publish_unit(output, plan_files(settings, run_id, problem, plan, report), run_id, created)
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
    # This run's own copy: by now another publish may have made a newer plan current.
    tracking.client_for(settings).log_artifact(run_id, str(published.folder / REPORT_FILE), REPORT_ARTIFACT_FOLDER)
    create_markdown_artifact(key="plan-report", description="The plan report: KPIs, top orders, charts",
                             markdown=report_markdown(report, published.report_path, run_id,
                                                      f"{REPORT_ARTIFACT_FOLDER}/{REPORT_FILE}"))
    tracking.set_tags(settings, run_id, {"plan_path": str(settings.plan_path), "plan_folder": str(published.folder),
                                         "solver_status": plan.solver_status, PUBLISHED_TAG: "true"})
    return published
