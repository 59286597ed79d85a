"""Why each order is what it is: demand it covers, safety stock, stock already there, limits hit.

An order placed in period t protects the item-store until the next order can land, i.e. over
its lead time plus the item's review period (the days between its order days).  The safety stock
it leaves is the stock expected on hand (less any backlog) at the end of that protection interval,
when the next order lands: its inventory position after ordering (on hand, less backlog, plus
everything arriving before it, plus the order) minus the expected demand over the interval, when
no sale is lost before it lands, and more when sales the stock cannot serve before then are lost
(under lost sales they do not draw on the order).  In quantile mode with a binding target it is
the target.  Constraints are reported binding from their slacks: capacity and
budget when what is left of them would not take one more lot of the item (a unit when orders are
continuous, a case pack when they are whole), a target when stock sits on it.
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
    expected_end_stock: np.ndarray,
) -> pd.DataFrame:
    """expected_end_stock: item-store × period, the mean over scenarios of stock less backlog at
    the period's end."""
    positions, periods = np.nonzero(orders > MIN_ORDER_QUANTITY)
    if len(positions) == 0:
        return pd.DataFrame(columns=EXPLANATION_COLUMNS)
    n_periods = grid.n_periods
    lead = grid.lead_periods[positions]
    arrival = periods + lead
    protection_end = np.minimum(arrival + grid.review_periods[positions], n_periods)

    expected_demand = grid.demand.mean(axis=1)
    demand_over_protection = _window_sum(expected_demand, positions, periods, protection_end)
    pipeline = _window_sum(arrivals, positions, periods, arrival)
    backlog_before = np.concatenate([np.zeros((backlog.shape[0], 1)), backlog.mean(axis=1)[:, :-1]], axis=1)[
        positions, periods
    ]
    quantity = orders[positions, periods]
    position_after = on_hand_before[positions, periods] - backlog_before + pipeline + quantity

    binding = pd.Series("", index=range(len(positions)), dtype=object)
    layout = formulation.layout
    # Continuous orders take any amount, so only a slack within solver tolerance binds them.
    lot = layout.lot_size[positions] if options.whole_orders != "none" else np.zeros(len(positions))
    capacity_left = _capacity_left(grid, formulation, activities)[positions, np.minimum(arrival, n_periods - 1)]
    budget_left = _budget_left(formulation, activities, n_periods)[periods]
    for name, flags in (
        ("capacity", capacity_left <= grid.column("unit_volume")[positions] * lot),
        ("budget", budget_left <= grid.column("unit_cost")[positions] * lot),
        ("stock_target", _target_binding(grid, formulation, activities, positions, arrival, protection_end)),
        ("max_order", quantity >= max_order_limit(grid, options)[positions] - BINDING_TOLERANCE),
        (
            "moq",
            (options.whole_orders != "none")
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
            "safety_stock": expected_end_stock[positions, protection_end - 1],
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


def _capacity_left(grid: ItemStoreGrid, formulation: Formulation, activities: np.ndarray) -> np.ndarray:
    """Item-store × period: the volume its store's shelf still takes after deliveries, beyond the
    capacity tolerance, in the fullest scenario (inf without a capacity row)."""
    rows = formulation.layout.capacity_rows
    ids = rows["row"].to_numpy(dtype=int)
    tolerance = capacity_slack(rows["capacity_volume"].to_numpy(dtype=float))
    left = formulation.program.row_upper[ids] - activities[ids] - tolerance
    stores = pd.Index(rows["store_id"].unique())
    by_store = np.full((len(stores) + 1, grid.n_periods), np.inf)  # last row: no capacity
    np.minimum.at(by_store, (stores.get_indexer(rows["store_id"]), rows["period"].to_numpy(dtype=int)), left)
    return by_store[stores.get_indexer(grid.item_stores["store_id"])]


def _budget_left(formulation: Formulation, activities: np.ndarray, n_periods: int) -> np.ndarray:
    """Per period: the budget not spent, beyond the solver's tolerance (inf without a budget row)."""
    rows = formulation.layout.budget_rows
    ids = rows["row"].to_numpy(dtype=int)
    bound = formulation.program.row_upper[ids]
    by_period = np.full(n_periods, np.inf)
    by_period[rows["period"].to_numpy(dtype=int)] = (
        bound - activities[ids] - BINDING_TOLERANCE * np.maximum(1.0, np.abs(bound))
    )
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
