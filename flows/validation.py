"""Check input data against the data contract alone: no training, no planning."""

from __future__ import annotations

from pathlib import Path

from prefect import flow

from expectations.validation import CheckedTables
from flows.common import checked_input, tracked_run
from replenish.settings import load_settings


@flow(name="replenish-validate", log_prints=True)
def validation_flow(config_file: str | None = None, overrides: list[str] | None = None) -> CheckedTables:
    settings = load_settings(Path(config_file) if config_file else None, overrides or [])
    with tracked_run(settings, "validate") as (raw, tracker):
        return checked_input(settings, raw, tracker)
