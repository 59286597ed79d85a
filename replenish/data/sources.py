"""The configured data source, read as raw tables."""

from __future__ import annotations

from replenish.data.long_format import load_long
from replenish.data.m5 import load_m5
from replenish.data.synthetic import generate_synthetic
from replenish.data.tables import RawTables
from replenish.settings import DataSettings


def read_tables(data: DataSettings) -> RawTables:
    if data.format == "m5":
        return load_m5(data.path)
    if data.format == "long":
        return load_long(data.path)
    return generate_synthetic(data.synthetic)
