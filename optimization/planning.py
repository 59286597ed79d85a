"""From the data and a quantile forecast to orders a supplier accepts: the planning steps that the
planning flow and the policy simulation share, so that what the simulation proves is what
`replenish plan` does.  No Prefect here.

* scenario_calibration: how demand paths are drawn from the forecast (how strongly neighbouring
  days move together, and how much wider than its quantiles say), calibrated on what sold after
  the forecast made one horizon earlier (unless settings fix them).
* planning_problem: the optimizer's inputs for the days after the data's last date.  Each item
  gets a cycle service-level target (the item master's, else its ABC class's) and plans for the
  higher of it and the level its shortage penalty implies (see optimization.service_levels).
* store_plan / merged_plan: the plan, one store at a time, with whole orders and, when asked, soft
  constraints; a plan that is infeasible names every store at fault.
* plan_outlook: the plan's expected fill rate, cost and stock-out risk, on demand paths sampled
  from the forecast apart from those the plan was made on.
* purchase_orders: the orders due on the first planned day, as a supplier needs them;
  planned_orders and explained_orders: the whole plan, and each order with why.
* require_forecaster_contract / covered_forecast: the champion's recorded contract checked against
  the plan before it is asked for a forecast, and its forecast covering every planned day.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from models.forecast_contract import CoveredForecast, ForecasterContract, cover_planned_days, require_coverage
from models.forecast_frame import SERIES_KEY, quantile_levels
from optimization.config import PlanningConfig
from optimization.decomposition import PartPlan, merge_parts, split_by_location
from optimization.formulation import holding_cost_per_period, shortage_penalty
from optimization.grid import DAYS_PER_YEAR, planned_arrivals, prepare_grid
from optimization.problem import (
    MIN_ORDER_QUANTITY,
    PlanningProblem,
    PlanResult,
)
from optimization.replenishment_lp import solve_part
from optimization.service_levels import abc_classes, penalty_for_level, penalty_implied_level
from optimization.simulation import serve
from optimization.uncertainty import (
    CORRELATIONS,
    SPREADS,
    ScenarioCalibration,
    calibrate_scenarios,
    planning_demand,
    sample_demand_scenarios,
    widened,
)
from replenish.data.tables import RetailData
from replenish.frequency import Frequency, frequency_of

# Revenue over the last quarter classes items A, B or C: recent, yet long enough to span the
# weekly pattern and most promotions.
ABC_REVENUE_DAYS = 91
# A plan never aims higher: the forecast says little about demand beyond its top quantiles.
MAX_PLANNED_LEVEL = 0.999
# The KPI paths are drawn from seeds this far from the plan's own scenarios, so the two never coincide.
KPI_SEED_OFFSET = 1_000_003
# Enough item-stores to calibrate the scenarios' correlation on; more would only cost time.
CALIBRATION_SERIES = 2_000
SOFT_MODE_HINT = (
    "Set planning.model.soft_constraints=true to plan anyway: the broken constraints are then priced, "
    "listed first in the summary and the report, and published in constraint_violations.csv"
)
SERVICE_LEVEL_COLUMNS = ["item_id", "abc_class", "service_level", "penalty_level", "planned_level", "shortage_cost"]
PURCHASE_ORDER_COLUMNS = [
    "supplier_id",
    "item_id",
    "store_id",
    "order_date",
    "quantity",
    "case_pack",
    "case_packs",
    "unit_cost",
    "cost",
    "arrival_date",
    "safety_stock",
    "service_level",
]


def quantiles_needed(planning: PlanningConfig) -> set[float]:
    """The forecast quantiles the plan reads: its demand quantile, and the median safety stocks start from."""
    return {planning.demand_quantile, *([0.5] if planning.uncertainty_mode == "quantile" else [])}


def planned_periods(planning: PlanningConfig, frequency: Frequency) -> int:
    """The plan's horizon: as ``Settings.for_frequency`` set it (within the forecast's), else the
    frequency's default."""
    return planning.horizon or frequency.default_horizon


def planned_dates(snapshot_date: pd.Timestamp, planning: PlanningConfig, frequency: Frequency) -> pd.DatetimeIndex:
    return frequency.after(snapshot_date, planned_periods(planning, frequency))


def require_forecaster_contract(
    planning: PlanningConfig, sales: pd.DataFrame, version_tags: Mapping[str, str], model: str
) -> None:
    """The contract a model version recorded in its tags must give the plan's days and quantiles at the
    sales' frequency: checked before the plan asks the model for anything.  A version registered without
    one (a model registered outside Replenish) is taken as it is.  ``model`` names the version in the refusal."""
    frequency = frequency_of(sales["date"])
    contract = ForecasterContract.from_tags(version_tags)
    if contract is not None:
        contract.require(planned_periods(planning, frequency), frequency, quantiles_needed(planning), model)


def covered_forecast(planning: PlanningConfig, forecast: pd.DataFrame, sales: pd.DataFrame) -> CoveredForecast:
    """``forecast`` covering every item-store of the sales on every planned day after them: a gap is
    refused or, with planning.missing_forecast=naive, filled by seasonal naive (models.forecast_contract)."""
    dates = planned_dates(sales["date"].max(), planning, frequency_of(sales["date"]))
    return cover_planned_days(forecast, sales, dates, planning.missing_forecast)


def service_level_targets(data: RetailData, planning: PlanningConfig) -> pd.DataFrame:
    """Per item (SERVICE_LEVEL_COLUMNS): its ABC class, its target (the master's, else the class's),
    the level its shortage penalty implies, the level the plan follows (the higher) and the
    shortage penalty that stands for it."""
    items = data.items.set_index("item_id")
    recent = data.sales.loc[data.sales["date"] > data.snapshot_date - pd.Timedelta(days=ABC_REVENUE_DAYS)]
    price = recent["price"].fillna(recent["item_id"].map(items["sell_price"]))
    revenue = (recent["units"] * price).groupby(recent["item_id"]).sum().reindex(items.index, fill_value=0.0)
    levels = planning.service_levels
    abc = abc_classes(revenue, levels)
    target = items["service_level"].fillna(levels.of_class(abc)).to_numpy(dtype=float)
    unit_cost = items["unit_cost"].to_numpy(dtype=float)
    holding_per_day = unit_cost * items["holding_cost_rate"].to_numpy(dtype=float) / DAYS_PER_YEAR
    review_days = items["review_days"].to_numpy(dtype=float)
    own = items["shortage_cost"] if "shortage_cost" in items else pd.Series(np.nan, index=items.index)
    penalty = own.fillna(items["unit_cost"] * planning.costs.shortage_cost_multiplier).to_numpy(dtype=float)
    penalty_level = penalty_implied_level(unit_cost, penalty, holding_per_day, review_days)
    return pd.DataFrame(
        {
            "item_id": items.index,
            "abc_class": abc.to_numpy(),
            "service_level": target,
            "penalty_level": penalty_level,
            "planned_level": np.minimum(np.maximum(target, penalty_level), MAX_PLANNED_LEVEL),
            "shortage_cost": np.maximum(penalty, penalty_for_level(unit_cost, holding_per_day, review_days, target)),
        }
    )[SERVICE_LEVEL_COLUMNS]


def calibration_origin(snapshot_date: pd.Timestamp, planning: PlanningConfig, frequency: Frequency) -> pd.Timestamp:
    """The first period of the forecast the scenarios are calibrated on: one plan horizon before the
    plan's, so that what sold after it is known by now.  It is made from the sales before that period."""
    return frequency.shift(planned_dates(snapshot_date, planning, frequency)[0], -planned_periods(planning, frequency))


def scenario_calibration(
    past_forecast: pd.DataFrame | None, data: RetailData, planning: PlanningConfig
) -> ScenarioCalibration:
    """How demand paths are drawn from the forecast: planning.scenario_period_correlation and
    planning.scenario_spread where set; the rest calibrated on what sold after `past_forecast`, the
    forecast made at calibration_origin, over each item's lead time plus review (see
    optimization.uncertainty.calibrate_scenarios).  As the forecast says, when there is nothing to
    calibrate on."""
    fixed_correlation, fixed_spread = planning.scenario_period_correlation, planning.scenario_spread
    if fixed_correlation is not None and fixed_spread is not None:
        return ScenarioCalibration(fixed_correlation, fixed_spread)
    if past_forecast is None or past_forecast.empty:
        return ScenarioCalibration(fixed_correlation or 0.0, fixed_spread or 1.0)
    frequency = data.frequency
    origin = calibration_origin(data.snapshot_date, planning, frequency)
    protection_days = (data.items["lead_time_days"] + data.items["review_days"]).max()
    window = int(min(frequency.periods_in_days(protection_days), planned_periods(planning, frequency)))
    frame = forecast_by_period(past_forecast, origin, window, frequency)
    series = frame[SERIES_KEY].drop_duplicates()
    if len(series) > CALIBRATION_SERIES:
        frame = frame.merge(series.sample(CALIBRATION_SERIES, random_state=planning.scenario_seed), on=SERIES_KEY)
    sold = frame.assign(date=frequency.dates_from(origin, frame["period"].to_numpy())).merge(
        data.sales[[*SERIES_KEY, "date", "units"]], on=[*SERIES_KEY, "date"], how="left"
    )
    quantiles = list(quantile_levels(frame).values())
    return calibrate_scenarios(
        frame[[*SERIES_KEY, "period", *quantiles]],
        sold["units"].fillna(0.0).to_numpy(),
        window,
        correlations=CORRELATIONS if fixed_correlation is None else (fixed_correlation,),
        spreads=SPREADS if fixed_spread is None else (fixed_spread,),
        seed=planning.scenario_seed,
    )


def forecast_by_period(
    forecast: pd.DataFrame, start_date: pd.Timestamp, n_periods: int, frequency: Frequency
) -> pd.DataFrame:
    """The forecast rows of the planned periods, numbered from the first planned one."""
    period = frequency.periods_since(start_date, forecast["date"])
    within = (period >= 0) & (period < n_periods)
    return forecast.loc[within].assign(period=period[within]).drop(columns="date")


def planning_problem(
    data: RetailData,
    forecast: pd.DataFrame,
    planning: PlanningConfig,
    calibration: ScenarioCalibration = ScenarioCalibration(),
) -> PlanningProblem:
    """The optimizer's inputs.  A forecast that lacks an item-store of the inventory on a planned day
    is refused: the demand grid would read the gap as zero demand.  calibration: how the forecast
    turns into demand (scenario_calibration): its spread in every mode, its correlation in scenarios."""
    frequency = data.frequency
    n_periods = planned_periods(planning, frequency)
    dates = planned_dates(data.snapshot_date, planning, frequency)
    require_coverage(forecast, data.inventory, dates)
    by_period = widened(forecast_by_period(forecast, dates[0], n_periods, frequency), calibration.spread)
    levels = service_level_targets(data, planning)
    items = data.items.drop(columns=["service_level", "shortage_cost"], errors="ignore").merge(levels, on="item_id")
    keys = by_period[SERIES_KEY].drop_duplicates()
    protection = keys.merge(items[["item_id", "lead_time_days", "review_days"]], on="item_id")
    demand, safety_stock = planning_demand(
        by_period,
        planning.uncertainty_mode,
        demand_level=planning.demand_quantile,
        service_level=items.set_index("item_id")["planned_level"],
        protection_periods=pd.Series(
            frequency.periods_in_days_array(protection["lead_time_days"] + protection["review_days"]),
            index=pd.MultiIndex.from_frame(protection[SERIES_KEY]),
        ),
        n_scenarios=planning.n_scenarios,
        seed=planning.scenario_seed,
        period_correlation=calibration.period_correlation,
    )
    return PlanningProblem(
        start_date=dates[0],
        n_periods=n_periods,
        demand=demand.reset_index(drop=True),
        items=items,
        on_hand=data.inventory,
        open_orders=data.open_orders,
        capacity=data.capacity,
        frequency=frequency,
        safety_stock=safety_stock,
    )


def stores(problem: PlanningProblem, planning: PlanningConfig) -> list[PlanningProblem]:
    """One problem per store, solved apart; a budget shared across stores keeps them together."""
    return [problem] if planning.model.budget_per_period is not None else split_by_location(problem)


def store_plan(problem: PlanningProblem, planning: PlanningConfig) -> PartPlan:
    return solve_part(problem, planning.costs, planning.solver, planning.model)


def merged_plan(parts: list[PartPlan], planning: PlanningConfig) -> PlanResult:
    """The stores' plans as one; an infeasible plan names every store at fault and suggests soft mode."""
    return merge_parts(parts, hint="" if planning.model.soft_constraints else SOFT_MODE_HINT)


def solve_plan(problem: PlanningProblem, planning: PlanningConfig) -> PlanResult:
    """store_plan for each store, merged: what the planning flow does, in one call."""
    return merged_plan([store_plan(part, planning) for part in stores(problem, planning)], planning)


@dataclass(frozen=True)
class PlanOutlook:
    """What following the plan is expected to give, estimated on sampled demand paths."""

    expected_fill_rate: float  # share of demand served on its day
    expected_cost: float  # holding, shortage and ordering over the horizon: what the policy simulation scores
    stockout_risk: float  # the chance that an item-store runs short on a given planned day
    demand_paths: int


def plan_outlook(
    problem: PlanningProblem,
    plan: PlanResult,
    forecast: pd.DataFrame,
    planning: PlanningConfig,
    calibration: ScenarioCalibration = ScenarioCalibration(),
) -> PlanOutlook:
    """The plan's orders (and the open ones) against `planning.kpi_demand_paths` demand paths drawn
    from the forecast quantiles, as calibrated, with seeds apart from the plan's own scenarios: out
    of sample for the plan, which was made on its scenarios (or on one quantile)."""
    by_period = widened(
        forecast_by_period(forecast, problem.start_date, problem.n_periods, problem.frequency), calibration.spread
    )
    quantiles = list(quantile_levels(by_period).values())
    paths = sample_demand_scenarios(
        by_period[[*SERIES_KEY, "period", *quantiles]],
        planning.kpi_demand_paths,
        planning.scenario_seed + KPI_SEED_OFFSET,
        calibration.period_correlation,
    )
    grid = prepare_grid(replace(problem, demand=paths, safety_stock=None))
    positions = grid.item_stores[SERIES_KEY].reset_index(names="position")
    placed = plan.orders.merge(positions, on=SERIES_KEY)
    orders = np.zeros((len(grid.item_stores), grid.n_periods))
    periods = grid.frequency.periods_since(grid.start_date, placed["order_date"])
    np.add.at(orders, (placed["position"].to_numpy(), periods), placed["quantity"].to_numpy(dtype=float))
    arrivals = grid.open_arrivals + planned_arrivals(orders, grid.lead_periods)
    backorders = planning.model.shortage_mode == "backorder"
    stock = np.repeat(grid.column("opening_on_hand")[:, None], grid.n_scenarios, axis=1)
    backlog = np.zeros_like(stock)
    held = short = 0.0
    unmet = np.zeros(grid.demand.shape)
    costs = planning.costs
    holding, penalty = holding_cost_per_period(grid), shortage_penalty(grid, costs)
    for t in range(grid.n_periods):
        stock, backlog, unmet[:, :, t] = serve(stock + arrivals[:, t, None], backlog, grid.demand[:, :, t], backorders)
        held = held + holding @ stock.mean(axis=1)
        short = short + penalty @ (backlog if backorders else unmet[:, :, t]).mean(axis=1)
    demand = float(grid.demand.sum())
    return PlanOutlook(
        expected_fill_rate=1.0 - float(unmet.sum()) / demand if demand > 0 else 1.0,
        expected_cost=float(plan.cost_breakdown.get("ordering", 0.0) + held + short),
        stockout_risk=float((unmet > MIN_ORDER_QUANTITY).mean()) if unmet.size else 0.0,
        demand_paths=grid.n_scenarios,
    )


def purchase_orders(problem: PlanningProblem, plan: PlanResult) -> pd.DataFrame:
    """The orders due on the first planned day (PURCHASE_ORDER_COLUMNS): one line per supplier, item
    and store, in units and in case packs, with their cost, arrival, the safety stock each one
    leaves (its inventory position less the expected demand until the next order can land) and the
    service level the plan follows for the item."""
    first_day = pd.Timestamp(problem.start_date).normalize()
    due = plan.orders.loc[plan.orders["order_date"] == first_day]
    item_columns = ["item_id", "supplier_id", "case_pack", "unit_cost", "planned_level"]
    keys = [*SERIES_KEY, "order_date"]
    # A plan without orders explains them in an untyped empty frame, which would not merge on dates.
    safety = plan.explanations.reindex(columns=[*keys, "safety_stock"]).astype({"order_date": due["order_date"].dtype})
    described = due.merge(problem.items[item_columns], on="item_id", how="left").merge(safety, on=keys, how="left")
    # Whole units and packs, cents and tenths, as a supplier reads an order.
    described = described.assign(
        quantity=described["quantity"].round().astype("int64"),
        case_packs=(described["quantity"] / described["case_pack"]).round().astype("int64"),
        cost=(described["quantity"] * described["unit_cost"]).round(2),
        safety_stock=described["safety_stock"].round(1),
        service_level=described["planned_level"].round(4),
    )
    return described[PURCHASE_ORDER_COLUMNS].sort_values(["supplier_id", "store_id", "item_id"], ignore_index=True)


def planned_orders(plan: PlanResult) -> pd.DataFrame:
    """The projected plan in whole units, as purchase_orders gives its first day."""
    orders = plan.orders[["item_id", "store_id", "order_date", "quantity", "arrival_date"]]
    return orders.assign(quantity=orders["quantity"].round().astype("int64"))


def explained_orders(plan: PlanResult) -> pd.DataFrame:
    """Each order with why: demand over lead time plus review, safety stock, on hand, pipeline, binding limits."""
    keys = ["item_id", "store_id", "order_date"]
    # A plan without orders explains them in an untyped empty frame, which would not merge on dates.
    explanation = plan.explanations.drop(columns=["quantity"], errors="ignore").astype(
        {"order_date": plan.orders["order_date"].dtype}
    )
    return plan.orders[[*keys, "quantity", "arrival_date"]].merge(explanation, on=keys, how="left")
