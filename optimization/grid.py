"""Planning inputs checked and laid out as item-store × scenario × period arrays."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from models.forecast_frame import SERIES_KEY
from optimization.problem import PlanningProblem
from replenish.frequency import Frequency

DAYS_PER_YEAR = 365
# Enough violations to locate the problem without flooding the message.
MAX_REPORTED_VIOLATIONS = 5

ITEM_ATTRIBUTES = ["unit_cost", "holding_cost_rate", "lead_time_days", "unit_volume"]
# Optional item columns and the value a missing one stands for: no pack, no MOQ, no limit, the
# multiplier's penalty, and an order calendar that allows an order every day.
OPTIONAL_ITEM_ATTRIBUTES = {
    "case_pack": 1,
    "moq": 0,
    "max_order": np.inf,
    "shortage_cost": np.nan,
    "review_days": 1,
    "order_weekday": 0,
}
# Order calendars count days from this Monday: weekday 0 is Monday, and an item's order days stay
# the same from one plan to the next.
CALENDAR_EPOCH = pd.Timestamp("2000-01-03")


@dataclass(frozen=True)
class ItemStoreGrid:
    """Row k of `item_stores` owns row k of every array."""

    start_date: pd.Timestamp
    frequency: Frequency
    # SERIES_KEY + ITEM_ATTRIBUTES + OPTIONAL_ITEM_ATTRIBUTES + opening_on_hand, lead_time_periods
    item_stores: pd.DataFrame
    demand: np.ndarray  # item-store × scenario × period
    open_arrivals: np.ndarray  # item-store × period
    safety_stock: np.ndarray | None  # item-store × period, quantile mode only
    order_days: np.ndarray  # item-store × period: the period holds one of the item's order days

    @property
    def n_scenarios(self) -> int:
        return self.demand.shape[1]

    @property
    def n_periods(self) -> int:
        return self.demand.shape[2]

    @property
    def lead_periods(self) -> np.ndarray:
        return self.item_stores["lead_time_periods"].to_numpy(dtype=int)

    @property
    def period_days(self) -> float:
        return self.frequency.days_per_period

    @property
    def review_periods(self) -> np.ndarray:
        """Periods from one of the item's order days to the next, at least one."""
        return np.maximum(self.frequency.periods_in_days_array(self.item_stores["review_days"]), 1)

    def period_dates(self, periods: np.ndarray | int) -> pd.DatetimeIndex | pd.Timestamp:
        if np.ndim(periods) == 0:
            return self.frequency.dates_from(self.start_date, np.array([periods]))[0]
        return self.frequency.dates_from(self.start_date, np.asarray(periods))

    def column(self, name: str) -> np.ndarray:
        return self.item_stores[name].to_numpy(dtype=float)


def prepare_grid(problem: PlanningProblem) -> ItemStoreGrid:
    _require_columns(problem.demand, "demand", [*SERIES_KEY, "period", "demand"])
    _require_columns(problem.items, "items", ["item_id", *ITEM_ATTRIBUTES])
    _require_columns(problem.on_hand, "on_hand", [*SERIES_KEY, "on_hand"])
    _require_columns(problem.open_orders, "open_orders", [*SERIES_KEY, "quantity", "arrival_date"])
    _require_columns(problem.capacity, "capacity", ["store_id", "capacity_volume"])
    demand = _with_scenarios(problem.demand)
    _validate_demand(demand, problem.n_periods)
    _require_unique(problem.items, "items", ["item_id"])
    _require_unique(problem.on_hand, "on_hand", SERIES_KEY)
    _require_unique(problem.capacity, "capacity", ["store_id"])

    start_date = pd.Timestamp(problem.start_date).normalize()
    arrivals = _open_order_arrivals(problem.open_orders, start_date, problem.n_periods, problem.frequency)
    item_stores = _item_stores(demand, problem.on_hand, arrivals, problem.items)
    # An order that takes 8 days is not there within a week: lead times round up to whole periods.
    item_stores["lead_time_periods"] = problem.frequency.periods_in_days_array(item_stores["lead_time_days"])
    n_scenarios = int(demand["scenario"].max()) + 1 if len(demand) else 1
    return ItemStoreGrid(
        start_date=start_date,
        frequency=problem.frequency,
        item_stores=item_stores,
        demand=_scenario_matrix(demand, item_stores, n_scenarios, problem.n_periods),
        open_arrivals=_period_matrix(arrivals, "quantity", item_stores, problem.n_periods),
        safety_stock=_safety_stock_matrix(problem, item_stores),
        order_days=order_calendar(
            start_date,
            problem.n_periods,
            problem.frequency,
            item_stores["review_days"].to_numpy(dtype=int),
            item_stores["order_weekday"].to_numpy(dtype=int),
        ),
    )


def planned_arrivals(orders: np.ndarray, lead_periods: np.ndarray) -> np.ndarray:
    """Item-store × period: what the orders (placed per period) deliver, each after its lead time."""
    n_periods = orders.shape[1]
    arrivals = np.zeros_like(orders)
    for k, lead in enumerate(lead_periods.tolist()):
        if lead < n_periods:
            arrivals[k, lead:] = orders[k, : n_periods - lead]
    return arrivals


def order_calendar(
    start_date: pd.Timestamp,
    n_periods: int,
    frequency: Frequency,
    review_days: np.ndarray,
    order_weekday: np.ndarray,
) -> np.ndarray:
    """Item × period: whether the period holds one of the item's order days.

    Daily: an item is ordered every `review_days` days, counted from its `order_weekday` (0 = Monday)
    in the week of CALENDAR_EPOCH: weekly review on weekday 2 orders every Wednesday, review every 14
    days orders every other Wednesday, and review every day orders daily. Weeks and months hold an
    order every `review_days` rounded up to periods, from the first planned period: the weekday
    falls inside the period.
    """
    if frequency.kind != "D":
        review_periods = np.maximum(frequency.periods_in_days_array(review_days), 1)
        return (np.arange(n_periods)[None, :] % review_periods[:, None]) == 0
    days = (pd.Timestamp(start_date).normalize() - CALENDAR_EPOCH).days + np.arange(n_periods)
    return (days[None, :] - np.asarray(order_weekday)[:, None]) % np.asarray(review_days)[:, None] == 0


def _require_columns(frame: pd.DataFrame, name: str, columns: list[str]) -> None:
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise ValueError(f"{name} lacks columns {missing}")


def _require_unique(frame: pd.DataFrame, name: str, keys: list[str]) -> None:
    duplicated = frame.loc[frame.duplicated(keys), keys]
    if not duplicated.empty:
        raise ValueError(f"{name} has duplicate rows for {duplicated.head().to_dict('records')}")


def _with_scenarios(demand: pd.DataFrame) -> pd.DataFrame:
    return demand if "scenario" in demand.columns else demand.assign(scenario=0)


def _validate_demand(demand: pd.DataFrame, n_periods: int) -> None:
    _require_unique(demand, "demand", [*SERIES_KEY, "scenario", "period"])
    outside = ~demand["period"].between(0, n_periods - 1)
    if outside.any():
        bad_periods = sorted(demand.loc[outside, "period"].unique())[:MAX_REPORTED_VIOLATIONS]
        raise ValueError(f"demand periods must lie in 0..{n_periods - 1}; got {bad_periods}")
    if (demand["demand"] < 0).any():
        raise ValueError("demand must be non-negative")
    scenarios = np.sort(demand["scenario"].unique())
    if len(scenarios) and not np.array_equal(scenarios, np.arange(len(scenarios))):
        raise ValueError(f"demand scenarios must be numbered 0..S-1; got {scenarios[:10].tolist()}")


def _open_order_arrivals(
    open_orders: pd.DataFrame, start_date: pd.Timestamp, n_periods: int, frequency: Frequency
) -> pd.DataFrame:
    """Open orders by arrival period: overdue ones land in period 0, ones past the horizon drop."""
    arrival_dates = pd.to_datetime(open_orders["arrival_date"]).dt.normalize()
    periods = pd.Series(frequency.periods_since(start_date, arrival_dates), index=open_orders.index).clip(lower=0)
    arrivals = open_orders[SERIES_KEY].assign(
        period=periods.to_numpy(), quantity=open_orders["quantity"].astype(float).to_numpy()
    )
    return arrivals.loc[arrivals["period"] < n_periods]


def _item_stores(
    demand: pd.DataFrame, on_hand: pd.DataFrame, arrivals: pd.DataFrame, items: pd.DataFrame
) -> pd.DataFrame:
    """Every item-store with demand, stock or an arrival: stock takes store volume even unsold."""
    keys = (
        pd.concat([demand[SERIES_KEY], on_hand[SERIES_KEY], arrivals[SERIES_KEY]])
        .drop_duplicates()
        .sort_values(SERIES_KEY)
    )
    unknown_items = sorted(set(keys["item_id"]) - set(items["item_id"]))
    if unknown_items:
        raise ValueError(f"items has no rows for item_id {unknown_items}")
    attributes = items.assign(
        **{
            name: items[name].fillna(default) if name in items.columns else default
            for name, default in OPTIONAL_ITEM_ATTRIBUTES.items()
        }
    )[["item_id", *ITEM_ATTRIBUTES, *OPTIONAL_ITEM_ATTRIBUTES]]
    _validate_item_attributes(attributes)
    with_attributes = keys.merge(attributes, on="item_id", how="left")
    with_stock = with_attributes.merge(on_hand[[*SERIES_KEY, "on_hand"]], on=SERIES_KEY, how="left")
    return (
        with_stock.rename(columns={"on_hand": "opening_on_hand"})
        .fillna({"opening_on_hand": 0.0})
        .astype(
            {
                "lead_time_days": int,
                "case_pack": int,
                "review_days": int,
                "order_weekday": int,
                "opening_on_hand": float,
            }
        )
        .reset_index(drop=True)
    )


def _validate_item_attributes(items: pd.DataFrame) -> None:
    """Negative costs would make the model unbounded; say so before the solver does."""
    if (items["lead_time_days"] < 0).any():
        raise ValueError("lead_time_days must be non-negative")
    for name in ["unit_cost", "holding_cost_rate", "unit_volume", "moq", "max_order"]:
        negative = items.loc[items[name] < 0, "item_id"].tolist()
        if negative:
            raise ValueError(f"{name} must be non-negative; item_id {negative[:5]}")
    if (items["shortage_cost"] < 0).any():
        raise ValueError("shortage_cost must be non-negative")
    if (items["case_pack"] < 1).any():
        raise ValueError("case_pack must be at least 1")
    if (items["review_days"] < 1).any():
        raise ValueError("review_days must be at least 1")
    if (~items["order_weekday"].isin(range(7))).any():
        raise ValueError("order_weekday must be 0 (Monday) to 6 (Sunday)")


def _period_matrix(frame: pd.DataFrame, value_column: str, item_stores: pd.DataFrame, n_periods: int) -> np.ndarray:
    """Long (item, store, period, value) rows summed into an item-store × period array."""
    positions = item_stores[SERIES_KEY].reset_index(names="position")
    located = frame.merge(positions, on=SERIES_KEY, how="inner")
    matrix = np.zeros((len(item_stores), n_periods))
    np.add.at(
        matrix,
        (located["position"].to_numpy(), located["period"].to_numpy(dtype=int)),
        located[value_column].to_numpy(dtype=float),
    )
    return matrix


def _scenario_matrix(demand: pd.DataFrame, item_stores: pd.DataFrame, n_scenarios: int, n_periods: int) -> np.ndarray:
    positions = item_stores[SERIES_KEY].reset_index(names="position")
    located = demand.merge(positions, on=SERIES_KEY, how="inner")
    matrix = np.zeros((len(item_stores), n_scenarios, n_periods))
    matrix[
        located["position"].to_numpy(),
        located["scenario"].to_numpy(dtype=int),
        located["period"].to_numpy(dtype=int),
    ] = located["demand"].to_numpy(dtype=float)
    return matrix


def _safety_stock_matrix(problem: PlanningProblem, item_stores: pd.DataFrame) -> np.ndarray | None:
    if problem.safety_stock is None:
        return None
    targets = problem.safety_stock
    _require_columns(targets, "safety_stock", [*SERIES_KEY, "period", "safety_stock"])
    _require_unique(targets, "safety_stock", [*SERIES_KEY, "period"])
    if (targets["safety_stock"] < 0).any():
        raise ValueError("safety_stock must be non-negative")
    inside = targets.loc[targets["period"].between(0, problem.n_periods - 1)]
    return _period_matrix(inside, "safety_stock", item_stores, problem.n_periods)
