"""Whole orders without the MILP: round the LP relaxation's orders, then give back what rounding
took from capacity and budget.

For plans too large for HiGHS to find a whole-order plan within its time limit.  Each order the
relaxation places becomes a quantity the supplier accepts: zero, or a whole number of case packs
of at least the MOQ (and at most the maximum order).  Orders are rounded in time order, each one
down or up to whichever gives its item-store the lower cost over the scenarios (the model's own
costs), and what rounding took or added is carried into the item-store's next order.  Rounding up
can fill a store past its capacity, or spend past a period's budget: each period's orders, once
rounded, are stepped down one acceptable quantity at a time, the one that costs least per unit of
volume (or money) it frees first, until every capacity and budget row holds again (in soft mode:
is broken no further than the relaxation broke it), before the next period's are rounded.
Item-stores share nothing but those rows, so the rest of the plan follows from the orders: stock,
lost or backlogged sales and any violations, as the model reckons them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from optimization.formulation import (
    Formulation,
    LinearProgram,
    holding_cost_per_period,
    max_order_limit,
    order_slot_mask,
    shortage_penalty,
)
from optimization.grid import MAX_REPORTED_VIOLATIONS, ItemStoreGrid, planned_arrivals
from optimization.problem import MIN_ORDER_QUANTITY, CostSettings, ModelOptions, PlanInfeasibleError, rounded
from optimization.simulation import serve

# Relative slack on capacity and budget rows, as in the model's own capacity checks.
ROW_TOLERANCE = 1e-6


def relaxation(program: LinearProgram) -> LinearProgram:
    """The same program with every integer column continuous."""
    return replace(program, is_integer=np.zeros_like(program.is_integer))


@dataclass(frozen=True)
class _Replay:
    """Item-stores through the horizon under given orders, as the model would run them."""

    stock: np.ndarray  # item-store × scenario × period, at the end of the period
    shortage: np.ndarray  # lost sales, or the backlog
    after_arrivals: np.ndarray  # the shelf right after deliveries
    target_shortfall: np.ndarray  # below the stock target
    cost: np.ndarray  # per item-store: the model's cost of these orders, violations included


class _ItemStores:
    """The item-stores' side of the model: acceptable quantities, and the cost of a set of orders."""

    def __init__(
        self, grid: ItemStoreGrid, formulation: Formulation, costs: CostSettings, options: ModelOptions
    ) -> None:
        self.grid = grid
        self.costs = costs
        self.options = options
        self.backorders = options.shortage_mode == "backorder"
        self.unit_cost = grid.column("unit_cost")
        self.holding = holding_cost_per_period(grid)
        self.penalty = shortage_penalty(grid, costs)
        self.pack = formulation.layout.lot_size
        self.largest = np.floor(max_order_limit(grid, options) / self.pack + 1e-9) * self.pack
        smallest = self.pack * np.ceil(np.maximum(grid.column("moq"), 1.0) / self.pack - 1e-9)
        self.smallest = np.where(smallest <= self.largest, smallest, np.inf)  # inf: never orderable
        self.slots = order_slot_mask(grid)
        self.targeted = np.zeros((len(grid.item_stores), grid.n_periods), dtype=bool)
        if grid.safety_stock is not None:
            reachable = np.arange(grid.n_periods)[None, :] >= grid.lead_periods[:, None]
            self.targeted = reachable & (grid.safety_stock > 0)
        self.targets = np.where(self.targeted, grid.safety_stock if grid.safety_stock is not None else 0.0, 0.0)

    def down(self, units: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """The largest acceptable quantity at most `units`."""
        packs = np.minimum(np.floor(units / self.pack[rows] + 1e-9) * self.pack[rows], self.largest[rows])
        return np.where(packs >= self.smallest[rows], packs, 0.0)

    def up(self, units: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """The smallest acceptable quantity at least `units`; the largest there is, when none is."""
        packs = np.maximum(np.ceil(units / self.pack[rows] - 1e-9) * self.pack[rows], self.smallest[rows])
        up = np.where(packs <= self.largest[rows], packs, self.down(units, rows))
        return np.where(units > MIN_ORDER_QUANTITY, up, 0.0)

    def step_down(self, quantity: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """The next acceptable quantity below each (positive) one."""
        return self.down(quantity - self.pack[rows] * 1e-3, rows)

    def replay(self, orders: np.ndarray, rows: np.ndarray) -> _Replay:
        """Item-stores `rows` through the horizon under `orders` (units, row × period).

        Demand is served from stock except what a stock target keeps back: the model loses or
        backlogs a sale rather than break a target."""
        grid = self.grid
        demand = grid.demand[rows]
        n_rows, n_scenarios, n_periods = demand.shape
        arrivals = grid.open_arrivals[rows] + planned_arrivals(orders, grid.lead_periods[rows])
        stock, shortage, after = np.empty(demand.shape), np.empty(demand.shape), np.empty(demand.shape)
        on_hand = np.repeat(grid.column("opening_on_hand")[rows, None], n_scenarios, axis=1)
        backlog = np.zeros((n_rows, n_scenarios))
        for t in range(n_periods):
            after[:, :, t] = on_hand + arrivals[:, t, None]
            on_hand, backlog, unmet = serve(
                after[:, :, t], backlog, demand[:, :, t], self.backorders, kept=self.targets[rows, t, None]
            )
            stock[:, :, t] = on_hand
            shortage[:, :, t] = backlog if self.backorders else unmet
        shortfall = np.where(self.targeted[rows, None, :], np.maximum(self.targets[rows, None, :] - stock, 0.0), 0.0)
        return _Replay(stock, shortage, after, shortfall, self._cost(orders, rows, stock, shortage, shortfall))

    def _cost(
        self, orders: np.ndarray, rows: np.ndarray, stock: np.ndarray, shortage: np.ndarray, shortfall: np.ndarray
    ) -> np.ndarray:
        """As optimization.formulation prices it: purchase, ordering, holding and shortage, less
        the value of ending stock, plus a violation penalty per unit short of a target."""
        n_scenarios = stock.shape[1]
        unit_cost = self.unit_cost[rows]
        cost = (unit_cost + self.costs.order_cost_per_unit) * orders.sum(axis=1)
        cost = cost + self.costs.fixed_order_cost * (orders > MIN_ORDER_QUANTITY).sum(axis=1)
        cost = cost + self.holding[rows] * stock.sum(axis=(1, 2)) / n_scenarios
        cost = cost + self.penalty[rows] * shortage.sum(axis=(1, 2)) / n_scenarios
        ending = stock[:, :, -1] - (shortage[:, :, -1] if self.backorders else 0.0)
        cost = cost - self.costs.ending_stock_value_share * unit_cost * ending.sum(axis=1) / n_scenarios
        return cost + self.options.violation_penalty * shortfall.sum(axis=(1, 2))


def repair_whole_orders(
    grid: ItemStoreGrid,
    formulation: Formulation,
    relaxed: np.ndarray,
    costs: CostSettings,
    options: ModelOptions,
) -> np.ndarray:
    """A whole-order plan, one value per model column, from the relaxation's solution `relaxed`.

    Raises PlanInfeasibleError when, in hard mode, whole orders within capacity and budget cannot
    keep every stock target the relaxation kept."""
    item_stores = _ItemStores(grid, formulation, costs, options)
    layout, program = formulation.layout, formulation.program
    relaxed_lots = np.where(layout.order_columns >= 0, relaxed[np.clip(layout.order_columns, 0, None)], 0.0)
    limits = _Limits(item_stores, formulation, program.matrix @ relaxed)
    orders = _rounded(item_stores, relaxed_lots * layout.lot_size[:, None], limits)
    # Rounding kept each period's own orders within the rows; later rounding may still have filled
    # an earlier period's shelf (through stock it left), so any order may step down now.
    orders = limits.stepped_down(orders, item_stores.slots)
    replay = item_stores.replay(orders, np.arange(len(grid.item_stores)))
    if not options.soft_constraints and (replay.target_shortfall > MIN_ORDER_QUANTITY).any():
        raise PlanInfeasibleError(_missed_targets(grid, replay.target_shortfall))
    return _column_values(formulation, orders, replay)


def _rounded(item_stores: _ItemStores, relaxed_orders: np.ndarray, limits: _Limits) -> np.ndarray:
    """Each order, in time order, down or up to an acceptable quantity, whichever costs less, then
    stepped down while its period's rounding breaks a capacity or budget row; what rounding took
    or added is carried into the item-store's next order."""
    orders = relaxed_orders.copy()
    carry = np.zeros(len(orders))
    for t in np.flatnonzero(item_stores.slots.any(axis=0)):
        rows = np.flatnonzero(item_stores.slots[:, t])
        wanted = np.maximum(orders[rows, t] + carry[rows], 0.0)
        candidates = (item_stores.down(wanted, rows), item_stores.up(wanted, rows))
        priced = []
        for candidate in candidates:
            trial = orders[rows].copy()
            trial[:, t] = candidate
            _carry_forward(trial, item_stores.slots[rows], t, wanted - candidate)
            priced.append(item_stores.replay(trial, rows).cost)
        chosen = np.where(priced[1] < priced[0], candidates[1], candidates[0])
        # Checked with what rounding took or added already moved to the next orders, so that a row
        # is not freed now of stock those orders will give back.
        ahead, rounded_rows = orders.copy(), orders[rows].copy()
        rounded_rows[:, t] = chosen
        _carry_forward(rounded_rows, item_stores.slots[rows], t, wanted - chosen)
        ahead[rows] = rounded_rows
        this_period = np.zeros(orders.shape, dtype=bool)
        this_period[rows, t] = True
        orders[rows, t] = limits.stepped_down(ahead, this_period, deferring=True)[rows, t]
        carry[rows] = wanted - orders[rows, t]
    return orders


def _carry_forward(orders: np.ndarray, slots: np.ndarray, t: int | np.integer, carry: np.ndarray) -> None:
    """Add each row's carry to its next order slot after t, never below zero."""
    later = slots[:, t + 1 :]
    rows = np.flatnonzero(later.any(axis=1))
    if len(rows) == 0:
        return
    columns = t + 1 + later[rows].argmax(axis=1)
    orders[rows, columns] = np.maximum(orders[rows, columns] + carry[rows], 0.0)


class _Limits:
    """The capacity and budget rows whole orders must keep within: the rows' bounds, or in soft mode
    what the relaxation already used, when more (soft mode may break a row, rounding must not break
    it further)."""

    def __init__(self, item_stores: _ItemStores, formulation: Formulation, relaxed_activity: np.ndarray) -> None:
        self.item_stores = item_stores
        program, layout = formulation.program, formulation.layout
        grid = item_stores.grid
        soft = item_stores.options.soft_constraints
        capacity, budget = layout.capacity_rows, layout.budget_rows
        capacity_ids, budget_ids = capacity["row"].to_numpy(dtype=int), budget["row"].to_numpy(dtype=int)
        self.capacity = capacity["capacity_volume"].to_numpy(dtype=float)
        if soft:
            # The bound is net of stock no order moves; the activity holds the rest of the shelf.
            used = relaxed_activity[capacity_ids] + self.capacity - program.row_upper[capacity_ids]
            self.capacity = np.maximum(self.capacity, used)
        self.budget = program.row_upper[budget_ids]
        if soft:
            self.budget = np.maximum(self.budget, relaxed_activity[budget_ids])
        self.capacity_store = capacity["store_id"].to_numpy()
        self.capacity_scenario = capacity["scenario"].to_numpy(dtype=int)
        self.capacity_period = capacity["period"].to_numpy(dtype=int)
        self.budget_period = budget["period"].to_numpy(dtype=int)
        stores = grid.item_stores["store_id"].to_numpy()
        self.members = {store: np.flatnonzero(stores == store) for store in dict.fromkeys(self.capacity_store.tolist())}
        self.volume = grid.column("unit_volume")

    def stepped_down(self, orders: np.ndarray, steppable: np.ndarray, deferring: bool = False) -> np.ndarray:
        """`orders` with `steppable` ones (item-store × period) stepped down, the one adding least
        cost per unit of volume or money it frees first, until no row they feed is over its limit.
        deferring: what a step takes moves to the item-store's next order."""
        orders = orders.copy()
        everyone = np.arange(len(orders))
        while True:
            replay = self.item_stores.replay(orders, everyone)
            if not any(step(orders, replay, steppable, deferring) for step in self._broken_rows(orders, replay)):
                return orders

    def _broken_rows(self, orders: np.ndarray, replay: _Replay):  # noqa: ANN202 - yields one stepper per row
        """For each row over its limit, the earliest first: a function stepping down one order that frees it."""
        shelf = replay.after_arrivals * self.volume[:, None, None]
        use = np.array(
            [
                shelf[self.members[store], scenario, period].sum()
                for store, scenario, period in zip(
                    self.capacity_store, self.capacity_scenario, self.capacity_period, strict=False
                )
            ]
        )
        spend = (orders[:, self.budget_period] * self.item_stores.unit_cost[:, None]).sum(axis=0)
        broken = [
            (period, "capacity", row)
            for row, period in enumerate(self.capacity_period)
            if use[row] > self.capacity[row] + ROW_TOLERANCE * max(abs(self.capacity[row]), 1.0)
        ]
        broken += [
            (period, "budget", row)
            for row, period in enumerate(self.budget_period)
            if spend[row] > self.budget[row] + ROW_TOLERANCE * max(abs(self.budget[row]), 1.0)
        ]
        for _, kind, row in sorted(broken):
            yield (
                lambda orders, replay, steppable, deferring, kind=kind, row=row: (
                    self._free_capacity(row, orders, replay, steppable, deferring)
                    if kind == "capacity"
                    else self._free_budget(row, orders, replay, steppable, deferring)
                )
            )

    def _free_capacity(
        self, row: int, orders: np.ndarray, replay: _Replay, steppable: np.ndarray, deferring: bool
    ) -> bool:
        grid = self.item_stores.grid
        feeding = self.members[self.capacity_store[row]]
        scenario, period = self.capacity_scenario[row], self.capacity_period[row]
        arrives_in_time = np.arange(grid.n_periods)[None, :] + grid.lead_periods[feeding, None] <= period

        def volume_freed(candidates: np.ndarray, removed: np.ndarray, trial: _Replay) -> np.ndarray:
            before = replay.after_arrivals[candidates, scenario, period]
            return self.volume[candidates] * (before - trial.after_arrivals[:, scenario, period])

        return _step_cheapest(
            self.item_stores,
            orders,
            feeding,
            arrives_in_time & steppable[feeding],
            replay.cost,
            volume_freed,
            deferring,
        )

    def _free_budget(
        self, row: int, orders: np.ndarray, replay: _Replay, steppable: np.ndarray, deferring: bool
    ) -> bool:
        in_period = np.zeros(orders.shape, dtype=bool)
        in_period[:, self.budget_period[row]] = True

        def money_freed(candidates: np.ndarray, removed: np.ndarray, trial: _Replay) -> np.ndarray:
            return self.item_stores.unit_cost[candidates] * removed

        return _step_cheapest(
            self.item_stores, orders, np.arange(len(orders)), in_period & steppable, replay.cost, money_freed, deferring
        )


def _step_cheapest(
    item_stores: _ItemStores,
    orders: np.ndarray,
    feeding: np.ndarray,
    allowed: np.ndarray,
    base_cost: np.ndarray,
    freed: Callable[[np.ndarray, np.ndarray, _Replay], np.ndarray],
    deferring: bool,
) -> bool:
    """Step down, in place, the order among `feeding`'s allowed slots (feeding × period) that adds
    least cost per unit it frees (deferring what it takes to the next order); False when no order
    frees anything."""
    best, best_score = None, np.inf
    for period in np.flatnonzero((allowed & (orders[feeding] > MIN_ORDER_QUANTITY)).any(axis=0)):
        candidates = feeding[allowed[:, period] & (orders[feeding, period] > MIN_ORDER_QUANTITY)]
        trial = orders[candidates].copy()
        trial[:, period] = item_stores.step_down(trial[:, period], candidates)
        if deferring:
            _carry_forward(trial, item_stores.slots[candidates], period, orders[candidates, period] - trial[:, period])
        replayed = item_stores.replay(trial, candidates)
        gained = freed(candidates, orders[candidates, period] - trial[:, period], replayed)
        useful = gained > 0
        if not useful.any():
            continue
        scores = np.where(useful, (replayed.cost - base_cost[candidates]) / np.where(useful, gained, 1.0), np.inf)
        pick = int(np.argmin(scores))
        if scores[pick] < best_score:
            best, best_score = (candidates[pick], period, trial[pick]), scores[pick]
    if best is None:
        return False
    row, period, stepped = best
    orders[row] = stepped
    return True


def _missed_targets(grid: ItemStoreGrid, shortfall: np.ndarray) -> list[str]:
    worst = shortfall.max(axis=1)
    positions = np.flatnonzero((worst > MIN_ORDER_QUANTITY).any(axis=1))
    reasons = []
    for position in positions[:MAX_REPORTED_VIOLATIONS]:
        period = int(np.argmax(worst[position] > MIN_ORDER_QUANTITY))
        item = grid.item_stores.iloc[position]
        reasons.append(
            f"in whole case packs within capacity and budget, the stock target of item {item['item_id']} at "
            f"store {item['store_id']} cannot be kept from {grid.period_dates(period).date()}: short by up to "
            f"{rounded(worst[position].max())} units"
        )
    if len(positions) > MAX_REPORTED_VIOLATIONS:
        reasons.append(f"and {len(positions) - MAX_REPORTED_VIOLATIONS} more item-stores short of a target")
    return reasons


def _column_values(formulation: Formulation, orders: np.ndarray, replay: _Replay) -> np.ndarray:
    """Every model column for these orders; elastic columns take what their rows still lack."""
    program, layout = formulation.program, formulation.layout
    values = np.zeros(program.n_columns)
    slots = layout.order_columns >= 0
    values[layout.order_columns[slots]] = (orders / layout.lot_size[:, None])[slots]
    switches = layout.switch_columns >= 0
    values[layout.switch_columns[switches]] = (orders > MIN_ORDER_QUANTITY)[switches]
    values[layout.stock_columns] = replay.stock
    values[layout.shortage_columns] = replay.shortage
    activity = program.matrix @ values
    for rows, relaxes_upper in ((layout.capacity_rows, True), (layout.budget_rows, True), (layout.target_rows, False)):
        elastic = rows["elastic"].to_numpy(dtype=int)
        ids = rows["row"].to_numpy(dtype=int)[elastic >= 0]
        lacking = activity[ids] - program.row_upper[ids] if relaxes_upper else program.row_lower[ids] - activity[ids]
        values[elastic[elastic >= 0]] = np.maximum(lacking, 0.0)
    return values
