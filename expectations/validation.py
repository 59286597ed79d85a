"""Run the suites on the raw input tables and turn failures into one readable, typed error; and report
them: as a table of failures (failures_table) and as Markdown for the Prefect UI (validation_markdown)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import great_expectations as gx
import pandas as pd
from great_expectations.core.expectation_validation_result import ExpectationSuiteValidationResult
from great_expectations.data_context.types.base import ProgressBarsConfig
from great_expectations.expectations.expectation import Expectation
from great_expectations.expectations.metadata_types import FailureSeverity

from expectations import suites
from expectations.rules import ValidationRules
from models.forecast_frame import series_codes
from replenish.data.tables import ITEM_NUMBER_COLUMNS, RawTables, parse_days
from replenish.frequency import IRREGULAR, UNKNOWN, Frequency, infer_frequency

SAMPLE_ROWS = 5
CRITICAL = FailureSeverity.CRITICAL.value


@dataclass(frozen=True)
class ExpectationFailure:
    table: str
    file: str
    column: str | None
    rule: str
    severity: str  # "critical" stops the run; "warning" is reported and logged
    unexpected_count: int | None
    sample_rows: list[int]  # 1-based data rows (the header is not counted)
    sample_values: list[Any]
    row_index: tuple[Any, ...] = field(default=(), repr=False)  # every failing row's index label
    quarantinable: bool = False  # dropping the failing rows removes the failure

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
    warnings: list[ExpectationFailure] = field(default_factory=list)
    data_docs: Path | None = None  # index.html of the rendered Great Expectations Data Docs
    # The sales' frequency: as declared (data.frequency), else inferred from the dates; None when none fits.
    frequency: Frequency | None = None
    frequency_inferred: bool = False

    @property
    def success(self) -> bool:
        return not self.failures

    @property
    def frequency_line(self) -> str:
        if self.frequency is None:
            return "frequency: none fits the dates"
        how = "inferred from the dates (set data.frequency to declare it)" if self.frequency_inferred else "declared"
        return f"frequency: {self.frequency.description}, {how}"


class DataValidationError(ValueError):
    """Input data broke the data contract; nothing downstream may run."""

    def __init__(self, failures: list[ExpectationFailure], data_docs: Path | None = None) -> None:
        self.failures = failures
        self.data_docs = data_docs
        lines = "\n".join(f"  - {failure.describe()}" for failure in failures)
        docs = f"\nData Docs: {data_docs}" if data_docs else ""
        super().__init__(f"input data failed validation ({len(failures)} rule(s) broken):\n{lines}{docs}")


def _parsed_dates(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    """Swap a date column for the days completion will read from it, so range, uniqueness and gap rules
    see those days. Where some value reads as no date, keep the column as given and add the unreadable
    values as their own column, for the rule that names them."""
    if column not in frame.columns:
        return frame
    days = parse_days(frame[column])
    unreadable = days.isna() & frame[column].notna()
    if not unreadable.any():
        return frame.assign(**{column: days})
    return frame.assign(**{suites.unreadable_column(column): frame[column].where(unreadable)})


def _ids_as_text(frame: pd.DataFrame) -> pd.DataFrame:
    """Ids as complete_tables casts them (missing stays missing), so 7 and "7" are one id to every rule."""
    cast = [
        column
        for column in ("item_id", "store_id")
        if column in frame.columns and not pd.api.types.is_string_dtype(frame[column])
    ]
    return frame.assign(**{column: frame[column].astype(str) for column in cast}) if cast else frame


def _parsed_numbers(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Swap text number columns for numbers when every value parses, so range and integer rules can run."""
    parsed = {}
    for column in columns:
        if column in frame.columns and not pd.api.types.is_numeric_dtype(frame[column]):
            numbers = pd.to_numeric(frame[column], errors="coerce")
            if numbers.isna().sum() == frame[column].isna().sum():
                parsed[column] = numbers
    return frame.assign(**parsed) if parsed else frame


def _with_periods(sales: pd.DataFrame, declared: Frequency | None) -> tuple[pd.DataFrame, Frequency | None]:
    """The sales with the columns the frequency rules read (each series' own frequency, whether each date
    labels a period, the periods since the series' previous row), where keys and dates are clean enough
    to tell; and the frequency: the declared one, else the one most series follow."""
    if not set(suites.SALES_KEY) <= set(sales.columns) or not pd.api.types.is_datetime64_any_dtype(sales["date"]):
        return sales, declared
    if sales[suites.SALES_KEY].isna().any().any():
        return sales, declared
    inferred = infer_frequency(sales["date"], series_codes(sales))
    frequency = declared or inferred.frequency
    if frequency is None:
        return sales.assign(**{suites.SERIES_FREQUENCY_COLUMN: inferred.series_frequency}), None
    # A series of another frequency is reported as such, not date by date as off the calendar; stray
    # dates make a series irregular, and are reported one by one.
    follows = inferred.series_frequency.isin([frequency.alias, UNKNOWN, IRREGULAR])
    on_calendar = frequency.on_calendar(sales["date"])
    ordered = sales.loc[on_calendar, suites.SALES_KEY].assign(period=frequency.ordinals(sales.loc[on_calendar, "date"]))
    ordered = ordered.sort_values(suites.SALES_KEY)
    gaps = ordered.groupby(["item_id", "store_id"], sort=False)["period"].diff()
    return (
        sales.assign(
            **{
                suites.SERIES_FREQUENCY_COLUMN: inferred.series_frequency,
                suites.ON_CALENDAR_COLUMN: on_calendar | ~follows,
                suites.GAP_COLUMN: gaps.reindex(sales.index),
            }
        ),
        frequency,
    )


def _drift_windows(
    sales: pd.DataFrame, frequency: Frequency | None, recent_periods: int
) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    if frequency is None or not {"date", "units"} <= set(sales.columns):
        return None
    if not pd.api.types.is_datetime64_any_dtype(sales["date"]):
        return None
    if not pd.api.types.is_numeric_dtype(sales["units"]) or sales.empty:
        return None
    start = frequency.shift(sales["date"].max(), -(recent_periods - 1))
    recent, baseline = sales[sales["date"] >= start], sales[sales["date"] < start]
    return (recent, baseline) if len(baseline) and baseline["units"].notna().any() else None


def _failures(
    table: str, source: str, frame: pd.DataFrame, result: ExpectationSuiteValidationResult
) -> list[ExpectationFailure]:
    failures = []
    for expectation_result in result.results:
        if expectation_result.success:
            continue
        config = expectation_result.expectation_config
        if config is None:  # a result without its expectation names no rule to report
            continue
        details = expectation_result.result or {}
        row_index = tuple(details.get("unexpected_index_list") or ())
        column = (
            (config.meta or {}).get("reported_column")
            or config.kwargs.get("column")
            or ", ".join(config.kwargs.get("column_list") or [])
            or None
        )
        values = details.get("partial_unexpected_list") or []
        if not values and "observed_value" in details:
            values = [details["observed_value"]]
        failures.append(
            ExpectationFailure(
                table=table,
                file=source,
                column=column,
                rule=config.description or config.type,
                severity=FailureSeverity(config.severity).value,
                unexpected_count=details.get("unexpected_count"),
                sample_rows=[int(frame.index.get_loc(i)) + 1 for i in row_index[:SAMPLE_ROWS] if i in frame.index],
                sample_values=list(values)[:SAMPLE_ROWS],
                row_index=row_index,
                quarantinable=bool(row_index) and (config.meta or {}).get("quarantinable", True),
            )
        )
    return failures


class TableValidator:
    """Holds one ephemeral (in-memory, offline) GX context for a validation pass."""

    def __init__(self) -> None:
        self.context = gx.get_context(mode="ephemeral")
        self.context.variables.progress_bars = ProgressBarsConfig(globally=False)
        self._source = self.context.data_sources.add_pandas("replenish")
        self.results: list[ExpectationSuiteValidationResult] = []

    def validate(
        self, table: str, source: str, frame: pd.DataFrame, expectations: list[Expectation]
    ) -> list[ExpectationFailure]:
        asset = self._source.add_dataframe_asset(table)
        batch = asset.add_batch_definition_whole_dataframe(table).get_batch(batch_parameters={"dataframe": frame})
        suite = self.context.suites.add(gx.ExpectationSuite(name=f"{table}_contract", expectations=expectations))
        result = batch.validate(suite, result_format={"result_format": "COMPLETE"})
        self.results.append(result)
        return _failures(table, source, frame, result)


def _checks(
    raw: RawTables, rules: ValidationRules, today: pd.Timestamp, declared: Frequency | None
) -> tuple[list[tuple[str, pd.DataFrame, list[Expectation]]], Frequency | None]:
    sales, frequency = _with_periods(
        _parsed_numbers(_parsed_dates(_ids_as_text(raw.sales), "date"), ["units", "price"]), declared
    )
    items = _ids_as_text(raw.items) if raw.items is not None else None
    master_item_ids = (
        sorted(items["item_id"].dropna().unique()) if items is not None and "item_id" in items.columns else None
    )
    max_gap = rules.max_gap_periods or (frequency.max_gap if frequency else None)
    checks = [("sales", sales, suites.sales_expectations(sales, today, master_item_ids, frequency, max_gap))]
    recent_periods = rules.recent_periods or (frequency.recent_periods if frequency else 1)
    windows = _drift_windows(sales, frequency, recent_periods)
    if windows is not None:
        recent, baseline = windows
        checks.append(
            (
                "sales_recent",
                recent,
                suites.recent_sales_warnings(recent, baseline, rules.level_shift_ratio, rules.zero_share_jump),
            )
        )
    if items is not None:
        items = _parsed_numbers(items, ITEM_NUMBER_COLUMNS)
        checks.append(("items", items, suites.item_master_expectations(items)))
    if raw.inventory is not None:
        inventory = _parsed_numbers(_ids_as_text(raw.inventory), ["on_hand"])
        checks.append(("inventory", inventory, suites.inventory_expectations(inventory)))
    snapshot_date = sales["date"].max() if pd.api.types.is_datetime64_any_dtype(sales.get("date")) else pd.NaT
    if raw.open_orders is not None and pd.notna(snapshot_date):
        open_orders = _parsed_numbers(_parsed_dates(_ids_as_text(raw.open_orders), "arrival_date"), ["quantity"])
        checks.append(("open_orders", open_orders, suites.open_orders_expectations(open_orders, snapshot_date)))
    if raw.capacity is not None:
        capacity = _parsed_numbers(_ids_as_text(raw.capacity), ["capacity_volume"])
        checks.append(("capacity", capacity, suites.capacity_expectations(capacity)))
    return checks, frequency


def validate_tables(
    raw: RawTables,
    today: pd.Timestamp | None = None,
    rules: ValidationRules = ValidationRules(),
    docs_dir: Path | None = None,
    frequency: Frequency | None = None,
) -> ValidationReport:
    """Validate every table the source provided; return a report (and Data Docs when asked), raising nothing.
    ``frequency``: the declared one; None infers it from the dates."""
    today = (today or pd.Timestamp.now()).normalize()
    validator = TableValidator()
    checks, found_frequency = _checks(raw, rules, today, frequency)
    found: list[ExpectationFailure] = []
    for table, frame, expectations in checks:
        source = raw.sources.get(table.removesuffix("_recent"), table)
        found += validator.validate(table, source, frame, expectations)
    data_docs = None
    if docs_dir is not None:
        from expectations.data_docs import render_data_docs

        data_docs = render_data_docs(validator.context, validator.results, docs_dir)
    return ValidationReport(
        tables={table: len(frame) for table, frame, _ in checks},
        expectations_checked=sum(len(expectations) for _, _, expectations in checks),
        failures=[failure for failure in found if failure.severity == CRITICAL],
        warnings=[failure for failure in found if failure.severity != CRITICAL],
        data_docs=data_docs,
        frequency=found_frequency,
        frequency_inferred=frequency is None and found_frequency is not None,
    )


def ensure_valid(report: ValidationReport) -> ValidationReport:
    if not report.success:
        raise DataValidationError(report.failures, report.data_docs)
    return report


@dataclass(frozen=True)
class QuarantinedTables:
    tables: RawTables
    dropped: dict[str, pd.DataFrame]  # table -> dropped rows with the rules they broke, in a "broken_rules" column


def quarantine_failing_rows(raw: RawTables, report: ValidationReport) -> QuarantinedTables | None:
    """Drop the rows named by row-level failures; None when some failure concerns a whole table or column,
    which no amount of dropping rows can fix."""
    if not all(failure.quarantinable for failure in report.failures):
        return None
    rules_by_table: dict[str, dict[Any, list[str]]] = {}
    for failure in report.failures:
        rows = rules_by_table.setdefault(failure.table, {})
        for index in failure.row_index:
            rows.setdefault(index, []).append(f"{failure.column}: {failure.rule}")
    tables, dropped = raw, {}
    for table, rules in rules_by_table.items():
        frame: pd.DataFrame = getattr(raw, table)
        labels = list(rules)
        dropped[table] = frame.loc[labels].assign(broken_rules=["; ".join(rules[label]) for label in labels])
        tables = replace(tables, **{table: frame.drop(index=labels).reset_index(drop=True)})
    return QuarantinedTables(tables, dropped)


@dataclass(frozen=True)
class CheckedTables:
    tables: RawTables  # without quarantined rows, when quarantine dropped any
    report: ValidationReport
    quarantined: dict[str, pd.DataFrame] = field(default_factory=dict)


def check_tables(
    raw: RawTables, rules: ValidationRules, docs_dir: Path, frequency: Frequency | None = None
) -> CheckedTables:
    """Validate the tables; with rules.quarantine, drop the rows that break row rules and validate what is left."""
    report = validate_tables(raw, rules=rules, docs_dir=docs_dir, frequency=frequency)
    if report.success or not rules.quarantine:
        return CheckedTables(raw, report)
    quarantined = quarantine_failing_rows(raw, report)
    if quarantined is None:
        return CheckedTables(raw, report)
    # Re-validate what is left: dropping rows can empty a table or open a gap.
    rechecked = validate_tables(quarantined.tables, rules=rules, docs_dir=docs_dir, frequency=frequency)
    return CheckedTables(quarantined.tables, rechecked, quarantined.dropped)


def failures_table(report: ValidationReport) -> pd.DataFrame:
    """Every failure and warning, one row each, errors first."""
    return pd.DataFrame(
        [
            {
                "severity": f.severity,
                "table": f.table,
                "file": f.file,
                "column": f.column,
                "rule": f.rule,
                "unexpected_count": f.unexpected_count,
                "sample_rows": f.sample_rows,
                "sample_values": f.sample_values,
            }
            for f in [*report.failures, *report.warnings]
        ],
        columns=["severity", "table", "file", "column", "rule", "unexpected_count", "sample_rows", "sample_values"],
    )


def _failure_rows(failures: list[ExpectationFailure], severity: str) -> list[str]:
    return [
        f"| {severity} | {f.table} | {f.column or ''} | {f.rule} | {f.unexpected_count or ''} "
        f"| {', '.join(map(str, f.sample_rows))} |"
        for f in failures
    ]


def validation_markdown(checked: CheckedTables, mlflow_run: str) -> str:
    """What the Prefect UI shows for a validation; `mlflow_run` links the MLflow run that holds the Data Docs."""
    report = checked.report
    status = "passed" if report.success else "FAILED"
    lines = [
        f"# Data validation {status}",
        f"{report.expectations_checked} expectations on "
        f"{', '.join(f'{t} ({n} rows)' for t, n in report.tables.items())}.",
        f"Sales {report.frequency_line}.",
        f"{mlflow_run}: the Great Expectations Data Docs are its artifacts under `data_docs/`.",
    ]
    for table, rows in checked.quarantined.items():
        lines.append(f"Quarantined {len(rows)} row(s) of {table}; see `validation/quarantined_{table}.csv`.")
    if report.failures or report.warnings:
        lines += ["", "| severity | table | column | rule | rows failing | sample rows |", "|---|---|---|---|---|---|"]
        lines += _failure_rows(report.failures, "error") + _failure_rows(report.warnings, "warning")
    return "\n".join(lines)
