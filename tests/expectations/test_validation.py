"""The data contract: every rule catches its own corruption, names table, column and rows, and never the good data."""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from expectations.validation import (
    CheckedTables,
    DataValidationError,
    ExpectationFailure,
    ValidationReport,
    ensure_valid,
    failures_table,
    validate_tables,
    validation_markdown,
)
from replenish.data.synthetic import SyntheticConfig, generate_synthetic
from replenish.data.tables import MasterDefaults, RawTables, complete_tables

# GX's regex metric warns about the capture group in the whole-number pattern; the match itself is what counts.
pytestmark = pytest.mark.filterwarnings("ignore:This pattern is interpreted as a regular expression:UserWarning")

# Fixed "today" well after the 90 synthetic days (2024-01-01 .. 2024-03-30), so results do not depend on the clock.
TODAY = pd.Timestamp("2024-06-01")
SOURCES = {
    "sales": "/data/in/sales.csv",
    "items": "/data/in/items.csv",
    "inventory": "/data/in/inventory.parquet",
    "open_orders": "/data/in/open_orders.csv",
    "capacity": "/data/in/capacity.csv",
}


@pytest.fixture(scope="module")
def raw() -> RawTables:
    tables = generate_synthetic(SyntheticConfig(n_items=3, n_stores=1, n_days=90))
    return dataclasses.replace(tables, sources=dict(SOURCES))


def corrupted(raw: RawTables, table: str, change: Callable[[pd.DataFrame], pd.DataFrame | None]) -> RawTables:
    """A copy of `raw` with one table changed; `change` edits a copy in place or returns a new frame."""
    frame = getattr(raw, table).copy()
    result = change(frame)
    return dataclasses.replace(raw, **{table: frame if result is None else result})


def failures_for(report: ValidationReport, table: str, column: str | None) -> list[ExpectationFailure]:
    return [failure for failure in report.failures if failure.table == table and failure.column == column]


def single_failure(report: ValidationReport, table: str, column: str | None) -> ExpectationFailure:
    """The one failure of (table, column); also checks nothing else in the data was flagged."""
    matching = failures_for(report, table, column)
    assert len(matching) == 1, report.failures
    assert report.failures == matching, f"unexpected extra failures: {report.failures}"
    assert not report.success
    return matching[0]


def set_cells(frame: pd.DataFrame, column: str, rows: list[int], value: object, dtype: str | None = None) -> None:
    if dtype is not None:
        frame[column] = frame[column].astype(dtype)
    frame.loc[rows, column] = value


# --- the good data -------------------------------------------------------------------------------------


def test_synthetic_tables_pass(raw: RawTables) -> None:
    report = validate_tables(raw, TODAY)

    assert report.success, report.failures
    assert report.failures == []
    assert report.tables == {
        "sales": 270,
        "sales_recent": 3 * 28,
        "items": 3,
        "inventory": 3,
        "open_orders": len(raw.open_orders),
        "capacity": 1,
    }
    assert report.expectations_checked > 20
    assert ensure_valid(report) is report


def test_sales_alone_with_only_required_columns_pass() -> None:
    sales = pd.DataFrame(
        {
            "item_id": ["A", "A", "B"],
            "store_id": ["S1", "S1", "S1"],
            "date": ["2024-01-01", "2024-01-02", "2024-01-01"],
            "units": [0, 3, 1],
        }
    )

    assert validate_tables(RawTables(sales=sales), TODAY).success


def test_whole_float_units_and_text_whole_numbers_pass(raw: RawTables) -> None:
    as_float = corrupted(raw, "sales", lambda s: s.assign(units=s["units"].astype("float64")))
    as_text = corrupted(raw, "sales", lambda s: s.assign(units=s["units"].astype(str)))

    assert validate_tables(as_float, TODAY).success
    assert validate_tables(as_text, TODAY).success


def test_validation_does_not_modify_the_input(raw: RawTables) -> None:
    text_dates = corrupted(raw, "sales", lambda s: s.assign(date=s["date"].dt.strftime("%Y-%m-%d")))
    before = text_dates.sales.copy()

    validate_tables(text_dates, TODAY)

    pd.testing.assert_frame_equal(text_dates.sales, before)


# --- one rule per test ---------------------------------------------------------------------------------


def test_negative_units(raw: RawTables) -> None:
    bad = corrupted(raw, "sales", lambda s: set_cells(s, "units", [3, 10], -1))

    failure = single_failure(validate_tables(bad, TODAY), "sales", "units")

    assert failure.rule == "must be between 0 and 1,000,000"
    assert failure.sample_rows == [4, 11]
    assert failure.unexpected_count == 2
    assert failure.sample_values == [-1, -1]
    assert failure.file == SOURCES["sales"]


def test_missing_units(raw: RawTables) -> None:
    bad = corrupted(raw, "sales", lambda s: set_cells(s, "units", [4], np.nan, dtype="float64"))

    failure = single_failure(validate_tables(bad, TODAY), "sales", "units")

    assert failure.rule == "must not be empty"
    assert failure.sample_rows == [5]
    assert failure.unexpected_count == 1


def test_fractional_units_name_their_rows(raw: RawTables) -> None:
    bad = corrupted(raw, "sales", lambda s: set_cells(s, "units", [5, 7], 2.5, dtype="float64"))

    failure = single_failure(validate_tables(bad, TODAY), "sales", "units")

    assert failure.rule == "must be whole numbers"
    assert failure.sample_rows == [6, 8]
    assert failure.sample_values == [2.5, 2.5]
    assert "rows 6, 8" in failure.describe()


def test_text_units(raw: RawTables) -> None:
    bad = corrupted(raw, "sales", lambda s: set_cells(s, "units", [6], "x", dtype=str))

    failure = single_failure(validate_tables(bad, TODAY), "sales", "units")

    assert failure.rule == "must be whole numbers between 0 and 1,000,000"
    assert failure.sample_rows == [7]
    assert failure.sample_values == ["x"]


def test_text_units_from_a_csv_file(raw: RawTables) -> None:
    """What a user's CSV with one bad cell actually looks like once read: the whole column is text."""
    sales = raw.sales.copy()
    sales["units"] = sales["units"].astype(object)
    sales.loc[20, "units"] = "twelve"
    buffer = io.StringIO()
    sales.to_csv(buffer, index=False)
    buffer.seek(0)
    bad = dataclasses.replace(raw, sales=pd.read_csv(buffer, dtype={"item_id": str, "store_id": str}))

    failure = single_failure(validate_tables(bad, TODAY), "sales", "units")

    assert failure.sample_rows == [21]
    assert failure.sample_values == ["twelve"]


def test_missing_required_column(raw: RawTables) -> None:
    bad = corrupted(raw, "sales", lambda s: s.drop(columns=["units"]))

    failure = single_failure(validate_tables(bad, TODAY), "sales", "units")

    assert failure.rule == "required column must be present"
    assert failure.sample_rows == []


@pytest.mark.parametrize("column", ["item_id", "date"])
def test_each_missing_key_column_is_reported_once(raw: RawTables, column: str) -> None:
    bad = corrupted(raw, "sales", lambda s: s.drop(columns=[column]))

    failure = single_failure(validate_tables(bad, TODAY), "sales", column)

    assert failure.rule == "required column must be present"


def test_duplicate_item_store_date(raw: RawTables) -> None:
    bad = corrupted(raw, "sales", lambda s: pd.concat([s, s.iloc[[8]]], ignore_index=True))

    failure = single_failure(validate_tables(bad, TODAY), "sales", "item_id, store_id, date")

    assert failure.rule == "one row per item, store and date (no duplicates)"
    # Both the original (row 9) and its copy (the new last row, 271) are named.
    assert failure.sample_rows == [9, 271]


def test_unparseable_date_strings(raw: RawTables) -> None:
    def change(sales: pd.DataFrame) -> pd.DataFrame:
        sales = sales.assign(date=sales["date"].dt.strftime("%Y-%m-%d"))
        sales.loc[[9, 30], "date"] = ["not a date", "2024-02-31"]
        return sales

    failure = single_failure(validate_tables(corrupted(raw, "sales", change), TODAY), "sales", "date")

    assert failure.rule == "must be a date, in one format throughout the column (YYYY-MM-DD)"
    assert failure.sample_rows == [10, 31]
    assert failure.sample_values == ["not a date", "2024-02-31"]


def test_future_date(raw: RawTables) -> None:
    bad = corrupted(raw, "sales", lambda s: set_cells(s, "date", [11], pd.Timestamp("2024-07-01")))

    failures = {f.rule: f for f in failures_for(validate_tables(bad, TODAY), "sales", "date")}

    future = failures.pop("must not be in the future (after 2024-06-01)")
    assert future.sample_rows == [12]
    # Moving a day into the future also leaves a hole in that series.
    assert [rule.startswith("no gap over 14 days") for rule in failures] == [True]


def test_iso_string_dates_that_all_parse_are_range_checked(raw: RawTables) -> None:
    def change(sales: pd.DataFrame) -> pd.DataFrame:
        sales = sales.assign(date=sales["date"].dt.strftime("%Y-%m-%d"))
        sales.loc[11, "date"] = "2024-07-01"
        return sales

    report = validate_tables(corrupted(raw, "sales", change), TODAY)

    rules = {f.rule: f for f in failures_for(report, "sales", "date")}
    assert rules["must not be in the future (after 2024-06-01)"].sample_rows == [12]


def test_today_defaults_to_the_real_clock(raw: RawTables) -> None:
    next_month = pd.Timestamp.now().normalize() + pd.Timedelta(days=30)
    # Without open orders, so the future date cannot also move the snapshot date they are checked against.
    bad = dataclasses.replace(
        corrupted(raw, "sales", lambda s: set_cells(s, "date", [0], next_month)), open_orders=None
    )

    failures = failures_for(validate_tables(bad), "sales", "date")

    [future] = [f for f in failures if f.rule.startswith("must not be in the future")]
    assert future.sample_rows == [1]


def test_non_positive_price(raw: RawTables) -> None:
    bad = corrupted(raw, "sales", lambda s: set_cells(s, "price", [12, 13], [0.0, -1.0]))

    failure = single_failure(validate_tables(bad, TODAY), "sales", "price")

    assert failure.rule == "must be > 0 where given"
    assert failure.sample_rows == [13, 14]


def test_missing_price_is_allowed(raw: RawTables) -> None:
    bad = corrupted(raw, "sales", lambda s: set_cells(s, "price", [12], np.nan))

    assert validate_tables(bad, TODAY).success


@pytest.mark.parametrize("flag", ["promo", "available"])
def test_flag_outside_0_1(raw: RawTables, flag: str) -> None:
    bad = corrupted(raw, "sales", lambda s: set_cells(s, flag, [14], 2))

    failure = single_failure(validate_tables(bad, TODAY), "sales", flag)

    assert failure.rule == "must be a 0/1 flag"
    assert failure.sample_rows == [15]
    assert failure.sample_values == [2]


def test_absurd_units(raw: RawTables) -> None:
    bad = corrupted(raw, "sales", lambda s: set_cells(s, "units", [15], 1e12, dtype="float64"))

    failure = single_failure(validate_tables(bad, TODAY), "sales", "units")

    assert failure.rule == "must be between 0 and 1,000,000"
    assert failure.sample_rows == [16]


def test_item_sold_without_item_master_row(raw: RawTables) -> None:
    bad = corrupted(raw, "sales", lambda s: set_cells(s, "item_id", [16], "GHOST_999"))

    failure = single_failure(validate_tables(bad, TODAY), "sales", "item_id")

    assert failure.rule == "every item sold must have an item master row"
    assert failure.sample_rows == [17]
    assert failure.sample_values == ["GHOST_999"]


def test_item_master_row_dropped(raw: RawTables) -> None:
    first_item = raw.items["item_id"].iloc[0]
    bad = corrupted(raw, "items", lambda items: items.iloc[1:].reset_index(drop=True))

    failure = single_failure(validate_tables(bad, TODAY), "sales", "item_id")

    expected_rows = (np.flatnonzero(raw.sales["item_id"].to_numpy() == first_item) + 1)[:5].tolist()
    assert failure.sample_rows == expected_rows
    assert failure.unexpected_count == int((raw.sales["item_id"] == first_item).sum())


def test_negative_lead_time(raw: RawTables) -> None:
    bad = corrupted(raw, "items", lambda items: set_cells(items, "lead_time_days", [1], -2))

    failure = single_failure(validate_tables(bad, TODAY), "items", "lead_time_days")

    assert failure.rule == "must be >= 0"
    assert failure.sample_rows == [2]
    assert failure.file == SOURCES["items"]


def test_zero_case_pack(raw: RawTables) -> None:
    bad = corrupted(raw, "items", lambda items: set_cells(items, "case_pack", [2], 0))

    failure = single_failure(validate_tables(bad, TODAY), "items", "case_pack")

    assert failure.rule == "must be >= 1"
    assert failure.sample_rows == [3]


def test_negative_on_hand(raw: RawTables) -> None:
    bad = corrupted(raw, "inventory", lambda inventory: set_cells(inventory, "on_hand", [0], -5))

    failure = single_failure(validate_tables(bad, TODAY), "inventory", "on_hand")

    assert failure.rule == "must be >= 0"
    assert failure.sample_rows == [1]
    assert failure.file == SOURCES["inventory"]


def test_open_order_arriving_on_or_before_the_snapshot(raw: RawTables) -> None:
    assert len(raw.open_orders) >= 2
    snapshot = raw.sales["date"].max()
    bad = corrupted(
        raw,
        "open_orders",
        lambda orders: set_cells(orders, "arrival_date", [0, 1], [snapshot, snapshot - pd.Timedelta(days=5)]),
    )

    failure = single_failure(validate_tables(bad, TODAY), "open_orders", "arrival_date")

    assert failure.rule == f"must be after the inventory snapshot date {snapshot:%Y-%m-%d}"
    assert failure.sample_rows == [1, 2]


def test_open_order_arrival_given_as_iso_strings_is_range_checked(raw: RawTables) -> None:
    snapshot = raw.sales["date"].max()

    def change(orders: pd.DataFrame) -> pd.DataFrame:
        orders = orders.assign(arrival_date=orders["arrival_date"].dt.strftime("%Y-%m-%d"))
        orders.loc[1, "arrival_date"] = f"{snapshot:%Y-%m-%d}"
        return orders

    failure = single_failure(
        validate_tables(corrupted(raw, "open_orders", change), TODAY), "open_orders", "arrival_date"
    )

    assert failure.sample_rows == [2]


def test_empty_sales_table_header_only() -> None:
    header_only = pd.read_csv(io.StringIO("item_id,store_id,date,units\n"))

    report = validate_tables(RawTables(sales=header_only, sources={"sales": SOURCES["sales"]}), TODAY)

    failure = single_failure(report, "sales", None)
    assert failure.rule == "must have at least one data row"
    assert failure.sample_rows == []
    with pytest.raises(DataValidationError, match="at least one data row"):
        ensure_valid(report)


# --- the error users see -------------------------------------------------------------------------------


def test_ensure_valid_raises_with_file_column_rule_and_rows(raw: RawTables) -> None:
    def change(sales: pd.DataFrame) -> None:
        set_cells(sales, "units", [5], 2.5, dtype="float64")
        set_cells(sales, "price", [7], -3.0)

    report = validate_tables(corrupted(raw, "sales", change), TODAY)

    with pytest.raises(DataValidationError) as caught:
        ensure_valid(report)

    error = caught.value
    assert isinstance(error, ValueError)
    assert error.failures == report.failures
    assert {failure.column for failure in error.failures} == {"units", "price"}
    message = str(error)
    assert "2 rule(s) broken" in message
    assert f"{SOURCES['sales']}: column 'units' of sales" in message
    assert 'breaks rule "must be whole numbers" in 1 row(s); rows 6' in message
    assert f"{SOURCES['sales']}: column 'price' of sales" in message
    assert "rows 8" in message


def test_ensure_valid_names_the_file_of_each_table(raw: RawTables) -> None:
    bad = corrupted(raw, "inventory", lambda inventory: set_cells(inventory, "on_hand", [2], -1))

    with pytest.raises(DataValidationError) as caught:
        ensure_valid(validate_tables(bad, TODAY))

    assert f"{SOURCES['inventory']}: column 'on_hand' of inventory" in str(caught.value)


def test_table_without_a_source_is_named_by_its_table() -> None:
    sales = pd.DataFrame({"item_id": ["A"], "store_id": ["S"], "date": ["2024-01-01"], "units": [-1]})

    with pytest.raises(DataValidationError) as caught:
        ensure_valid(validate_tables(RawTables(sales=sales), TODAY))

    assert "sales: column 'units' of sales" in str(caught.value)


# --- regressions: bugs found while writing these tests ------------------------------------------------


def test_empty_sales_with_open_orders_is_reported_not_crashed(raw: RawTables) -> None:
    header_only = pd.read_csv(io.StringIO("item_id,store_id,date,units\n"))

    report = validate_tables(dataclasses.replace(raw, sales=header_only), TODAY)

    assert failures_for(report, "sales", None)[0].rule == "must have at least one data row"


def test_absurd_units_given_as_text(raw: RawTables) -> None:
    bad = corrupted(raw, "sales", lambda s: set_cells(s, "units", [15], "1000000000000", dtype=str))

    failure = single_failure(validate_tables(bad, TODAY), "sales", "units")

    assert failure.sample_rows == [16]


def test_text_units_that_pass_validation_can_be_completed(raw: RawTables) -> None:
    data = corrupted(raw, "sales", lambda s: set_cells(s, "units", [0], "3.0", dtype=str))
    assert validate_tables(data, TODAY).success

    completed = complete_tables(data, MasterDefaults())

    assert completed.sales["units"].dtype == "int64"


def test_store_closure_rows_close_a_gap_and_are_not_demand(raw: RawTables) -> None:
    sales = raw.sales.copy()
    first_series = (sales["item_id"] == sales["item_id"].iloc[0]) & (sales["store_id"] == sales["store_id"].iloc[0])
    shut = first_series & sales.index.isin(range(20, 40))
    with_gap = corrupted(raw, "sales", lambda s: s.drop(index=s.index[shut]).reset_index(drop=True))
    [gap] = failures_for(validate_tables(with_gap, TODAY), "sales", "date")
    assert gap.rule.startswith("no gap over 14 days")

    closed = dataclasses.replace(raw, sales=sales.assign(closed=shut.astype(int), units=sales["units"].where(~shut, 0)))
    assert validate_tables(closed, TODAY).success
    completed = complete_tables(closed, MasterDefaults())
    closed_rows = completed.sales[completed.sales["closed"] == 1]
    assert len(closed_rows) == 20 and (closed_rows["available"] == 0).all()


def test_a_date_before_1990_is_a_typo(raw: RawTables) -> None:
    bad = corrupted(raw, "sales", lambda s: set_cells(s, "date", [0], pd.Timestamp("1924-01-01")))
    rules = {f.rule: f for f in failures_for(validate_tables(bad, TODAY), "sales", "date")}
    assert rules["must be on or after 1990-01-01 (a date typed wrong)"].sample_rows == [1]


# --- found by tests/expectations/test_validation_fuzz.py: each passed validation or crashed it before ---------------


def test_dates_in_two_formats_name_the_odd_rows(raw: RawTables) -> None:
    """Completion reads a date column in one format; a second format crashed it after validation passed."""

    def change(sales: pd.DataFrame) -> pd.DataFrame:
        sales = sales.assign(date=sales["date"].dt.strftime("%Y-%m-%d"))
        sales.loc[[4, 7], "date"] = ["16/01/2024", "Jan 08 2024"]
        return sales

    failure = single_failure(validate_tables(corrupted(raw, "sales", change), TODAY), "sales", "date")

    assert failure.rule == "must be a date, in one format throughout the column (YYYY-MM-DD)"
    assert failure.sample_rows == [5, 8]
    assert failure.sample_values == ["16/01/2024", "Jan 08 2024"]


def test_dates_with_mixed_utc_offsets_are_refused_not_crashed(raw: RawTables) -> None:
    def change(sales: pd.DataFrame) -> pd.DataFrame:
        sales = sales.assign(date=sales["date"].dt.strftime("%Y-%m-%dT00:00:00+02:00"))
        sales.loc[3, "date"] = "2024-01-04T00:00:00Z"
        return sales

    report = validate_tables(corrupted(raw, "sales", change), TODAY)

    [failure] = failures_for(report, "sales", "date")
    assert failure.rule == "must be a date, in one format throughout the column (YYYY-MM-DD)"
    assert failure.unexpected_count == len(raw.sales)


def test_dates_with_one_utc_offset_are_their_local_days(raw: RawTables) -> None:
    with_offset = corrupted(raw, "sales", lambda s: s.assign(date=s["date"].dt.strftime("%Y-%m-%dT00:00:00-05:00")))

    assert validate_tables(with_offset, TODAY).success
    completed = complete_tables(with_offset, MasterDefaults())
    assert completed.sales["date"].min() == raw.sales["date"].min()


def test_two_times_on_one_day_are_duplicates(raw: RawTables) -> None:
    """Completion keeps only the day, so rows that differ by the time of day collide there."""

    def change(sales: pd.DataFrame) -> pd.DataFrame:
        sales = sales.assign(date=sales["date"].dt.strftime("%Y-%m-%d 08:00"))
        sales.loc[9, "date"] = sales.loc[8, "date"].replace("08:00", "17:30")
        return sales

    failures = failures_for(validate_tables(corrupted(raw, "sales", change), TODAY), "sales", "item_id, store_id, date")

    assert [failure.sample_rows for failure in failures] == [[9, 10]]


def test_numeric_ids_match_their_text_in_every_table() -> None:
    """Parquet keeps integer ids as integers; the item master check compared them with text and failed them all."""
    sales = pd.DataFrame(
        {
            "item_id": [7, 7, 8],
            "store_id": [1, 1, 1],
            "date": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-01"]),
            "units": [1, 0, 2],
        }
    )
    items = pd.DataFrame({"item_id": [7, 8], "lead_time_days": [3, 5]})

    assert validate_tables(RawTables(sales=sales, items=items), TODAY).success


def test_an_id_and_its_text_are_one_id() -> None:
    """7 and "7" both become "7" in completion, so they are duplicate keys, not two series."""
    sales = pd.DataFrame(
        {
            "item_id": [7, "7"],
            "store_id": ["S", "S"],
            "date": pd.to_datetime(["2024-01-01", "2024-01-01"]),
            "units": [1, 2],
        }
    )

    failure = single_failure(validate_tables(RawTables(sales=sales), TODAY), "sales", "item_id, store_id, date")

    assert failure.sample_rows == [1, 2]


def test_ids_may_hold_any_character_the_models_once_joined_them_with(raw: RawTables) -> None:
    """Series are kept as their two ids, never joined into one string: a "|" in either is an id like any other."""
    renamed = raw
    for table in ("sales", "items", "inventory", "open_orders", "capacity"):
        for column, suffix in (("item_id", "|a"), ("store_id", "|north")):
            if column in getattr(raw, table):
                renamed = corrupted(renamed, table, lambda frame, c=column, x=suffix: frame.assign(**{c: frame[c] + x}))

    report = validate_tables(renamed, TODAY)

    assert report.success and report.failures == [], report.failures


def test_duplicate_or_empty_store_in_capacity(raw: RawTables) -> None:
    """A second row for a store crashed completion's one-to-one merge."""
    doubled = corrupted(raw, "capacity", lambda c: pd.concat([c, c], ignore_index=True))
    unnamed = corrupted(raw, "capacity", lambda c: set_cells(c, "store_id", [0], None))

    duplicate = single_failure(validate_tables(doubled, TODAY), "capacity", "store_id")
    empty = single_failure(validate_tables(unnamed, TODAY), "capacity", "store_id")

    assert duplicate.rule == "one row per store (no duplicates)" and duplicate.sample_rows == [1, 2]
    assert empty.rule == "must not be empty" and empty.sample_rows == [1]


def test_counts_too_big_for_int64_are_refused(raw: RawTables) -> None:
    """1e30 is a whole number >= 0, and crashed completion's cast to int64."""
    bad = corrupted(raw, "items", lambda items: set_cells(items, "moq", [1], 1e30, dtype="float64"))

    failure = single_failure(validate_tables(bad, TODAY), "items", "moq")

    assert failure.rule == "must be <= 1,000,000,000"
    assert failure.sample_rows == [2]


def test_lead_time_over_a_year_is_refused(raw: RawTables) -> None:
    bad = corrupted(raw, "items", lambda items: set_cells(items, "lead_time_days", [0], 10_000))

    assert single_failure(validate_tables(bad, TODAY), "items", "lead_time_days").rule == "must be <= 365"


@pytest.mark.parametrize(
    ("value", "rule"),
    [
        (np.nan, "must not be empty"),
        (2.5, "must be whole numbers"),
        (1e30, "must be <= 1,000,000,000"),
    ],
)
def test_open_order_quantity_that_completion_cannot_cast(raw: RawTables, value: float, rule: str) -> None:
    bad = corrupted(raw, "open_orders", lambda orders: set_cells(orders, "quantity", [0], value, dtype="float64"))

    failure = single_failure(validate_tables(bad, TODAY), "open_orders", "quantity")

    assert failure.rule == rule
    assert failure.sample_rows == [1]


def test_fractional_or_infinite_stock_on_hand(raw: RawTables) -> None:
    bad = corrupted(
        raw, "inventory", lambda inventory: set_cells(inventory, "on_hand", [0, 1], [2.5, np.inf], dtype="float64")
    )

    rules = {
        failure.rule: failure.sample_rows
        for failure in failures_for(validate_tables(bad, TODAY), "inventory", "on_hand")
    }

    assert rules == {"must be whole numbers": [1, 2], "must be <= 1,000,000,000": [2]}


def test_open_order_arriving_centuries_out(raw: RawTables) -> None:
    """Beyond 2262 a date does not fit completion's datetime64[ns]; no order arrives a year out anyway."""
    snapshot = raw.sales["date"].max()

    def change(orders: pd.DataFrame) -> pd.DataFrame:
        orders = orders.assign(arrival_date=orders["arrival_date"].dt.strftime("%Y-%m-%d"))
        orders.loc[0, "arrival_date"] = "2999-12-31"
        return orders

    failure = single_failure(
        validate_tables(corrupted(raw, "open_orders", change), TODAY), "open_orders", "arrival_date"
    )

    latest = snapshot + pd.Timedelta(days=365)
    assert failure.rule == f"must be within 365 days of the snapshot (by {latest:%Y-%m-%d})"
    assert failure.sample_rows == [1]


@pytest.mark.parametrize("column", ["item_id", "store_id", "quantity", "arrival_date"])
def test_open_order_without_a_required_value(raw: RawTables, column: str) -> None:
    bad = corrupted(raw, "open_orders", lambda orders: set_cells(orders, column, [1], None))

    failure = single_failure(validate_tables(bad, TODAY), "open_orders", column)

    assert failure.rule == "must not be empty"
    assert failure.sample_rows == [2]


@pytest.mark.parametrize("digits", ["٣", "\u00a04"])
def test_whole_numbers_in_text_are_ascii(raw: RawTables, digits: str) -> None:
    """Python's \\d and \\s match an Arabic-Indic three and a no-break space; pd.to_numeric in completion reads
    neither."""
    bad = corrupted(raw, "sales", lambda s: set_cells(s, "units", [2], digits, dtype=str))

    failure = single_failure(validate_tables(bad, TODAY), "sales", "units")

    assert failure.rule == "must be whole numbers between 0 and 1,000,000"
    assert failure.sample_rows == [3]


def test_the_report_lists_errors_then_warnings_with_their_rows_and_the_quarantined_tables() -> None:
    error = ExpectationFailure("sales", "sales.csv", "units", "units >= 0", "critical", 2, [3, 7], [-1, -4])
    warning = ExpectationFailure("items", "items.csv", None, "table has rows", "warning", None, [], [])
    report = ValidationReport({"sales": 10, "items": 2}, 12, failures=[error], warnings=[warning])
    quarantined = {"sales": pd.DataFrame({"units": [-1, -4]})}

    markdown = validation_markdown(CheckedTables(RawTables(pd.DataFrame()), report, quarantined), "[MLflow run](x)")
    table = failures_table(report)

    assert markdown.startswith("# Data validation FAILED\n12 expectations on sales (10 rows), items (2 rows).")
    assert "Quarantined 2 row(s) of sales; see `validation/quarantined_sales.csv`." in markdown
    assert markdown.endswith(
        "| error | sales | units | units >= 0 | 2 | 3, 7 |\n| warning | items |  | table has rows |  |  |"
    )
    assert table["severity"].tolist() == ["critical", "warning"] and table.loc[0, "sample_values"] == [-1, -4]
