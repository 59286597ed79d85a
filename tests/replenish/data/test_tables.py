import pickle

import numpy as np
import pandas as pd
import pytest

from replenish.data.tables import (
    SALES_COLUMNS,
    DataFileError,
    MasterDefaults,
    RawTables,
    RetailData,
    complete_tables,
    parse_days,
    without_last_days,
)


def minimal_sales() -> pd.DataFrame:
    """Untyped, unsorted sales as a user CSV would give them: only the required columns."""
    return pd.DataFrame(
        {
            "item_id": ["B_2", "A_1", "A_1", "B_2", "A_1", "SOLO"],
            "store_id": ["S1", "S1", "S1", "S1", "S2", "S1"],
            "date": [
                "2024-01-02 09:00",
                "2024-01-02 10:30",
                "2024-01-01 00:00",
                "2024-01-01 08:00",
                "2024-01-01 13:45",
                "2024-01-02 17:00",
            ],
            "units": [3.0, 2.0, 4.0, 1.0, 0.0, 7.0],
        }
    )


def test_required_columns_only_get_documented_defaults_and_types() -> None:
    data = complete_tables(RawTables(sales=minimal_sales()), MasterDefaults())

    assert isinstance(data, RetailData)
    sales = data.sales
    assert list(sales.columns) == SALES_COLUMNS + ["dept_id", "cat_id"]
    assert sales["units"].dtype == np.int64
    assert sales["date"].dtype == "datetime64[ns]"
    assert sales["price"].dtype == np.float64 and sales["price"].isna().all()
    for flag, default in {"promo": 0, "event": 0, "available": 1}.items():
        assert sales[flag].dtype == np.int8
        assert (sales[flag] == default).all()
    for column in ("item_id", "store_id", "dept_id", "cat_id"):
        assert pd.api.types.is_string_dtype(sales[column])
    assert (sales["date"] == sales["date"].dt.normalize()).all()
    assert data.snapshot_date == pd.Timestamp("2024-01-02")


def test_sales_are_sorted_by_item_store_date() -> None:
    sales = complete_tables(RawTables(sales=minimal_sales()), MasterDefaults()).sales

    keys = list(zip(sales["item_id"], sales["store_id"], sales["date"], strict=False))
    assert keys == sorted(keys)
    assert sales.index.equals(pd.RangeIndex(len(sales)))


def test_hierarchy_is_derived_from_item_id_prefix_when_absent() -> None:
    sales = complete_tables(RawTables(sales=minimal_sales()), MasterDefaults()).sales
    hierarchy = sales.drop_duplicates("item_id").set_index("item_id")[["dept_id", "cat_id"]]

    assert hierarchy.loc["A_1"].tolist() == ["A", "A"]
    assert hierarchy.loc["SOLO"].tolist() == ["unknown", "unknown"]


def test_m5_style_item_ids_give_m5_dept_and_category() -> None:
    raw_sales = pd.DataFrame({"item_id": ["FOODS_1_033"], "store_id": ["CA_1"], "date": ["2016-04-24"], "units": [1]})
    data = complete_tables(RawTables(sales=raw_sales), MasterDefaults())

    assert data.sales[["dept_id", "cat_id"]].iloc[0].tolist() == ["FOODS_1", "FOODS"]
    assert data.items[["dept_id", "cat_id"]].iloc[0].tolist() == ["FOODS_1", "FOODS"]


def test_item_master_defaults_without_a_master() -> None:
    raw_sales = minimal_sales().assign(price=[2.0, 10.0, 20.0, 4.0, 30.0, np.nan])
    defaults = MasterDefaults()
    items = complete_tables(RawTables(sales=raw_sales), defaults).items.set_index("item_id")

    assert items.index.tolist() == ["A_1", "B_2", "SOLO"]
    # A_1 prices 10, 20, 30: median 20, so unit cost 0.6 × 20 = 12.
    assert items.loc["A_1", "sell_price"] == pytest.approx(20.0)
    assert items.loc["A_1", "unit_cost"] == pytest.approx(12.0)
    # SOLO never has a price: default unit cost, and a sell price that keeps the documented share.
    assert items.loc["SOLO", "unit_cost"] == pytest.approx(1.0)
    assert items.loc["SOLO", "sell_price"] == pytest.approx(1.0 / 0.6)
    assert (items["holding_cost_rate"] == 0.25).all()
    assert (items["lead_time_days"] == 7).all() and items["lead_time_days"].dtype == np.int64
    assert (items["case_pack"] == 1).all() and items["case_pack"].dtype == np.int64
    assert (items["moq"] == 0).all() and items["moq"].dtype == np.int64
    assert (items["unit_volume"] == 1.0).all()


def test_partial_item_master_keeps_its_values_and_gets_missing_columns_from_defaults() -> None:
    master = pd.DataFrame(
        {
            "item_id": ["A_1", "B_2", "SOLO"],
            "cat_id": ["Cat", "Cat", "Other"],
            "unit_cost": [5.0, np.nan, 2.0],
            "lead_time_days": [3.0, 10.0, 4.0],
            "supplier": ["x", "y", "z"],
        }
    )
    defaults = MasterDefaults(case_pack=6, unit_volume=0.5)
    data = complete_tables(RawTables(sales=minimal_sales(), items=master), defaults)
    items = data.items.set_index("item_id")

    assert items.loc["A_1", "unit_cost"] == 5.0
    assert items.loc["B_2", "unit_cost"] == 1.0  # cell missing and no price: default unit cost
    assert items["lead_time_days"].tolist() == [3, 10, 4] and items["lead_time_days"].dtype == np.int64
    assert (items["case_pack"] == 6).all()
    assert (items["unit_volume"] == 0.5).all()
    assert items.loc["A_1", "cat_id"] == "Cat"
    assert items.loc["A_1", "dept_id"] == "A"
    assert list(data.items.columns)[-1] == "supplier"
    # The master's category reaches the sales rows too, so the two tables agree.
    assert set(data.sales.loc[data.sales["item_id"] == "SOLO", "cat_id"]) == {"Other"}


def test_default_inventory_is_days_of_cover_times_recent_mean() -> None:
    dates = pd.date_range("2024-01-01", periods=40, freq="D")
    raw_sales = pd.DataFrame(
        {
            "item_id": "A_1",
            "store_id": "S1",
            "date": dates.strftime("%Y-%m-%d"),
            # 100 a day until the last 28 days, then 3 a day: only the recent level counts.
            "units": [100] * 12 + [3] * 28,
        }
    )
    data = complete_tables(RawTables(sales=raw_sales), MasterDefaults(days_of_cover_on_hand=10.0))

    assert data.inventory.to_dict("records") == [{"item_id": "A_1", "store_id": "S1", "on_hand": 30}]
    assert data.inventory["on_hand"].dtype == np.int64


def test_default_capacity_is_headroom_times_on_hand_volume_with_floor_of_one() -> None:
    raw_sales = minimal_sales()
    inventory = pd.DataFrame({"item_id": ["A_1", "B_2"], "store_id": ["S1", "S1"], "on_hand": [10, 4]})
    defaults = MasterDefaults(unit_volume=2.0, capacity_headroom=3.0)
    data = complete_tables(RawTables(sales=raw_sales, inventory=inventory), defaults)

    capacity = data.capacity.set_index("store_id")["capacity_volume"]
    assert capacity.to_dict() == {"S1": 3.0 * 2.0 * 14, "S2": 1.0}
    assert data.capacity["capacity_volume"].dtype == np.float64


def test_given_inventory_lists_only_stocked_series_others_have_nothing_on_hand() -> None:
    inventory = pd.DataFrame({"item_id": ["A_1"], "store_id": ["S2"], "on_hand": [5.0]})
    data = complete_tables(RawTables(sales=minimal_sales(), inventory=inventory), MasterDefaults())

    on_hand = data.inventory.set_index(["item_id", "store_id"])["on_hand"]
    assert on_hand.to_dict() == {("A_1", "S1"): 0, ("A_1", "S2"): 5, ("B_2", "S1"): 0, ("SOLO", "S1"): 0}


def test_given_capacity_is_kept_and_missing_stores_are_filled() -> None:
    capacity = pd.DataFrame({"store_id": ["S1"], "capacity_volume": [250]})
    data = complete_tables(RawTables(sales=minimal_sales(), capacity=capacity), MasterDefaults())

    capacity_by_store = data.capacity.set_index("store_id")["capacity_volume"]
    assert capacity_by_store["S1"] == 250.0
    assert capacity_by_store["S2"] >= 1.0


def test_open_orders_are_cast_and_absent_open_orders_are_an_empty_typed_table() -> None:
    orders = pd.DataFrame(
        {
            "item_id": ["B_2", "A_1"],
            "store_id": ["S1", "S1"],
            "quantity": [12.0, 6.0],
            "arrival_date": ["2024-01-09", "2024-01-05"],
        }
    )
    given = complete_tables(RawTables(sales=minimal_sales(), open_orders=orders), MasterDefaults()).open_orders
    absent = complete_tables(RawTables(sales=minimal_sales()), MasterDefaults()).open_orders

    assert given["item_id"].tolist() == ["A_1", "B_2"]
    assert given["quantity"].dtype == np.int64 and given["arrival_date"].dtype == "datetime64[ns]"
    assert absent.empty and list(absent.columns) == ["item_id", "store_id", "quantity", "arrival_date"]
    assert absent["quantity"].dtype == np.int64 and absent["arrival_date"].dtype == "datetime64[ns]"


def test_optional_sales_columns_are_cast_and_gaps_filled() -> None:
    raw_sales = minimal_sales().assign(
        price=["1.5", "2", "2", "1.5", "2", "3"],
        promo=[True, False, False, True, False, False],
        available=[1.0, np.nan, 0.0, 1.0, 1.0, 1.0],
        snap=[0, 1, 0, 1, 0, 1],
    )
    sales = complete_tables(RawTables(sales=raw_sales), MasterDefaults()).sales

    assert sales["price"].dtype == np.float64
    assert sales["promo"].dtype == np.int8 and sales["promo"].sum() == 2
    assert sales["available"].dtype == np.int8 and sales["available"].sum() == 5
    assert list(sales.columns)[-1] == "snap"


def test_numeric_ids_become_strings() -> None:
    raw_sales = pd.DataFrame(
        {"item_id": [101, 101], "store_id": [1, 1], "date": ["2024-01-01", "2024-01-02"], "units": [1, 2]}
    )
    data = complete_tables(RawTables(sales=raw_sales), MasterDefaults())

    assert data.sales["item_id"].tolist() == ["101", "101"]
    assert data.items["item_id"].tolist() == ["101"]
    assert data.capacity["store_id"].tolist() == ["1"]


def test_sources_are_carried_over() -> None:
    raw = RawTables(sales=minimal_sales(), sources={"sales": "/data/sales.csv"})
    assert complete_tables(raw, MasterDefaults()).sources == {"sales": "/data/sales.csv"}


def test_master_defaults_reject_a_non_positive_cost_share() -> None:
    with pytest.raises(ValueError, match="unit_cost_share_of_price"):
        MasterDefaults(unit_cost_share_of_price=0.0)


def test_data_file_error_names_the_file_and_survives_pickling() -> None:
    error = DataFileError("/data/sales.csv", "empty file")
    restored = pickle.loads(pickle.dumps(error))

    assert isinstance(error, ValueError)
    assert "/data/sales.csv" in str(error) and "empty file" in str(error)
    assert str(restored) == str(error) and restored.path == error.path


def sales_with_absent_dates() -> pd.DataFrame:
    """A_1 skips Jan 3-4 and Jan 7, B_2 skips Jan 2; an extra source column (snap) comes along."""
    return pd.DataFrame(
        {
            "item_id": ["A_1"] * 5 + ["B_2"] * 3,
            "store_id": "S1",
            "date": [
                "2024-01-01",
                "2024-01-02",
                "2024-01-05",
                "2024-01-06",
                "2024-01-08",
                "2024-01-01",
                "2024-01-03",
                "2024-01-04",
            ],
            "units": [1, 2, 3, 4, 5, 6, 7, 8],
            "price": 2.0,
            "promo": 1,
            "snap": 1,
        }
    )


def test_absent_dates_inside_a_series_become_closed_censored_rows() -> None:
    recorded = complete_tables(RawTables(sales=sales_with_absent_dates().drop(columns="snap")), MasterDefaults())
    data = complete_tables(RawTables(sales=sales_with_absent_dates()), MasterDefaults())

    sales = data.sales
    assert (sales.groupby(["item_id", "store_id"])["date"].diff().dropna() == pd.Timedelta(days=1)).all()
    filled = sales[sales["closed"] == 1]
    assert [f"{row.item_id} {row.date:%m-%d}" for row in filled.itertuples()] == [
        "A_1 01-03",
        "A_1 01-04",
        "A_1 01-07",
        "B_2 01-02",
    ]
    assert (filled["available"] == 0).all() and (filled["units"] == 0).all()
    assert (filled[["promo", "event"]] == 0).all().all()
    assert filled["price"].isna().all() and filled["snap"].isna().all()
    assert (filled["dept_id"] == filled["item_id"].str.rpartition("_")[0]).all()
    recorded_rows = sales[sales["closed"] == 0]
    assert recorded_rows["units"].tolist() == [1, 2, 3, 4, 5, 6, 7, 8] and (recorded_rows["available"] == 1).all()
    assert sales["closed"].dtype == np.int8 and list(sales.columns)[-2:] == ["snap", "closed"]
    assert sales.index.equals(pd.RangeIndex(len(sales)))
    # The default opening stock comes from the days the source recorded, not from the filled zeros.
    pd.testing.assert_frame_equal(data.inventory, recorded.inventory)


def test_absent_dates_can_be_marked_missing_instead_of_closed() -> None:
    raw = sales_with_absent_dates().assign(closed=0)
    sales = complete_tables(RawTables(sales=raw), MasterDefaults(), absent_dates="missing").sales

    filled = sales[sales["missing"] == 1]
    assert len(filled) == 4 and (filled["available"] == 0).all() and (filled["units"] == 0).all()
    assert (sales["closed"] == 0).all() and sales["missing"].dtype == np.int8


def test_filling_many_series_matches_a_full_daily_grid() -> None:
    rng = np.random.default_rng(0)
    dates = pd.date_range("2024-01-01", periods=60, freq="D", unit="ns")
    grid = pd.DataFrame(
        {
            "item_id": np.repeat([f"I_{i}" for i in range(40)], len(dates)),
            "store_id": "S1",
            "date": np.tile(dates, 40),
            "units": rng.integers(1, 9, 40 * len(dates)),
        }
    )
    grid = grid.sort_values(["item_id", "store_id", "date"], ignore_index=True)
    first_or_last = grid["date"].isin([dates[0], dates[-1]])
    raw = grid[first_or_last | (rng.random(len(grid)) > 0.2)].sample(frac=1, random_state=1)

    sales = complete_tables(RawTables(sales=raw), MasterDefaults()).sales

    pd.testing.assert_frame_equal(sales[["item_id", "store_id", "date"]], grid[["item_id", "store_id", "date"]])
    absent = ~grid.index.isin(raw.index)
    assert (sales["closed"].to_numpy() == absent).all()
    assert (sales["units"].to_numpy() == np.where(absent, 0, grid["units"])).all()


def test_parse_days_is_one_reading_of_a_date_column() -> None:
    """Validation checks, and completion keeps, what this gives: local days, NaT for anything else."""
    days = parse_days(pd.Series(["2024-03-16 17:30", "2024-03-17 08:00", "2024-03-18", "16/03/2024", "", None]))
    offset = parse_days(pd.Series(["2024-03-16T23:30:00-05:00", "2024-03-17T00:15:00-05:00"]))
    mixed_offsets = parse_days(pd.Series(["2024-03-16T00:00:00+02:00", "2024-03-16T00:00:00Z"]))

    assert days.tolist()[:2] == [pd.Timestamp("2024-03-16"), pd.Timestamp("2024-03-17")]
    assert days.iloc[2:].isna().all()  # the first value sets the format; an empty cell is no date
    assert offset.tolist() == [pd.Timestamp("2024-03-16"), pd.Timestamp("2024-03-17")]
    assert mixed_offsets.isna().all()


def test_without_last_days_keeps_the_tables_as_they_stood_then() -> None:
    sales = pd.DataFrame(
        {
            "item_id": "A",
            "store_id": "S",
            "units": 1,
            "date": pd.date_range("2024-01-01", periods=10).strftime("%Y-%m-%d"),
        }
    )
    raw = RawTables(
        sales=sales,
        items=pd.DataFrame({"item_id": ["A"]}),
        inventory=pd.DataFrame({"item_id": ["A"], "store_id": ["S"], "on_hand": [5]}),
    )

    earlier = without_last_days(raw, 3)

    assert earlier.sales["date"].tolist() == [f"2024-01-{day:02d}" for day in range(1, 8)]
    assert earlier.items is raw.items and earlier.inventory is None  # the inventory describes the last day
    assert without_last_days(raw, 0) is raw
