"""Loader for user data in a generic long layout: one row per item × store × day, CSV or Parquet.

Values are read as they are: a wrong type in a user's file must reach validation, which can
name the offending rows. Only failures to read a file at all are raised here, as DataFileError.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from replenish.data.tables import DataFileError, RawTables

READABLE_SUFFIXES = (".csv", ".parquet")
OPTIONAL_TABLES = ("items", "inventory", "open_orders", "capacity")
# Identifiers such as "007" must keep their leading zeros, so CSV readers must not parse them as numbers.
ID_DTYPES = {"item_id": str, "store_id": str}


def load_long(path: Path) -> RawTables:
    """Sales from a CSV/Parquet file, or a folder with sales.{csv,parquet} and optional
    items, inventory, open_orders and capacity tables in the same formats."""
    path = Path(path)
    if not path.is_dir():
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


def _read_table(path: Path) -> pd.DataFrame:
    """One CSV (UTF-8) or Parquet file as a DataFrame; DataFileError when it cannot be read at all."""
    if not path.is_file():
        raise DataFileError(path, "file not found")
    suffix = path.suffix.lower()
    if suffix not in READABLE_SUFFIXES:
        expected = ", ".join(READABLE_SUFFIXES)
        raise DataFileError(path, f"unknown extension {path.suffix!r}; expected one of {expected}")
    return _read_csv(path) if suffix == ".csv" else _read_parquet(path)


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
    if len(frame.columns) == 1:
        header = str(frame.columns[0])
        for delimiter in OTHER_DELIMITERS:
            if delimiter in header:
                raise DataFileError(
                    path, f"the header {header!r} looks delimited by {delimiter!r}; files must be comma-separated")
    return frame


def _read_parquet(path: Path) -> pd.DataFrame:
    try:
        return pd.read_parquet(path)
    except (ValueError, OSError) as error:
        raise DataFileError(path, f"unreadable Parquet file: {error}") from error


def _candidate_names(table: str) -> str:
    return " or ".join(f"{table}{suffix}" for suffix in READABLE_SUFFIXES)


def _table_file(folder: Path, table: str) -> Path | None:
    candidates = [folder / f"{table}{suffix}" for suffix in READABLE_SUFFIXES]
    present = [candidate for candidate in candidates if candidate.is_file()]
    if len(present) > 1:
        raise DataFileError(folder, f"both {_candidate_names(table)} exist; keep only one")
    return present[0] if present else None
