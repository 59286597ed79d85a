"""Loader for data in the M5 competition layout (Walmart unit sales, Kaggle 2020)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from replenish.data.tables import RawTables

SALES_FILE_NAMES = (
    "sales.csv",
    "sales.csv.gz",
    # The evaluation file extends the validation file by 28 days, so it wins when both are present.
    "sales_train_evaluation.csv",
    "sales_train_evaluation.csv.gz",
    "sales_train_validation.csv",
    "sales_train_validation.csv.gz",
)
CALENDAR_FILE_NAMES = ("calendar.csv", "calendar.csv.gz")
SELL_PRICES_FILE_NAMES = ("sell_prices.csv", "sell_prices.csv.gz")
SERIES_ID_COLUMNS = ["id", "item_id", "dept_id", "cat_id", "store_id", "state_id"]


def load_m5(folder: Path) -> RawTables:
    """Long sales (with price, event and the store's own SNAP flag) from an M5-layout folder.

    M5 lists every series from d_1, although many items only went on sale later: the days
    before a series' first sale are "not yet on sale", not zero demand and not stockouts, so
    those rows are dropped (a series that never sells has no rows at all). Every kept row has
    available = 1 because M5 does not record stockouts, and promo = 0 because M5 has no promotions.
    Extra column: `snap`. M5 has no item master, inventory or capacity; those stay None.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"M5 folder {folder} does not exist; expected it to hold {_expected_files()}")
    sales_path = _find_file(folder, SALES_FILE_NAMES)
    calendar_path = _find_file(folder, CALENDAR_FILE_NAMES)
    sell_prices_path = _find_file(folder, SELL_PRICES_FILE_NAMES)

    wide = pd.read_csv(sales_path, dtype={column: str for column in SERIES_ID_COLUMNS})
    calendar = pd.read_csv(calendar_path, dtype={"d": str, "event_name_1": str})
    sell_prices = pd.read_csv(sell_prices_path, dtype={"store_id": str, "item_id": str})
    return RawTables(
        sales=_long_sales(wide, calendar, sell_prices),
        sources={"sales": str(sales_path), "calendar": str(calendar_path), "sell_prices": str(sell_prices_path)},
    )


def _expected_files() -> str:
    return f"{' or '.join(SALES_FILE_NAMES)}; {' or '.join(CALENDAR_FILE_NAMES)}; {' or '.join(SELL_PRICES_FILE_NAMES)}"


def _find_file(folder: Path, names: tuple[str, ...]) -> Path:
    for name in names:
        if (folder / name).is_file():
            return folder / name
    raise FileNotFoundError(f"M5 folder {folder} has none of {', '.join(names)}; expected {_expected_files()}")


def _long_sales(wide: pd.DataFrame, calendar: pd.DataFrame, sell_prices: pd.DataFrame) -> pd.DataFrame:
    day_columns = [column for column in wide.columns if column.startswith("d_")]
    calendar_by_day = calendar.set_index("d")
    unknown_days = pd.Index(day_columns).difference(calendar_by_day.index)
    if len(unknown_days) > 0:
        raise ValueError(f"M5 calendar lacks {len(unknown_days)} sales day(s), e.g. {list(unknown_days[:3])}")
    day_calendar = calendar_by_day.loc[day_columns]

    units = wide[day_columns].to_numpy(dtype=np.int64)
    has_sale = units > 0
    first_sale_day = has_sale.argmax(axis=1)
    on_sale = has_sale.any(axis=1)[:, None] & (np.arange(len(day_columns)) >= first_sale_day[:, None])
    # Row-major nonzero keeps rows grouped by series with days ascending, like the file itself.
    series_index, day_index = np.nonzero(on_sale)

    day_dates = pd.to_datetime(day_calendar["date"], format="%Y-%m-%d").to_numpy(dtype="datetime64[ns]")
    is_event_day = day_calendar["event_name_1"].notna().to_numpy()
    return pd.DataFrame(
        {
            "item_id": wide["item_id"].to_numpy()[series_index],
            "store_id": wide["store_id"].to_numpy()[series_index],
            "date": day_dates[day_index],
            "units": units[series_index, day_index],
            "price": _row_prices(wide, day_calendar, sell_prices, series_index, day_index),
            "promo": np.zeros(len(series_index), dtype=np.int8),
            "event": is_event_day[day_index].astype(np.int8),
            "available": np.ones(len(series_index), dtype=np.int8),
            "dept_id": wide["dept_id"].to_numpy()[series_index],
            "cat_id": wide["cat_id"].to_numpy()[series_index],
            "snap": _row_own_state_snap(wide, day_calendar, series_index, day_index),
        }
    )


def _row_prices(
    wide: pd.DataFrame,
    day_calendar: pd.DataFrame,
    sell_prices: pd.DataFrame,
    series_index: np.ndarray,
    day_index: np.ndarray,
) -> np.ndarray:
    """Sell price of each row's series and week; NaN in weeks without a price row (M5: not on sale)."""
    day_week_code, weeks = pd.factorize(day_calendar["wm_yr_wk"])
    series_keys = pd.MultiIndex.from_arrays([wide["store_id"], wide["item_id"]])
    price_series = series_keys.get_indexer(pd.MultiIndex.from_arrays([sell_prices["store_id"], sell_prices["item_id"]]))
    price_week = weeks.get_indexer(sell_prices["wm_yr_wk"])
    in_sales = (price_series >= 0) & (price_week >= 0)
    weekly_price = np.full((len(wide), len(weeks)), np.nan)
    weekly_price[price_series[in_sales], price_week[in_sales]] = sell_prices["sell_price"].to_numpy(dtype=np.float64)[
        in_sales
    ]
    return weekly_price[series_index, day_week_code[day_index]]


def _row_own_state_snap(
    wide: pd.DataFrame, day_calendar: pd.DataFrame, series_index: np.ndarray, day_index: np.ndarray
) -> np.ndarray:
    """SNAP flag of each row's day in the state of the row's store (calendar column snap_<state>)."""
    state_code, states = pd.factorize(wide["state_id"])
    snap_columns = [f"snap_{state}" for state in states]
    missing = [column for column in snap_columns if column not in day_calendar.columns]
    if missing:
        raise ValueError(f"M5 calendar lacks SNAP column(s) {missing}")
    day_by_state = day_calendar[snap_columns].to_numpy(dtype=np.int8)
    return day_by_state[day_index, state_code[series_index]]
