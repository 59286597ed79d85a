"""Daily lost-sales replenishment plan per item-store, as an LP solved by HiGHS through Pyomo.

Every item-store k and day t keeps the balance

    on_hand_end[k, t] = on_hand_end[k, t-1] + open_arrivals[k, t] + order[k, t - L_k]
                        - demand[k, t] + lost_sales[k, t]

with 0 <= lost_sales <= demand, non-negative stock and orders.  Each store limits the volume
on its shelves right after the day's deliveries arrive and before that day's sales:

    sum_k unit_volume[k] * (on_hand_end[k, t-1] + open_arrivals[k, t] + order[k, t - L_k])
        <= capacity_volume[store]

(on_hand_end[k, -1] is the opening stock).  A limit on end-of-day stock would be pointless
here: with daily ordering and a holding cost the optimal plan keeps no bought stock overnight,
so only the space needed when deliveries land can shape the orders.  Purchase, handling,
holding and lost-sale penalties are minimised together.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyomo.environ as pyo
from pyomo.contrib.solver.common.factory import SolverFactory
from pyomo.contrib.solver.common.results import (
    Results,
    SolutionStatus,
    TerminationCondition,
)

DAYS_PER_YEAR = 365
# Solver noise below this is not an order anyone should place.
MIN_ORDER_QUANTITY = 1e-6
# Slack for float sums in the capacity pre-check, well above HiGHS's feasibility tolerance.
CAPACITY_TOLERANCE = 1e-6
# Enough violations to locate the problem without flooding the message.
MAX_REPORTED_VIOLATIONS = 5

ITEM_STORE_KEYS = ["item_id", "store_id"]
ITEM_ATTRIBUTES = ["unit_cost", "holding_cost_rate", "lead_time_days", "unit_volume"]
COST_COMPONENTS = ("purchase", "holding", "shortage", "ordering")
CAPACITY_UTILISATION_COLUMNS = [
    "store_id",
    "period",
    "date",
    "volume_after_arrivals",
    "capacity_volume",
    "utilisation",
    "binding",
]


@dataclass(frozen=True)
class PlanningProblem:
    start_date: pd.Timestamp
    n_periods: int
    demand: pd.DataFrame
    items: pd.DataFrame
    on_hand: pd.DataFrame
    open_orders: pd.DataFrame
    capacity: pd.DataFrame


@dataclass(frozen=True)
class CostSettings:
    shortage_cost_multiplier: float = 2.0
    order_cost_per_unit: float = 0.0


@dataclass(frozen=True)
class SolverSettings:
    time_limit_seconds: float = 60.0
    mip_rel_gap: float = 1e-4
    options: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class PlanResult:
    orders: pd.DataFrame
    inventory: pd.DataFrame
    objective: float
    cost_breakdown: dict[str, float]
    solver_status: str
    solve_seconds: float
    expected_fill_rate: float
    # One row per capacitated store and period: store_id, period, date, volume_after_arrivals,
    # capacity_volume, utilisation, binding.  Last, with a default, so older constructors work.
    capacity_utilisation: pd.DataFrame = field(default_factory=pd.DataFrame)


class PlanInfeasibleError(ValueError):
    """No plan can keep every store within its capacity."""


@dataclass(frozen=True)
class _ItemStoreGrid:
    """Row k of `item_stores` owns row k of the (item-store × period) arrays."""

    start_date: pd.Timestamp
    item_stores: pd.DataFrame  # ITEM_STORE_KEYS + ITEM_ATTRIBUTES + opening_on_hand
    demand: np.ndarray
    open_arrivals: np.ndarray


def build_model(problem: PlanningProblem, costs: CostSettings) -> pyo.ConcreteModel:
    """Pyomo LP; item-stores are indexed by their position in (item_id, store_id) order."""
    return _build_model_from_grid(_prepare_grid(problem), problem.capacity, costs)


def solve_replenishment_plan(
    problem: PlanningProblem,
    costs: CostSettings = CostSettings(),
    solver: SolverSettings = SolverSettings(),
) -> PlanResult:
    grid = _prepare_grid(problem)
    if grid.item_stores.empty:
        # HiGHS reports an empty model as unsolved, yet planning nothing is trivially optimal.
        nothing = np.zeros(grid.demand.shape)
        no_costs = dict.fromkeys(COST_COMPONENTS, 0.0)
        return _plan_result(
            grid, problem.capacity, nothing, nothing, nothing, no_costs, "optimal", 0.0
        )
    _raise_if_capacity_cannot_hold(grid, problem.capacity)
    model = _build_model_from_grid(grid, problem.capacity, costs)

    started = time.perf_counter()
    results = _solve_with_highs(model, solver)
    solve_seconds = time.perf_counter() - started
    _raise_unless_solution(results)
    results.solution_loader.load_vars()

    cost_breakdown = {name: pyo.value(model.component(f"{name}_cost")) for name in COST_COMPONENTS}
    return _plan_result(
        grid,
        problem.capacity,
        # Order slots that could not arrive inside the horizon stay 0.
        orders=_variable_matrix(model.order, grid.demand.shape),
        lost_sales=_variable_matrix(model.lost_sales, grid.demand.shape),
        on_hand_end=_variable_matrix(model.on_hand_end, grid.demand.shape),
        cost_breakdown=cost_breakdown,
        solver_status=_status_label(results),
        solve_seconds=solve_seconds,
    )


# --- input preparation -------------------------------------------------------------------


def _prepare_grid(problem: PlanningProblem) -> _ItemStoreGrid:
    _require_columns(problem.demand, "demand", [*ITEM_STORE_KEYS, "period", "demand"])
    _require_columns(problem.items, "items", ["item_id", *ITEM_ATTRIBUTES])
    _require_columns(problem.on_hand, "on_hand", [*ITEM_STORE_KEYS, "on_hand"])
    _require_columns(
        problem.open_orders, "open_orders", [*ITEM_STORE_KEYS, "quantity", "arrival_date"]
    )
    _require_columns(problem.capacity, "capacity", ["store_id", "capacity_volume"])
    _validate_demand(problem.demand, problem.n_periods)
    _require_unique(problem.items, "items", ["item_id"])
    _require_unique(problem.on_hand, "on_hand", ITEM_STORE_KEYS)
    _require_unique(problem.capacity, "capacity", ["store_id"])

    start_date = pd.Timestamp(problem.start_date).normalize()
    arrivals = _open_order_arrivals(problem.open_orders, start_date, problem.n_periods)
    item_stores = _item_stores(problem.demand, problem.on_hand, arrivals, problem.items)
    return _ItemStoreGrid(
        start_date=start_date,
        item_stores=item_stores,
        demand=_period_matrix(problem.demand, "demand", item_stores, problem.n_periods),
        open_arrivals=_period_matrix(arrivals, "quantity", item_stores, problem.n_periods),
    )


def _require_columns(frame: pd.DataFrame, name: str, columns: list[str]) -> None:
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise ValueError(f"{name} lacks columns {missing}")


def _require_unique(frame: pd.DataFrame, name: str, keys: list[str]) -> None:
    duplicated = frame.loc[frame.duplicated(keys), keys]
    if not duplicated.empty:
        raise ValueError(f"{name} has duplicate rows for {duplicated.head().to_dict('records')}")


def _validate_demand(demand: pd.DataFrame, n_periods: int) -> None:
    _require_unique(demand, "demand", [*ITEM_STORE_KEYS, "period"])
    outside = ~demand["period"].between(0, n_periods - 1)
    if outside.any():
        bad_periods = sorted(demand.loc[outside, "period"].unique())[:MAX_REPORTED_VIOLATIONS]
        raise ValueError(f"demand periods must lie in 0..{n_periods - 1}; got {bad_periods}")
    if (demand["demand"] < 0).any():
        raise ValueError("demand must be non-negative")


def _open_order_arrivals(
    open_orders: pd.DataFrame, start_date: pd.Timestamp, n_periods: int
) -> pd.DataFrame:
    """Open orders by arrival period: overdue ones land in period 0, ones past the horizon drop."""
    arrival_dates = pd.to_datetime(open_orders["arrival_date"]).dt.normalize()
    periods = (arrival_dates - start_date).dt.days.clip(lower=0)
    arrivals = open_orders[ITEM_STORE_KEYS].assign(
        period=periods.to_numpy(), quantity=open_orders["quantity"].astype(float).to_numpy()
    )
    return arrivals.loc[arrivals["period"] < n_periods]


def _item_stores(
    demand: pd.DataFrame, on_hand: pd.DataFrame, arrivals: pd.DataFrame, items: pd.DataFrame
) -> pd.DataFrame:
    """Every item-store with demand, stock or an arrival: stock takes store volume even unsold."""
    keys = (
        pd.concat([demand[ITEM_STORE_KEYS], on_hand[ITEM_STORE_KEYS], arrivals[ITEM_STORE_KEYS]])
        .drop_duplicates()
        .sort_values(ITEM_STORE_KEYS)
    )
    unknown_items = sorted(set(keys["item_id"]) - set(items["item_id"]))
    if unknown_items:
        raise ValueError(f"items has no rows for item_id {unknown_items}")
    if (items["lead_time_days"] < 0).any():
        raise ValueError("lead_time_days must be non-negative")

    with_attributes = keys.merge(items[["item_id", *ITEM_ATTRIBUTES]], on="item_id", how="left")
    with_stock = with_attributes.merge(
        on_hand[[*ITEM_STORE_KEYS, "on_hand"]], on=ITEM_STORE_KEYS, how="left"
    )
    return (
        with_stock.rename(columns={"on_hand": "opening_on_hand"})
        .fillna({"opening_on_hand": 0.0})
        .astype({"lead_time_days": int})
        .reset_index(drop=True)
    )


def _period_matrix(
    frame: pd.DataFrame, value_column: str, item_stores: pd.DataFrame, n_periods: int
) -> np.ndarray:
    """Long (item, store, period, value) rows summed into an item-store × period array."""
    positions = item_stores[ITEM_STORE_KEYS].reset_index(names="position")
    located = frame.merge(positions, on=ITEM_STORE_KEYS, how="inner")
    matrix = np.zeros((len(item_stores), n_periods))
    np.add.at(
        matrix,
        (located["position"].to_numpy(), located["period"].to_numpy(dtype=int)),
        located[value_column].to_numpy(dtype=float),
    )
    return matrix


# --- capacity pre-check --------------------------------------------------------------------


def _raise_if_capacity_cannot_hold(grid: _ItemStoreGrid, capacity: pd.DataFrame) -> None:
    """The LP is infeasible exactly when the least post-delivery stock possible breaks capacity."""
    volumes = _minimal_volumes_after_arrivals(grid).merge(capacity, on="store_id", how="inner")
    over = volumes.loc[
        volumes["minimal_volume"]
        > volumes["capacity_volume"] + _capacity_slack(volumes["capacity_volume"])
    ]
    if over.empty:
        return
    first_violations = over.sort_values(["store_id", "period"]).head(MAX_REPORTED_VIOLATIONS)
    reasons = [
        f"capacity at store {row.store_id} on {_period_date(grid.start_date, row.period)} "
        f"(period {row.period}) is {row.capacity_volume} but opening stock and open orders "
        f"already need at least {row.minimal_volume} there"
        for row in first_violations.itertuples()
    ]
    more = len(over) - len(reasons)
    suffix = f"; and {more} more store-periods" if more > 0 else ""
    raise PlanInfeasibleError("; ".join(reasons) + suffix)


def _capacity_slack(capacity_volume: pd.Series | np.ndarray) -> pd.Series | np.ndarray:
    """Relative tolerance on capacity, floored at an absolute one for near-zero capacities."""
    return CAPACITY_TOLERANCE * np.maximum(np.abs(capacity_volume), 1.0)


def _period_date(start_date: pd.Timestamp, period: int) -> str:
    return str((start_date + pd.Timedelta(days=int(period))).date())


def _minimal_volumes_after_arrivals(grid: _ItemStoreGrid) -> pd.DataFrame:
    """Least store volume right after each day's deliveries that any feasible plan can reach.

    That is no new orders and all demand served from stock: the least end stock is
    e[t] = max(0, e[t-1] + x[t]) with x = open arrivals - demand (any plan's end stock is at
    least that, since e[t] only grows with e[t-1] and orders), and with S the running total of
    opening stock plus x, e[t] = S[t] - min(0, min_{k<=t} S[k]).  Stock on the shelf after
    period t's deliveries is e[t-1] + open arrivals[t], as no plan can avoid a fixed arrival.
    """
    net_inflow = grid.open_arrivals - grid.demand
    opening = grid.item_stores["opening_on_hand"].to_numpy()[:, None]
    running = opening + np.cumsum(net_inflow, axis=1)
    minimal_end_stock = running - np.minimum(np.minimum.accumulate(running, axis=1), 0.0)
    stock_before = np.hstack([opening, minimal_end_stock])[:, : running.shape[1]]
    minimal_stock = stock_before + grid.open_arrivals
    volume = minimal_stock * grid.item_stores["unit_volume"].to_numpy()[:, None]
    per_item_store = pd.DataFrame(volume).assign(store_id=grid.item_stores["store_id"])
    return (
        per_item_store.groupby("store_id")
        .sum()
        .rename_axis(columns="period")
        .stack()
        .rename("minimal_volume")
        .reset_index()
    )


# --- model -----------------------------------------------------------------------------------


def _build_model_from_grid(
    grid: _ItemStoreGrid, capacity: pd.DataFrame, costs: CostSettings
) -> pyo.ConcreteModel:
    n_item_stores, n_periods = grid.demand.shape
    attributes = grid.item_stores
    lead_times = attributes["lead_time_days"].tolist()
    unit_costs = attributes["unit_cost"].to_numpy(dtype=float)
    holding_rates = attributes["holding_cost_rate"].to_numpy(dtype=float)
    capacity_by_store = _capacity_by_store(attributes, capacity)

    model = pyo.ConcreteModel(name="replenishment_lp")
    model.ITEM_STORES = pyo.Set(initialize=range(n_item_stores), ordered=True)
    model.PERIODS = pyo.Set(initialize=range(n_periods), ordered=True)
    # An order only matters if it arrives inside the horizon.
    model.ORDER_SLOTS = pyo.Set(
        dimen=2,
        ordered=True,
        initialize=[(k, t) for k in range(n_item_stores) for t in range(n_periods - lead_times[k])],
    )
    model.CAPACITATED_STORES = pyo.Set(initialize=list(capacity_by_store), ordered=True)
    model.ITEM_STORES_IN_STORE = pyo.Set(
        model.CAPACITATED_STORES, initialize=_positions_by_store(attributes, capacity_by_store)
    )

    per_item_store = model.ITEM_STORES
    per_cell = (model.ITEM_STORES, model.PERIODS)
    model.lead_time = pyo.Param(per_item_store, initialize=dict(enumerate(lead_times)))
    model.opening_on_hand = pyo.Param(
        per_item_store, initialize=_by_position(attributes["opening_on_hand"])
    )
    model.unit_volume = pyo.Param(
        per_item_store, initialize=_by_position(attributes["unit_volume"])
    )
    model.unit_cost = pyo.Param(per_item_store, initialize=_by_position(unit_costs))
    model.daily_holding_cost = pyo.Param(
        per_item_store, initialize=_by_position(unit_costs * holding_rates / DAYS_PER_YEAR)
    )
    model.lost_sale_penalty = pyo.Param(
        per_item_store, initialize=_by_position(unit_costs * costs.shortage_cost_multiplier)
    )
    model.demand = pyo.Param(*per_cell, initialize=_by_cell(grid.demand))
    model.open_arrivals = pyo.Param(*per_cell, initialize=_by_cell(grid.open_arrivals))
    model.capacity_volume = pyo.Param(model.CAPACITATED_STORES, initialize=capacity_by_store)

    model.order = pyo.Var(model.ORDER_SLOTS, within=pyo.NonNegativeReals)
    model.on_hand_end = pyo.Var(*per_cell, within=pyo.NonNegativeReals)
    model.lost_sales = pyo.Var(*per_cell, bounds=lambda m, k, t: (0.0, m.demand[k, t]))

    model.stock_balance = pyo.Constraint(*per_cell, rule=_stock_balance_rule)
    model.store_capacity = pyo.Constraint(
        model.CAPACITATED_STORES, model.PERIODS, rule=_store_capacity_rule
    )

    model.purchase_cost = pyo.Expression(
        expr=pyo.quicksum(model.unit_cost[k] * model.order[k, t] for k, t in model.ORDER_SLOTS)
    )
    model.ordering_cost = pyo.Expression(
        expr=costs.order_cost_per_unit * pyo.quicksum(model.order.values())
    )
    model.holding_cost = pyo.Expression(
        expr=pyo.quicksum(
            model.daily_holding_cost[k] * model.on_hand_end[k, t] for k, t in model.on_hand_end
        )
    )
    model.shortage_cost = pyo.Expression(
        expr=pyo.quicksum(
            model.lost_sale_penalty[k] * model.lost_sales[k, t] for k, t in model.lost_sales
        )
    )
    model.total_cost = pyo.Objective(
        expr=model.purchase_cost + model.ordering_cost + model.holding_cost + model.shortage_cost,
        sense=pyo.minimize,
    )
    return model


def _stock_balance_rule(model: pyo.ConcreteModel, k: int, t: int) -> pyo.Expression:
    opening = model.on_hand_end[k, t - 1] if t > 0 else model.opening_on_hand[k]
    placed = t - model.lead_time[k]
    planned_arrival = model.order[k, placed] if placed >= 0 else 0.0
    inflow = model.open_arrivals[k, t] + planned_arrival
    return model.on_hand_end[k, t] == (
        opening + inflow - model.demand[k, t] + model.lost_sales[k, t]
    )


def _store_capacity_rule(model: pyo.ConcreteModel, store: object, t: int) -> pyo.Expression:
    """Volume on the shelf after day t's deliveries, before its sales, fits the store.

    That stock, on_hand_end[k, t-1] + open_arrivals[k, t] + order[k, t - L_k], equals
    on_hand_end[k, t] + demand[k, t] - lost_sales[k, t] by the stock balance.  The second
    form is used because it always holds variables, whereas the first is all constants on
    days before any order can land (opening stock and open orders only), which Pyomo would
    reject as a trivial constraint.
    """
    volume = pyo.quicksum(
        model.unit_volume[k]
        * (model.on_hand_end[k, t] + model.demand[k, t] - model.lost_sales[k, t])
        for k in model.ITEM_STORES_IN_STORE[store]
    )
    return volume <= model.capacity_volume[store]


def _capacity_by_store(
    item_stores: pd.DataFrame, capacity: pd.DataFrame
) -> dict[object, float]:
    """Capacity of each store holding any item-store; stores without a row are unlimited."""
    relevant = capacity.loc[capacity["store_id"].isin(item_stores["store_id"])]
    volumes = relevant["capacity_volume"].astype(float).tolist()
    return dict(zip(relevant["store_id"].tolist(), volumes))


def _positions_by_store(
    item_stores: pd.DataFrame, stores: Iterable[object]
) -> dict[object, list[int]]:
    positions = item_stores.groupby("store_id").indices
    return {store: positions[store].tolist() for store in stores}


def _by_position(values: pd.Series | np.ndarray) -> dict[int, float]:
    return dict(enumerate(np.asarray(values, dtype=float).tolist()))


def _by_cell(matrix: np.ndarray) -> dict[tuple[int, int], float]:
    rows, columns = np.indices(matrix.shape)
    cells = zip(rows.ravel().tolist(), columns.ravel().tolist())
    return dict(zip(cells, matrix.ravel().tolist()))


# --- solving ---------------------------------------------------------------------------------


def _solve_with_highs(model: pyo.ConcreteModel, settings: SolverSettings) -> Results:
    # Statuses are checked by the caller, not raised by Pyomo, to give plan-level errors.
    highs = SolverFactory("highs")
    return highs.solve(
        model,
        load_solutions=False,
        raise_exception_on_nonoptimal_result=False,
        time_limit=settings.time_limit_seconds,
        rel_gap=settings.mip_rel_gap,
        solver_options=dict(settings.options),
    )


def _raise_unless_solution(results: Results) -> None:
    termination = results.termination_condition
    if termination in (
        TerminationCondition.provenInfeasible,
        TerminationCondition.infeasibleOrUnbounded,
    ):
        raise PlanInfeasibleError(f"HiGHS found no feasible plan (termination: {termination.name})")
    if results.solution_status not in (SolutionStatus.optimal, SolutionStatus.feasible):
        raise RuntimeError(
            f"HiGHS returned no usable plan (termination: {termination.name}, "
            f"solution: {results.solution_status.name})"
        )


def _status_label(results: Results) -> str:
    """"optimal", or the termination condition that stopped HiGHS with a feasible plan."""
    if results.termination_condition == TerminationCondition.convergenceCriteriaSatisfied:
        return "optimal"
    return results.termination_condition.name


# --- results -----------------------------------------------------------------------------------


def _plan_result(
    grid: _ItemStoreGrid,
    capacity: pd.DataFrame,
    orders: np.ndarray,
    lost_sales: np.ndarray,
    on_hand_end: np.ndarray,
    cost_breakdown: dict[str, float],
    solver_status: str,
    solve_seconds: float,
) -> PlanResult:
    arrivals = grid.open_arrivals + _planned_arrivals(
        orders, grid.item_stores["lead_time_days"].to_numpy()
    )
    opening = grid.item_stores["opening_on_hand"].to_numpy(dtype=float)[:, None]
    # What the store's capacity limits: stock on the shelf before the day's sales.
    stock_before = np.hstack([opening, on_hand_end])[:, : on_hand_end.shape[1]]
    after_arrivals = stock_before + arrivals
    return PlanResult(
        orders=_orders_frame(grid, orders),
        inventory=_inventory_frame(grid, arrivals, lost_sales, on_hand_end, after_arrivals),
        objective=sum(cost_breakdown.values()),
        cost_breakdown=cost_breakdown,
        solver_status=solver_status,
        solve_seconds=solve_seconds,
        expected_fill_rate=_fill_rate(grid.demand, lost_sales),
        capacity_utilisation=_capacity_utilisation_frame(grid, capacity, after_arrivals),
    )


def _variable_matrix(variable: pyo.Var, shape: tuple[int, int]) -> np.ndarray:
    matrix = np.zeros(shape)
    for (k, t), value in variable.extract_values().items():
        matrix[k, t] = value
    return matrix


def _planned_arrivals(orders: np.ndarray, lead_times: np.ndarray) -> np.ndarray:
    n_periods = orders.shape[1]
    arrivals = np.zeros_like(orders)
    for k, lead_time in enumerate(lead_times.tolist()):
        if lead_time < n_periods:
            arrivals[k, lead_time:] = orders[k, : n_periods - lead_time]
    return arrivals


def _orders_frame(grid: _ItemStoreGrid, orders: np.ndarray) -> pd.DataFrame:
    positions, periods = np.nonzero(orders > MIN_ORDER_QUANTITY)
    placed = grid.item_stores.iloc[positions].reset_index(drop=True)
    order_dates = grid.start_date + pd.to_timedelta(periods, unit="D")
    lead_times = pd.to_timedelta(placed["lead_time_days"].to_numpy(), unit="D")
    return pd.DataFrame(
        {
            "item_id": placed["item_id"],
            "store_id": placed["store_id"],
            "order_date": order_dates,
            "quantity": orders[positions, periods],
            "arrival_date": order_dates + lead_times,
            "lead_time_days": placed["lead_time_days"],
        }
    )


def _inventory_frame(
    grid: _ItemStoreGrid,
    arrivals: np.ndarray,
    lost_sales: np.ndarray,
    on_hand_end: np.ndarray,
    after_arrivals: np.ndarray,
) -> pd.DataFrame:
    n_item_stores, n_periods = grid.demand.shape
    periods = np.tile(np.arange(n_periods), n_item_stores)
    keys = grid.item_stores[ITEM_STORE_KEYS].loc[np.repeat(np.arange(n_item_stores), n_periods)]
    return pd.DataFrame(
        {
            "item_id": keys["item_id"].to_numpy(),
            "store_id": keys["store_id"].to_numpy(),
            "period": periods,
            "date": grid.start_date + pd.to_timedelta(periods, unit="D"),
            "demand": grid.demand.ravel(),
            "arrivals": arrivals.ravel(),
            "lost_sales": lost_sales.ravel(),
            "on_hand_end": on_hand_end.ravel(),
            "on_hand_after_arrivals": after_arrivals.ravel(),
        }
    )


def _capacity_utilisation_frame(
    grid: _ItemStoreGrid, capacity: pd.DataFrame, after_arrivals: np.ndarray
) -> pd.DataFrame:
    """Post-delivery volume against capacity for every capacitated store and period.

    utilisation is volume / capacity (NaN for a zero capacity); binding means the volume is
    within CAPACITY_TOLERANCE of capacity, relative, floored at an absolute tolerance.
    """
    capacity_by_store = _capacity_by_store(grid.item_stores, capacity)
    n_periods = after_arrivals.shape[1]
    if not capacity_by_store or n_periods == 0:
        return pd.DataFrame(columns=CAPACITY_UTILISATION_COLUMNS)
    volume = after_arrivals * grid.item_stores["unit_volume"].to_numpy(dtype=float)[:, None]
    positions = _positions_by_store(grid.item_stores, capacity_by_store)
    stores = list(capacity_by_store)
    volumes = np.concatenate([volume[positions[store]].sum(axis=0) for store in stores])
    limits = np.repeat([capacity_by_store[store] for store in stores], n_periods)
    periods = np.tile(np.arange(n_periods), len(stores))
    frame = pd.DataFrame(
        {
            "store_id": np.repeat(np.array(stores, dtype=object), n_periods),
            "period": periods,
            "date": grid.start_date + pd.to_timedelta(periods, unit="D"),
            "volume_after_arrivals": volumes,
            "capacity_volume": limits,
            "utilisation": np.divide(
                volumes, limits, out=np.full_like(volumes, np.nan), where=limits != 0.0
            ),
            "binding": np.abs(volumes - limits) <= _capacity_slack(limits),
        }
    )
    return frame.sort_values(["store_id", "period"], ignore_index=True)


def _fill_rate(demand: np.ndarray, lost_sales: np.ndarray) -> float:
    total_demand = float(demand.sum())
    if total_demand <= 0:
        return 1.0
    return 1.0 - float(lost_sales.sum()) / total_demand
