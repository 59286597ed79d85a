"""Replay held-out days with actual demand under an ordering policy, and score it.

Each day on which some item-store may be ordered (its order calendar), the policy sees the state
(stock, backlog, orders in transit, the demand observed so far) and orders; what it orders for
item-stores not due that day is dropped.  Orders land after their lead time, at the start of a
day, before that day's sales (a zero lead time lands the same day); demand is served from stock
and the rest is lost or backlogged.

Costs are the ones a policy is responsible for: holding (per unit and day on hand at day end),
shortage (per unit lost, or per unit and day backlogged), and ordering (fixed per order line
plus per unit).  Purchases are reported but not counted: every unit bought is either sold or
still in stock at the end, valued at cost.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
from tqdm.auto import tqdm

from optimization.grid import DAYS_PER_YEAR
from optimization.problem import MIN_ORDER_QUANTITY, ShortageMode


@dataclass(frozen=True)
class InventorySystem:
    """Item-stores being replayed; every array has one entry (row) per item-store."""

    unit_cost: np.ndarray
    holding_cost_per_day: np.ndarray
    shortage_cost: np.ndarray  # per unit lost, or per unit and day backlogged
    lead_time_days: np.ndarray
    opening_on_hand: np.ndarray
    open_arrivals: np.ndarray  # item-store × day of the replay: orders placed before it
    order_days: np.ndarray  # item-store × day of the replay: the item-store may be ordered that day
    shortage_mode: ShortageMode = "lost_sales"
    fixed_order_cost: float = 0.0
    order_cost_per_unit: float = 0.0
    # Optional, to count days a store's shelf is over capacity right after deliveries.
    unit_volume: np.ndarray | None = None
    store_index: np.ndarray | None = None  # per item-store, into store_capacity
    store_capacity: np.ndarray | None = None
    # Optional, to count orders a supplier would refuse: not whole case packs, or below the MOQ.
    case_pack: np.ndarray | None = None
    moq: np.ndarray | None = None


@dataclass(frozen=True)
class ReviewState:
    day: int
    on_hand: np.ndarray  # at the start of the day, before its deliveries
    backlog: np.ndarray
    scheduled: np.ndarray  # item-store × day: deliveries still to land, from this day on
    observed_demand: np.ndarray  # item-store × day: actual demand of the days before this one


Policy = Callable[[ReviewState], np.ndarray]


@dataclass(frozen=True)
class SimulationResult:
    metrics: dict[str, float]
    orders: np.ndarray  # item-store × day, units ordered
    on_hand_end: np.ndarray  # item-store × day
    unmet_demand: np.ndarray  # item-store × day, demand not served on its day
    backlog_end: np.ndarray  # item-store × day, zero under lost sales

    def costs(self, system: InventorySystem, rows: np.ndarray | slice = slice(None)) -> dict[str, float]:
        """Holding, shortage and ordering cost of these item-stores (all by default), and their total."""
        holding = float((self.on_hand_end[rows] * system.holding_cost_per_day[rows, None]).sum())
        short = self.backlog_end if system.shortage_mode == "backorder" else self.unmet_demand
        shortage = float((short[rows] * system.shortage_cost[rows, None]).sum())
        orders = self.orders[rows]
        ordering = float(system.fixed_order_cost * (orders > 0).sum() + system.order_cost_per_unit * orders.sum())
        return {
            "total_cost": holding + shortage + ordering,
            "holding_cost": holding,
            "shortage_cost": shortage,
            "ordering_cost": ordering,
        }


def simulate(system: InventorySystem, demand: np.ndarray, policy: Policy) -> SimulationResult:
    n_item_stores, n_days = demand.shape
    lead = system.lead_time_days.astype(int)
    # Deliveries may land after the replay ends; they are then still in transit.
    scheduled = np.zeros((n_item_stores, n_days + int(lead.max(initial=0)) + 1))
    scheduled[:, :n_days] = system.open_arrivals
    on_hand = system.opening_on_hand.astype(float).copy()
    backlog = np.zeros(n_item_stores)
    orders = np.zeros((n_item_stores, n_days))
    on_hand_end = np.zeros((n_item_stores, n_days))
    unmet = np.zeros((n_item_stores, n_days))
    backlog_end = np.zeros((n_item_stores, n_days))
    after_arrivals = np.zeros((n_item_stores, n_days))
    rows = np.arange(n_item_stores)

    # A policy that re-plans with the LP at each review makes this loop slow: show how far it is.
    for day in tqdm(range(n_days), desc="simulation", unit="day", leave=False):
        due = system.order_days[:, day]
        if due.any():
            state = ReviewState(day, on_hand.copy(), backlog.copy(), scheduled[:, day:].copy(), demand[:, :day])
            ordered = np.where(due, np.maximum(np.asarray(policy(state), dtype=float), 0.0), 0.0)
            ordered[ordered < MIN_ORDER_QUANTITY] = 0.0
            orders[:, day] = ordered
            scheduled[rows, day + lead] += ordered
        available = on_hand + scheduled[:, day]
        after_arrivals[:, day] = available
        on_hand, backlog, unmet[:, day] = serve(available, backlog, demand[:, day], system.shortage_mode == "backorder")
        on_hand_end[:, day] = on_hand
        backlog_end[:, day] = backlog

    result = SimulationResult({}, orders, on_hand_end, unmet, backlog_end)
    metrics = {
        **result.costs(system),
        **_metrics(system, demand, orders, on_hand_end, unmet, scheduled[:, n_days:]),
        "capacity_breach_store_days": _capacity_breaches(system, after_arrivals),
    }
    return replace(result, metrics=metrics)


def serve(
    available: np.ndarray, backlog: np.ndarray, demand: np.ndarray, backorders: bool, kept: np.ndarray | float = 0.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One period's sales from the shelf after its deliveries: the backlog first, then the period's
    demand, except what `kept` holds back (a stock target a plan must keep, see
    optimization.repair).  Returns the stock left, the backlog (zero under lost sales) and the
    period's own demand left unmet."""
    if backorders:
        net = available - backlog - demand
        stock = np.maximum(net, np.minimum(kept, available))
        backlog = stock - net
        return stock, backlog, np.minimum(backlog, demand)
    served = np.minimum(demand, np.maximum(available - kept, 0.0))
    return available - served, np.zeros_like(available), demand - served


def _metrics(
    system: InventorySystem,
    demand: np.ndarray,
    orders: np.ndarray,
    on_hand_end: np.ndarray,
    unmet: np.ndarray,
    in_transit: np.ndarray,
) -> dict[str, float]:
    n_days = demand.shape[1]
    placed = orders > 0
    total_demand = float(demand.sum())
    sold_value = float(((demand - unmet) * system.unit_cost[:, None]).sum())
    average_stock_value = float((on_hand_end * system.unit_cost[:, None]).sum()) / n_days
    return {
        "purchase_cost": float((orders * system.unit_cost[:, None]).sum()),
        "fill_rate": 1.0 - float(unmet.sum()) / total_demand if total_demand > 0 else 1.0,
        "cycle_service_level": cycle_service_level(demand, unmet, system.order_days),
        "stockout_days": float((unmet > MIN_ORDER_QUANTITY).sum()),
        # Annualised cost of goods sold over the average stock at cost.
        "turns": sold_value / average_stock_value * DAYS_PER_YEAR / n_days if average_stock_value > 0 else 0.0,
        "average_on_hand": float(on_hand_end.sum(axis=0).mean()),
        "ending_on_hand": float(on_hand_end[:, -1].sum()),
        "ending_in_transit": float(in_transit.sum()),
        "orders_placed": float(placed.sum()),
        "case_pack_violations": float(refused_orders(orders, system.case_pack, system.moq).sum()),
    }


def cycle_service_level(demand: np.ndarray, unmet: np.ndarray, order_days: np.ndarray) -> float:
    """Share of order cycles with demand (per item-store) that had no shortage at all.

    A cycle runs from one of the item-store's order days to the day before its next one; the days
    before its first order day form a cycle of their own."""
    cycle = np.cumsum(order_days, axis=1)
    n_cycles = int(cycle.max()) + 1 if cycle.size else 0
    rows = np.broadcast_to(np.arange(demand.shape[0])[:, None], demand.shape)
    demand_per_cycle = np.zeros((demand.shape[0], n_cycles))
    unmet_per_cycle = np.zeros((demand.shape[0], n_cycles))
    np.add.at(demand_per_cycle, (rows, cycle), demand)
    np.add.at(unmet_per_cycle, (rows, cycle), unmet)
    with_demand = demand_per_cycle > 0
    if not with_demand.any():
        return 1.0
    return float((unmet_per_cycle[with_demand] <= MIN_ORDER_QUANTITY).mean())


def refused_orders(orders: np.ndarray, case_pack: np.ndarray | None, moq: np.ndarray | None) -> np.ndarray:
    """Item-store × day: an order a supplier would refuse, not whole case packs or below the MOQ."""
    placed = orders > MIN_ORDER_QUANTITY
    pack = np.ones(len(orders)) if case_pack is None else np.asarray(case_pack, dtype=float)
    minimum = np.zeros(len(orders)) if moq is None else np.asarray(moq, dtype=float)
    packs = orders / pack[:, None]
    not_whole = np.abs(packs - np.round(packs)) > 1e-6
    return placed & (not_whole | (orders < minimum[:, None] - 1e-6))


def _capacity_breaches(system: InventorySystem, after_arrivals: np.ndarray) -> float:
    if system.store_capacity is None or system.store_index is None or system.unit_volume is None:
        return 0.0
    volume = np.zeros((len(system.store_capacity), after_arrivals.shape[1]))
    np.add.at(volume, system.store_index, after_arrivals * system.unit_volume[:, None])
    slack = 1e-6 * np.maximum(np.abs(system.store_capacity), 1.0)
    return float((volume > (system.store_capacity + slack)[:, None]).sum())
