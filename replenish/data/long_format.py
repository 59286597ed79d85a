"""Loader for user data in a generic long layout: one row per item × store × day, CSV or Parquet.

Values are read as they are: a wrong type in a user's file must reach validation, which can
name the offending rows. Only failures to read a file at all are raised here, as DataFileError.
"""

from __future__ import annotations

import lzma
import zlib
from pathlib import Path

import pandas as pd
import pyarrow
import pyarrow.dataset
import zstandard

from replenish.data.tables import DataFileError, RawTables

# What pandas reads: CSV, plain or compressed (compression inferred from the name), and Parquet, as one
# file or as a partitioned folder (e.g. sales.parquet/store_id=CA_1/part-0.parquet).
CSV_SUFFIXES = (".csv", ".csv.gz", ".csv.zip", ".csv.bz2", ".csv.xz", ".csv.zst")
READABLE_SUFFIXES = (*CSV_SUFFIXES, ".parquet")
OPTIONAL_TABLES = ("items", "inventory", "open_orders", "capacity")
# Identifiers such as "007" must keep their leading zeros, so CSV readers must not parse them as numbers.
ID_DTYPES = {"item_id": str, "store_id": str}


def load_long(path: Path) -> RawTables:
    """Sales from one table (a CSV file, compressed or not, a Parquet file or a partitioned Parquet
    folder), or a folder of tables: sales plus optional items, inventory, open_orders and capacity,
    each in any of those forms."""
    path = Path(path)
    if not path.is_dir() or _is_parquet_dataset(path):
        return RawTables(sales=_read_table(path), sources={"sales": str(path.resolve())})
    tables: dict[str, pd.DataFrame] = {}
    sources: dict[str, str] = {}
    for table in ("sales", *OPTIONAL_TABLES):
        table_path = _table_file(path, table)
        if table_path is None and table == "sales":
            raise DataFileError(path, f"folder has no sales table; expected one of {_candidate_names('sales')}")
        if table_path is not None:
            tables[table] = _read_table(table_path)
            sources[table] = str(table_path.resolve())
    return RawTables(**tables, sources=sources)


def table_suffix(path: Path) -> str | None:
    """The readable suffix a path ends with (".csv.gz", ".parquet", ...), or None."""
    name = path.name.lower()
    return next((suffix for suffix in sorted(READABLE_SUFFIXES, key=len, reverse=True) if name.endswith(suffix)), None)


def _is_parquet_dataset(folder: Path) -> bool:
    """A folder of Parquet parts (a partitioned data set), as opposed to a folder of named tables."""
    if folder.name.lower().endswith(".parquet"):
        return True
    has_tables = any(_table_file_candidates(folder, table) for table in ("sales", *OPTIONAL_TABLES))
    return not has_tables and any(folder.rglob("*.parquet"))


def _read_table(path: Path) -> pd.DataFrame:
    """One table as a DataFrame; DataFileError when it cannot be read at all."""
    if path.is_dir():
        return _read_parquet(path)
    if not path.is_file():
        raise DataFileError(path, "file not found")
    suffix = table_suffix(path)
    if suffix is None:
        expected = ", ".join(READABLE_SUFFIXES)
        raise DataFileError(path, f"unknown extension {''.join(path.suffixes)!r}; expected one of {expected}")
    return _read_parquet(path) if suffix == ".parquet" else _read_csv(path)


OTHER_DELIMITERS = (";", "\t", "|")


def _read_csv(path: Path) -> pd.DataFrame:
    try:
        # utf-8-sig also strips the byte-order mark spreadsheet programs put before the first header.
        frame = pd.read_csv(path, dtype=ID_DTYPES, encoding="utf-8-sig")
    except pd.errors.EmptyDataError as error:
        raise DataFileError(path, "empty file: no header row") from error
    except UnicodeDecodeError as error:
        raise DataFileError(path, f"not UTF-8 text ({error.reason} at byte {error.start})") from error
    except pd.errors.ParserError as error:
        raise DataFileError(path, f"malformed CSV: {error}") from error
    except (EOFError, OSError, zlib.error, lzma.LZMAError, zstandard.ZstdError) as error:
        raise DataFileError(
            path, f"truncated or corrupt compressed file ({error.__class__.__name__}: {error})"
        ) from error
    except ValueError as error:  # pandas refuses a zip that holds several files
        raise DataFileError(path, f"cannot read the compressed file: {error}") from error
    if len(frame.columns) == 1:
        header = str(frame.columns[0])
        for delimiter in OTHER_DELIMITERS:
            if delimiter in header:
                raise DataFileError(
                    path, f"the header {header!r} looks delimited by {delimiter!r}; files must be comma-separated"
                )
    return frame


def _read_parquet(path: Path) -> pd.DataFrame:
    # Partition keys (store_id=01/...) are read as text, as CSV ids are: "01" must not become the number 1.
    keys = sorted({part.name.split("=", 1)[0] for part in path.rglob("*=*") if part.is_dir()}) if path.is_dir() else []
    text_keys = pyarrow.schema([(key, pyarrow.string()) for key in keys])
    options = {"partitioning": pyarrow.dataset.partitioning(text_keys, flavor="hive")} if keys else {}
    try:
        return pd.read_parquet(path, **options)
    except (ValueError, OSError) as error:
        raise DataFileError(path, f"unreadable Parquet file: {error}") from error


def _candidate_names(table: str) -> str:
    return ", ".join(f"{table}{suffix}" for suffix in READABLE_SUFFIXES)


def _table_file_candidates(folder: Path, table: str) -> list[Path]:
    """The files (or, for Parquet, partitioned folders) in ``folder`` that hold ``table``."""
    return [
        candidate
        for candidate in (folder / f"{table}{suffix}" for suffix in READABLE_SUFFIXES)
        if candidate.is_file() or (candidate.suffix == ".parquet" and candidate.is_dir())
    ]


def _table_file(folder: Path, table: str) -> Path | None:
    present = _table_file_candidates(folder, table)
    if len(present) > 1:
        raise DataFileError(
            folder, f"{' and '.join(path.name for path in present)} both hold the {table} table; keep only one"
        )
    return present[0] if present else None
