"""One model per store, solved side by side, merged into one plan; and a store in blocks of items.

Exact when only store-level constraints couple item-stores (capacity per store): the joint
model is then block-diagonal by store, so the parts' optima together are the joint optimum.
A budget over all stores breaks that, and the caller refuses to decompose one.  Every part is
solved even when one has no feasible plan, so that every infeasible store is named at once.

Within a store only its capacity couples item-stores.  Blocks of item-stores solved without it
are a relaxation of the store's model: when their plans together keep the capacity (with room
for one more lot of any item, so that no explanation would name it), they are that model's
optimum (optimization.replenishment_lp.solve_in_blocks checks, and otherwise solves the
store whole).
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from models.forecast_frame import SERIES_KEY
from optimization.problem import (
    CostSettings,
    ModelOptions,
    PlanInfeasibleError,
    PlanningProblem,
    PlanResult,
    SolverSettings,
)


@dataclass(frozen=True)
class PartPlan:
    """One part's plan, or (plan None) the reason it has none."""

    plan: PlanResult | None
    infeasible: PlanInfeasibleError | None = None


PartSolver = Callable[[PlanningProblem, CostSettings, SolverSettings, ModelOptions], PartPlan]


def split_by_location(problem: PlanningProblem) -> list[PlanningProblem]:
    stores = sorted(
        set(problem.demand["store_id"]) | set(problem.on_hand["store_id"]) | set(problem.open_orders["store_id"])
    )
    return [_for_store(problem, store) for store in stores]


def split_by_items(problem: PlanningProblem, cells_per_block: int) -> list[PlanningProblem]:
    """Blocks of whole item-stores in key order, each of at most `cells_per_block` item-store ×
    scenario × period cells (one item-store at least), without capacity: the caller checks it."""
    demand = problem.demand
    n_scenarios = int(demand["scenario"].max()) + 1 if "scenario" in demand and len(demand) else 1
    per_block = max(1, cells_per_block // (n_scenarios * max(problem.n_periods, 1)))
    frames = {"demand": demand, "on_hand": problem.on_hand, "open_orders": problem.open_orders}
    if problem.safety_stock is not None:
        frames["safety_stock"] = problem.safety_stock
    rows_of = {name: frame.groupby(SERIES_KEY, sort=False).indices for name, frame in frames.items()}
    keys = sorted(set(rows_of["demand"]) | set(rows_of["on_hand"]) | set(rows_of["open_orders"]))
    if len(keys) <= per_block:
        return [problem]
    no_capacity = problem.capacity.iloc[0:0]
    blocks = []
    for start in range(0, len(keys), per_block):
        block = keys[start : start + per_block]

        def rows(name: str, block: list[tuple] = block) -> pd.DataFrame:
            positions = [rows_of[name][key] for key in block if key in rows_of[name]]
            return frames[name].iloc[np.concatenate(positions) if positions else []]

        items = {item for item, _ in block}
        blocks.append(
            replace(
                problem,
                demand=rows("demand"),
                items=problem.items.loc[problem.items["item_id"].isin(items)],
                on_hand=rows("on_hand"),
                open_orders=rows("open_orders"),
                capacity=no_capacity,
                safety_stock=rows("safety_stock") if problem.safety_stock is not None else None,
            )
        )
    return blocks


def _for_store(problem: PlanningProblem, store: object) -> PlanningProblem:
    def rows(frame: pd.DataFrame | None) -> pd.DataFrame | None:
        return None if frame is None else frame.loc[frame["store_id"] == store]

    return replace(
        problem,
        demand=rows(problem.demand),
        on_hand=rows(problem.on_hand),
        open_orders=rows(problem.open_orders),
        capacity=rows(problem.capacity),
        safety_stock=rows(problem.safety_stock),
    )


def solve_parts(
    parts: list[PlanningProblem],
    costs: CostSettings,
    solver: SolverSettings,
    options: ModelOptions,
    solve_part: PartSolver,
) -> list[PartPlan]:
    """In `options.workers` processes (forked: the parts are already in memory)."""
    whole = replace(options, decompose_by_location=False)
    if options.workers <= 1 or len(parts) <= 1:
        return [solve_part(part, costs, solver, whole) for part in parts]
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=options.workers, mp_context=context) as pool:
        futures = [pool.submit(solve_part, part, costs, solver, whole) for part in parts]
        return [future.result() for future in futures]


def merge_parts(parts: list[PartPlan], hint: str = "") -> PlanResult:
    """The parts' plans as one; PlanInfeasibleError naming the reasons of every part without a plan."""
    reasons = [reason for part in parts if part.infeasible is not None for reason in part.infeasible.reasons]
    if reasons:
        raise PlanInfeasibleError(reasons, hint)
    return merge_results([part.plan for part in parts if part.plan is not None])


def merge_results(results: list[PlanResult]) -> PlanResult:
    def stacked(name: str, keys: list[str]) -> pd.DataFrame:
        frames = [getattr(result, name) for result in results if not getattr(result, name).empty]
        if not frames:
            return getattr(results[0], name) if results else pd.DataFrame()
        return pd.concat(frames, ignore_index=True).sort_values(keys, ignore_index=True, kind="stable")

    inventory = stacked("inventory", ["item_id", "store_id", "period"])
    cost_breakdown: dict[str, float] = {}
    for result in results:
        for name, value in result.cost_breakdown.items():
            cost_breakdown[name] = cost_breakdown.get(name, 0.0) + value
    statuses = [result.solver_status for result in results if result.solver_status != "optimal"]
    demand = float(inventory["demand"].sum()) if not inventory.empty else 0.0
    return PlanResult(
        orders=stacked("orders", ["item_id", "store_id", "order_date"]),
        inventory=inventory,
        objective=sum(result.objective for result in results),
        cost_breakdown=cost_breakdown,
        solver_status=statuses[0] if statuses else "optimal",
        solve_seconds=sum(result.solve_seconds for result in results),
        expected_fill_rate=1.0 - float(inventory["unmet_demand"].sum()) / demand if demand > 0 else 1.0,
        capacity_utilisation=stacked("capacity_utilisation", ["store_id", "period"]),
        explanations=stacked("explanations", ["item_id", "store_id", "order_date"]),
        violations=stacked("violations", ["constraint", "period"]),
        build_seconds=sum(result.build_seconds for result in results),
    )
