"""The replenishment model as one sparse linear (or mixed-integer) program.

Indices: item-store k, demand scenario s (one in point and quantile mode), period t.  Orders are
placed on the item's order days (its calendar) and land L_k periods later; an order slot exists
only if it lands inside the horizon.  With whole orders an order is a number of case packs ("lots").

  stock balance   on_hand[k,s,t] = on_hand[k,s,t-1] + open_arrivals[k,t] + pack_k·lots[k,t-L_k]
                                   - demand[k,s,t] + lost[k,s,t]                     (lost sales)
                  on_hand - backlog carried the same way, backlog >= 0               (backorders)
  capacity        Σ_k volume_k·(on_hand[k,s,t-1] + arrivals[k,s,t]) <= capacity[store]
                  (the shelf right after deliveries, before sales; on_hand[k,s,-1] is opening)
  budget          Σ_k unit_cost_k·pack_k·lots[k,t] <= budget                 per order period
  stock target    on_hand[k,s,t] >= safety_stock[k,t]       from the first period orders reach
  order switch    pack·lots <= M·placed,  pack·lots >= moq·placed,  placed binary
  cost            purchase + ordering (per unit, fixed per order) + holding + shortage, the
                  last two averaged over scenarios, less the value of ending stock.

Soft and diagnosis modes add one elastic column to every capacity, budget and target row.
Building it is vectorised numpy; the Pyomo and highspy backends read the same arrays.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp

from optimization.grid import DAYS_PER_YEAR, ItemStoreGrid
from optimization.problem import CostSettings, ModelOptions

Elasticity = Literal["hard", "soft", "diagnose"]
# In diagnosis the solver should first blame the limits (capacity, budget) and only then a
# target, so that "capacity is below what the targets require" is what gets reported.
DIAGNOSIS_TARGET_WEIGHT = 100.0
COST_COMPONENTS = ("purchase", "holding", "shortage", "ordering")


@dataclass(frozen=True)
class LinearProgram:
    n_columns: int
    lower: np.ndarray
    upper: np.ndarray
    is_integer: np.ndarray
    costs: dict[str, np.ndarray]  # component -> per-column cost; the objective is their sum
    matrix: sp.csr_matrix
    row_lower: np.ndarray
    row_upper: np.ndarray
    columns: dict[str, np.ndarray]  # block name -> its column ids
    rows: dict[str, np.ndarray]  # block name -> its row ids

    @property
    def objective(self) -> np.ndarray:
        return np.sum(list(self.costs.values()), axis=0)


@dataclass(frozen=True)
class Layout:
    """Where each model quantity lives, to read a solution back into arrays."""

    order_columns: np.ndarray  # item-store × period, -1 where no order slot
    switch_columns: np.ndarray  # item-store × period, -1 where no binary switch
    lot_size: np.ndarray  # units per lot for each item-store
    stock_columns: np.ndarray  # item-store × scenario × period
    shortage_columns: np.ndarray  # lost sales or backlog, item-store × scenario × period
    capacity_rows: pd.DataFrame  # store_id, scenario, period, capacity_volume, row, elastic
    budget_rows: pd.DataFrame  # period, budget, row, elastic
    target_rows: pd.DataFrame  # position, scenario, period, safety_stock, row, elastic
    switch_rows: pd.DataFrame  # position, period, kind ("upper" | "moq"), row


@dataclass(frozen=True)
class Formulation:
    program: LinearProgram
    layout: Layout


class _Builder:
    """Collects columns and COO row entries block by block."""

    def __init__(self) -> None:
        self.n_columns = 0
        self.n_rows = 0
        self.lower: list[np.ndarray] = []
        self.upper: list[np.ndarray] = []
        self.is_integer: list[np.ndarray] = []
        self.cost_entries: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
        self.entries: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self.row_lower: list[np.ndarray] = []
        self.row_upper: list[np.ndarray] = []
        self.columns: dict[str, np.ndarray] = {}
        self.rows: dict[str, np.ndarray] = {}

    def add_columns(self, name: str, lower: np.ndarray, upper: np.ndarray, integer: bool = False) -> np.ndarray:
        ids = np.arange(self.n_columns, self.n_columns + len(lower))
        self.n_columns += len(lower)
        self.lower.append(np.asarray(lower, dtype=float))
        self.upper.append(np.asarray(upper, dtype=float))
        self.is_integer.append(np.full(len(lower), integer))
        self.columns[name] = ids
        return ids

    def add_cost(self, component: str, columns: np.ndarray, cost: np.ndarray | float) -> None:
        self.cost_entries.setdefault(component, []).append(
            (np.asarray(columns), np.broadcast_to(np.asarray(cost, dtype=float), np.shape(columns)))
        )

    def add_rows(self, name: str, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
        ids = np.arange(self.n_rows, self.n_rows + len(lower))
        self.n_rows += len(lower)
        self.row_lower.append(np.asarray(lower, dtype=float))
        self.row_upper.append(np.asarray(upper, dtype=float))
        self.rows[name] = ids
        return ids

    def add_entries(self, rows: np.ndarray, columns: np.ndarray, values: np.ndarray | float) -> None:
        rows, columns, values = np.broadcast_arrays(rows, columns, values)
        keep = columns >= 0
        self.entries.append((rows[keep].ravel(), columns[keep].ravel(), values[keep].ravel()))

    def program(self) -> LinearProgram:
        costs = {}
        for component, parts in self.cost_entries.items():
            vector = np.zeros(self.n_columns)
            for columns, cost in parts:
                np.add.at(vector, columns.ravel(), cost.ravel())
            costs[component] = vector
        rows, columns, values = (np.concatenate(part) for part in zip(*self.entries, strict=False))
        matrix = sp.csr_matrix((values, (rows, columns)), shape=(self.n_rows, self.n_columns))
        matrix.sum_duplicates()
        return LinearProgram(
            n_columns=self.n_columns,
            lower=np.concatenate(self.lower),
            upper=np.concatenate(self.upper),
            is_integer=np.concatenate(self.is_integer),
            costs=costs,
            matrix=matrix,
            row_lower=np.concatenate(self.row_lower) if self.row_lower else np.zeros(0),
            row_upper=np.concatenate(self.row_upper) if self.row_upper else np.zeros(0),
            columns=self.columns,
            rows=self.rows,
        )


def formulate(
    grid: ItemStoreGrid,
    capacity: pd.DataFrame,
    costs: CostSettings,
    options: ModelOptions,
    elasticity: Elasticity = "hard",
) -> Formulation:
    _validate_costs(costs, options)
    builder = _Builder()
    n_item_stores, n_scenarios, n_periods = grid.demand.shape
    cells = n_item_stores * n_scenarios * n_periods
    lot_size = _lot_size(grid, options)
    max_order = max_order_limit(grid, options)

    slot_mask = order_slot_mask(grid)
    lots_upper = np.floor(max_order / lot_size + 1e-9)
    order_columns = _scatter_ids(
        slot_mask,
        builder.add_columns(
            "order",
            np.zeros(slot_mask.sum()),
            np.broadcast_to(lots_upper[:, None], slot_mask.shape)[slot_mask],
            integer=options.whole_orders != "none",
        ),
    )
    switch_mask = slot_mask & _needs_switch(grid, costs, options, lot_size)[:, None]
    switch_columns = _scatter_ids(
        switch_mask,
        builder.add_columns("order_placed", np.zeros(switch_mask.sum()), np.ones(switch_mask.sum()), integer=True),
    )
    stock_columns = builder.add_columns("on_hand_end", np.zeros(cells), np.full(cells, np.inf))
    stock_columns = stock_columns.reshape(grid.demand.shape)
    backorders = options.shortage_mode == "backorder"
    shortage_upper = np.full(cells, np.inf) if backorders else grid.demand.ravel()
    shortage_columns = builder.add_columns(
        "backlog" if backorders else "lost_sales", np.zeros(cells), shortage_upper
    ).reshape(grid.demand.shape)

    _add_stock_balance(builder, grid, order_columns, lot_size, stock_columns, shortage_columns, backorders)
    elastic = elasticity != "hard"
    capacity_rows = _add_capacity(builder, grid, capacity, order_columns, lot_size, stock_columns, elastic)
    budget_rows = _add_budget(builder, grid, options, order_columns, lot_size, elastic)
    target_rows = _add_targets(builder, grid, stock_columns, elastic)
    switch_rows = _add_order_switches(
        builder, grid, order_columns, switch_columns, lot_size, _switch_bound(grid, max_order, lot_size)
    )

    if elasticity == "diagnose":
        _add_diagnosis_weights(builder, grid, lot_size)
    else:
        _add_costs(
            builder,
            grid,
            costs,
            options,
            order_columns,
            switch_columns,
            lot_size,
            stock_columns,
            shortage_columns,
        )
        if elastic:
            for block in ("capacity_overflow", "budget_overrun", "target_shortfall"):
                columns = builder.columns[block]
                builder.add_cost("constraint_violation", columns, options.violation_penalty)

    layout = Layout(
        order_columns=order_columns,
        switch_columns=switch_columns,
        lot_size=lot_size,
        stock_columns=stock_columns,
        shortage_columns=shortage_columns,
        capacity_rows=capacity_rows,
        budget_rows=budget_rows,
        target_rows=target_rows,
        switch_rows=switch_rows,
    )
    return Formulation(builder.program(), layout)


def order_slot_mask(grid: ItemStoreGrid) -> np.ndarray:
    """Item-store × period: an order may be placed, on an order day, and lands in the horizon."""
    periods = np.arange(grid.n_periods)
    return grid.order_days & (periods[None, :] + grid.lead_periods[:, None] < grid.n_periods)


def _validate_costs(costs: CostSettings, options: ModelOptions) -> None:
    for name in ("shortage_cost_multiplier", "order_cost_per_unit", "fixed_order_cost"):
        if getattr(costs, name) < 0:
            raise ValueError(f"{name} must be non-negative, got {getattr(costs, name)}")
    # Worth more than it cost, ending stock would pay to be bought without limit.
    if not 0 <= costs.ending_stock_value_share <= 1:
        raise ValueError("ending_stock_value_share must lie in [0, 1]")
    if options.budget_per_period is not None and options.budget_per_period < 0:
        raise ValueError("budget_per_period must be non-negative")
    if options.max_order_quantity is not None and options.max_order_quantity < 0:
        raise ValueError("max_order_quantity must be non-negative")


def _lot_size(grid: ItemStoreGrid, options: ModelOptions) -> np.ndarray:
    if options.whole_orders != "none":
        return grid.column("case_pack")
    return np.ones(len(grid.item_stores))


def max_order_limit(grid: ItemStoreGrid, options: ModelOptions) -> np.ndarray:
    limit = grid.column("max_order")
    if options.max_order_quantity is not None:
        limit = np.minimum(limit, options.max_order_quantity)
    return limit


def _needs_switch(grid: ItemStoreGrid, costs: CostSettings, options: ModelOptions, lot_size: np.ndarray) -> np.ndarray:
    """A binary "order placed" is needed for a fixed cost, or for an MOQ above one lot."""
    moq_binds = (options.whole_orders != "none") & (grid.column("moq") > lot_size)
    return moq_binds | (costs.fixed_order_cost > 0)


def _switch_bound(grid: ItemStoreGrid, max_order: np.ndarray, lot_size: np.ndarray) -> np.ndarray:
    """Big-M: no optimal order exceeds all demand ahead plus the largest target and one lot."""
    demand_ahead = grid.demand.sum(axis=2).max(axis=1)
    target = grid.safety_stock.max(axis=1) if grid.safety_stock is not None else 0.0
    useful = demand_ahead + target + np.maximum(grid.column("moq"), lot_size)
    return np.minimum(max_order, useful)


def _scatter_ids(mask: np.ndarray, ids: np.ndarray) -> np.ndarray:
    scattered = np.full(mask.shape, -1)
    scattered[mask] = ids
    return scattered


def _arrival_columns(order_columns: np.ndarray, lead_periods: np.ndarray) -> np.ndarray:
    """Item-store × period: the order column whose delivery lands in that period, or -1."""
    n_periods = order_columns.shape[1]
    periods = np.arange(n_periods)[None, :]
    placed = periods - lead_periods[:, None]
    rows = np.arange(order_columns.shape[0])[:, None]
    return np.where(placed >= 0, order_columns[rows, np.clip(placed, 0, None)], -1)


def _previous(columns: np.ndarray) -> np.ndarray:
    """The same cell one period earlier along the last axis; -1 in period 0."""
    shifted = np.full(columns.shape, -1)
    shifted[..., 1:] = columns[..., :-1]
    return shifted


def _add_stock_balance(
    builder: _Builder,
    grid: ItemStoreGrid,
    order_columns: np.ndarray,
    lot_size: np.ndarray,
    stock: np.ndarray,
    shortage: np.ndarray,
    backorders: bool,
) -> None:
    n_item_stores, n_scenarios, n_periods = grid.demand.shape
    rhs = grid.open_arrivals[:, None, :] - grid.demand
    rhs[:, :, 0] += grid.column("opening_on_hand")[:, None]
    rows = builder.add_rows("stock_balance", rhs.ravel(), rhs.ravel()).reshape(grid.demand.shape)
    arrivals = np.broadcast_to(_arrival_columns(order_columns, grid.lead_periods)[:, None, :], grid.demand.shape)
    builder.add_entries(rows, stock, 1.0)
    builder.add_entries(rows, _previous(stock), -1.0)
    builder.add_entries(rows, arrivals, -lot_size[:, None, None])
    if backorders:
        builder.add_entries(rows, shortage, -1.0)
        builder.add_entries(rows, _previous(shortage), 1.0)
    else:
        builder.add_entries(rows, shortage, -1.0)


def capacity_by_store(item_stores: pd.DataFrame, capacity: pd.DataFrame) -> dict[object, float]:
    """Capacity of each store holding any item-store; stores without a row are unlimited."""
    relevant = capacity.loc[capacity["store_id"].isin(item_stores["store_id"])]
    volumes = relevant["capacity_volume"].astype(float).tolist()
    return dict(zip(relevant["store_id"].tolist(), volumes, strict=False))


def _add_capacity(
    builder: _Builder,
    grid: ItemStoreGrid,
    capacity: pd.DataFrame,
    order_columns: np.ndarray,
    lot_size: np.ndarray,
    stock: np.ndarray,
    elastic: bool,
) -> pd.DataFrame:
    """One row per capacitated store, scenario and period; all-constant rows are left to the
    pre-check unless elastic (then the overflow column keeps them)."""
    _, n_scenarios, n_periods = grid.demand.shape
    limits = capacity_by_store(grid.item_stores, capacity)
    stores = list(limits)
    store_index = pd.Index(stores).get_indexer(grid.item_stores["store_id"])
    capacitated = store_index >= 0
    volume = grid.column("unit_volume")
    fixed_stock = grid.open_arrivals.copy()
    fixed_stock[:, 0] += grid.column("opening_on_hand")
    fixed_volume = np.zeros((len(stores), n_periods))
    np.add.at(fixed_volume, store_index[capacitated], (fixed_stock * volume[:, None])[capacitated])

    keys = pd.MultiIndex.from_product(
        [range(len(stores)), range(n_scenarios), range(n_periods)],
        names=["store", "scenario", "period"],
    ).to_frame(index=False)
    arrivals = _arrival_columns(order_columns, grid.lead_periods)
    previous_stock = _previous(stock)
    has_variables = np.zeros((len(stores), n_scenarios, n_periods), dtype=bool)
    np.logical_or.at(
        has_variables,
        store_index[capacitated],
        (previous_stock[capacitated] >= 0) | (arrivals[capacitated, None, :] >= 0),
    )
    keep = np.ones(len(keys), dtype=bool) if elastic else has_variables.ravel()
    keys = keys.loc[keep].reset_index(drop=True)
    store_limits = np.array([limits[store] for store in stores], dtype=float)
    limit = store_limits[keys["store"].to_numpy()]
    upper = limit - fixed_volume[keys["store"].to_numpy(), keys["period"].to_numpy()]
    rows = builder.add_rows("store_capacity", np.full(len(keys), -np.inf), upper)

    # A sentinel store row of -1s stands for item-stores whose store has no capacity.
    row_of = np.full((len(stores) + 1, n_scenarios, n_periods), -1)
    row_of[keys["store"], keys["scenario"], keys["period"]] = rows
    cell_rows = row_of[store_index]  # item-store × scenario × period
    valid = cell_rows >= 0
    builder.add_entries(np.where(valid, cell_rows, 0), np.where(valid, previous_stock, -1), volume[:, None, None])
    arrival_cells = np.broadcast_to(arrivals[:, None, :], cell_rows.shape)
    builder.add_entries(
        np.where(valid, cell_rows, 0),
        np.where(valid, arrival_cells, -1),
        (volume * lot_size)[:, None, None],
    )
    elastic_columns = _add_elastic(builder, "capacity_overflow", rows, elastic, sign=-1.0)
    return pd.DataFrame(
        {
            "store_id": np.array(stores, dtype=object)[keys["store"].to_numpy()],
            "scenario": keys["scenario"],
            "period": keys["period"],
            "capacity_volume": limit,
            "row": rows,
            "elastic": elastic_columns,
        }
    )


def _add_elastic(builder: _Builder, name: str, rows: np.ndarray, elastic: bool, sign: float) -> np.ndarray:
    """An elastic column per row (sign -1 relaxes an upper limit, +1 a lower one), or -1s."""
    if not elastic:
        builder.add_columns(name, np.zeros(0), np.zeros(0))
        return np.full(len(rows), -1)
    columns = builder.add_columns(name, np.zeros(len(rows)), np.full(len(rows), np.inf))
    builder.add_entries(rows, columns, sign)
    return columns


def _add_budget(
    builder: _Builder,
    grid: ItemStoreGrid,
    options: ModelOptions,
    order_columns: np.ndarray,
    lot_size: np.ndarray,
    elastic: bool,
) -> pd.DataFrame:
    if options.budget_per_period is None:
        periods = np.zeros(0, dtype=int)
    else:
        periods = np.flatnonzero((order_columns >= 0).any(axis=0))
    budget = np.full(len(periods), options.budget_per_period or 0.0)
    rows = builder.add_rows("budget", np.full(len(periods), -np.inf), budget)
    spend = grid.column("unit_cost") * lot_size
    builder.add_entries(rows[None, :], order_columns[:, periods], spend[:, None])
    elastic_columns = _add_elastic(builder, "budget_overrun", rows, elastic, sign=-1.0)
    return pd.DataFrame({"period": periods, "budget": budget, "row": rows, "elastic": elastic_columns})


def _add_targets(builder: _Builder, grid: ItemStoreGrid, stock: np.ndarray, elastic: bool) -> pd.DataFrame:
    """Targets start when the first possible order lands: earlier shortfalls are sunk."""
    n_item_stores, n_scenarios, n_periods = grid.demand.shape
    if grid.safety_stock is None:
        targeted = np.zeros((n_item_stores, n_periods), dtype=bool)
        targets = np.zeros((n_item_stores, n_periods))
    else:
        targets = grid.safety_stock
        reachable = np.arange(n_periods)[None, :] >= grid.lead_periods[:, None]
        targeted = reachable & (targets > 0)
    positions, periods = np.nonzero(targeted)
    positions = np.repeat(positions, n_scenarios)
    periods = np.repeat(periods, n_scenarios)
    scenarios = np.tile(np.arange(n_scenarios), int(targeted.sum()))
    levels = targets[positions, periods]
    rows = builder.add_rows("stock_target", levels, np.full(len(levels), np.inf))
    builder.add_entries(rows, stock[positions, scenarios, periods], 1.0)
    elastic_columns = _add_elastic(builder, "target_shortfall", rows, elastic, sign=1.0)
    return pd.DataFrame(
        {
            "position": positions,
            "scenario": scenarios,
            "period": periods,
            "safety_stock": levels,
            "row": rows,
            "elastic": elastic_columns,
        }
    )


def _add_order_switches(
    builder: _Builder,
    grid: ItemStoreGrid,
    order_columns: np.ndarray,
    switch_columns: np.ndarray,
    lot_size: np.ndarray,
    bound: np.ndarray,
) -> pd.DataFrame:
    positions, periods = np.nonzero(switch_columns >= 0)
    lots = order_columns[positions, periods]
    switches = switch_columns[positions, periods]
    units_per_lot = lot_size[positions]
    upper_rows = builder.add_rows("order_upper", np.full(len(lots), -np.inf), np.zeros(len(lots)))
    builder.add_entries(upper_rows, lots, units_per_lot)
    builder.add_entries(upper_rows, switches, -bound[positions])
    moq = grid.column("moq")[positions]
    with_moq = moq > units_per_lot
    moq_rows = builder.add_rows("order_moq", np.zeros(with_moq.sum()), np.full(with_moq.sum(), np.inf))
    builder.add_entries(moq_rows, lots[with_moq], units_per_lot[with_moq])
    builder.add_entries(moq_rows, switches[with_moq], -moq[with_moq])
    return pd.DataFrame(
        {
            "position": np.concatenate([positions, positions[with_moq]]),
            "period": np.concatenate([periods, periods[with_moq]]),
            "kind": ["upper"] * len(lots) + ["moq"] * int(with_moq.sum()),
            "row": np.concatenate([upper_rows, moq_rows]),
        }
    )


def _add_costs(
    builder: _Builder,
    grid: ItemStoreGrid,
    costs: CostSettings,
    options: ModelOptions,
    order_columns: np.ndarray,
    switch_columns: np.ndarray,
    lot_size: np.ndarray,
    stock: np.ndarray,
    shortage: np.ndarray,
) -> None:
    n_scenarios = grid.n_scenarios
    unit_cost = grid.column("unit_cost")
    placed = order_columns >= 0
    per_lot = np.broadcast_to((unit_cost * lot_size)[:, None], placed.shape)
    builder.add_cost("purchase", order_columns[placed], per_lot[placed])
    handling = np.broadcast_to((costs.order_cost_per_unit * lot_size)[:, None], placed.shape)
    builder.add_cost("ordering", order_columns[placed], handling[placed])
    switched = switch_columns >= 0
    builder.add_cost("ordering", switch_columns[switched], costs.fixed_order_cost)

    holding = holding_cost_per_period(grid)
    builder.add_cost("holding", stock, np.broadcast_to((holding / n_scenarios)[:, None, None], stock.shape))
    penalty = shortage_penalty(grid, costs)
    builder.add_cost("shortage", shortage, np.broadcast_to((penalty / n_scenarios)[:, None, None], shortage.shape))
    if costs.ending_stock_value_share > 0:
        value = costs.ending_stock_value_share * unit_cost / n_scenarios
        value_per_cell = np.broadcast_to(value[:, None], stock.shape[:2])
        builder.add_cost("ending_stock_credit", stock[:, :, -1], -value_per_cell)
        if options.shortage_mode == "backorder":
            # Backlog left at the end must still be bought.
            builder.add_cost("ending_stock_credit", shortage[:, :, -1], value_per_cell)


def holding_cost_per_period(grid: ItemStoreGrid) -> np.ndarray:
    """Per unit on hand at a period's end: the yearly rate of the unit cost, pro rata."""
    return grid.column("unit_cost") * grid.column("holding_cost_rate") * grid.period_days / DAYS_PER_YEAR


def shortage_penalty(grid: ItemStoreGrid, costs: CostSettings) -> np.ndarray:
    """Per unit lost (or per unit and period backlogged): the item's own, else the multiplier."""
    explicit = grid.column("shortage_cost")
    return np.where(np.isnan(explicit), grid.column("unit_cost") * costs.shortage_cost_multiplier, explicit)


def _add_diagnosis_weights(builder: _Builder, grid: ItemStoreGrid, lot_size: np.ndarray) -> None:
    """Phase one: least violation, in comparable units (a unit of the bulkiest or dearest item)."""
    volume_scale = max(float(grid.column("unit_volume").max(initial=0.0)), 1e-9)
    money_scale = max(float((grid.column("unit_cost") * lot_size).max(initial=0.0)), 1e-9)
    builder.add_cost("constraint_violation", builder.columns["capacity_overflow"], 1.0 / volume_scale)
    builder.add_cost("constraint_violation", builder.columns["budget_overrun"], 1.0 / money_scale)
    builder.add_cost("constraint_violation", builder.columns["target_shortfall"], DIAGNOSIS_TARGET_WEIGHT)
