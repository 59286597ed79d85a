"""Wiring shared by the flows: one tracked MLflow run per flow, and validated input."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from replenish.data.tables import RawTables, RetailData
from replenish.settings import Settings
from tasks.data import complete_data
from tasks.tracking import finish_tracking_run, start_tracking_run
from tasks.validation import CheckedTables, report_validation, require_valid_data, validate_data


@contextmanager
def tracked_run(settings: Settings, raw: RawTables, job: str) -> Iterator[str]:
    """An MLflow run that ends FINISHED, or FAILED when anything inside raises."""
    run_id = start_tracking_run(settings, raw, job)
    try:
        yield run_id
    except BaseException:
        finish_tracking_run(settings, run_id, "FAILED")
        raise
    finish_tracking_run(settings, run_id, "FINISHED")


def checked_input(settings: Settings, raw: RawTables, run_id: str) -> CheckedTables:
    checked = validate_data(raw, settings, run_id)
    report_validation(settings, run_id, checked)
    require_valid_data(checked)
    return checked


def validated_input(settings: Settings, raw: RawTables, run_id: str) -> RetailData:
    return complete_data(checked_input(settings, raw, run_id).tables, settings.data)
