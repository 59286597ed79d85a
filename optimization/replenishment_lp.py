"""Replenishment plan per item-store, solved by HiGHS through Pyomo (or highspy directly).

The model (see `optimization.formulation`) keeps stock per item-store and period with item lead
times in whole periods, opening stock, open orders, lost sales or backorders; it pays purchase,
ordering (per unit and optionally fixed per order, a MILP), holding and shortage costs; and it
respects store capacity (volume on the shelf right after deliveries), a budget per period, a
maximum order, each item's order calendar, and with whole orders supplier case packs and MOQs (as
integers, or by repairing the LP relaxation, see optimization.repair).  Uncertainty enters in two
ways:

* quantile mode: `PlanningProblem.safety_stock` holds the least end stock that service-level
  targets require (see `optimization.uncertainty.safety_stock_from_quantiles`);
* scenario mode: `PlanningProblem.demand` has a scenario column; orders are shared by all
  scenarios while stock and shortages are per scenario (sample average approximation).

Infeasible plans raise `PlanInfeasibleError` naming the constraints at fault; soft mode prices
violations instead and always returns a plan.  Every order comes with an explanation.  Solved by
store (decomposition), every infeasible store is named together.  Within a model, blocks of
item-stores are solved apart and checked against capacity together (`solve_in_blocks`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import pyomo.environ as pyo

from models.forecast_frame import SERIES_KEY
from optimization.backends import (
    INFEASIBLE,
    INFEASIBLE_OR_UNBOUNDED,
    TIME_LIMIT,
    UNBOUNDED,
    Solution,
    build_pyomo_model,
    solve_program,
)
from optimization.decomposition import (
    PartPlan,
    merge_parts,
    merge_results,
    solve_parts,
    split_by_items,
    split_by_location,
)
from optimization.diagnosis import (
    capacity_slack,
    infeasibility_reasons,
    raise_if_capacity_cannot_hold,
    violations_frame,
)
from optimization.explanations import explain_orders
from optimization.formulation import (
    COST_COMPONENTS,
    Elasticity,
    Formulation,
    capacity_by_store,
    formulate,
)
from optimization.grid import ItemStoreGrid, planned_arrivals, prepare_grid
from optimization.problem import (
    CAPACITY_UTILISATION_COLUMNS,
    EXPLANATION_COLUMNS,
    MIN_ORDER_QUANTITY,
    VIOLATION_COLUMNS,
    CostSettings,
    ModelOptions,
    PlanInfeasibleError,
    PlanningProblem,
    PlanResult,
    SolverLimitError,
    SolverSettings,
)
from optimization.repair import relaxation, repair_whole_orders

# The status of a plan whose whole orders come from the repair of the LP relaxation.
REPAIRED = "repaired"
NO_PLAN = (INFEASIBLE, INFEASIBLE_OR_UNBOUNDED, UNBOUNDED)

__all__ = [
    "CostSettings",
    "ModelOptions",
    "PlanInfeasibleError",
    "PlanningProblem",
    "PlanResult",
    "SolverLimitError",
    "SolverSettings",
    "build_model",
    "solve_replenishment_plan",
]


def build_model(
    problem: PlanningProblem, costs: CostSettings, options: ModelOptions = ModelOptions()
) -> pyo.ConcreteModel:
    """The Pyomo model; each variable and constraint block is indexed 0..n-1 in layout order."""
    grid = prepare_grid(problem)
    model, _ = build_pyomo_model(formulate(grid, problem.capacity, costs, options).program)
    return model


def solve_replenishment_plan(
    problem: PlanningProblem,
    costs: CostSettings = CostSettings(),
    solver: SolverSettings = SolverSettings(),
    options: ModelOptions = ModelOptions(),
) -> PlanResult:
    if options.decompose_by_location:
        if options.budget_per_period is not None:
            raise ValueError("a budget couples all stores: it cannot be decomposed by location")
        parts = split_by_location(problem)
        return merge_parts(solve_parts(parts, costs, solver, options, solve_part))
    return solve_in_blocks(problem, costs, solver, options)


def solve_part(
    problem: PlanningProblem, costs: CostSettings, solver: SolverSettings, options: ModelOptions
) -> PartPlan:
    """One part of a plan solved apart (a store): its plan, or why it has none."""
    try:
        return PartPlan(solve_in_blocks(problem, costs, solver, options))
    except PlanInfeasibleError as error:
        return PartPlan(None, error)


def solve_in_blocks(
    problem: PlanningProblem, costs: CostSettings, solver: SolverSettings, options: ModelOptions
) -> PlanResult:
    """The model's plan, found block by block of item-stores where that is exact.

    Only capacity and a budget couple item-stores.  Without a budget, each block of at most
    `options.block_cells` cells is solved without capacity (a relaxation of the whole model).  When
    the blocks' plans together keep every store's capacity in every scenario and period, with room
    for one more lot of any item, they are the whole model's optimum, found in time linear in the
    item-stores.  Otherwise (capacity binds or nearly so, or a block has no plan) the model is
    solved whole, as `solve_as_one_model`, which also names every constraint at fault.  The
    solver's time limit applies to each model solved."""
    if options.budget_per_period is not None or options.block_cells is None:
        return solve_as_one_model(problem, costs, solver, options)
    blocks = split_by_items(problem, options.block_cells)
    if len(blocks) == 1:
        return solve_as_one_model(problem, costs, solver, options)
    try:
        solved = [_solve_model(block, costs, solver, options) for block in blocks]
    except PlanInfeasibleError:
        return solve_as_one_model(problem, costs, solver, options)
    shelf: dict[object, np.ndarray] = {}
    largest_lot: dict[object, float] = {}
    for block in solved:
        for store, volume in block.shelf_volume.items():
            shelf[store] = shelf[store] + volume if store in shelf else volume
        for store, lot in block.largest_lot_volume.items():
            largest_lot[store] = max(largest_lot.get(store, 0.0), lot)
    limits = capacity_by_store(pd.DataFrame({"store_id": list(shelf)}), problem.capacity)
    # Room for one more lot of every item, as the whole model's explanations would find it: no
    # order's explanation then names capacity, in either.
    if any(
        (shelf[store] + largest_lot[store] >= limit - capacity_slack(limit)).any() for store, limit in limits.items()
    ):
        return solve_as_one_model(problem, costs, solver, options)
    merged = merge_results([block.result for block in solved])
    dates = solved[0].period_dates
    return replace(merged, capacity_utilisation=_capacity_utilisation_frame(dates, limits, shelf))


def solve_as_one_model(
    problem: PlanningProblem, costs: CostSettings, solver: SolverSettings, options: ModelOptions
) -> PlanResult:
    return _solve_model(problem, costs, solver, options).result


@dataclass(frozen=True)
class _SolvedModel:
    result: PlanResult
    shelf_volume: dict[object, np.ndarray]  # store -> scenario × period volume right after deliveries
    largest_lot_volume: dict[object, float]  # store -> the volume of its bulkiest item's lot (0: continuous orders)
    period_dates: pd.DatetimeIndex


def _solve_model(
    problem: PlanningProblem, costs: CostSettings, solver: SolverSettings, options: ModelOptions
) -> _SolvedModel:
    started = time.perf_counter()
    grid = prepare_grid(problem)
    if grid.item_stores.empty:
        # HiGHS reports an empty model as unsolved, yet planning nothing is trivially optimal.
        return _empty_plan(grid, problem.capacity)
    if not options.soft_constraints:
        raise_if_capacity_cannot_hold(grid, problem.capacity, options.shortage_mode)
    elasticity: Elasticity = "soft" if options.soft_constraints else "hard"
    formulation = formulate(grid, problem.capacity, costs, options, elasticity)
    arrays_seconds = time.perf_counter() - started
    solution = _solve(grid, formulation, costs, solver, options)
    if solution.status in NO_PLAN and solution.values is None:
        raise _no_plan_error(grid, problem.capacity, costs, solver, options, solution)
    if solution.values is None and solution.status == TIME_LIMIT:
        raise SolverLimitError(_stopped_without_plan(grid, solver, solution))
    if solution.values is None:
        raise RuntimeError(f"HiGHS returned no usable plan (termination: {solution.status})")
    return _plan_result(grid, problem.capacity, options, formulation, solution, solution.values, arrays_seconds)


def _solve(
    grid: ItemStoreGrid, formulation: Formulation, costs: CostSettings, solver: SolverSettings, options: ModelOptions
) -> Solution:
    """HiGHS on the model.  With whole orders, the LP relaxation is solved and repaired first
    (optimization.repair); "milp" then solves the MILP from that plan (a start, on the highspy
    route) within the time limit, and keeps whichever of the two costs less.  A repair that cannot
    keep every stock target within capacity and budget leaves the plan to the MILP in either mode."""
    program = formulation.program
    if options.whole_orders == "none":
        return solve_program(program, solver)
    relaxed = solve_program(relaxation(program), solver)
    if relaxed.values is None:
        return relaxed
    started = time.perf_counter()
    try:
        repaired = Solution(
            repair_whole_orders(grid, formulation, relaxed.values, costs, options),
            REPAIRED,
            relaxed.build_seconds,
            relaxed.solve_seconds + time.perf_counter() - started,
        )
    except PlanInfeasibleError:
        repaired = None  # the MILP may still combine whole orders that keep every target
    if options.whole_orders == "repair" and repaired is not None:
        return repaired
    exact = solve_program(program, solver, start=None if repaired is None else repaired.values)
    exact = replace(
        exact,
        build_seconds=relaxed.build_seconds + exact.build_seconds,
        solve_seconds=(repaired or relaxed).solve_seconds + exact.solve_seconds,
    )
    if repaired is not None and (
        exact.values is None or program.objective @ repaired.values < program.objective @ exact.values
    ):
        return replace(repaired, build_seconds=exact.build_seconds, solve_seconds=exact.solve_seconds)
    return exact


def _stopped_without_plan(grid: ItemStoreGrid, solver: SolverSettings, stopped: Solution) -> str:
    stores = ", ".join(map(str, sorted(grid.item_stores["store_id"].unique())))
    return (
        f"HiGHS stopped ({stopped.status}) after {stopped.solve_seconds:,.1f} s before it had any plan for store(s)"
        f" {stores}: {len(grid.item_stores):,} item-stores, {grid.n_scenarios:,} demand path(s), {grid.n_periods:,}"
        f" periods. Raise planning.solver.time_limit_seconds (now {solver.time_limit_seconds:g}), or lower"
        " planning.n_scenarios"
    )


def _no_plan_error(
    grid: ItemStoreGrid,
    capacity: pd.DataFrame,
    costs: CostSettings,
    solver: SolverSettings,
    options: ModelOptions,
    failed: Solution,
) -> Exception:
    """Re-solve with every capacity, budget and target row elastic; what stays broken is at fault."""
    relaxed = formulate(grid, capacity, costs, options, "diagnose")
    solution = solve_program(relaxed.program, solver)
    if solution.values is None:
        return RuntimeError(f"HiGHS found no plan (termination: {failed.status}) and could not diagnose it")
    violations = violations_frame(grid, relaxed, solution.values)
    if violations.empty and failed.status != INFEASIBLE:
        return ValueError(
            f"the plan is unbounded (termination: {failed.status}): some cost lets it gain by ordering without limit"
        )
    return PlanInfeasibleError(infeasibility_reasons(grid, capacity, options, violations))


# --- results -----------------------------------------------------------------------------------


def _plan_result(
    grid: ItemStoreGrid,
    capacity: pd.DataFrame,
    options: ModelOptions,
    formulation: Formulation,
    solution: Solution,
    values: np.ndarray,  # the solution's, found
    arrays_seconds: float,
) -> _SolvedModel:
    layout = formulation.layout
    orders = _order_units(values, layout.order_columns, layout.lot_size, options.whole_orders != "none")
    stock = values[layout.stock_columns]
    shortage = values[layout.shortage_columns]
    backorders = options.shortage_mode == "backorder"
    backlog = shortage if backorders else np.zeros_like(shortage)
    # A backlog can only grow by demand unmet in that period.
    unmet = np.minimum(grid.demand, backlog) if backorders else shortage
    arrivals = grid.open_arrivals + planned_arrivals(orders, grid.lead_periods)
    opening = np.broadcast_to(grid.column("opening_on_hand")[:, None, None], (*stock.shape[:2], 1))
    stock_before = np.concatenate([opening, stock], axis=2)[:, :, :-1]
    after_arrivals = stock_before + arrivals[:, None, :]

    program = formulation.program
    cost_breakdown = {name: float(vector @ values) for name, vector in program.costs.items()}
    activities = program.matrix @ values
    shelf = _shelf_volume(grid, after_arrivals)
    limits = capacity_by_store(grid.item_stores, capacity)
    dates = grid.period_dates(np.arange(grid.n_periods))
    result = PlanResult(
        orders=_orders_frame(grid, orders),
        inventory=_inventory_frame(grid, arrivals, unmet, backlog, stock, after_arrivals, backorders),
        objective=sum(cost_breakdown.values()),
        cost_breakdown=cost_breakdown,
        solver_status=solution.status,
        solve_seconds=solution.solve_seconds,
        expected_fill_rate=_fill_rate(grid.demand, unmet),
        capacity_utilisation=_capacity_utilisation_frame(dates, limits, shelf),
        explanations=explain_orders(
            grid,
            options,
            formulation,
            orders,
            stock_before.mean(axis=1),
            backlog,
            arrivals,
            activities,
            (stock - backlog).mean(axis=1),
        ),
        violations=(
            violations_frame(grid, formulation, values)
            if options.soft_constraints
            else pd.DataFrame(columns=VIOLATION_COLUMNS)
        ),
        build_seconds=arrays_seconds + solution.build_seconds,
    )
    lot = layout.lot_size if options.whole_orders != "none" else np.zeros(len(layout.lot_size))
    lot_volume = pd.Series(lot * grid.column("unit_volume")).groupby(grid.item_stores["store_id"].to_numpy()).max()
    return _SolvedModel(result, shelf, lot_volume.to_dict(), dates)


def _order_units(values: np.ndarray, order_columns: np.ndarray, lot_size: np.ndarray, whole: bool) -> np.ndarray:
    lots = np.where(order_columns >= 0, values[np.clip(order_columns, 0, None)], 0.0)
    if whole:
        # Integer columns come back within HiGHS's integrality tolerance of whole lots.
        lots = np.round(lots)
    return lots * lot_size[:, None]


def _empty_plan(grid: ItemStoreGrid, capacity: pd.DataFrame) -> _SolvedModel:
    nothing = np.zeros(grid.demand.shape)
    dates = grid.period_dates(np.arange(grid.n_periods))
    result = PlanResult(
        orders=_orders_frame(grid, nothing[:, 0, :]),
        inventory=_inventory_frame(grid, nothing[:, 0, :], nothing, nothing, nothing, nothing, backorders=False),
        objective=0.0,
        cost_breakdown=dict.fromkeys(COST_COMPONENTS, 0.0),
        solver_status="optimal",
        solve_seconds=0.0,
        expected_fill_rate=1.0,
        capacity_utilisation=_capacity_utilisation_frame(dates, capacity_by_store(grid.item_stores, capacity), {}),
        explanations=pd.DataFrame(columns=EXPLANATION_COLUMNS),
        violations=pd.DataFrame(columns=VIOLATION_COLUMNS),
        build_seconds=0.0,
    )
    return _SolvedModel(result, {}, {}, dates)


def _orders_frame(grid: ItemStoreGrid, orders: np.ndarray) -> pd.DataFrame:
    positions, periods = np.nonzero(orders > MIN_ORDER_QUANTITY)
    placed = grid.item_stores.iloc[positions].reset_index(drop=True)
    order_dates = grid.period_dates(periods)
    arrival_dates = grid.period_dates(periods + placed["lead_time_periods"].to_numpy())
    return pd.DataFrame(
        {
            "item_id": placed["item_id"],
            "store_id": placed["store_id"],
            "order_date": order_dates,
            "quantity": orders[positions, periods],
            "arrival_date": arrival_dates,
            "lead_time_days": placed["lead_time_days"],
        }
    )


def _inventory_frame(
    grid: ItemStoreGrid,
    arrivals: np.ndarray,
    unmet: np.ndarray,
    backlog: np.ndarray,
    stock: np.ndarray,
    after_arrivals: np.ndarray,
    backorders: bool,
) -> pd.DataFrame:
    """Expected values over scenarios, one row per item-store and period."""
    n_item_stores, _, n_periods = grid.demand.shape
    periods = np.tile(np.arange(n_periods), n_item_stores)
    keys = grid.item_stores[SERIES_KEY].loc[np.repeat(np.arange(n_item_stores), n_periods)]
    mean_unmet = unmet.mean(axis=1).ravel()
    return pd.DataFrame(
        {
            "item_id": keys["item_id"].to_numpy(),
            "store_id": keys["store_id"].to_numpy(),
            "period": periods,
            "date": grid.period_dates(periods),
            "demand": grid.demand.mean(axis=1).ravel(),
            "arrivals": arrivals.ravel(),
            "lost_sales": np.zeros_like(mean_unmet) if backorders else mean_unmet,
            "on_hand_end": stock.mean(axis=1).ravel(),
            "on_hand_after_arrivals": after_arrivals.mean(axis=1).ravel(),
            "backlog": backlog.mean(axis=1).ravel(),
            "unmet_demand": mean_unmet,
        }
    )


def _shelf_volume(grid: ItemStoreGrid, after_arrivals: np.ndarray) -> dict[object, np.ndarray]:
    """Per store, the volume on its shelves right after deliveries: scenario × period."""
    volume = after_arrivals * grid.column("unit_volume")[:, None, None]
    positions = grid.item_stores.groupby("store_id").indices
    return {store: volume[rows].sum(axis=0) for store, rows in positions.items()}


def _capacity_utilisation_frame(
    dates: pd.DatetimeIndex, limits: dict[object, float], shelf: dict[object, np.ndarray]
) -> pd.DataFrame:
    """Post-delivery volume against capacity for every capacitated store and period.

    With scenarios the fullest one is reported.  utilisation is volume / capacity (NaN for a
    zero capacity); binding means the volume reaches capacity, within its tolerance, or (soft
    mode) exceeds it.
    """
    n_periods = len(dates)
    if not limits or n_periods == 0:
        return pd.DataFrame(columns=CAPACITY_UTILISATION_COLUMNS)
    stores = list(limits)
    empty = np.zeros(n_periods)
    volumes = np.concatenate([shelf[store].max(axis=0) if store in shelf else empty for store in stores])
    store_limits = np.repeat([limits[store] for store in stores], n_periods)
    periods = np.tile(np.arange(n_periods), len(stores))
    frame = pd.DataFrame(
        {
            "store_id": np.repeat(np.array(stores, dtype=object), n_periods),
            "period": periods,
            "date": dates[periods],
            "volume_after_arrivals": volumes,
            "capacity_volume": store_limits,
            "utilisation": np.divide(
                volumes, store_limits, out=np.full_like(volumes, np.nan), where=store_limits != 0.0
            ),
            "binding": volumes >= store_limits - capacity_slack(store_limits),
        }
    )
    return frame.sort_values(["store_id", "period"], ignore_index=True)


def _fill_rate(demand: np.ndarray, unmet: np.ndarray) -> float:
    total_demand = float(demand.sum())
    if total_demand <= 0:
        return 1.0
    return 1.0 - float(unmet.sum()) / total_demand
