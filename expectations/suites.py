"""Great Expectations suites for the input tables.

Each suite is built for the columns a table actually has, so a missing column is reported once by
``ExpectColumnToExist`` instead of crashing every expectation that names it.
"""

from __future__ import annotations

import great_expectations.expectations as gxe
import pandas as pd
from great_expectations.expectations.expectation import Expectation

SALES_KEY = ["item_id", "store_id", "date"]
SALES_REQUIRED = [*SALES_KEY, "units"]
ITEM_MASTER_REQUIRED = ["item_id", "unit_cost", "lead_time_days", "case_pack"]
INVENTORY_REQUIRED = ["item_id", "store_id", "on_hand"]
OPEN_ORDERS_REQUIRED = ["item_id", "store_id", "quantity", "arrival_date"]
INTEGER_DTYPES = ["int8", "int16", "int32", "int64", "Int8", "Int16", "Int32", "Int64", "uint8", "uint16", "uint32", "uint64"]
# Daily unit sales beyond this are data errors (a misplaced decimal, a barcode in the units column).
MAX_PLAUSIBLE_DAILY_UNITS = 1_000_000


def _existing(frame: pd.DataFrame, columns: list[str]) -> list[str]:
    return [column for column in columns if column in frame.columns]


def _columns_exist(frame: pd.DataFrame, required: list[str]) -> list[Expectation]:
    return [gxe.ExpectColumnToExist(column=column) for column in required]


def sales_expectations(sales: pd.DataFrame, today: pd.Timestamp) -> list[Expectation]:
    expectations: list[Expectation] = _columns_exist(sales, SALES_REQUIRED)
    expectations.append(gxe.ExpectTableRowCountToBeBetween(min_value=1))
    for column in _existing(sales, SALES_REQUIRED):
        expectations.append(gxe.ExpectColumnValuesToNotBeNull(column=column))
    if "units" in sales.columns:
        expectations += [
            gxe.ExpectColumnValuesToBeInTypeList(column="units", type_list=INTEGER_DTYPES),
            gxe.ExpectColumnValuesToBeBetween(column="units", min_value=0, max_value=MAX_PLAUSIBLE_DAILY_UNITS),
        ]
    if "date" in sales.columns:
        if pd.api.types.is_datetime64_any_dtype(sales["date"]):
            expectations.append(gxe.ExpectColumnValuesToBeBetween(column="date", max_value=today))
        else:
            expectations.append(gxe.ExpectColumnValuesToBeDateutilParseable(column="date"))
    if set(SALES_KEY) <= set(sales.columns):
        expectations.append(gxe.ExpectCompoundColumnsToBeUnique(column_list=SALES_KEY))
    if "price" in sales.columns:
        expectations.append(gxe.ExpectColumnValuesToBeBetween(column="price", min_value=0, strict_min=True))
    for flag in _existing(sales, ["promo", "event", "available"]):
        expectations.append(gxe.ExpectColumnValuesToBeInSet(column=flag, value_set=[0, 1, True, False]))
    return expectations


def item_master_expectations(items: pd.DataFrame, sold_item_ids: list[str]) -> list[Expectation]:
    expectations: list[Expectation] = _columns_exist(items, ITEM_MASTER_REQUIRED)
    if "item_id" in items.columns:
        expectations += [
            gxe.ExpectColumnValuesToNotBeNull(column="item_id"),
            gxe.ExpectColumnValuesToBeUnique(column="item_id"),
            gxe.ExpectColumnDistinctValuesToContainSet(column="item_id", value_set=sold_item_ids),
        ]
    if "lead_time_days" in items.columns:
        expectations += [
            gxe.ExpectColumnValuesToBeInTypeList(column="lead_time_days", type_list=INTEGER_DTYPES),
            gxe.ExpectColumnValuesToBeBetween(column="lead_time_days", min_value=0),
        ]
    if "case_pack" in items.columns:
        expectations.append(gxe.ExpectColumnValuesToBeBetween(column="case_pack", min_value=1))
    for column in _existing(items, ["unit_cost", "holding_cost_rate", "moq", "unit_volume"]):
        expectations += [
            gxe.ExpectColumnValuesToNotBeNull(column=column),
            gxe.ExpectColumnValuesToBeBetween(column=column, min_value=0),
        ]
    return expectations


def inventory_expectations(inventory: pd.DataFrame) -> list[Expectation]:
    expectations: list[Expectation] = _columns_exist(inventory, INVENTORY_REQUIRED)
    if "on_hand" in inventory.columns:
        expectations += [
            gxe.ExpectColumnValuesToNotBeNull(column="on_hand"),
            gxe.ExpectColumnValuesToBeBetween(column="on_hand", min_value=0),
        ]
    if {"item_id", "store_id"} <= set(inventory.columns):
        expectations.append(gxe.ExpectCompoundColumnsToBeUnique(column_list=["item_id", "store_id"]))
    return expectations


def open_orders_expectations(open_orders: pd.DataFrame, snapshot_date: pd.Timestamp) -> list[Expectation]:
    expectations: list[Expectation] = _columns_exist(open_orders, OPEN_ORDERS_REQUIRED)
    if "quantity" in open_orders.columns:
        expectations.append(gxe.ExpectColumnValuesToBeBetween(column="quantity", min_value=0))
    if "arrival_date" in open_orders.columns:
        # An order already received belongs in on hand, not in the pipeline.
        expectations.append(
            gxe.ExpectColumnValuesToBeBetween(
                column="arrival_date", min_value=snapshot_date, strict_min=True
            )
        )
    return expectations


def capacity_expectations(capacity: pd.DataFrame) -> list[Expectation]:
    expectations: list[Expectation] = _columns_exist(capacity, ["store_id", "capacity_volume"])
    if "capacity_volume" in capacity.columns:
        expectations.append(gxe.ExpectColumnValuesToBeBetween(column="capacity_volume", min_value=0))
    return expectations
