"""Load, validate and complete the input tables."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from expectations.validation import CheckedTables
from replenish.data.sources import read_tables
from replenish.data.tables import RawTables, RetailData, complete_tables
from replenish.frequency import DAILY
from replenish.settings import DataSettings


@task(
    name="load-data",
    cache_policy=NO_CACHE,
    retries=2,
    retry_delay_seconds=[2, 10],
    retry_condition_fn=lambda task, task_run, state: isinstance(state.result(raise_on_failure=False), OSError),
)
def load_data(data: DataSettings) -> RawTables:
    return read_tables(data)


@task(name="complete-data", cache_policy=NO_CACHE)
def complete_data(checked: CheckedTables, data: DataSettings) -> RetailData:
    # Validation found the frequency (declared or inferred); data with a single date per series has none.
    frequency = checked.report.frequency or DAILY
    return complete_tables(checked.tables, data.master_defaults, data.absent_dates, frequency)
