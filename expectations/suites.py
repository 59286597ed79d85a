"""Great Expectations suites for the input tables.

Each suite is built for the columns a table actually has, so a missing column is reported once by
its existence rule instead of crashing every expectation that names it. Every expectation carries
its rule in plain words as its ``description``, which is what users see in errors and Data Docs.
"""

from __future__ import annotations

import great_expectations.expectations as gxe
import pandas as pd
from great_expectations.expectations.expectation import Expectation
from great_expectations.expectations.metadata_types import FailureSeverity

from replenish.frequency import IRREGULAR, UNKNOWN, Frequency

SALES_KEY = ["item_id", "store_id", "date"]
# Derived by the validator, each failure reported on "date": the periods since the same series'
# previous row, whether the date labels a period of the frequency, and the series' own frequency.
GAP_COLUMN = "periods_since_previous_date"
ON_CALENDAR_COLUMN = "date_on_calendar"
SERIES_FREQUENCY_COLUMN = "series_frequency"
SALES_REQUIRED = [*SALES_KEY, "units"]
ITEM_MASTER_REQUIRED = ["item_id"]
INVENTORY_REQUIRED = ["item_id", "store_id", "on_hand"]
OPEN_ORDERS_REQUIRED = ["item_id", "store_id", "quantity", "arrival_date"]
CAPACITY_REQUIRED = ["store_id", "capacity_volume"]
# Text that reads as a non-negative whole number; every caller bounds below at 0 or more. ASCII digits and
# blanks only: \d and \s also match "٣" and a no-break space, which completion's pd.to_numeric cannot read.
WHOLE_NUMBER_TEXT = r"^[ \t]*[0-9]+(\.0*)?[ \t]*$"
# Older dates in a daily sales extract are typos (1924 for 2024) or epoch defaults (1970-01-01).
EARLIEST_PLAUSIBLE_DATE = pd.Timestamp("1990-01-01")
# Daily unit sales beyond this are data errors (a misplaced decimal, a barcode in the units column).
MAX_PLAUSIBLE_DAILY_UNITS = 1_000_000
# Counts (stock, order quantities, pack sizes) beyond this are data errors; completion casts them to
# int64, which overflows not far above.
MAX_PLAUSIBLE_COUNT = 1_000_000_000
# A lead time or an order arriving beyond a year is a typo, and far enough out to overflow the planner's dates.
MAX_PLAUSIBLE_LEAD_DAYS = 365


def unreadable_column(column: str) -> str:
    """Derived by the validator: the values of a date column that read as no date; reported on the column."""
    return f"{column}_unreadable"


def _existing(frame: pd.DataFrame, columns: list[str]) -> list[str]:
    return [column for column in columns if column in frame.columns]


def _required_columns(frame: pd.DataFrame, required: list[str]) -> list[Expectation]:
    return [
        gxe.ExpectColumnToExist(column=column, description="required column must be present") for column in required
    ]


def _not_null(column: str) -> Expectation:
    return gxe.ExpectColumnValuesToNotBeNull(column=column, description="must not be empty")


def _readable_dates(frame: pd.DataFrame, column: str) -> list[Expectation]:
    if unreadable_column(column) not in frame.columns:
        return []
    return [
        gxe.ExpectColumnValuesToBeNull(
            column=unreadable_column(column),
            meta={"reported_column": column},
            description="must be a date, in one format throughout the column (YYYY-MM-DD)",
        )
    ]


def _at_most(frame: pd.DataFrame, column: str, maximum: int) -> list[Expectation]:
    """An upper bound on a numeric column; text columns are left to their whole-number pattern."""
    if not pd.api.types.is_numeric_dtype(frame[column]) or pd.api.types.is_bool_dtype(frame[column]):
        return []
    return [gxe.ExpectColumnValuesToBeBetween(column=column, max_value=maximum, description=f"must be <= {maximum:,}")]


def _whole_numbers(frame: pd.DataFrame, column: str, minimum: int, maximum: int | None = None) -> list[Expectation]:
    """Integer values within bounds; every offending row is named, whatever the column's dtype."""
    bounds = f">= {minimum}" if maximum is None else f"between {minimum} and {maximum:,}"
    if not pd.api.types.is_numeric_dtype(frame[column]) or pd.api.types.is_bool_dtype(frame[column]):
        return [
            gxe.ExpectColumnValuesToMatchRegex(
                column=column, regex=WHOLE_NUMBER_TEXT, description=f"must be whole numbers {bounds}"
            )
        ]
    expectations: list[Expectation] = [
        gxe.ExpectColumnValuesToBeBetween(
            column=column, min_value=minimum, max_value=maximum, description=f"must be {bounds}"
        )
    ]
    if not pd.api.types.is_integer_dtype(frame[column]):
        # Floats are fine while they hold whole numbers (a Parquet export, a column with gaps).
        expectations.append(
            gxe.ExpectColumnValuesToBeNull(
                column=column,
                row_condition=f"`{column}` % 1 != 0",
                condition_parser="pandas",
                description="must be whole numbers",
            )
        )
    return expectations


def _non_negative(column: str) -> Expectation:
    return gxe.ExpectColumnValuesToBeBetween(column=column, min_value=0, description="must be >= 0")


def sales_expectations(
    sales: pd.DataFrame,
    today: pd.Timestamp,
    master_item_ids: list[str] | None,
    frequency: Frequency | None,
    max_gap: int | None,
) -> list[Expectation]:
    """``frequency``: declared or inferred, None when the dates fit none; ``max_gap`` in its periods."""
    expectations: list[Expectation] = _required_columns(sales, SALES_REQUIRED)
    expectations.append(gxe.ExpectTableRowCountToBeBetween(min_value=1, description="must have at least one data row"))
    expectations += [_not_null(column) for column in _existing(sales, SALES_REQUIRED)]
    if "units" in sales.columns:
        expectations += _whole_numbers(sales, "units", 0, MAX_PLAUSIBLE_DAILY_UNITS)
    if "date" in sales.columns:
        if pd.api.types.is_datetime64_any_dtype(sales["date"]):
            expectations += [
                gxe.ExpectColumnValuesToBeBetween(
                    column="date", max_value=today, description=f"must not be in the future (after {today:%Y-%m-%d})"
                ),
                gxe.ExpectColumnValuesToBeBetween(
                    column="date",
                    min_value=EARLIEST_PLAUSIBLE_DATE,
                    description=f"must be on or after {EARLIEST_PLAUSIBLE_DATE:%Y-%m-%d} (a date typed wrong)",
                ),
            ]
        expectations += _readable_dates(sales, "date")
    expectations += _frequency_expectations(sales, frequency, max_gap)
    if set(SALES_KEY) <= set(sales.columns):
        expectations.append(
            gxe.ExpectCompoundColumnsToBeUnique(
                column_list=SALES_KEY, description="one row per item, store and date (no duplicates)"
            )
        )
    if "price" in sales.columns:
        expectations.append(
            gxe.ExpectColumnValuesToBeBetween(
                column="price", min_value=0, strict_min=True, description="must be > 0 where given"
            )
        )
    for flag in _existing(sales, ["promo", "event", "available", "closed"]):
        expectations.append(
            gxe.ExpectColumnValuesToBeInSet(
                column=flag, value_set=[0, 1, True, False], description="must be a 0/1 flag"
            )
        )
    if master_item_ids is not None and "item_id" in sales.columns:
        expectations.append(
            gxe.ExpectColumnValuesToBeInSet(
                column="item_id", value_set=master_item_ids, description="every item sold must have an item master row"
            )
        )
    return expectations


def _frequency_expectations(sales: pd.DataFrame, frequency: Frequency | None, max_gap: int | None) -> list[Expectation]:
    on_date = {"reported_column": "date", "quarantinable": False}
    expectations: list[Expectation] = []
    if SERIES_FREQUENCY_COLUMN in sales.columns:
        # A series with one date has no step to tell by; an irregular one (stray dates) is reported date
        # by date by the calendar and gap rules, when there is a frequency to hold it to.
        allowed = [frequency.alias, IRREGULAR] if frequency is not None else []
        expectations.append(
            gxe.ExpectColumnValuesToBeInSet(
                column=SERIES_FREQUENCY_COLUMN,
                value_set=[*allowed, UNKNOWN],
                meta=on_date,
                description=(
                    f"every item and store must follow the data's frequency, {frequency.description} "
                    "(a series here steps by another; set data.frequency to declare it)"
                    if frequency is not None
                    else "dates must step by days, by weeks on one weekday or by months on their first or last "
                    "day (no frequency fits these dates)"
                ),
            )
        )
    if frequency is not None and ON_CALENDAR_COLUMN in sales.columns:
        expectations.append(
            gxe.ExpectColumnValuesToBeInSet(
                column=ON_CALENDAR_COLUMN,
                value_set=[True],
                meta=on_date,
                description=f"must be a date of the {frequency.description} calendar",
            )
        )
    if frequency is not None and max_gap is not None and GAP_COLUMN in sales.columns:
        name = frequency.name
        expectations.append(
            gxe.ExpectColumnValuesToBeBetween(
                column=GAP_COLUMN,
                max_value=max_gap,
                meta=on_date,
                description=f"no gap over {max_gap} {name}s between dates of an item and store "
                f"(add rows with closed=1 for {name}s the store was shut)",
            )
        )
        if frequency.kind != "D":
            # Daily exports commonly omit public holidays; an absent week or month is lost data.
            expectations.append(
                gxe.ExpectColumnValuesToBeBetween(
                    column=GAP_COLUMN,
                    max_value=1,
                    meta=on_date,
                    severity=FailureSeverity.WARNING,
                    description=f"no {name} absent inside a series (an absent {name} is treated as missing "
                    "demand, not as zero)",
                )
            )
    return expectations


def recent_sales_warnings(
    recent: pd.DataFrame, baseline: pd.DataFrame, level_shift_ratio: float, zero_share_jump: float
) -> list[Expectation]:
    """Drift in the latest window against the history before it: warnings, since a real shift is possible."""
    baseline_mean = float(baseline["units"].mean())
    baseline_zero_share = float((baseline["units"] == 0).mean())
    recent_periods = recent["date"].nunique()
    return [
        gxe.ExpectColumnMeanToBeBetween(
            column="units",
            min_value=baseline_mean / level_shift_ratio,
            max_value=baseline_mean * level_shift_ratio,
            severity=FailureSeverity.WARNING,
            description=f"mean units per period of the last {recent_periods} periods within {level_shift_ratio:g}x of "
            f"the earlier mean {baseline_mean:.2f} (sudden level shift)",
        ),
        gxe.ExpectColumnValuesToNotBeInSet(
            column="units",
            value_set=[0],
            mostly=max(0.0, 1 - baseline_zero_share - zero_share_jump),
            severity=FailureSeverity.WARNING,
            description=f"share of zero-sales periods in the last {recent_periods} periods at most "
            f"{baseline_zero_share + zero_share_jump:.0%} (earlier {baseline_zero_share:.0%})",
        ),
    ]


def item_master_expectations(items: pd.DataFrame) -> list[Expectation]:
    expectations: list[Expectation] = _required_columns(items, ITEM_MASTER_REQUIRED)
    if "item_id" in items.columns:
        expectations += [
            _not_null("item_id"),
            gxe.ExpectColumnValuesToBeUnique(column="item_id", description="one row per item (no duplicates)"),
        ]
    if "lead_time_days" in items.columns:
        expectations += _whole_numbers(items, "lead_time_days", 0) + _at_most(
            items, "lead_time_days", MAX_PLAUSIBLE_LEAD_DAYS
        )
    if "case_pack" in items.columns:
        expectations += _whole_numbers(items, "case_pack", 1) + _at_most(items, "case_pack", MAX_PLAUSIBLE_COUNT)
    if "moq" in items.columns:
        expectations += _whole_numbers(items, "moq", 0) + _at_most(items, "moq", MAX_PLAUSIBLE_COUNT)
    if "review_days" in items.columns:
        expectations += _whole_numbers(items, "review_days", 1) + _at_most(
            items, "review_days", MAX_PLAUSIBLE_LEAD_DAYS
        )
    if "order_weekday" in items.columns:
        expectations += _whole_numbers(items, "order_weekday", 0, 6)
    if "service_level" in items.columns:
        # A cycle service level: the share of order cycles without a stock-out; 1 would need unbounded stock.
        expectations.append(
            gxe.ExpectColumnValuesToBeBetween(
                column="service_level",
                min_value=0.5,
                max_value=1,
                strict_min=True,
                strict_max=True,
                description="must be above 0.5 and below 1 (a share of order cycles without a stock-out)",
            )
        )
    for column in _existing(items, ["unit_cost", "holding_cost_rate", "unit_volume"]):
        expectations.append(_non_negative(column))
    return expectations


def inventory_expectations(inventory: pd.DataFrame) -> list[Expectation]:
    expectations: list[Expectation] = _required_columns(inventory, INVENTORY_REQUIRED)
    expectations += [_not_null(column) for column in _existing(inventory, INVENTORY_REQUIRED)]
    if "on_hand" in inventory.columns:
        expectations += _whole_numbers(inventory, "on_hand", 0) + _at_most(inventory, "on_hand", MAX_PLAUSIBLE_COUNT)
    if {"item_id", "store_id"} <= set(inventory.columns):
        expectations.append(
            gxe.ExpectCompoundColumnsToBeUnique(
                column_list=["item_id", "store_id"], description="one row per item and store (no duplicates)"
            )
        )
    return expectations


def open_orders_expectations(open_orders: pd.DataFrame, snapshot_date: pd.Timestamp) -> list[Expectation]:
    expectations: list[Expectation] = _required_columns(open_orders, OPEN_ORDERS_REQUIRED)
    expectations += [_not_null(column) for column in _existing(open_orders, OPEN_ORDERS_REQUIRED)]
    if "quantity" in open_orders.columns:
        expectations += _whole_numbers(open_orders, "quantity", 0) + _at_most(
            open_orders, "quantity", MAX_PLAUSIBLE_COUNT
        )
    if "arrival_date" in open_orders.columns:
        if pd.api.types.is_datetime64_any_dtype(open_orders["arrival_date"]):
            latest = snapshot_date + pd.Timedelta(days=MAX_PLAUSIBLE_LEAD_DAYS)
            expectations += [
                # An order already received belongs in on hand, not in the pipeline.
                gxe.ExpectColumnValuesToBeBetween(
                    column="arrival_date",
                    min_value=snapshot_date,
                    strict_min=True,
                    description=f"must be after the inventory snapshot date {snapshot_date:%Y-%m-%d}",
                ),
                gxe.ExpectColumnValuesToBeBetween(
                    column="arrival_date",
                    max_value=latest,
                    description=f"must be within {MAX_PLAUSIBLE_LEAD_DAYS} days of the snapshot (by {latest:%Y-%m-%d})",
                ),
            ]
        expectations += _readable_dates(open_orders, "arrival_date")
    return expectations


def capacity_expectations(capacity: pd.DataFrame) -> list[Expectation]:
    expectations: list[Expectation] = _required_columns(capacity, CAPACITY_REQUIRED)
    if "store_id" in capacity.columns:
        # A store without a capacity value gets the default; a row without a store is an error.
        expectations += [
            _not_null("store_id"),
            gxe.ExpectColumnValuesToBeUnique(column="store_id", description="one row per store (no duplicates)"),
        ]
    if "capacity_volume" in capacity.columns:
        expectations.append(_non_negative("capacity_volume"))
    return expectations
