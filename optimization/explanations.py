"""Why each order is what it is: demand it covers, safety stock, stock already there, limits hit.

An order placed in period t protects the item-store until the next order can land, i.e. over
its lead time plus one review period.  Its inventory position after ordering (on hand, less
backlog, plus everything arriving before it, plus the order) minus the expected demand over
that protection interval is the safety stock it implies; in quantile mode with a binding
target that is the target.  Constraints are reported binding from their slacks (row activity
within tolerance of its bound), which works for LPs and MILPs alike.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from optimization.diagnosis import capacity_slack
from optimization.formulation import Formulation, max_order_limit
from optimization.grid import ItemStoreGrid
from optimization.problem import EXPLANATION_COLUMNS, MIN_ORDER_QUANTITY, ModelOptions

BINDING_TOLERANCE = 1e-6


def explain_orders(
    grid: ItemStoreGrid,
    options: ModelOptions,
    formulation: Formulation,
    orders: np.ndarray,
    on_hand_before: np.ndarray,
    backlog: np.ndarray,
    arrivals: np.ndarray,
    activities: np.ndarray,
) -> pd.DataFrame:
    positions, periods = np.nonzero(orders > MIN_ORDER_QUANTITY)
    if len(positions) == 0:
        return pd.DataFrame(columns=EXPLANATION_COLUMNS)
    n_periods = grid.n_periods
    lead = grid.lead_periods[positions]
    arrival = periods + lead
    protection_end = np.minimum(arrival + options.review_periods, n_periods)

    expected_demand = grid.demand.mean(axis=1)
    demand_over_protection = _window_sum(expected_demand, positions, periods, protection_end)
    pipeline = _window_sum(arrivals, positions, periods, arrival)
    backlog_before = np.concatenate(
        [np.zeros((backlog.shape[0], 1)), backlog.mean(axis=1)[:, :-1]], axis=1
    )[positions, periods]
    quantity = orders[positions, periods]
    position_after = on_hand_before[positions, periods] - backlog_before + pipeline + quantity

    binding = pd.Series("", index=range(len(positions)), dtype=object)
    layout = formulation.layout
    for name, flags in (
        ("capacity", _capacity_binding(grid, formulation, activities)[positions, arrival]),
        ("budget", _budget_binding(formulation, activities, n_periods)[periods]),
        ("stock_target", _target_binding(grid, formulation, activities, positions, arrival, protection_end)),
        ("max_order", quantity >= max_order_limit(grid, options)[positions] - BINDING_TOLERANCE),
        (
            "moq",
            options.integer_orders
            & (grid.column("moq")[positions] > layout.lot_size[positions])
            & (quantity <= grid.column("moq")[positions] + BINDING_TOLERANCE),
        ),
    ):
        binding = binding.where(~flags, binding + np.where(binding == "", "", ",") + name)
    return pd.DataFrame(
        {
            "item_id": grid.item_stores["item_id"].to_numpy()[positions],
            "store_id": grid.item_stores["store_id"].to_numpy()[positions],
            "order_date": grid.period_dates(periods),
            "quantity": quantity,
            "lead_time_periods": lead,
            "demand_over_protection": demand_over_protection,
            "safety_stock": position_after - demand_over_protection,
            "on_hand": on_hand_before[positions, periods],
            "pipeline": pipeline,
            "inventory_position_after_order": position_after,
            "binding": binding.replace("", "none").to_numpy(),
        }
    )


def _window_sum(values: np.ndarray, rows: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """Sum of values[row, start:end] for each (row, start, end)."""
    cumulative = np.concatenate([np.zeros((values.shape[0], 1)), np.cumsum(values, axis=1)], axis=1)
    return cumulative[rows, end] - cumulative[rows, start]


def _capacity_binding(grid: ItemStoreGrid, formulation: Formulation, activities: np.ndarray) -> np.ndarray:
    """Item-store × period: its store's capacity row is tight in some scenario."""
    rows = formulation.layout.capacity_rows
    program = formulation.program
    tight = activities[rows["row"].to_numpy(dtype=int)] >= program.row_upper[
        rows["row"].to_numpy(dtype=int)
    ] - capacity_slack(rows["capacity_volume"].to_numpy(dtype=float))
    stores = pd.Index(rows["store_id"].unique())
    by_store = np.zeros((len(stores) + 1, grid.n_periods), dtype=bool)  # last row: no capacity
    np.logical_or.at(by_store, (stores.get_indexer(rows["store_id"]), rows["period"].to_numpy(dtype=int)), tight)
    return by_store[stores.get_indexer(grid.item_stores["store_id"])]


def _budget_binding(formulation: Formulation, activities: np.ndarray, n_periods: int) -> np.ndarray:
    rows = formulation.layout.budget_rows
    ids = rows["row"].to_numpy(dtype=int)
    tight = activities[ids] >= formulation.program.row_upper[ids] - BINDING_TOLERANCE * np.maximum(
        1.0, np.abs(formulation.program.row_upper[ids])
    )
    by_period = np.zeros(n_periods, dtype=bool)
    by_period[rows["period"].to_numpy(dtype=int)] = tight
    return by_period


def _target_binding(
    grid: ItemStoreGrid,
    formulation: Formulation,
    activities: np.ndarray,
    positions: np.ndarray,
    start: np.ndarray,
    end: np.ndarray,
) -> np.ndarray:
    """The order's item-store sits on its stock target somewhere in its protection interval."""
    rows = formulation.layout.target_rows
    ids = rows["row"].to_numpy(dtype=int)
    tight = activities[ids] <= formulation.program.row_lower[ids] + BINDING_TOLERANCE * np.maximum(
        1.0, formulation.program.row_lower[ids]
    )
    by_cell = np.zeros((len(grid.item_stores), grid.n_periods))
    np.add.at(by_cell, (rows["position"].to_numpy(dtype=int), rows["period"].to_numpy(dtype=int)), tight)
    return _window_sum(by_cell, positions, start, end) > 0

