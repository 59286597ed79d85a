"""Check input data against the data contract alone: no training, no planning."""

from __future__ import annotations

from pathlib import Path

from prefect import flow

from replenish.settings import load_settings
from tasks.data import load_data
from tasks.tracking import finish_tracking_run, start_tracking_run
from tasks.validation import CheckedTables, report_validation, require_valid_data, validate_data


@flow(name="replenish-validate", log_prints=True)
def validation_flow(config_file: str | None = None, overrides: list[str] | None = None) -> CheckedTables:
    settings = load_settings(Path(config_file) if config_file else None, overrides or [])
    raw = load_data(settings.data)
    run_id = start_tracking_run(settings, raw, "validate")
    try:
        checked = validate_data(raw, settings, run_id)
        report_validation(settings, run_id, checked)
        require_valid_data(checked)
    except BaseException:
        finish_tracking_run(settings, run_id, "FAILED")
        raise
    finish_tracking_run(settings, run_id, "FINISHED")
    return checked
