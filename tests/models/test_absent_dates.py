"""Closed days an export simply omits: filled once, right after validation, then every stage copes.

Public holidays are absent from every series of the store, as in a real grocery export; before the
fill, LightGBM's future frame lacked those days and the backtest ended in a traceback."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from expectations.validation import CheckedTables, ValidationReport
from models.backtest import backtest_windows, run_backtest
from models.baselines import baseline_forecasters
from models.features import build_feature_frame
from models.forecast_contract import NAIVE_FALLBACK, cover_planned_days
from models.lstm.config import LSTMConfig
from models.lstm.estimator import LSTMEstimator
from models.pyfunc import as_model_input
from optimization.config import PlanningConfig
from optimization.planning import planned_dates, planning_problem
from replenish.data.tables import MasterDefaults, RawTables, RetailData, complete_tables
from replenish.frequency import DAILY
from replenish.settings import DataSettings
from tasks.data import complete_data
from tests.models.lstm.test_lstm import QUANTILES, weekly_sales

# Good Friday, Easter Monday, Labour Day, Ascension and Whit Monday 2024: in the history and in both test windows.
HOLIDAYS = pd.to_datetime(["2024-03-29", "2024-04-01", "2024-05-01", "2024-05-09", "2024-05-20"])
HORIZON = 14


def export_without_holidays(n_days: int = 150) -> RawTables:
    sales = weekly_sales(n_series=3, n_days=n_days).assign(dept_id="D", cat_id="C", snap=1)
    return RawTables(sales=sales[~sales["date"].isin(HOLIDAYS)].drop(columns="available").reset_index(drop=True))


def test_the_setting_decides_what_the_filled_days_are() -> None:
    raw = export_without_holidays()
    checked = CheckedTables(raw, ValidationReport(tables={}, expectations_checked=0, frequency=DAILY))
    closed = complete_data.fn(checked, DataSettings())
    missing = complete_data.fn(checked, DataSettings(absent_dates="missing"))

    assert closed.sales.loc[closed.sales["closed"] == 1, "date"].unique().tolist() == HOLIDAYS.tolist()
    assert missing.sales.loc[missing.sales["missing"] == 1, "date"].unique().tolist() == HOLIDAYS.tolist()
    assert "closed" not in missing.sales and (missing.sales.loc[missing.sales["missing"] == 1, "available"] == 0).all()
    # The filled days know no SNAP flag: the model input reads that as no programme, as for a source without one.
    model_input = as_model_input(closed.sales)
    assert (model_input.loc[closed.sales["closed"] == 1, "snap"] == 0).all() and model_input["snap"].dtype == "int64"
    with pytest.raises(ValueError, match="absent_dates"):
        DataSettings(absent_dates="zero")


@pytest.mark.slow
def test_every_baseline_and_the_lstm_run_the_backtest_on_data_with_closed_days(tmp_path: Path) -> None:
    sales = complete_tables(export_without_holidays(), MasterDefaults()).sales
    features = build_feature_frame(sales)
    windows = backtest_windows(features, HORIZON, n_origins=2)
    config = LSTMConfig(context_length=28, hidden_size=8, max_epochs=1, batch_size=64)

    def lstm(history: pd.DataFrame, future: pd.DataFrame) -> pd.DataFrame:
        cutoff = history["date"].max()
        predictor = LSTMEstimator(
            config, HORIZON, QUANTILES, 0, tmp_path / f"{cutoff:%Y%m%d}", show_progress=False
        ).fit(history)
        return predictor.predict(history, future).assign(cutoff=cutoff)

    names = ["seasonal_naive", "auto_ets", "tsb", "lightgbm"]
    result = run_backtest(
        features, windows, {"lstm": lstm, **baseline_forecasters(names, HORIZON)}, show_progress=False
    )

    table = result.scores.table()
    assert list(table.index) == ["lstm", *names] and table["rmsse"].notna().all()
    for name, forecast in result.forecasts.items():
        # A forecast for every day, holidays included: the grid is regular for every model...
        assert forecast.groupby(["item_id", "store_id", "cutoff"]).size().eq(HORIZON).all(), name
        assert forecast["date"].isin(HOLIDAYS).any(), name
    # ...and the holidays' zero sales are scored for none of them: 14 test days, one holiday each.
    scored_days = [window.actual.loc[window.actual["available"] == 1, "date"].nunique() for window in windows]
    assert scored_days == [HORIZON - 1, HORIZON - 1]


def data_ending_on_a_holiday() -> RetailData:
    """The snapshot's last week has the Whit Monday closure, and its last day is a normal Thursday."""
    raw = export_without_holidays(n_days=144)  # up to 2024-05-23
    return complete_tables(raw, MasterDefaults())


def test_the_planner_gets_demand_not_the_closed_days_zeros() -> None:
    data = data_ending_on_a_holiday()
    planning = PlanningConfig(horizon=HORIZON, missing_forecast="naive", uncertainty_mode="point")
    empty = pd.DataFrame(columns=["item_id", "store_id", "date", "mean", "q0.5"]).astype({"date": "datetime64[ns]"})

    covered = cover_planned_days(
        empty, data.sales, planned_dates(data.snapshot_date, planning, data.frequency), "naive"
    )
    problem = planning_problem(data, covered.forecast, planning)

    assert covered.naive_fallback_series == 3 and covered.forecast[NAIVE_FALLBACK].all()
    monday = problem.demand.merge(data.inventory[["item_id", "store_id"]])
    monday = monday[(problem.start_date + pd.to_timedelta(monday["period"], unit="D")).dt.day_of_week == 0]
    # Seasonal naive repeats last week, whose Monday was closed: it must plan that Monday's demand, not zero.
    assert (monday["demand"] > 0).all() and len(monday) == 3 * 2
    assert np.isfinite(problem.demand["demand"]).all()
