"""Forecast the planning horizon with the champion, plan whole orders store by store, estimate the
plan's outlook on sampled demand, report and publish the plan."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from models.forecast_contract import ForecastContractError
from models.pyfunc import as_model_input
from optimization.config import PlanningConfig
from optimization.decomposition import PartPlan
from optimization.planning import (
    PlanOutlook,
    calibration_origin,
    covered_forecast,
    explained_orders,
    merged_plan,
    plan_outlook,
    planning_problem,
    purchase_orders,
    require_forecaster_contract,
    scenario_calibration,
    store_plan,
    stores,
)
from optimization.problem import PlanningProblem, PlanResult
from optimization.uncertainty import ScenarioCalibration
from replenish.data.tables import RetailData
from replenish.plan_output import PublishedPlan, plan_files, plan_metrics, plan_tables, published_plan
from replenish.publishing import REPORT_FILE, publish_unit
from replenish.report import PlanReport, plan_report, report_markdown
from replenish.settings import DataSettings
from replenish.simulate import latest_simulation
from replenish.tracking import ModelRegistry, RunTracker

FORECAST_ARTIFACT = "forecast/forecast.csv"
REPORT_ARTIFACT_FOLDER = "report"
PUBLISHED_TAG = "plan_published"


class ChampionMissingError(LookupError):
    """Planning needs a registered champion model."""


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

    The champion's recorded contract must give the plan's days and quantiles (a version registered
    without one, outside Replenish, is taken as it is). The forecast is logged with the champion's
    version, as the model made it, so monitoring can later score it against the sales that actually
    happened. What the plan gets covers every item-store on every planned day: a gap is refused or,
    with planning.missing_forecast=naive, filled by seasonal naive (the metric plan_series_naive_fallback
    counts the item-stores)."""
    champion = registry.champion()
    if champion is None:
        raise ChampionMissingError(
            f"no model has alias 'champion' in {registry.name!r} (registry {registry.uri}); run `replenish train` first"
        )
    require_forecaster_contract(
        planning, sales, champion.tags, f"champion version {champion.version} of {registry.name!r}"
    )
    forecast = registry.load_champion().predict(as_model_input(sales))
    tracker.log_table(forecast, FORECAST_ARTIFACT)
    tracker.set_tags({"model_version": str(champion.version), "forecast_origin": f"{sales['date'].max():%Y-%m-%d}"})
    covered = covered_forecast(planning, forecast, sales)
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
    published = published_plan(planning, output, run_id, created, problem, plan, report)
    if run.data.tags.get(PUBLISHED_TAG) == "true":
        return published
    publish_unit(output, plan_files(planning, run_id, problem, plan, report), run_id, created)
    for name, table in plan_tables(planning, problem, plan).items():
        tracker.log_table(table, f"plan/{name}")
    tracker.log_metrics(plan_metrics(published, plan))
    # This run's own copy: by now another publish may have made a newer plan current.
    tracker.log_artifact(published.folder / REPORT_FILE, REPORT_ARTIFACT_FOLDER)
    create_table_artifact(
        key="plan-kpis", description="The plan's key figures, as the report gives them", table=published.key_figures()
    )
    markdown = report_markdown(report, published.report_path, tracker.link, f"{REPORT_ARTIFACT_FOLDER}/{REPORT_FILE}")
    create_markdown_artifact(
        key="plan-report", description="The plan report: KPIs, top orders, charts", markdown=markdown
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
