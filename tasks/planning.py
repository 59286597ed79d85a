"""Forecast the planning horizon with the champion, plan whole orders store by store, estimate the
plan's outlook on sampled demand, report and publish the plan."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from models.forecast_contract import ForecastContractError, ForecasterContract, cover_planned_days
from models.pyfunc import as_model_input
from optimization.config import PlanningConfig
from optimization.decomposition import PartPlan
from optimization.planning import (
    PlanOutlook,
    calibration_origin,
    merged_plan,
    plan_outlook,
    planned_dates,
    planned_periods,
    planning_problem,
    purchase_orders,
    quantiles_needed,
    scenario_calibration,
    store_plan,
    stores,
)
from optimization.problem import PlanningProblem, PlanResult
from optimization.uncertainty import ScenarioCalibration
from replenish.data.tables import RetailData
from replenish.frequency import frequency_of
from replenish.publishing import PLAN_FILE, PLANS_FOLDER, Content, plan_folder_name, publish_unit
from replenish.report import PlanReport, plan_report, render_html, report_markdown, summarised_violations
from replenish.settings import DataSettings
from replenish.tracking import ModelRegistry, RunTracker
from tasks.simulation import latest_simulation

FORECAST_ARTIFACT = "forecast/forecast.csv"
REPORT_ARTIFACT_FOLDER = "report"
PUBLISHED_TAG = "plan_published"
PURCHASE_ORDERS_FILE = "purchase_orders.csv"
VIOLATIONS_FILE = "constraint_violations.csv"
EXPLAINED_FILE = "order_plan_explained.csv"
DEMAND_FILE = "plan_demand.csv"
REPORT_FILE = "plan_report.html"


class ChampionMissingError(LookupError):
    """Planning needs a registered champion model."""


@dataclass(frozen=True)
class PublishedPlan:
    purchase_orders_path: Path  # the orders due on the first planned day
    plan_path: Path  # the projected plan over the horizon
    demand_path: Path
    explained_path: Path
    report_path: Path
    violations_path: Path | None  # soft mode only
    folder: Path  # output/plans/<created>-<run id>: the paths above read it through output/current
    first_day: pd.Timestamp
    due_orders: int  # purchase orders due on the first day
    due_units: float
    due_cost: float
    orders: int  # over the horizon
    units: float
    planned_cost: float
    outlook: PlanOutlook
    solver_status: str
    broken_constraints: list[str]  # soft mode: each broken constraint in a line, the worst first

    def key_figures(self) -> list[dict[str, str]]:
        """The plan's headline figures, one row each, for the Prefect UI's table artifact."""
        outlook = self.outlook
        figures = {
            f"purchase orders due {self.first_day:%Y-%m-%d}": f"{self.due_orders:,}",
            "units due": f"{self.due_units:,.0f}",
            "purchase cost due": f"{self.due_cost:,.2f}",
            "orders over the horizon": f"{self.orders:,}",
            "planned cost": f"{self.planned_cost:,.2f}",
            "expected fill rate": f"{outlook.expected_fill_rate:.1%}",
            "expected cost": f"{outlook.expected_cost:,.2f}",
            "stock-out risk per item-store and day": f"{outlook.stockout_risk:.1%}",
            "broken constraints (soft mode)": f"{len(self.broken_constraints):,}",
            "solver status": self.solver_status,
        }
        return [{"figure": name, "value": value} for name, value in figures.items()]

    def summary_lines(self) -> list[str]:
        """The plan as the command line reports it; broken constraints (soft mode) first."""
        broken = []
        if self.broken_constraints:
            shown = "; ".join(self.broken_constraints[:3]) + ("; ..." if len(self.broken_constraints) > 3 else "")
            broken = [
                f"  BROKEN     {len(self.broken_constraints)} constraint(s), planned in soft mode: {shown} "
                f"(all in {self.violations_path})"
            ]
        outlook = self.outlook
        return [
            *broken,
            f"  orders     {self.due_orders} purchase order(s) due {self.first_day:%Y-%m-%d}: "
            f"{self.due_units:,.0f} units,"
            f" cost {self.due_cost:,.2f}",
            f"  plan       {self.orders} orders over the horizon, {self.units:,.0f} units, planned cost "
            f"{self.planned_cost:,.2f} (solver: {self.solver_status})",
            f"  outlook    expected fill rate {outlook.expected_fill_rate:.1%}, "
            f"expected cost {outlook.expected_cost:,.2f},"
            f" stock-out risk {outlook.stockout_risk:.1%} per item-store and day ({outlook.demand_paths} sampled demand"
            " paths)",
            f"  written    {self.purchase_orders_path} (projected plan: {self.plan_path}, explained: "
            f"{self.explained_path.name})",
        ]


def _not_a_contract_refusal(task: object, task_run: object, state: object) -> bool:
    """A refusal that names what is missing comes back the same on every try: retry only the rest."""
    return not isinstance(state.result(raise_on_failure=False), (ChampionMissingError, ForecastContractError))


@task(
    name="forecast-planning-horizon",
    cache_policy=NO_CACHE,
    retries=2,
    retry_delay_seconds=[2, 10],
    retry_condition_fn=_not_a_contract_refusal,
)
def forecast_planning_horizon(
    planning: PlanningConfig, registry: ModelRegistry, tracker: RunTracker, sales: pd.DataFrame
) -> pd.DataFrame:
    """Quantile forecasts of the planned days after the snapshot, from the registered champion model.

    The champion's recorded contract must give the plan's days and quantiles (versions registered
    before models recorded one are taken as they are). The forecast is logged with the champion's
    version, as the model made it, so monitoring can later score it against the sales that actually
    happened. What the plan gets covers every item-store on every planned day: a gap is refused or,
    with planning.missing_forecast=naive, filled by seasonal naive (the metric plan_series_naive_fallback
    counts the item-stores)."""
    champion = registry.champion()
    if champion is None:
        raise ChampionMissingError(
            f"no model has alias 'champion' in {registry.name!r} (registry {registry.uri}); run `replenish train` first"
        )
    frequency = frequency_of(sales["date"])
    contract = ForecasterContract.from_tags(champion.tags)
    if contract is not None:
        contract.require(
            planned_periods(planning, frequency),
            frequency,
            quantiles_needed(planning),
            f"champion version {champion.version} of {registry.name!r}",
        )
    forecast = registry.load_champion().predict(as_model_input(sales))
    tracker.log_table(forecast, FORECAST_ARTIFACT)
    tracker.set_tags(
        {
            "model_version": str(champion.version),
            "forecast_origin": f"{sales['date'].max():%Y-%m-%d}",
        },
    )
    covered = cover_planned_days(
        forecast,
        sales,
        planned_dates(sales["date"].max(), planning, frequency),
        planning.missing_forecast,
    )
    tracker.log_metrics({"plan_series_naive_fallback": covered.naive_fallback_series})
    return covered.forecast


@task(name="calibrate-scenarios", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=[2, 10])
def calibrate_scenarios(
    planning: PlanningConfig, registry: ModelRegistry, tracker: RunTracker, data: RetailData
) -> ScenarioCalibration:
    """How demand paths are drawn from the forecast: calibrated, unless settings fix it, on the
    champion's forecast made one horizon before the plan (optimization.planning.scenario_calibration)."""
    past_forecast = None
    before = data.sales.loc[data.sales["date"] < calibration_origin(data.snapshot_date, planning, data.frequency)]
    if None in (planning.scenario_period_correlation, planning.scenario_spread) and len(before):
        past_forecast = registry.load_champion().predict(as_model_input(before))
    calibration = scenario_calibration(past_forecast, data, planning)
    tracker.log_metrics(
        {
            "plan_scenario_period_correlation": calibration.period_correlation,
            "plan_scenario_spread": calibration.spread,
        },
    )
    return calibration


@task(name="build-planning-problem", cache_policy=NO_CACHE)
def build_planning_problem(
    data: RetailData, forecast: pd.DataFrame, planning: PlanningConfig, calibration: ScenarioCalibration
) -> PlanningProblem:
    return planning_problem(data, forecast, planning, calibration)


@task(name="split-by-location", cache_policy=NO_CACHE)
def split_by_store(problem: PlanningProblem, planning: PlanningConfig) -> list[PlanningProblem]:
    return stores(problem, planning)


@task(name="optimize-orders", cache_policy=NO_CACHE)
def optimize_orders(problem: PlanningProblem, planning: PlanningConfig) -> PartPlan:
    return store_plan(problem, planning)


@task(name="merge-plans", cache_policy=NO_CACHE)
def merge_plans(parts: list[PartPlan], planning: PlanningConfig) -> PlanResult:
    return merged_plan(parts, planning)


@task(name="estimate-plan-outlook", cache_policy=NO_CACHE)
def estimate_plan_outlook(
    problem: PlanningProblem,
    plan: PlanResult,
    forecast: pd.DataFrame,
    planning: PlanningConfig,
    calibration: ScenarioCalibration,
) -> PlanOutlook:
    return plan_outlook(problem, plan, forecast, planning, calibration)


def explained_orders(plan: PlanResult) -> pd.DataFrame:
    """Each order with why: demand over lead time plus review, safety stock, on hand, pipeline, binding limits."""
    keys = ["item_id", "store_id", "order_date"]
    # A plan without orders explains them in an untyped empty frame, which would not merge on dates.
    explanation = plan.explanations.drop(columns=["quantity"], errors="ignore").astype(
        {"order_date": plan.orders["order_date"].dtype}
    )
    return plan.orders[[*keys, "quantity", "arrival_date"]].merge(explanation, on=keys, how="left")


def planned_orders(plan: PlanResult) -> pd.DataFrame:
    """The projected plan in whole units, as purchase_orders.csv gives its first day."""
    orders = plan.orders[["item_id", "store_id", "order_date", "quantity", "arrival_date"]]
    return orders.assign(quantity=orders["quantity"].round().astype("int64"))


def plan_files(
    planning: PlanningConfig, run_id: str, problem: PlanningProblem, plan: PlanResult, report: PlanReport
) -> dict[str, Content]:
    """The files published together as one plan, by their names in the output folder."""
    dated = problem.demand.assign(date=problem.start_date + pd.to_timedelta(problem.demand["period"], unit="D"))
    # The expected demand: in scenario mode the mean of the scenarios the plan was made on.
    demand = dated.groupby(["item_id", "store_id", "date"], as_index=False, sort=True)["demand"].mean()
    return {
        PURCHASE_ORDERS_FILE: purchase_orders(problem, plan),
        PLAN_FILE: planned_orders(plan),
        EXPLAINED_FILE: explained_orders(plan),
        DEMAND_FILE: demand[["item_id", "store_id", "date", "demand"]],
        REPORT_FILE: render_html(report, run_id),
        # Soft mode always says what it broke, if only that it broke nothing.
        **({VIOLATIONS_FILE: plan.violations} if planning.model.soft_constraints else {}),
    }


@task(name="build-plan-report", cache_policy=NO_CACHE)
def build_plan_report(
    planning: PlanningConfig,
    data: DataSettings,
    tracker: RunTracker,
    problem: PlanningProblem,
    plan: PlanResult,
    forecast: pd.DataFrame,
    history: pd.DataFrame,
    outlook: PlanOutlook,
) -> PlanReport:
    """The report, with the latest policy simulation of this data set when there is one."""
    simulation = latest_simulation(tracker.experiment, data)
    return plan_report(
        problem,
        plan,
        explained_orders(plan),
        forecast,
        history,
        planning.model.budget_per_period,
        outlook,
        purchase_orders(problem, plan),
        simulation,
    )


@task(name="publish-plan", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=[2, 10])
def publish_plan(
    planning: PlanningConfig,
    output: Path,
    tracker: RunTracker,
    problem: PlanningProblem,
    plan: PlanResult,
    report: PlanReport,
) -> PublishedPlan:
    """The plan's files and its report as one unit, then logged to MLflow and linked from Prefect.

    Idempotent: a retried task (or flow) that finds this run already published writes nothing again."""
    run, run_id = tracker.get_run(), tracker.run_id
    created = datetime.fromtimestamp(run.info.start_time / 1000, UTC)  # the same on every retry
    orders, due = planned_orders(plan), purchase_orders(problem, plan)
    soft = planning.model.soft_constraints
    published = PublishedPlan(
        output / PURCHASE_ORDERS_FILE,
        output / PLAN_FILE,
        output / DEMAND_FILE,
        output / EXPLAINED_FILE,
        output / REPORT_FILE,
        output / VIOLATIONS_FILE if soft else None,
        output / PLANS_FOLDER / plan_folder_name(run_id, created),
        pd.Timestamp(problem.start_date),
        len(due),
        float(due["quantity"].sum()),
        float(due["cost"].sum()),
        len(orders),
        float(orders["quantity"].sum()),
        plan.objective,
        report.outlook,
        plan.solver_status,
        summarised_violations(plan.violations)["summary"].tolist(),
    )
    if run.data.tags.get(PUBLISHED_TAG) == "true":
        return published
    publish_unit(output, plan_files(planning, run_id, problem, plan, report), run_id, created)
    tracker.log_table(due, f"plan/{PURCHASE_ORDERS_FILE}")
    tracker.log_table(orders, f"plan/{PLAN_FILE}")
    tracker.log_table(explained_orders(plan), f"plan/{EXPLAINED_FILE}")
    tracker.log_table(plan.inventory, "plan/projected_inventory.csv")
    if soft:
        tracker.log_table(plan.violations, f"plan/{VIOLATIONS_FILE}")
    tracker.log_metrics(
        {
            "plan_purchase_orders": len(due),
            "plan_purchase_cost": float(due["cost"].sum()),
            "plan_orders": len(orders),
            "plan_units": float(orders["quantity"].sum()),
            "plan_cost": plan.objective,
            "plan_expected_fill_rate": report.outlook.expected_fill_rate,
            "plan_expected_cost": report.outlook.expected_cost,
            "plan_stockout_risk": report.outlook.stockout_risk,
            "plan_broken_constraints": len(plan.violations),
            "plan_solve_seconds": plan.solve_seconds,
            **{f"plan_cost_{part}": value for part, value in plan.cost_breakdown.items()},
        },
    )
    # This run's own copy: by now another publish may have made a newer plan current.
    tracker.log_artifact(published.folder / REPORT_FILE, REPORT_ARTIFACT_FOLDER)
    create_table_artifact(
        key="plan-kpis", description="The plan's key figures, as the report gives them", table=published.key_figures()
    )
    create_markdown_artifact(
        key="plan-report",
        description="The plan report: KPIs, top orders, charts",
        markdown=report_markdown(
            report,
            published.report_path,
            tracker.link,
            f"{REPORT_ARTIFACT_FOLDER}/{REPORT_FILE}",
        ),
    )
    tracker.set_tags(
        {
            "plan_path": str(published.plan_path),
            "plan_folder": str(published.folder),
            "solver_status": plan.solver_status,
            PUBLISHED_TAG: "true",
        },
    )
    logger = get_run_logger()  # the summary in the flow run's log, as the command line prints it
    for line in published.summary_lines():
        logger.info(line.strip())
    return published
