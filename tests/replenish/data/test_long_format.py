import zipfile
from pathlib import Path

import pandas as pd
import pytest

from replenish.data.long_format import load_long
from replenish.data.tables import DataFileError


def long_sales() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "item_id": ["007", "007", "A"],
            "store_id": ["01", "01", "02"],
            "date": ["2024-01-01", "2024-01-02", "2024-01-01"],
            "units": [3, 0, 5],
            "price": [1.5, 1.5, None],
            "promo": [0, 1, 0],
            "available": [1, 1, 0],
        }
    )


def test_csv_round_trip_keeps_id_strings_and_leaves_other_values_as_read(tmp_path: Path) -> None:
    path = tmp_path / "sales.csv"
    long_sales().to_csv(path, index=False)
    raw = load_long(path)

    assert raw.sales["item_id"].tolist() == ["007", "007", "A"]
    assert raw.sales["store_id"].tolist() == ["01", "01", "02"]
    assert raw.sales["units"].tolist() == [3, 0, 5]
    # Dates are not parsed here: coercion is validation's and completion's business.
    assert raw.sales["date"].tolist() == ["2024-01-01", "2024-01-02", "2024-01-01"]
    assert raw.sources == {"sales": str(path.resolve())}
    assert raw.items is None and raw.inventory is None and raw.open_orders is None and raw.capacity is None


def test_parquet_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "history.parquet"
    long_sales().to_parquet(path, index=False)
    raw = load_long(path)

    pd.testing.assert_frame_equal(raw.sales, long_sales(), check_dtype=False)
    assert raw.sources == {"sales": str(path.resolve())}


def test_wrong_types_survive_to_validation(tmp_path: Path) -> None:
    path = tmp_path / "sales.csv"
    path.write_text("item_id,store_id,date,units\nA,S,2024-01-01,three\nA,S,not a date,-1\n", encoding="utf-8")
    sales = load_long(path).sales

    assert sales["units"].tolist() == ["three", "-1"]
    assert sales["date"].tolist() == ["2024-01-01", "not a date"]


def test_header_only_csv_is_an_empty_frame(tmp_path: Path) -> None:
    path = tmp_path / "sales.csv"
    path.write_text("item_id,store_id,date,units\n", encoding="utf-8")
    sales = load_long(path).sales

    assert sales.empty and list(sales.columns) == ["item_id", "store_id", "date", "units"]


def test_byte_order_mark_is_not_part_of_the_first_column_name(tmp_path: Path) -> None:
    path = tmp_path / "sales.csv"
    path.write_bytes("item_id,store_id,date,units\nA,S,2024-01-01,1\n".encode("utf-8-sig"))
    assert list(load_long(path).sales.columns)[0] == "item_id"


def test_folder_with_optional_tables_in_mixed_formats(tmp_path: Path) -> None:
    long_sales().to_csv(tmp_path / "sales.csv", index=False)
    pd.DataFrame({"item_id": ["007", "A"], "unit_cost": [1.0, 2.0]}).to_parquet(tmp_path / "items.parquet")
    pd.DataFrame({"item_id": ["007"], "store_id": ["01"], "on_hand": [4]}).to_csv(
        tmp_path / "inventory.csv", index=False
    )
    pd.DataFrame({"store_id": ["01", "02"], "capacity_volume": [100.0, 50.0]}).to_csv(
        tmp_path / "capacity.csv", index=False
    )
    raw = load_long(tmp_path)

    assert len(raw.sales) == 3
    assert raw.items is not None and raw.items["unit_cost"].tolist() == [1.0, 2.0]
    assert raw.inventory is not None and raw.inventory["store_id"].tolist() == ["01"]
    assert raw.capacity is not None and raw.capacity["store_id"].tolist() == ["01", "02"]
    assert raw.open_orders is None
    assert raw.sources == {
        "sales": str((tmp_path / "sales.csv").resolve()),
        "items": str((tmp_path / "items.parquet").resolve()),
        "inventory": str((tmp_path / "inventory.csv").resolve()),
        "capacity": str((tmp_path / "capacity.csv").resolve()),
    }


def test_folder_without_sales_names_the_folder(tmp_path: Path) -> None:
    pd.DataFrame({"item_id": ["A"]}).to_csv(tmp_path / "items.csv", index=False)
    with pytest.raises(DataFileError, match="sales.csv, sales.csv.gz, .*sales.parquet") as raised:
        load_long(tmp_path)
    assert raised.value.path == tmp_path


def test_folder_with_two_sales_files_is_ambiguous(tmp_path: Path) -> None:
    long_sales().to_csv(tmp_path / "sales.csv", index=False)
    long_sales().to_parquet(tmp_path / "sales.parquet")
    with pytest.raises(DataFileError, match="keep only one"):
        load_long(tmp_path)


def test_empty_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "sales.csv"
    path.write_bytes(b"")
    with pytest.raises(DataFileError, match="empty") as raised:
        load_long(path)
    assert str(path) in str(raised.value)


def test_non_utf8_bytes_are_named(tmp_path: Path) -> None:
    path = tmp_path / "sales.csv"
    path.write_bytes("item_id,store_id,date,units\ncafé,S,2024-01-01,1\n".encode("latin-1"))
    with pytest.raises(DataFileError, match="UTF-8") as raised:
        load_long(path)
    assert str(path) in str(raised.value)


def test_unknown_extension_is_named(tmp_path: Path) -> None:
    path = tmp_path / "sales.xlsx"
    path.write_bytes(b"PK\x03\x04")
    with pytest.raises(DataFileError, match="unknown extension") as raised:
        load_long(path)
    assert str(path) in str(raised.value)


def test_missing_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "nope.csv"
    with pytest.raises(DataFileError, match="not found") as raised:
        load_long(path)
    assert str(path) in str(raised.value)


def test_unreadable_parquet_in_a_folder_is_named(tmp_path: Path) -> None:
    long_sales().to_csv(tmp_path / "sales.csv", index=False)
    bad = tmp_path / "inventory.parquet"
    bad.write_bytes(b"this is not parquet")
    with pytest.raises(DataFileError, match="Parquet") as raised:
        load_long(tmp_path)
    assert str(bad) in str(raised.value)


@pytest.mark.parametrize("compression", ["gz", "zip", "bz2", "xz", "zst"])
def test_compressed_csv_reads_as_the_plain_file(tmp_path: Path, compression: str) -> None:
    long_sales().to_csv(tmp_path / "sales.csv", index=False)
    long_sales().to_csv(tmp_path / f"sales.csv.{compression}", index=False)

    pd.testing.assert_frame_equal(
        load_long(tmp_path / f"sales.csv.{compression}").sales, load_long(tmp_path / "sales.csv").sales
    )


def test_folder_of_tables_takes_compressed_tables(tmp_path: Path) -> None:
    long_sales().to_csv(tmp_path / "sales.csv.gz", index=False)
    pd.DataFrame({"item_id": ["007", "A"], "lead_time_days": [2, 3]}).to_csv(tmp_path / "items.csv.zst", index=False)

    tables = load_long(tmp_path)

    assert len(tables.sales) == 3 and tables.items["item_id"].tolist() == ["007", "A"]
    assert tables.sources["items"] == str((tmp_path / "items.csv.zst").resolve())


def test_partitioned_parquet_reads_as_one_table_with_plain_ids(tmp_path: Path) -> None:
    sales = long_sales()
    sales.to_parquet(tmp_path / "sales.parquet", partition_cols=["store_id"])  # sales.parquet/store_id=01/...

    for path in (tmp_path / "sales.parquet", tmp_path):  # the data set itself, or a folder of tables holding it
        read = load_long(path).sales.sort_values(["store_id", "item_id", "date"]).reset_index(drop=True)
        assert read["store_id"].tolist() == ["01", "01", "02"]
        assert not isinstance(read["store_id"].dtype, pd.CategoricalDtype)
        assert read["units"].tolist() == [3, 0, 5]


def test_folder_of_parquet_parts_reads_as_the_sales_table(tmp_path: Path) -> None:
    (tmp_path / "exports").mkdir()
    long_sales().head(2).to_parquet(tmp_path / "exports" / "part-0.parquet")
    long_sales().tail(1).to_parquet(tmp_path / "exports" / "part-1.parquet")

    assert len(load_long(tmp_path / "exports").sales) == 3


def test_truncated_gzip_is_named(tmp_path: Path) -> None:
    long_sales().to_csv(tmp_path / "full.csv.gz", index=False)
    path = tmp_path / "sales.csv.gz"
    path.write_bytes((tmp_path / "full.csv.gz").read_bytes()[:30])
    with pytest.raises(DataFileError, match="truncated or corrupt compressed file") as raised:
        load_long(path)
    assert raised.value.path == path


def test_zip_with_two_files_is_named(tmp_path: Path) -> None:
    path = tmp_path / "sales.csv.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("a.csv", "item_id\nA\n")
        archive.writestr("b.csv", "item_id\nB\n")
    with pytest.raises(DataFileError, match="Multiple files found in ZIP file") as raised:
        load_long(path)
    assert raised.value.path == path
