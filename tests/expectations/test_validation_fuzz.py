"""Input hardening beyond the corpus: whatever a source hands over, validation either passes and the
rest of the run can consume the result, or refuses with DataValidationError (DataFileError when a
file cannot be read at all). Any other exception is a defect.

Frames start as valid sales (and sometimes an item master, inventory, open orders, capacity) and are
then broken by random edits: dtypes swapped, cells emptied, rows duplicated or dropped, unicode and
look-alike ids, dates as text in several formats, extreme numbers, missing columns, empty tables.
Half of the examples travel through CSV files and the loader, as a user's export does, and half run
with quarantine on, which drops the failing rows and validates the rest.
"""

from __future__ import annotations

import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from expectations.validation import (
    DataValidationError,
    ValidationReport,
    ensure_valid,
    quarantine_failing_rows,
    validate_tables,
)
from models.evaluation import seasonal_naive_forecast
from models.features import build_feature_frame
from replenish.data.long_format import load_long
from replenish.data.tables import DataFileError, MasterDefaults, RawTables, RetailData, complete_tables

# Well after every generated date, so "in the future" only fires on the dates generated to be there.
TODAY = pd.Timestamp("2025-06-01")
# Fixed examples keep CI reproducible; validation (Great Expectations) takes most of the ~0.5 s each.
EXAMPLES = 20

# Ids a real export can hold: blanks, padding, emoji, right-to-left text, combining marks, look-alikes of
# missing values, CSV metacharacters, leading zeros, and the "|" that joins ids into series ids.
ODD_IDS = [
    "",
    " ",
    "  A ",
    "🍎",
    "🇫🇷",
    "שלום",
    "\u200fRTL",
    "e\u0301",
    "NaN",
    "None",
    "NULL",
    "007",
    "7",
    "a|b",
    "comma,id",
    '"quoted"',
    "line\nbreak",
    "tab\tid",
    "\u00a0",
    "ß",
    "İ",
]
DATE_FORMATS = [
    "%Y-%m-%d",
    "%d/%m/%Y",
    "%m/%d/%Y",
    "%Y%m%d",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%d.%m.%Y",
    "%b %d %Y",
    "%Y-%m-%dT%H:%M:%S+02:00",
]
# Values that break a numeric column in every way a file or a join can.
ODD_NUMBERS: list[Any] = [
    -1,
    -0.0,
    0.5,
    1e308,
    -1e308,
    np.inf,
    -np.inf,
    np.nan,
    None,
    2**63,
    -(2**63),
    10**30,
    1e-300,
    "3",
    "3.0",
    " 4 ",
    "\u00a04",
    "1e3",
    "abc",
    "",
    "∞",
    True,
    False,
    "NaN",
    "1,5",
    "٣",
]
ODD_DATES: list[Any] = [
    "",
    "not a date",
    "2024-02-30",
    "1900-01-01",
    "1970-01-01",
    "2999-12-31",
    "0001-01-01",
    "2024-13-01",
    "31/12/2024",
    "2024-01-01T25:00",
    20240101,
    1.5,
    None,
    np.nan,
    True,
    "2024-01-01 12:00:00+05:00",
    "2024-01-01T00:00:00Z",
]

SALES_FLAGS = ["promo", "event", "available", "closed"]
ITEM_NUMBERS = ["unit_cost", "holding_cost_rate", "lead_time_days", "case_pack", "moq", "unit_volume", "sell_price"]


@dataclass(frozen=True)
class Edit:
    """One random corruption of one table, named so a failing example reads as a recipe."""

    table: str
    kind: str
    column: str
    rows: tuple[int, ...]
    value: Any

    def apply(self, frame: pd.DataFrame) -> pd.DataFrame:
        if self.kind == "empty":
            return frame.iloc[0:0]
        if self.kind == "duplicate_rows":
            return pd.concat([frame, frame.iloc[self._rows(frame)]], ignore_index=True)
        if self.kind == "drop_rows":
            return frame.drop(index=frame.index[self._rows(frame)]).reset_index(drop=True)
        if self.column not in frame.columns:
            return frame
        if self.kind == "drop_column":
            return frame.drop(columns=[self.column])
        if self.kind == "cast":
            return frame.assign(**{self.column: _cast(frame[self.column], self.value)})
        if self.kind == "dates_as_text":
            return frame.assign(**{self.column: _dates_as_text(frame[self.column], self.value, self._rows(frame))})
        if self.kind == "set_cells":
            edited = frame.copy()
            edited[self.column] = edited[self.column].astype(object)
            for row in self._rows(frame):
                edited.iat[row, edited.columns.get_loc(self.column)] = self.value
            return edited
        raise AssertionError(f"unknown edit {self.kind}")

    def _rows(self, frame: pd.DataFrame) -> list[int]:
        return sorted({row % len(frame) for row in self.rows}) if len(frame) else []


def _cast(values: pd.Series, dtype: str) -> pd.Series:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if dtype == "str":
            return values.astype(str)
        if dtype == "object":
            return values.astype(object)
        if dtype == "category":
            return values.astype("category")
        if dtype == "bool":
            return values.notna() & (values.astype(str) != "0")
        numbers = pd.to_numeric(values, errors="coerce")
        try:
            return numbers.astype(dtype)
        except (TypeError, ValueError, OverflowError):  # NaN or fractions into an integer dtype
            return numbers


def _dates_as_text(values: pd.Series, formats: tuple[str, ...], rows: list[int]) -> pd.Series:
    """Dates written with the first format, and the given rows with the others (a hand-edited export)."""
    days = pd.to_datetime(values, errors="coerce")
    text = days.dt.strftime(formats[0]).astype(object)
    for position, row in enumerate(rows):
        other = formats[(position + 1) % len(formats)]
        if pd.notna(days.iloc[row]):
            text.iloc[row] = days.iloc[row].strftime(other)
    return text.where(days.notna(), values)


def edits(
    table: str, columns: list[str], number_columns: list[str], date_columns: list[str]
) -> st.SearchStrategy[Edit]:
    rows = st.lists(st.integers(0, 400), min_size=1, max_size=4).map(tuple)
    column = st.sampled_from(columns)
    return st.one_of(
        st.builds(Edit, st.just(table), st.just("empty"), st.just(""), st.just(()), st.none()),
        st.builds(Edit, st.just(table), st.just("duplicate_rows"), st.just(""), rows, st.none()),
        st.builds(
            Edit,
            st.just(table),
            st.just("drop_rows"),
            st.just(""),
            st.lists(st.integers(0, 400), min_size=1, max_size=40).map(tuple),
            st.none(),
        ),
        st.builds(Edit, st.just(table), st.just("drop_column"), column, st.just(()), st.none()),
        st.builds(
            Edit,
            st.just(table),
            st.just("cast"),
            column,
            st.just(()),
            st.sampled_from(["str", "object", "category", "bool", "float64", "int64", "Int64", "Float64"]),
        ),
        st.builds(
            Edit,
            st.just(table),
            st.just("set_cells"),
            column,
            rows,
            st.one_of(st.sampled_from(ODD_IDS), st.sampled_from(ODD_NUMBERS), st.text(max_size=5)),
        ),
        *(
            [
                st.builds(
                    Edit,
                    st.just(table),
                    st.just("set_cells"),
                    st.sampled_from(number_columns),
                    rows,
                    st.sampled_from(ODD_NUMBERS),
                )
            ]
            if number_columns
            else []
        ),
        *(
            [
                st.builds(
                    Edit,
                    st.just(table),
                    st.just("set_cells"),
                    st.sampled_from(date_columns),
                    rows,
                    st.sampled_from(ODD_DATES),
                ),
                st.builds(
                    Edit,
                    st.just(table),
                    st.just("dates_as_text"),
                    st.sampled_from(date_columns),
                    rows,
                    st.lists(st.sampled_from(DATE_FORMATS), min_size=1, max_size=3, unique=True).map(tuple),
                ),
            ]
            if date_columns
            else []
        ),
    )


def ids(prefix: str) -> st.SearchStrategy[list[Any]]:
    plain = st.integers(1, 9).map(lambda n: f"{prefix}_{n}")
    unicode_text = st.text(max_size=4)
    as_number = st.integers(0, 99)
    return st.lists(
        st.one_of(plain, st.sampled_from(ODD_IDS), unicode_text, as_number), min_size=1, max_size=3, unique_by=str
    )


@st.composite
def raw_tables(draw: st.DrawFn) -> RawTables:
    items, stores = draw(ids("ITEM")), draw(ids("STORE"))
    n_days = draw(st.integers(1, 45))
    start = pd.Timestamp("2024-01-01") + pd.Timedelta(days=draw(st.integers(0, 300)))
    keys = pd.MultiIndex.from_product(
        [items, stores, pd.date_range(start, periods=n_days, freq="D")], names=["item_id", "store_id", "date"]
    )
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    sales = keys.to_frame(index=False).assign(units=rng.poisson(draw(st.sampled_from([0.05, 2.0, 50.0])), len(keys)))
    optional = draw(st.lists(st.sampled_from(["price", *SALES_FLAGS, "dept_id", "cat_id", "note"]), unique=True))
    for column in optional:
        if column == "price":
            sales[column] = np.round(rng.uniform(0.5, 9.0, len(sales)), 2)
        elif column in SALES_FLAGS:
            sales[column] = rng.integers(0, 2, len(sales)) if column != "available" else 1
        else:
            sales[column] = draw(st.sampled_from(["FOODS", "FOODS_1", "", "🍎", "x|y"]))
    tables: dict[str, pd.DataFrame] = {"sales": sales}

    if draw(st.booleans()):
        master_ids = draw(st.sampled_from(["all", "all", "some", "extra"]))
        master = pd.DataFrame({"item_id": items if master_ids != "some" else items[:1]})
        if master_ids == "extra":
            master = pd.concat([master, pd.DataFrame({"item_id": ["UNSOLD"]})], ignore_index=True)
        for column in draw(st.lists(st.sampled_from([*ITEM_NUMBERS, "dept_id", "cat_id"]), unique=True)):
            master[column] = draw(st.sampled_from([1, 2.5, 0, 7])) if column in ITEM_NUMBERS else "FOODS_1"
        tables["items"] = master
    series = sales[["item_id", "store_id"]].drop_duplicates().reset_index(drop=True)
    if draw(st.integers(0, 2)) == 0:
        tables["inventory"] = series.assign(on_hand=rng.integers(0, 50, len(series)))
    if draw(st.integers(0, 2)) == 0:
        tables["open_orders"] = series.assign(
            quantity=rng.integers(1, 30, len(series)), arrival_date=start + pd.Timedelta(days=n_days + 3)
        )
    if draw(st.integers(0, 2)) == 0:
        tables["capacity"] = pd.DataFrame({"store_id": stores, "capacity_volume": 500.0})

    numbers = {
        "sales": ["units", "price"],
        "items": ITEM_NUMBERS,
        "inventory": ["on_hand"],
        "open_orders": ["quantity"],
        "capacity": ["capacity_volume"],
    }
    dates = {"sales": ["date"], "open_orders": ["arrival_date"]}
    for table, frame in list(tables.items()):
        # Sales takes most of the damage: it is the one table every source has.
        for edit in draw(
            st.lists(
                edits(
                    table, list(frame.columns), [c for c in numbers.get(table, []) if c in frame], dates.get(table, [])
                ),
                max_size=3 if table == "sales" else 1,
            )
        ):
            tables[table] = edit.apply(tables[table])
    return RawTables(**tables, sources={table: f"{table}.csv" for table in tables})


def through_csv_files(raw: RawTables, folder: Path) -> RawTables:
    """The tables as a user's export delivers them: CSV files in a folder, read by the loader."""
    for table in ("sales", "items", "inventory", "open_orders", "capacity"):
        frame = getattr(raw, table)
        if frame is not None:
            frame.to_csv(folder / f"{table}.csv", index=False)
    return load_long(folder)


def validated(raw: RawTables, quarantine: bool) -> tuple[RawTables, ValidationReport]:
    """What the validation task does: with quarantine, drop the rows that break row rules and validate the rest."""
    report = validate_tables(raw, TODAY)
    kept = quarantine_failing_rows(raw, report) if quarantine and not report.success else None
    return (raw, report) if kept is None else (kept.tables, validate_tables(kept.tables, TODAY))


def assert_consumable(data: RetailData) -> None:
    """What RetailData promises the forecasting and ordering steps, and two of those steps on it."""
    sales = data.sales
    assert not sales.empty
    assert not sales.duplicated(["item_id", "store_id", "date"]).any(), "validated sales hold duplicate keys"
    assert sales["date"].dtype == "datetime64[ns]" and (sales["date"] == sales["date"].dt.normalize()).all()
    assert sales["units"].dtype == "int64" and (sales["units"] >= 0).all()
    for flag in ("promo", "event", "available"):
        assert sales[flag].isin([0, 1]).all(), flag
    assert set(data.items["item_id"]) == set(sales["item_id"]) and data.items["item_id"].is_unique
    assert (data.inventory["on_hand"] >= 0).all()
    features = build_feature_frame(sales)
    assert len(features) == len(sales)
    forecast = seasonal_naive_forecast(sales[["item_id", "store_id", "date", "units"]], horizon=7)
    series = sales[["item_id", "store_id"]].drop_duplicates()
    assert len(forecast) == 7 * len(series)
    assert set(map(tuple, forecast[["item_id", "store_id"]].to_numpy())) == set(map(tuple, series.to_numpy()))


@pytest.mark.filterwarnings("ignore::UserWarning", "ignore::RuntimeWarning", "ignore::FutureWarning")
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(raw=raw_tables(), via_csv=st.booleans(), quarantine=st.booleans())
def test_validation_passes_consumable_data_or_refuses_with_a_data_error(
    raw: RawTables, via_csv: bool, quarantine: bool
) -> None:
    if via_csv:
        with tempfile.TemporaryDirectory() as folder:
            try:
                raw = through_csv_files(raw, Path(folder))
            except DataFileError:
                return
    try:
        raw, report = validated(raw, quarantine)
        ensure_valid(report)
    except DataValidationError as error:
        assert error.failures and all(failure.rule and failure.file in str(error) for failure in error.failures)
        return
    assert_consumable(complete_tables(raw, MasterDefaults()))
