"""Wiring shared by the flows: one tracked MLflow run per flow, and validated input."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from expectations.validation import CheckedTables
from replenish.data.tables import RawTables, RetailData
from replenish.orchestration import without_process_tag
from replenish.settings import Settings
from replenish.tracking import RunTracker
from tasks.data import complete_data, load_data
from tasks.runs import finish_tracking_run, start_tracking_run
from tasks.validation import report_validation, require_valid_data, validate_data


@contextmanager
def tracked_run(settings: Settings, job: str) -> Iterator[tuple[RawTables, RunTracker]]:
    """The data the settings name, and an MLflow run over it that ends FINISHED, or FAILED when
    anything inside raises; its tracker is what the tasks inside record to.  Every task goes without
    the process tag, which costs each an API round trip (replenish.orchestration): the flow run
    holding them has it."""
    with without_process_tag():
        raw = load_data(settings.data)
        tracker = start_tracking_run(settings, raw, job)
        try:
            yield raw, tracker
        except BaseException:
            # Directly, not as a task: the failure may be that the Prefect API is gone.
            finish_tracking_run.fn(tracker, "FAILED")
            raise
        finish_tracking_run(tracker, "FINISHED")


def checked_input(settings: Settings, raw: RawTables, tracker: RunTracker) -> CheckedTables:
    checked = validate_data(raw, settings.data, settings.work_dir, tracker)
    report_validation(tracker, checked)
    require_valid_data(checked)
    return checked


def validated_input(settings: Settings, raw: RawTables, tracker: RunTracker) -> RetailData:
    return complete_data(checked_input(settings, raw, tracker), settings.data)
