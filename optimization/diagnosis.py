"""Why no plan exists: checks before solving, and a least-violation re-solve after HiGHS says so."""

from __future__ import annotations

import numpy as np
import pandas as pd

from optimization.formulation import Formulation, capacity_by_store
from optimization.grid import MAX_REPORTED_VIOLATIONS, ItemStoreGrid
from optimization.problem import VIOLATION_COLUMNS, ModelOptions, PlanInfeasibleError, ShortageMode, rounded

# Slack for float sums in the capacity checks, well above HiGHS's feasibility tolerance.
CAPACITY_TOLERANCE = 1e-6
# Elastic values below this are solver noise, not a broken constraint.
VIOLATION_TOLERANCE = 1e-6


def capacity_slack(capacity_volume: pd.Series | np.ndarray) -> pd.Series | np.ndarray:
    """Relative tolerance on capacity, floored at an absolute one for near-zero capacities."""
    return CAPACITY_TOLERANCE * np.maximum(np.abs(capacity_volume), 1.0)


def raise_if_capacity_cannot_hold(grid: ItemStoreGrid, capacity: pd.DataFrame, shortage_mode: ShortageMode) -> None:
    """Infeasible whatever the orders: the least post-delivery stock possible breaks capacity."""
    volumes = _minimal_volumes_after_arrivals(grid, shortage_mode).merge(capacity, on="store_id", how="inner")
    over = volumes.loc[
        volumes["minimal_volume"] > volumes["capacity_volume"] + capacity_slack(volumes["capacity_volume"])
    ]
    if over.empty:
        return
    reasons = []
    for store, days in over.sort_values("period").groupby("store_id", sort=True):
        first = days.iloc[0]
        later = f" (and on {len(days) - 1} later day(s))" if len(days) > 1 else ""
        reasons.append(
            f"capacity at store {store} on {_date(grid, first.period)} (period {first.period}) is "
            f"{rounded(first.capacity_volume)} but opening stock and open orders already need at least "
            f"{rounded(first.minimal_volume)} there{later}"
        )
    raise PlanInfeasibleError(reasons)


def _date(grid: ItemStoreGrid, period: int) -> str:
    return str(grid.period_dates(int(period)).date())


def _minimal_volumes_after_arrivals(grid: ItemStoreGrid, shortage_mode: ShortageMode) -> pd.DataFrame:
    """Least store volume right after each period's deliveries that any plan can reach.

    That is no new orders and all demand served from stock.  With S the running total of
    opening stock plus open arrivals less demand, the least end stock is S[t] - min(0, min_{k<=t}
    S[k]) under lost sales (a stock-out resets stock to zero) and max(0, S[t]) under backorders
    (later arrivals first refill the backlog).  Any plan's stock is at least that, and the shelf
    after period t's deliveries holds the previous end stock plus that period's fixed arrivals.
    With scenarios, the fullest scenario decides.
    """
    net_inflow = grid.open_arrivals[:, None, :] - grid.demand
    opening = grid.column("opening_on_hand")[:, None, None]
    running = opening + np.cumsum(net_inflow, axis=2)
    if shortage_mode == "backorder":
        minimal_end_stock = np.maximum(running, 0.0)
    else:
        minimal_end_stock = running - np.minimum(np.minimum.accumulate(running, axis=2), 0.0)
    opening_per_scenario = np.broadcast_to(opening, (*running.shape[:2], 1))
    stock_before = np.concatenate([opening_per_scenario, minimal_end_stock], axis=2)[:, :, :-1]
    minimal_stock = (stock_before + grid.open_arrivals[:, None, :]).max(axis=1)
    volume = minimal_stock * grid.column("unit_volume")[:, None]
    per_item_store = pd.DataFrame(volume).assign(store_id=grid.item_stores["store_id"].to_numpy())
    return (
        per_item_store.groupby("store_id")
        .sum()
        .rename_axis(columns="period")
        .stack()
        .rename("minimal_volume")
        .reset_index()
    )


def violations_frame(grid: ItemStoreGrid, formulation: Formulation, values: np.ndarray) -> pd.DataFrame:
    """Every elastic column in use: which constraint, where, and by how much (worst scenario)."""
    layout = formulation.layout
    item_stores = grid.item_stores
    parts = []
    capacity = layout.capacity_rows.assign(amount=_elastic_values(layout.capacity_rows, values))
    parts.append(
        capacity.groupby(["store_id", "period"], as_index=False)["amount"]
        .max()
        .assign(constraint="store_capacity", item_id=None)
    )
    budget = layout.budget_rows.assign(amount=_elastic_values(layout.budget_rows, values))
    parts.append(budget[["period", "amount"]].assign(constraint="budget", store_id=None, item_id=None))
    targets = layout.target_rows.assign(amount=_elastic_values(layout.target_rows, values))
    targets = targets.groupby(["position", "period"], as_index=False)["amount"].max()
    parts.append(
        targets.assign(
            constraint="stock_target",
            item_id=item_stores["item_id"].to_numpy()[targets["position"].to_numpy()],
            store_id=item_stores["store_id"].to_numpy()[targets["position"].to_numpy()],
        )
    )
    frame = pd.concat([part for part in parts if not part.empty] or [pd.DataFrame()], ignore_index=True)
    if frame.empty:
        return pd.DataFrame(columns=VIOLATION_COLUMNS)
    frame = frame.loc[frame["amount"] > VIOLATION_TOLERANCE].copy()
    frame["period"] = frame["period"].astype(int)
    frame["date"] = grid.period_dates(frame["period"].to_numpy())
    return frame[VIOLATION_COLUMNS].sort_values(["constraint", "period"], ignore_index=True)


def _elastic_values(rows: pd.DataFrame, values: np.ndarray) -> np.ndarray:
    columns = rows["elastic"].to_numpy(dtype=int)
    return np.where(columns >= 0, values[np.clip(columns, 0, None)], 0.0) if len(columns) else np.zeros(0)


def infeasibility_reasons(
    grid: ItemStoreGrid,
    capacity: pd.DataFrame,
    options: ModelOptions,
    violations: pd.DataFrame,
) -> list[str]:
    """The constraints the least-violation plan still has to break (every store's capacity, each
    budget period, the first item-stores short of a target), and item limits (MOQ, maximum order)
    that can never fit."""
    reasons = []
    for constraint, rows in violations.groupby("constraint", sort=False):
        if constraint == "store_capacity":
            reasons += [_capacity_reason(capacity, days) for _, days in rows.groupby("store_id", sort=True)]
        elif constraint == "budget" and options.budget_per_period is not None:
            reasons += [_budget_reason(options.budget_per_period, rows)]
        else:
            by_item_store = list(rows.groupby(["item_id", "store_id"], sort=True))
            reasons += [_target_reason(days) for _, days in by_item_store[:MAX_REPORTED_VIOLATIONS]]
            if len(by_item_store) > MAX_REPORTED_VIOLATIONS:
                reasons.append(f"and {len(by_item_store) - MAX_REPORTED_VIOLATIONS} more item-stores short of a target")
    reasons += item_limit_conflicts(grid, capacity, options)[:MAX_REPORTED_VIOLATIONS]
    return reasons or ["HiGHS found no feasible plan, yet every constraint can be met when relaxed"]


def _later(days: pd.DataFrame) -> str:
    return f" (and in {len(days) - 1} later period(s))" if len(days) > 1 else ""


def _when(row: pd.Series) -> str:
    return f"period {row.period} ({row.date.date()})"


def _capacity_reason(capacity: pd.DataFrame, days: pd.DataFrame) -> str:
    first = days.sort_values("period").iloc[0]
    limit = float(capacity.set_index("store_id").loc[first.store_id, "capacity_volume"])
    return (
        f"capacity at store {first.store_id} in {_when(first)} is below the minimum stock the targets "
        f"require: {rounded(limit)} available, {rounded(limit + first.amount)} needed{_later(days)}"
    )


def _budget_reason(budget: float, days: pd.DataFrame) -> str:
    first = days.sort_values("period").iloc[0]
    return (
        f"budget in {_when(first)} is below what the targets require: {rounded(budget)} "
        f"available, {rounded(budget + first.amount)} needed{_later(days)}"
    )


def _target_reason(days: pd.DataFrame) -> str:
    first = days.sort_values("period").iloc[0]
    return (
        f"stock target of item {first.item_id} at store {first.store_id} in {_when(first)} cannot be met "
        f"by the allowed orders: short by {rounded(first.amount)} units{_later(days)}"
    )


def item_limit_conflicts(grid: ItemStoreGrid, capacity: pd.DataFrame, options: ModelOptions) -> list[str]:
    """Items with a stock target that can never be ordered: their MOQ exceeds capacity, the
    maximum order or the budget."""
    if options.whole_orders == "none" or grid.safety_stock is None:
        return []
    items = grid.item_stores.assign(
        needs_stock=(grid.safety_stock > 0).any(axis=1),
        capacity_volume=grid.item_stores["store_id"].map(capacity_by_store(grid.item_stores, capacity)),
    )
    items = items.loc[items["needs_stock"] & (items["moq"] > 0)]
    messages = []
    for item in items.itertuples():
        where = f"item {item.item_id} at store {item.store_id}"
        moq_volume = item.moq * item.unit_volume
        if pd.notna(item.capacity_volume) and moq_volume > item.capacity_volume:
            messages.append(
                f"MOQ exceeds capacity: {where} needs {rounded(moq_volume)} volume for its MOQ of "
                f"{rounded(item.moq)}, store capacity is {rounded(item.capacity_volume)}"
            )
        max_order = min(item.max_order, options.max_order_quantity or np.inf)
        if item.moq > max_order:
            messages.append(
                f"MOQ exceeds the maximum order: {where} has MOQ {rounded(item.moq)} > {rounded(max_order)}"
            )
        if options.budget_per_period is not None and item.moq * item.unit_cost > options.budget_per_period:
            messages.append(
                f"MOQ exceeds the budget: {where} costs {rounded(item.moq * item.unit_cost)} at its MOQ, "
                f"budget per period is {rounded(options.budget_per_period)}"
            )
    return messages
