"""Weekly and monthly sales through the data contract, completion and the planner's periods."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from expectations.validation import validate_tables
from models.backtest import backtest_windows
from models.features import future_rows
from optimization.planning import planned_dates, planning_problem, solve_plan
from replenish.data.tables import MasterDefaults, RawTables, complete_tables
from replenish.frequency import DAILY, Frequency
from replenish.settings import load_settings

TODAY = pd.Timestamp("2026-01-01")


def sales(dates: pd.DatetimeIndex, series: int = 2) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    return pd.DataFrame(
        {
            "item_id": np.repeat([f"ITEM_{k}" for k in range(series)], len(dates)),
            "store_id": "S1",
            "date": np.tile(dates.strftime("%Y-%m-%d"), series),
            "units": rng.poisson(20, series * len(dates)),
        }
    )


WEEKLY = sales(pd.date_range("2024-01-05", periods=60, freq="W-FRI"))
MONTHLY = sales(pd.date_range("2022-01-01", periods=30, freq="MS"))


@pytest.mark.parametrize(("frame", "alias"), [(WEEKLY, "W-FRI"), (MONTHLY, "MS")])
def test_the_frequency_is_inferred_and_said(frame: pd.DataFrame, alias: str) -> None:
    report = validate_tables(RawTables(sales=frame), TODAY)

    assert report.success, report.failures
    assert report.frequency == Frequency(alias) and report.frequency_inferred
    assert "inferred from the dates" in report.frequency_line


def test_a_series_of_another_frequency_is_refused_by_its_rows() -> None:
    daily = sales(pd.date_range("2024-06-01", periods=20, freq="D"), series=1).assign(item_id="DAILY_ITEM")
    report = validate_tables(RawTables(sales=pd.concat([WEEKLY, daily], ignore_index=True)), TODAY)

    (failure,) = report.failures
    assert failure.column == "date" and "must follow the data's frequency, weekly (W-FRI" in failure.rule
    assert failure.unexpected_count == 20 and failure.sample_rows[0] == len(WEEKLY) + 1


def test_dates_off_the_declared_calendar_are_refused_by_their_rows() -> None:
    shifted = WEEKLY.copy()
    shifted.loc[[3, 64], "date"] = ["2024-01-24", "2024-01-31"]  # Wednesdays among Fridays

    report = validate_tables(RawTables(sales=shifted), TODAY, frequency=Frequency("W-FRI"))

    rules = {failure.rule: failure for failure in report.failures}
    off_calendar = rules["must be a date of the weekly (W-FRI: weeks ending Friday) calendar"]
    assert off_calendar.sample_rows == [4, 65]


def test_dates_that_fit_no_frequency_are_refused_saying_so() -> None:
    mid_month = sales(pd.date_range("2023-01-01", periods=12, freq="MS") + pd.Timedelta(days=14))

    report = validate_tables(RawTables(sales=mid_month), TODAY)

    (failure,) = report.failures
    assert report.frequency is None and failure.column == "date" and failure.sample_rows[:2] == [1, 2]
    assert failure.rule.startswith("dates must step by days, by weeks on one weekday or by months")


def test_a_missing_week_is_a_warning_and_becomes_a_missing_row() -> None:
    gappy = WEEKLY.drop(index=[10, 11]).reset_index(drop=True)

    report = validate_tables(RawTables(sales=gappy), TODAY)
    data = complete_tables(RawTables(sales=gappy), MasterDefaults(), frequency=report.frequency or DAILY)

    assert report.success and [w.column for w in report.warnings] == ["date"]
    assert "treated as missing demand" in report.warnings[0].rule
    filled = data.sales[data.sales["missing"] == 1]
    assert filled["date"].dt.strftime("%Y-%m-%d").tolist() == ["2024-03-15", "2024-03-22"]
    assert (filled["available"] == 0).all() and len(data.sales) == len(WEEKLY)


def test_a_gap_over_the_limit_names_periods_not_days() -> None:
    gappy = MONTHLY.drop(index=range(5, 10)).reset_index(drop=True)

    report = validate_tables(RawTables(sales=gappy), TODAY)

    (failure,) = report.failures
    assert failure.rule.startswith("no gap over 3 months between dates of an item and store")


def test_weekly_horizons_lead_times_and_windows_are_in_weeks() -> None:
    frequency = Frequency("W-FRI")
    items = pd.DataFrame({"item_id": ["ITEM_0", "ITEM_1"], "lead_time_days": [3, 8], "review_days": [7, 14]})
    data = complete_tables(RawTables(sales=WEEKLY, items=items), MasterDefaults(), frequency=frequency)
    settings = load_settings().for_frequency(frequency)
    planning = replace(settings.planning, uncertainty_mode="point")
    dates = planned_dates(data.snapshot_date, planning, frequency)
    future = future_rows(data.sales, settings.forecast.horizon_in(frequency))
    forecast = future[["item_id", "store_id", "date"]].assign(mean=20.0, **{"q0.5": 20.0})

    problem = planning_problem(data, forecast, planning)

    assert settings.forecast.horizon == settings.planning.horizon == 13
    assert dates[0] == data.snapshot_date + pd.Timedelta(days=7) and (dates.day_of_week == 4).all()
    assert problem.frequency == frequency and problem.n_periods == 13
    assert set(problem.demand["period"]) == set(range(13))
    windows = backtest_windows(data.sales, 13, 2)
    assert [window.actual["date"].nunique() for window in windows] == [13, 13]
    assert windows[0].cutoff == data.snapshot_date - pd.Timedelta(weeks=26)


def test_the_day_based_horizon_keys_still_work_with_a_note() -> None:
    with pytest.warns(DeprecationWarning, match="forecast.horizon_days is deprecated: use forecast.horizon"):
        settings = load_settings(overrides=["forecast.horizon_days=14"])

    assert settings.forecast.horizon == 14
    with pytest.warns(DeprecationWarning, match="planning.horizon_days is deprecated: use planning.horizon"):
        settings = load_settings(overrides=["planning.horizon_days=7"])
    assert settings.planned_horizon(DAILY) == 7


def test_a_weekly_plan_balances_when_recomputed_from_its_orders_alone() -> None:
    frequency = Frequency("W-FRI")
    items = pd.DataFrame(
        {"item_id": ["ITEM_0", "ITEM_1"], "lead_time_days": [3, 10], "review_days": [7, 7], "case_pack": [6, 12]}
    )
    data = complete_tables(RawTables(sales=WEEKLY, items=items), MasterDefaults(), frequency=frequency)
    planning = replace(load_settings().for_frequency(frequency).planning, uncertainty_mode="point")
    future = future_rows(data.sales, 13)
    forecast = future[["item_id", "store_id", "date"]].assign(mean=25.0, **{"q0.5": 25.0})
    problem = planning_problem(data, forecast, planning)

    plan = solve_plan(problem, planning)

    lead_weeks = {"ITEM_0": 7, "ITEM_1": 14}  # 3 and 10 days rounded up to whole weeks
    assert (
        (plan.orders["arrival_date"] - plan.orders["order_date"]).dt.days == plan.orders["item_id"].map(lead_weeks)
    ).all()
    assert (plan.orders["quantity"] % plan.orders["item_id"].map({"ITEM_0": 6, "ITEM_1": 12}) == 0).all()
    for item_id, rows in plan.inventory.groupby("item_id"):
        stock = float(data.inventory.set_index("item_id").loc[item_id, "on_hand"])
        arriving = plan.orders[plan.orders["item_id"] == item_id].groupby("arrival_date")["quantity"].sum()
        for row in rows.sort_values("date").itertuples():
            stock = max(stock + arriving.get(row.date, 0.0) - 25.0, 0.0)
            assert row.on_hand_end == pytest.approx(stock, abs=1e-6), (item_id, row.date)
