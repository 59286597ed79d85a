"""Regenerate the corpus of bad inputs: python tests/data/bad/make_corpus.py

Every case starts from the same small, valid long-format set (2 items x 1 store x 60 days) and
breaks exactly one rule, so each file shows one thing that real extracts get wrong.
"""

from __future__ import annotations

import gzip
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent


def valid_sales() -> pd.DataFrame:
    dates = pd.date_range("2024-01-01", periods=60, freq="D")
    rng = np.random.default_rng(11)
    return pd.DataFrame(
        {
            "item_id": np.repeat(["ITEM_A", "ITEM_B"], len(dates)),
            "store_id": "STORE_1",
            "date": np.tile(dates.strftime("%Y-%m-%d"), 2),
            "units": rng.poisson(4, 2 * len(dates)),
            "price": 2.5,
            "promo": 0,
        }
    )


def valid_items() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "item_id": ["ITEM_A", "ITEM_B"],
            "unit_cost": [1.5, 1.5],
            "lead_time_days": [3, 5],
            "case_pack": [6, 12],
            "moq": [0, 0],
            "unit_volume": [1.0, 2.0],
        }
    )


def with_cells(frame: pd.DataFrame, column: str, rows: list[int], value: object) -> pd.DataFrame:
    frame = frame.copy()
    frame[column] = frame[column].astype(object)
    frame.loc[rows, column] = value
    return frame


def write_folder(name: str, sales: pd.DataFrame, items: pd.DataFrame) -> None:
    folder = HERE / name
    folder.mkdir(exist_ok=True)
    sales.to_csv(folder / "sales.csv", index=False)
    items.to_csv(folder / "items.csv", index=False)


def main() -> None:
    sales = valid_sales()
    sales.drop(columns="units").to_csv(HERE / "missing_column.csv", index=False)
    with_cells(sales, "units", [7, 8], "ten").to_csv(HERE / "wrong_dtype.csv", index=False)
    with_cells(sales, "units", [4, 70], -3).to_csv(HERE / "negative_units.csv", index=False)
    with_cells(sales, "units", [9], np.nan).to_csv(HERE / "nan_units.csv", index=False)
    pd.concat([sales, sales.iloc[[12]]], ignore_index=True).to_csv(HERE / "duplicate_keys.csv", index=False)
    (HERE / "empty_file.csv").write_bytes(b"")
    sales.head(0).to_csv(HERE / "header_only.csv", index=False)
    (HERE / "non_utf8.csv").write_bytes(
        sales.head(5).to_csv(index=False).replace("ITEM_A", "ITEM_\xc4").encode("latin-1")
    )
    with_cells(sales, "date", [3], "31/02/2024x").to_csv(HERE / "unparseable_dates.csv", index=False)
    future = sales.copy()
    future.loc[59, "date"] = "2099-03-01"
    future.to_csv(HERE / "future_dates.csv", index=False)
    with_cells(sales, "units", [20], 1e12).to_csv(HERE / "absurd_values.csv", index=False)
    write_folder("item_without_master", sales, valid_items().head(1))
    write_folder("negative_lead_time", sales, with_cells(valid_items(), "lead_time_days", [1], -2))
    write_folder("case_pack_zero", sales, with_cells(valid_items(), "case_pack", [0], 0))
    sales.drop(index=range(20, 45)).to_csv(HERE / "large_gap.csv", index=False)
    sales.to_csv(HERE / "wrong_delimiter.csv", index=False, sep=";")
    sales.rename(columns={"item_id": "sku", "units": "qty"}).to_parquet(HERE / "wrong_schema.parquet", index=False)
    with_cells(sales, "price", [30], -1.0).to_csv(HERE / "negative_price.csv", index=False)
    compressed = gzip.compress(sales.to_csv(index=False).encode(), mtime=0)
    (HERE / "truncated.csv.gz").write_bytes(compressed[: len(compressed) // 2])  # a download cut short
    with zipfile.ZipFile(HERE / "two_files.csv.zip", "w") as archive:  # which of the two is the sales table?
        archive.writestr("sales_2023.csv", sales.head(60).to_csv(index=False))
        archive.writestr("sales_2024.csv", sales.tail(60).to_csv(index=False))
    write_frequency_cases()


def periodic_sales(dates: pd.DatetimeIndex, items: list[str]) -> pd.DataFrame:
    rng = np.random.default_rng(12)
    return pd.DataFrame(
        {
            "item_id": np.repeat(items, len(dates)),
            "store_id": "STORE_1",
            "date": np.tile(dates.strftime("%Y-%m-%d"), len(items)),
            "units": rng.poisson(20, len(items) * len(dates)),
        }
    )


def write_frequency_cases() -> None:
    """Dates that follow no one frequency: a weekly series among daily ones (months dated mid-month and
    a stray weekday are refused by the same rules, tested on the contract in
    tests/replenish/data/test_frequencies.py)."""
    daily = valid_sales().loc[lambda frame: frame["item_id"] == "ITEM_A", ["item_id", "store_id", "date", "units"]]
    weekly = periodic_sales(pd.date_range("2024-01-01", periods=12, freq="W-MON"), ["ITEM_B"])
    pd.concat([daily, weekly], ignore_index=True).to_csv(HERE / "mixed_frequencies.csv", index=False)


if __name__ == "__main__":
    main()
