"""Table contracts between the data sources and the rest of the pipeline.

Loaders return `RawTables` (as read, untyped); validation checks them; `complete_tables`
turns them into `RetailData`, the only shape the forecasting and ordering steps consume.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from replenish.bounds import require_in_range
from replenish.frequency import DAILY, Frequency

SALES_COLUMNS = ["item_id", "store_id", "date", "units", "price", "promo", "event", "available"]

# The item master's numbers the data contract reads as numbers before it checks their ranges.
ITEM_NUMBER_COLUMNS = [
    "unit_cost",
    "holding_cost_rate",
    "lead_time_days",
    "case_pack",
    "moq",
    "unit_volume",
    "review_days",
    "order_weekday",
    "service_level",
]
ITEM_COLUMNS = ["item_id", "dept_id", "cat_id", *ITEM_NUMBER_COLUMNS, "sell_price", "supplier_id"]
INVENTORY_COLUMNS = ["item_id", "store_id", "on_hand"]
OPEN_ORDER_COLUMNS = ["item_id", "store_id", "quantity", "arrival_date"]
CAPACITY_COLUMNS = ["store_id", "capacity_volume"]

SERIES_KEY = ["item_id", "store_id"]
HIERARCHY_COLUMNS = ["dept_id", "cat_id"]
UNKNOWN_GROUP = "unknown"

# Value a source's missing optional sales column stands for.
OPTIONAL_FLAG_DEFAULTS = {"promo": 0, "event": 0, "available": 1}

RECENT_DEMAND_DAYS = 28

# What a date absent from inside a series stands for; the filled row is marked in the column of that name.
AbsentDates = Literal["closed", "missing"]


class DataFileError(ValueError):
    """A data file that cannot be read at all: missing, empty, undecodable or of unknown format."""

    def __init__(self, path: Path | str, message: str) -> None:
        self.path = Path(path)
        self.message = message
        super().__init__(f"{self.path}: {message}")

    def __reduce__(self) -> tuple[type[DataFileError], tuple[Path, str]]:
        # Default exception pickling replays only the formatted text, which this __init__ rejects;
        # workers that ship exceptions between processes need the two original arguments.
        return (DataFileError, (self.path, self.message))


@dataclass(frozen=True)
class RawTables:
    """Tables as read from their source, before validation: no type coercion of user files."""

    sales: pd.DataFrame  # long: item_id, store_id, date, units[, price, promo, event, available, dept_id, cat_id]
    items: pd.DataFrame | None = None  # item master, if the source has one
    inventory: pd.DataFrame | None = None  # item_id, store_id, on_hand
    open_orders: pd.DataFrame | None = None  # item_id, store_id, quantity, arrival_date
    capacity: pd.DataFrame | None = None  # store_id, capacity_volume
    sources: dict[str, str] = field(default_factory=dict)  # table name -> file path, or "synthetic(seed=..)"


@dataclass(frozen=True)
class MasterDefaults:
    """Documented fallbacks for sources that lack an item master, inventory or capacity."""

    unit_cost_share_of_price: float = 0.6  # unit cost = share × median price (or default_unit_cost when no price)
    default_unit_cost: float = 1.0
    holding_cost_rate: float = 0.25  # per year, share of unit cost
    lead_time_days: int = 7
    case_pack: int = 1
    moq: int = 0
    unit_volume: float = 1.0
    days_of_cover_on_hand: float = 14.0  # opening on hand = this × mean daily units over the last 28 days (rounded)
    capacity_headroom: float = 3.0  # store capacity = headroom × volume of the opening on hand (at least 1)
    supplier_id: str = "default"
    review_days: int = 7  # an order every week ...
    order_weekday: int = 0  # ... on Mondays (0 = Monday, 6 = Sunday)

    def __post_init__(self) -> None:
        # sell_price falls back to unit_cost / share, so a zero or negative share would poison prices.
        bounds = {
            "unit_cost_share_of_price": self.unit_cost_share_of_price > 0,
            "default_unit_cost": self.default_unit_cost >= 0,
            "holding_cost_rate": self.holding_cost_rate >= 0,
            "lead_time_days": self.lead_time_days >= 0,
            "case_pack": self.case_pack >= 1,
            "moq": self.moq >= 0,
            "unit_volume": self.unit_volume > 0,
            "days_of_cover_on_hand": self.days_of_cover_on_hand >= 0,
            "capacity_headroom": self.capacity_headroom > 0,
            "review_days": self.review_days >= 1,
            "order_weekday": 0 <= self.order_weekday <= 6,
        }
        require_in_range(
            self,
            bounds,
            "master defaults",
            "shares, costs and volumes above 0, case_pack at least 1, order_weekday 0-6",
        )


@dataclass(frozen=True)
class RetailData:
    """Typed, complete tables; the rest of the pipeline consumes only this."""

    # SALES_COLUMNS + dept_id, cat_id (+ any extra source columns, e.g. M5 snap), sorted by item_id, store_id, date;
    # ids str, date datetime64[ns] at midnight, units int64, price float64 (NaN allowed), promo/event/available int8 0/1
    sales: pd.DataFrame
    items: pd.DataFrame  # ITEM_COLUMNS
    inventory: pd.DataFrame  # item_id, store_id, on_hand (int)
    open_orders: pd.DataFrame  # item_id, store_id, quantity (int), arrival_date (datetime64)
    capacity: pd.DataFrame  # store_id, capacity_volume (float)
    snapshot_date: pd.Timestamp  # last sales date; inventory is as of the end of this period
    sources: dict[str, str]
    frequency: Frequency = DAILY  # the sales' periods; every date is one of its period dates


def complete_tables(
    raw: RawTables,
    defaults: MasterDefaults,
    absent_dates: AbsentDates = "closed",
    frequency: Frequency = DAILY,
) -> RetailData:
    """Cast the (already validated) raw tables to their types and fill whatever the source lacks from defaults.

    Fallbacks, in order of preference:
    * dept_id / cat_id: the sales column, then the item master, then the item_id prefix
      (M5-style "FOODS_1_033" -> dept "FOODS_1", cat "FOODS"; "unknown" when item_id has no "_").
    * optional sales columns: price NaN, promo 0, event 0, available 1.
    * periods absent between a series' first and last date (validation bounds the gaps): a row each,
      censored (available 0, units 0, price and extra columns empty, promo and event 0) and marked
      1 in the column `absent_dates` names: "closed" (the store was shut, as for a public holiday
      most daily exports omit) or "missing" (the period's sales were lost; the store may have traded).
      An absent week or month is always "missing": no store shuts for one unrecorded.
      Either way every series is on a regular grid of `frequency` and the period is never read as
      zero demand.
    * item master columns or cells: `defaults`; sell_price is the median observed price,
      else unit_cost / unit_cost_share_of_price; service_level stays empty (the item's ABC class
      target applies when it is planned).
    * inventory: without a table, `days_of_cover_on_hand` × mean units a day over the series' sales
      rows of the last four weeks (three months for monthly data); with a table, a series it does
      not list has nothing on hand (stock exports usually omit empty bins).
    * capacity: `capacity_headroom` × opening on-hand volume (at least 1) for every store without a value.
    Items, inventory and capacity cover exactly the items, series and stores that have sales.
    Columns beyond the documented ones are kept, after them, as read.
    """
    hierarchy = _item_hierarchy(raw.sales, raw.items)
    recorded_sales = _complete_sales(raw.sales, hierarchy)
    sales = _with_absent_dates(recorded_sales, absent_dates if frequency.kind == "D" else "missing", frequency)
    snapshot_date = pd.Timestamp(sales["date"].max())
    items = _complete_items(sales, hierarchy, raw.items, defaults)
    # Stock is estimated from the periods the source recorded: a filled-in one is no period of zero demand.
    inventory = _complete_inventory(recorded_sales, raw.inventory, snapshot_date, defaults, frequency)
    return RetailData(
        sales=sales,
        items=items,
        inventory=inventory,
        open_orders=_complete_open_orders(raw.open_orders),
        capacity=_complete_capacity(sales, inventory, items, raw.capacity, defaults),
        snapshot_date=snapshot_date,
        sources=dict(raw.sources),
        frequency=frequency,
    )


def derive_dept_id(item_ids: pd.Series) -> pd.Series:
    """M5-style department: item_id without its last "_" segment; "unknown" when there is none."""
    return _prefix_before_last_underscore(item_ids)


def derive_cat_id(dept_ids: pd.Series) -> pd.Series:
    """M5-style category: dept_id without its last "_" segment; the dept itself when there is none."""
    return _prefix_before_last_underscore(dept_ids).where(dept_ids.str.contains("_", regex=False), dept_ids)


def _prefix_before_last_underscore(ids: pd.Series) -> pd.Series:
    prefix = ids.str.rpartition("_")[0]
    return prefix.where(prefix != "", UNKNOWN_GROUP)


def _as_id(values: pd.Series) -> pd.Series:
    return values.astype(str)


def _as_number(values: pd.Series, dtype: str) -> pd.Series:
    # Validated text such as "3" or "3.0" from a CSV reads as a number first; astype alone rejects "3.0".
    return pd.to_numeric(values).astype(dtype)


def without_last_days(raw: RawTables, days: int) -> RawTables:
    """The tables as they stood `days` days before the last sale, for choosing settings on earlier
    windows than the ones a benchmark reports: later sales dropped, and the inventory and open orders
    (which describe the latest day) left to the master defaults' estimates."""
    if days <= 0:
        return raw
    sold = parse_days(raw.sales["date"])
    kept = raw.sales.loc[sold <= sold.max() - pd.Timedelta(days=days)]
    return RawTables(sales=kept, items=raw.items, capacity=raw.capacity, sources=raw.sources)


def parse_days(values: pd.Series) -> pd.Series:
    """Calendar days (midnight, no time zone) from datetimes or date text; NaT where a value reads as no date.

    The one reading of a date column: validation checks the days it gives and completion keeps them.
    Text must keep one format throughout (pandas infers it from the first date), so "03/04/2024"
    cannot mean March in one row and April in the next. A time of day is dropped, and so is a UTC
    offset: the day is the local one the source recorded. Mixed UTC offsets have no single reading.
    """
    if not pd.api.types.is_datetime64_any_dtype(values):
        try:
            values = pd.to_datetime(values, errors="coerce")
        except ValueError:  # mixed UTC offsets, which errors="coerce" does not cover
            return pd.Series(pd.NaT, index=values.index, dtype="datetime64[ns]")
    if values.dt.tz is not None:
        values = values.dt.tz_localize(None)
    return values.dt.normalize()


def _as_day(values: pd.Series) -> pd.Series:
    return parse_days(values).astype("datetime64[ns]")


def _with_extra_columns_last(frame: pd.DataFrame, documented: list[str]) -> pd.DataFrame:
    extras = [column for column in frame.columns if column not in documented]
    return frame[documented + extras]


def _item_hierarchy(sales: pd.DataFrame, items: pd.DataFrame | None) -> pd.DataFrame:
    """One dept_id and cat_id per item, so sales and the item master can never disagree."""
    hierarchy = pd.DataFrame({"item_id": pd.unique(_as_id(sales["item_id"]))})
    hierarchy["dept_id"] = pd.Series(np.nan, index=hierarchy.index, dtype="str")
    hierarchy["cat_id"] = pd.Series(np.nan, index=hierarchy.index, dtype="str")
    for source in (sales, items):
        if source is None:
            continue
        present = [column for column in HIERARCHY_COLUMNS if column in source.columns]
        if not present:
            continue
        # astype(str) keeps missing cells missing, so groupby.first picks the first real label.
        first_per_item = source[["item_id", *present]].astype(str).groupby("item_id", sort=False).first()
        for column in present:
            hierarchy[column] = hierarchy[column].fillna(hierarchy["item_id"].map(first_per_item[column]))
    hierarchy["dept_id"] = hierarchy["dept_id"].fillna(derive_dept_id(hierarchy["item_id"]))
    hierarchy["cat_id"] = hierarchy["cat_id"].fillna(derive_cat_id(hierarchy["dept_id"]))
    return hierarchy


def _complete_sales(raw_sales: pd.DataFrame, hierarchy: pd.DataFrame) -> pd.DataFrame:
    sales = raw_sales.drop(columns=HIERARCHY_COLUMNS, errors="ignore")
    sales["item_id"] = _as_id(sales["item_id"])
    sales["store_id"] = _as_id(sales["store_id"])
    sales["date"] = _as_day(sales["date"])
    sales["units"] = _as_number(sales["units"], "int64")
    sales["price"] = _as_number(sales["price"], "float64") if "price" in sales.columns else np.nan
    for column, default in OPTIONAL_FLAG_DEFAULTS.items():
        sales[column] = _filled(sales, column, default).astype("int8")
    if "closed" in sales.columns:
        # A day the store was shut says nothing about demand: like a stockout, it is censored, not zero.
        sales["closed"] = _filled(sales, "closed", 0).astype("int8")
        sales.loc[sales["closed"] == 1, "available"] = 0
    sales = sales.merge(hierarchy, on="item_id", how="left", validate="many_to_one")
    sales = _with_extra_columns_last(sales, SALES_COLUMNS + HIERARCHY_COLUMNS)
    return sales.sort_values(["item_id", "store_id", "date"], kind="stable").reset_index(drop=True)


def _with_absent_dates(sales: pd.DataFrame, absent_dates: AbsentDates, frequency: Frequency) -> pd.DataFrame:
    """``sales`` (sorted by series and date) with a censored row for every period absent inside a series.

    Vectorised for tens of thousands of series: each recorded row knows how many periods precede it
    unrecorded, and the filled rows are generated and slotted into place with array arithmetic."""
    series_code = sales.groupby(SERIES_KEY, sort=False).ngroup().to_numpy()
    day_number = frequency.ordinals(sales["date"])
    absent_before = np.zeros(len(sales), dtype=np.int64)
    same_series = series_code[1:] == series_code[:-1]
    absent_before[1:] = np.where(same_series, np.maximum(np.diff(day_number) - 1, 0), 0)
    n_absent = int(absent_before.sum())
    if n_absent == 0:
        return sales

    after_gap = np.repeat(np.arange(len(sales)), absent_before)  # the recorded row each filled row precedes
    first_of_gap = np.repeat(np.cumsum(absent_before) - absent_before, absent_before)
    days_before = absent_before[after_gap] - (np.arange(n_absent) - first_of_gap)  # gap length .. 1
    filled = (
        sales[[*SERIES_KEY, *HIERARCHY_COLUMNS]]
        .iloc[after_gap]
        .reset_index(drop=True)
        .assign(
            date=frequency.dates(day_number[after_gap] - days_before),
            units=np.zeros(n_absent, dtype=np.int64),
            promo=np.zeros(n_absent, dtype=np.int8),
            event=np.zeros(n_absent, dtype=np.int8),
            available=np.zeros(n_absent, dtype=np.int8),
            **{absent_dates: np.ones(n_absent, dtype=np.int8)},
        )
    )
    combined = pd.concat([sales, filled], ignore_index=True)
    for flag in {"closed", absent_dates} & set(combined.columns):
        combined[flag] = combined[flag].fillna(0).astype("int8")
    # Recorded row r moves down by the absent days up to it; its gap's rows sit just above it.
    recorded_position = np.arange(len(sales)) + np.cumsum(absent_before)
    order = np.empty(len(combined), dtype=np.int64)
    order[recorded_position] = np.arange(len(sales))
    order[recorded_position[after_gap] - days_before] = len(sales) + np.arange(n_absent)
    return combined.take(order).reset_index(drop=True)


def _complete_items(
    sales: pd.DataFrame,
    hierarchy: pd.DataFrame,
    raw_items: pd.DataFrame | None,
    defaults: MasterDefaults,
) -> pd.DataFrame:
    items = hierarchy.copy()
    if raw_items is not None:
        master = raw_items.drop(columns=HIERARCHY_COLUMNS, errors="ignore")
        master["item_id"] = _as_id(master["item_id"])
        items = items.merge(master, on="item_id", how="left", validate="one_to_one")

    median_price = items["item_id"].map(sales.groupby("item_id")["price"].median()).astype("float64")
    cost_from_price = (defaults.unit_cost_share_of_price * median_price).fillna(defaults.default_unit_cost)
    items["unit_cost"] = _as_number(_filled(items, "unit_cost", cost_from_price), "float64")
    items["holding_cost_rate"] = _as_number(_filled(items, "holding_cost_rate", defaults.holding_cost_rate), "float64")
    items["lead_time_days"] = _as_number(_filled(items, "lead_time_days", defaults.lead_time_days), "int64")
    items["case_pack"] = _as_number(_filled(items, "case_pack", defaults.case_pack), "int64")
    items["moq"] = _as_number(_filled(items, "moq", defaults.moq), "int64")
    items["unit_volume"] = _as_number(_filled(items, "unit_volume", defaults.unit_volume), "float64")
    items["supplier_id"] = _as_id(_filled(items, "supplier_id", defaults.supplier_id))
    items["review_days"] = _as_number(_filled(items, "review_days", defaults.review_days), "int64")
    items["order_weekday"] = _as_number(_filled(items, "order_weekday", defaults.order_weekday), "int64")
    # An item without one gets its ABC class's target when it is planned (see optimization.planning).
    items["service_level"] = _as_number(_filled(items, "service_level", np.nan), "float64")
    price_from_cost = median_price.fillna(items["unit_cost"] / defaults.unit_cost_share_of_price)
    items["sell_price"] = _as_number(_filled(items, "sell_price", price_from_cost), "float64")
    items = _with_extra_columns_last(items, ITEM_COLUMNS)
    return items.sort_values("item_id", kind="stable").reset_index(drop=True)


def _filled(frame: pd.DataFrame, column: str, fallback: pd.Series | float) -> pd.Series:
    """The column where the source has a value, else the fallback (which may vary per row)."""
    fallback_series = pd.Series(fallback, index=frame.index)
    return frame[column].fillna(fallback_series) if column in frame.columns else fallback_series


def _series(sales: pd.DataFrame) -> pd.DataFrame:
    return sales[SERIES_KEY].drop_duplicates().reset_index(drop=True)


def _complete_inventory(
    sales: pd.DataFrame,
    raw_inventory: pd.DataFrame | None,
    snapshot_date: pd.Timestamp,
    defaults: MasterDefaults,
    frequency: Frequency,
) -> pd.DataFrame:
    series = _series(sales)
    if raw_inventory is None:
        recent = sales[sales["date"] > frequency.shift(snapshot_date, -frequency.recent_periods)]
        recent_mean = recent.groupby(SERIES_KEY)["units"].mean().rename("recent_mean").reset_index()
        mean_period_units = series.merge(recent_mean, on=SERIES_KEY, how="left")["recent_mean"].fillna(0.0)
        mean_daily_units = mean_period_units / frequency.days_per_period
        series["on_hand"] = np.rint(defaults.days_of_cover_on_hand * mean_daily_units).astype("int64")
        return series
    inventory = raw_inventory.copy()
    inventory["item_id"] = _as_id(inventory["item_id"])
    inventory["store_id"] = _as_id(inventory["store_id"])
    inventory = series.merge(inventory, on=SERIES_KEY, how="left", validate="one_to_one")
    inventory["on_hand"] = _as_number(inventory["on_hand"].fillna(0), "int64")
    return _with_extra_columns_last(inventory, INVENTORY_COLUMNS)


def _complete_open_orders(raw_open_orders: pd.DataFrame | None) -> pd.DataFrame:
    if raw_open_orders is None:
        return pd.DataFrame(
            {
                "item_id": pd.Series(dtype="str"),
                "store_id": pd.Series(dtype="str"),
                "quantity": pd.Series(dtype="int64"),
                "arrival_date": pd.Series(dtype="datetime64[ns]"),
            }
        )
    orders = raw_open_orders.copy()
    orders["item_id"] = _as_id(orders["item_id"])
    orders["store_id"] = _as_id(orders["store_id"])
    orders["quantity"] = _as_number(orders["quantity"], "int64")
    orders["arrival_date"] = _as_day(orders["arrival_date"])
    orders = _with_extra_columns_last(orders, OPEN_ORDER_COLUMNS)
    return orders.sort_values(["item_id", "store_id", "arrival_date"], kind="stable").reset_index(drop=True)


def _complete_capacity(
    sales: pd.DataFrame,
    inventory: pd.DataFrame,
    items: pd.DataFrame,
    raw_capacity: pd.DataFrame | None,
    defaults: MasterDefaults,
) -> pd.DataFrame:
    stores = pd.DataFrame({"store_id": pd.unique(sales["store_id"])})
    on_hand_volume = (
        inventory[["item_id", "store_id", "on_hand"]]
        .merge(items[["item_id", "unit_volume"]], on="item_id", how="left")
        .assign(volume=lambda frame: frame["on_hand"] * frame["unit_volume"])
        .groupby("store_id")["volume"]
        .sum()
    )
    default_capacity = np.maximum(defaults.capacity_headroom * stores["store_id"].map(on_hand_volume).fillna(0.0), 1.0)
    if raw_capacity is not None:
        capacity = raw_capacity.copy()
        capacity["store_id"] = _as_id(capacity["store_id"])
        stores = stores.merge(capacity, on="store_id", how="left", validate="one_to_one")
    stores["capacity_volume"] = _as_number(_filled(stores, "capacity_volume", default_capacity), "float64")
    stores = _with_extra_columns_last(stores, CAPACITY_COLUMNS)
    return stores.sort_values("store_id", kind="stable").reset_index(drop=True)
