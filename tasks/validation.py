"""Check the input against the data contract, report it, and stop on errors."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import pandas as pd
from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from expectations.rules import ValidationRules
from expectations.validation import CheckedTables, check_tables, ensure_valid, failures_table, validation_markdown
from replenish import tracking
from replenish.data.tables import RawTables
from replenish.settings import DataSettings
from replenish.tracking import RunTracker

# `replenish run` validates the same tables twice in one process, in its training and its planning
# flow: the second reuses the first's result (Great Expectations takes seconds on a small set, minutes
# on a large one).  One entry, keyed on the tables' content and sources, the rules, the day (a rule
# refuses future dates) and the work_dir its Data Docs are in.
_last_checked: dict[str, CheckedTables] = {}


def _check_key(raw: RawTables, rules: ValidationRules, frequency: str | None, work_dir: Path) -> str:
    tables = {
        name: tracking.data_fingerprint(frame)
        for name in ("sales", "items", "inventory", "open_orders", "capacity")
        if (frame := getattr(raw, name)) is not None
    }
    today = f"{pd.Timestamp.now():%Y-%m-%d}"
    return json.dumps([tables, raw.sources, asdict(rules), frequency, today, str(work_dir)], sort_keys=True)


@task(name="validate-data", cache_policy=NO_CACHE)
def validate_data(raw: RawTables, data: DataSettings, work_dir: Path, tracker: RunTracker) -> CheckedTables:
    """The tables checked against the data contract; the Data Docs in work_dir/data_docs/<run id>."""
    key = _check_key(raw, data.validation, data.frequency, work_dir)
    if key not in _last_checked:
        checked = check_tables(raw, data.validation, work_dir / "data_docs" / tracker.run_id, data.declared_frequency)
        _last_checked.clear()
        _last_checked[key] = checked
    return _last_checked[key]


@task(name="report-validation", cache_policy=NO_CACHE, retries=3, retry_delay_seconds=[1, 5, 15])
def report_validation(tracker: RunTracker, checked: CheckedTables) -> None:
    report = checked.report
    if report.data_docs is not None:
        tracker.log_folder(report.data_docs.parent, "data_docs")
    tracker.log_table(failures_table(report), "validation/failures.csv")
    for table, rows in checked.quarantined.items():
        tracker.log_table(rows, f"validation/quarantined_{table}.csv")
    tracker.log_metrics(
        {
            "validation_errors": len(report.failures),
            "validation_warnings": len(report.warnings),
            "validation_quarantined_rows": sum(len(rows) for rows in checked.quarantined.values()),
        },
    )
    tracker.set_tags(
        {
            "validation_status": "passed" if report.success else "failed",
            "validation_expectations_checked": str(report.expectations_checked),
            "data_frequency": report.frequency.alias if report.frequency else "none",
        },
    )
    get_run_logger().info("Sales %s", report.frequency_line)
    create_markdown_artifact(
        key="data-validation",
        markdown=validation_markdown(checked, tracker.link),
        description="Great Expectations data contract result",
    )


@task(name="require-valid-data", cache_policy=NO_CACHE)
def require_valid_data(checked: CheckedTables) -> RawTables:
    ensure_valid(checked.report)
    return checked.tables
