"""Run the suites on the raw input tables and turn failures into one readable, typed error."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import great_expectations as gx
import pandas as pd
from great_expectations.core.expectation_validation_result import ExpectationSuiteValidationResult
from great_expectations.data_context.types.base import ProgressBarsConfig
from great_expectations.expectations.expectation import Expectation

from expectations import suites
from replenish.data.tables import RawTables

SAMPLE_ROWS = 5


@dataclass(frozen=True)
class ExpectationFailure:
    table: str
    file: str
    column: str | None
    rule: str
    unexpected_count: int | None
    sample_rows: list[int]  # 1-based data rows (the header is not counted)
    sample_values: list[Any]

    def describe(self) -> str:
        where = f"column '{self.column}' of {self.table}" if self.column else f"table {self.table}"
        count = f" in {self.unexpected_count} row(s)" if self.unexpected_count else ""
        rows = f"; rows {', '.join(map(str, self.sample_rows))}" if self.sample_rows else ""
        values = f"; values {self.sample_values}" if self.sample_values else ""
        return f'{self.file}: {where} breaks rule "{self.rule}"{count}{rows}{values}'


@dataclass(frozen=True)
class ValidationReport:
    tables: dict[str, int]  # table -> rows checked
    expectations_checked: int
    failures: list[ExpectationFailure] = field(default_factory=list)

    @property
    def success(self) -> bool:
        return not self.failures


class DataValidationError(ValueError):
    """Input data broke the data contract; nothing downstream may run."""

    def __init__(self, failures: list[ExpectationFailure]) -> None:
        self.failures = failures
        lines = "\n".join(f"  - {failure.describe()}" for failure in failures)
        super().__init__(f"input data failed validation ({len(failures)} rule(s) broken):\n{lines}")


def _parsed_dates(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    """Swap a text date column for datetimes when every value parses, so range rules can run on it."""
    if column not in frame.columns or pd.api.types.is_datetime64_any_dtype(frame[column]):
        return frame
    parsed = pd.to_datetime(frame[column], errors="coerce")
    if parsed.isna().sum() != frame[column].isna().sum():
        return frame
    return frame.assign(**{column: parsed})


def _parsed_numbers(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Swap text number columns for numbers when every value parses, so range and integer rules can run."""
    parsed = {}
    for column in columns:
        if column in frame.columns and not pd.api.types.is_numeric_dtype(frame[column]):
            numbers = pd.to_numeric(frame[column], errors="coerce")
            if numbers.isna().sum() == frame[column].isna().sum():
                parsed[column] = numbers
    return frame.assign(**parsed) if parsed else frame


def _failures(
    table: str, source: str, frame: pd.DataFrame, result: ExpectationSuiteValidationResult
) -> list[ExpectationFailure]:
    failures = []
    for expectation_result in result.results:
        if expectation_result.success:
            continue
        config = expectation_result.expectation_config
        details = expectation_result.result or {}
        row_index = list(details.get("unexpected_index_list") or [])[:SAMPLE_ROWS]
        column = config.kwargs.get("column") or ", ".join(config.kwargs.get("column_list") or []) or None
        values = details.get("partial_unexpected_list") or []
        if not values and "observed_value" in details:
            values = [details["observed_value"]]
        failures.append(
            ExpectationFailure(
                table=table,
                file=source,
                column=column,
                rule=config.description or config.type,
                unexpected_count=details.get("unexpected_count"),
                sample_rows=[int(frame.index.get_loc(i)) + 1 for i in row_index if i in frame.index],
                sample_values=list(values)[:SAMPLE_ROWS],
            )
        )
    return failures


class TableValidator:
    """Holds one ephemeral (in-memory, offline) GX context for a validation pass."""

    def __init__(self) -> None:
        self._context = gx.get_context(mode="ephemeral")
        self._context.variables.progress_bars = ProgressBarsConfig(globally=False)
        self._source = self._context.data_sources.add_pandas("replenish")

    def validate(self, table: str, source: str, frame: pd.DataFrame, expectations: list[Expectation]) -> list[ExpectationFailure]:
        asset = self._source.add_dataframe_asset(table)
        batch = asset.add_batch_definition_whole_dataframe(table).get_batch(batch_parameters={"dataframe": frame})
        suite = self._context.suites.add(gx.ExpectationSuite(name=f"{table}_contract", expectations=expectations))
        result = batch.validate(suite, result_format={"result_format": "COMPLETE"})
        return _failures(table, source, frame, result)


def validate_tables(raw: RawTables, today: pd.Timestamp | None = None) -> ValidationReport:
    """Validate every table the source provided; return a report, raising nothing."""
    today = (today or pd.Timestamp.now()).normalize()
    validator = TableValidator()
    sales = _parsed_numbers(_parsed_dates(raw.sales, "date"), ["units", "price"])
    master_item_ids = (
        sorted(raw.items["item_id"].dropna().astype(str).unique())
        if raw.items is not None and "item_id" in raw.items.columns else None
    )
    checks: list[tuple[str, pd.DataFrame, list[Expectation]]] = [
        ("sales", sales, suites.sales_expectations(sales, today, master_item_ids))
    ]
    if raw.items is not None:
        items = _parsed_numbers(raw.items, ["unit_cost", "holding_cost_rate", "lead_time_days", "case_pack", "moq", "unit_volume"])
        checks.append(("items", items, suites.item_master_expectations(items)))
    if raw.inventory is not None:
        inventory = _parsed_numbers(raw.inventory, ["on_hand"])
        checks.append(("inventory", inventory, suites.inventory_expectations(inventory)))
    snapshot_date = sales["date"].max() if pd.api.types.is_datetime64_any_dtype(sales.get("date")) else pd.NaT
    if raw.open_orders is not None and pd.notna(snapshot_date):
        open_orders = _parsed_numbers(_parsed_dates(raw.open_orders, "arrival_date"), ["quantity"])
        checks.append(("open_orders", open_orders, suites.open_orders_expectations(open_orders, snapshot_date)))
    if raw.capacity is not None:
        capacity = _parsed_numbers(raw.capacity, ["capacity_volume"])
        checks.append(("capacity", capacity, suites.capacity_expectations(capacity)))

    failures: list[ExpectationFailure] = []
    for table, frame, expectations in checks:
        failures += validator.validate(table, raw.sources.get(table, table), frame, expectations)
    return ValidationReport(
        tables={table: len(frame) for table, frame, _ in checks},
        expectations_checked=sum(len(expectations) for _, _, expectations in checks),
        failures=failures,
    )


def ensure_valid(report: ValidationReport) -> ValidationReport:
    if not report.success:
        raise DataValidationError(report.failures)
    return report
