import gzip
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from replenish.data.m5 import load_m5
from replenish.data.tables import RawTables
from tests.conftest import REPOSITORY

M5_TINY_PATH = Path(os.environ.get("REPLENISH_M5_PATH", REPOSITORY.parent / "shared/data/m5_tiny"))


@pytest.fixture(scope="module")
def m5_tiny_path() -> Path:
    if not M5_TINY_PATH.is_dir():
        pytest.skip(f"m5_tiny data not found at {M5_TINY_PATH} (set REPLENISH_M5_PATH to the m5_tiny folder)")
    return M5_TINY_PATH


@pytest.fixture(scope="module")
def m5_tiny(m5_tiny_path: Path) -> RawTables:
    return load_m5(m5_tiny_path)


def write_tiny_m5_folder(folder: Path, sales_name: str = "sales.csv", gzip_calendar: bool = False) -> None:
    """3 items × 10 days in two states, with leading zeros, a missing price week and one event day."""
    days = [f"d_{day}" for day in range(1, 11)]
    wide = pd.DataFrame(
        [
            ["HOBBIES_1_001_CA_1", "HOBBIES_1_001", "HOBBIES_1", "HOBBIES", "CA_1", "CA", 0, 0, 0, 2, 0, 1, 0, 0, 3, 1],
            ["FOODS_1_002_TX_1", "FOODS_1_002", "FOODS_1", "FOODS", "TX_1", "TX", 1, 0, 0, 0, 0, 0, 0, 0, 0, 4],
            ["FOODS_1_003_CA_1", "FOODS_1_003", "FOODS_1", "FOODS", "CA_1", "CA", 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        ],
        columns=["id", "item_id", "dept_id", "cat_id", "store_id", "state_id", *days],
    )
    wide.to_csv(folder / sales_name, index=False)
    dates = pd.date_range("2011-01-29", periods=12, freq="D")
    calendar = pd.DataFrame(
        {
            "date": dates.strftime("%Y-%m-%d"),
            "wm_yr_wk": [11101] * 7 + [11102] * 5,
            "weekday": dates.day_name(),
            "d": [f"d_{day}" for day in range(1, 13)],
            "event_name_1": [None] * 8 + ["SuperBowl"] + [None] * 3,
            "snap_CA": [1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1],
            "snap_TX": [0, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0],
            "snap_WI": [0] * 12,
        }
    )
    calendar_path = folder / ("calendar.csv.gz" if gzip_calendar else "calendar.csv")
    calendar.to_csv(calendar_path, index=False, compression="gzip" if gzip_calendar else None)
    # HOBBIES_1_001 has no price in its first week (not on sale), FOODS_1_002 is priced in both.
    prices = pd.DataFrame(
        {
            "store_id": ["CA_1", "TX_1", "TX_1", "CA_1", "CA_1"],
            "item_id": ["HOBBIES_1_001", "FOODS_1_002", "FOODS_1_002", "FOODS_1_003", "HOBBIES_1_001"],
            "wm_yr_wk": [11102, 11101, 11102, 11102, 11999],
            "sell_price": [3.5, 1.25, 1.5, 9.99, 100.0],
        }
    )
    prices.to_csv(folder / "sell_prices.csv", index=False)


def test_hand_made_folder_melts_to_long_sales(tmp_path: Path) -> None:
    write_tiny_m5_folder(tmp_path)
    raw = load_m5(tmp_path)
    sales = raw.sales.set_index(["item_id", "date"])

    # HOBBIES_1_001 first sells on d_4; FOODS_1_002 on d_1; FOODS_1_003 never, so it has no rows.
    assert raw.sales.groupby("item_id").size().to_dict() == {"FOODS_1_002": 10, "HOBBIES_1_001": 7}
    assert sales.loc[("HOBBIES_1_001", pd.Timestamp("2011-02-01")), "units"] == 2
    assert sales.loc[("FOODS_1_002", pd.Timestamp("2011-02-07")), "units"] == 4
    assert raw.sales["units"].sum() == 2 + 1 + 3 + 1 + 1 + 4
    assert raw.sales["date"].dtype == "datetime64[ns]" and raw.sales["units"].dtype == np.int64


def test_hand_made_folder_joins_price_event_and_own_state_snap(tmp_path: Path) -> None:
    write_tiny_m5_folder(tmp_path)
    sales = load_m5(tmp_path).sales.set_index(["item_id", "date"])
    hobbies = sales.loc["HOBBIES_1_001"]
    foods = sales.loc["FOODS_1_002"]

    assert pd.isna(hobbies.loc[pd.Timestamp("2011-02-01"), "price"])  # week 11101 has no price row
    assert hobbies.loc[pd.Timestamp("2011-02-05") :, "price"].eq(3.5).all()
    assert foods.loc[: pd.Timestamp("2011-02-04"), "price"].eq(1.25).all()
    assert foods.loc[pd.Timestamp("2011-02-05") :, "price"].eq(1.5).all()
    assert foods["event"].tolist() == [0] * 8 + [1, 0]
    assert foods["snap"].tolist() == [0, 1, 1, 1, 1, 1, 1, 1, 1, 0]  # TX
    assert hobbies["snap"].tolist() == [0, 0, 0, 0, 0, 0, 1]  # CA, from d_4
    assert (sales["promo"] == 0).all() and (sales["available"] == 1).all()
    assert set(sales["dept_id"]) == {"HOBBIES_1", "FOODS_1"}


def test_hand_made_folder_accepts_kaggle_names_and_gzip(tmp_path: Path) -> None:
    write_tiny_m5_folder(tmp_path, sales_name="sales_train_validation.csv", gzip_calendar=True)
    raw = load_m5(tmp_path)

    assert len(raw.sales) == 17
    assert raw.sources["sales"].endswith("sales_train_validation.csv")
    assert raw.sources["calendar"].endswith("calendar.csv.gz")
    assert raw.items is None and raw.inventory is None and raw.capacity is None


def test_missing_folder_names_path_and_expected_files(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError, match="nowhere") as raised:
        load_m5(missing)
    assert "calendar.csv" in str(raised.value) and "sell_prices.csv" in str(raised.value)


def test_missing_file_names_folder_and_expected_files(tmp_path: Path) -> None:
    write_tiny_m5_folder(tmp_path)
    (tmp_path / "sell_prices.csv").unlink()
    with pytest.raises(FileNotFoundError, match="sell_prices.csv.gz") as raised:
        load_m5(tmp_path)
    assert str(tmp_path) in str(raised.value)


def test_gzip_sales_file_is_read(tmp_path: Path) -> None:
    write_tiny_m5_folder(tmp_path)
    plain = tmp_path / "sales.csv"
    (tmp_path / "sales.csv.gz").write_bytes(gzip.compress(plain.read_bytes()))
    plain.unlink()
    assert len(load_m5(tmp_path).sales) == 17


def test_m5_tiny_has_all_series_and_full_span(m5_tiny: RawTables) -> None:
    sales = m5_tiny.sales
    assert sales.groupby(["item_id", "store_id"]).ngroups == 280
    assert sales["item_id"].nunique() == 28 and sales["store_id"].nunique() == 10
    assert sales["date"].min() == pd.Timestamp("2011-01-29")
    assert sales["date"].max() == pd.Timestamp("2016-04-24")


def test_m5_tiny_drops_leading_zeros(m5_tiny: RawTables) -> None:
    first_rows = m5_tiny.sales.sort_values("date").groupby(["item_id", "store_id"]).head(1)
    assert (first_rows["units"] > 0).all()
    # Every day from a series' first sale to the end is kept.
    per_series = m5_tiny.sales.groupby(["item_id", "store_id"])["date"].agg(["min", "max", "size"])
    assert ((per_series["max"] - per_series["min"]).dt.days + 1 == per_series["size"]).all()


def test_m5_tiny_joins_prices_events_and_own_state_snap(m5_tiny: RawTables) -> None:
    sales = m5_tiny.sales
    # From its first sale on, every tiny series has a weekly price (PROVENANCE: 0.41–11.98 USD).
    assert sales["price"].notna().all()
    assert sales["price"].min() == pytest.approx(0.41) and sales["price"].max() == pytest.approx(11.98)
    assert sales.loc[sales["date"] == pd.Timestamp("2011-02-06"), "event"].eq(1).all()  # SuperBowl
    assert sales.loc[sales["date"] == pd.Timestamp("2011-02-07"), "event"].eq(0).all()
    # Calendar for 2011-02-02: snap_CA 1, snap_TX 0, snap_WI 1.
    one_day = sales[sales["date"] == pd.Timestamp("2011-02-02")]
    snap_by_state = one_day.groupby(one_day["store_id"].str[:2])["snap"].agg(["min", "max"])
    assert snap_by_state.to_dict("index") == {
        "CA": {"min": 1, "max": 1},
        "TX": {"min": 0, "max": 0},
        "WI": {"min": 1, "max": 1},
    }


def test_m5_tiny_loads_quickly(m5_tiny_path: Path) -> None:
    started = time.perf_counter()
    load_m5(m5_tiny_path)
    assert time.perf_counter() - started < 3.0
