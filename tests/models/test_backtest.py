"""Rolling-origin backtest and the baselines it compares the LSTM with."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.backtest import Forecaster, backtest_cutoffs, backtest_windows, run_backtest
from models.baselines import baseline_forecasters, lightgbm_forecast, statistical_forecasts
from models.forecast_frame import MEAN
from replenish.frequency import DAILY
from tests.models.lstm.test_lstm import weekly_sales

QUANTILES = ["q0.025", "q0.1", "q0.5", "q0.9", "q0.975"]


def test_cutoffs_step_back_one_horizon_each_and_windows_are_disjoint() -> None:
    sales = weekly_sales(n_series=2, n_days=120)
    last = sales["date"].max()
    assert backtest_cutoffs(last, 28, 3, DAILY) == [
        last - pd.Timedelta(days=84),
        last - pd.Timedelta(days=56),
        last - pd.Timedelta(days=28),
    ]
    windows = backtest_windows(sales, 28, 3)
    for window in windows:
        assert window.history["date"].max() == window.cutoff
        assert window.actual["date"].min() == window.cutoff + pd.Timedelta(days=1)
        assert window.actual["date"].nunique() == 28 and "units" not in window.future
    assert windows[-1].actual["date"].max() == last


def test_every_model_is_refitted_per_origin_without_seeing_the_test_window() -> None:
    sales = weekly_sales(n_series=2, n_days=120)
    seen: list[tuple[pd.Timestamp, pd.Timestamp]] = []

    def last_value(history: pd.DataFrame, future: pd.DataFrame) -> pd.DataFrame:
        seen.append((history["date"].max(), future["date"].min()))
        last = history.sort_values("date").groupby(["item_id", "store_id"])["units"].last()
        return future[["item_id", "store_id", "date"]].assign(
            **{MEAN: future.set_index(["item_id", "store_id"]).index.map(last).to_numpy(dtype=float)}
        )

    result = run_backtest(
        sales, backtest_windows(sales, horizon=14, n_origins=3), {"last_value": last_value}, show_progress=False
    )
    assert len(seen) == 3 and all(history_end < first_test_day for history_end, first_test_day in seen)
    assert sorted(result.forecasts["last_value"]["cutoff"].unique()) == [w.cutoff for w in result.windows]
    assert result.scores.per_series.groupby("cutoff").size().tolist() == [2, 2, 2]
    assert np.isfinite(result.scores.metrics["last_value_rmsse"]) and result.fit_seconds["last_value"] >= 0
    holdout = result.holdout_scores()
    assert set(holdout.per_series["cutoff"]) == {result.windows[-1].cutoff}


def test_statistical_baselines_give_ordered_non_negative_quantiles() -> None:
    history = weekly_sales(n_series=3, n_days=120)
    forecasts = statistical_forecasts(history, horizon=14, names=["seasonal_naive", "auto_ets", "tsb"])
    for name in ("seasonal_naive", "auto_ets"):
        frame = forecasts[name]
        assert len(frame) == 3 * 14 and (frame[QUANTILES + [MEAN]] >= 0).all().all()
        assert (frame[QUANTILES].diff(axis=1).iloc[:, 1:] >= -1e-9).all().all()
    assert MEAN in forecasts["tsb"] and "q0.1" not in forecasts["tsb"]  # a rate, no distribution


def test_every_baseline_runs_through_the_backtest() -> None:
    sales = weekly_sales(n_series=3, n_days=150).assign(dept_id="D", cat_id="C")
    names = ["seasonal_naive", "auto_ets", "croston", "tsb", "lightgbm"]
    result = run_backtest(
        sales,
        backtest_windows(sales, horizon=14, n_origins=2),
        baseline_forecasters(names, horizon=14),
        show_progress=False,
    )
    table = result.scores.table()
    assert list(table.index) == names and table["rmsse"].notna().all()
    # The weekly pattern is strong: every model that can learn it beats repeating last week's noise.
    assert table.loc["auto_ets", "rmsse"] < table.loc["seasonal_naive", "rmsse"]


def test_unknown_baseline_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown baselines"):
        baseline_forecasters(["prophet"], horizon=7)


@pytest.mark.slow
def test_lightgbm_is_global_uses_known_covariates_and_shrinks_intervals_to_the_history() -> None:
    sales = weekly_sales(n_series=4, n_days=260)
    sales = sales.assign(dept_id="D", cat_id="C", snap=0)
    history = sales[sales["date"] <= "2024-08-18"]
    actual = sales[(sales["date"] > "2024-08-18") & (sales["date"] <= "2024-09-01")]
    future = actual.drop(columns="units")
    forecast = lightgbm_forecast(history, future)
    assert len(forecast) == len(future) and (forecast[MEAN] >= 0).all()
    assert (forecast["q0.1"] <= forecast["q0.9"]).all() and (forecast["q0.025"] <= forecast["q0.975"]).all()
    by_weekday = forecast.groupby(forecast["date"].dt.day_of_week)[MEAN].mean()
    assert by_weekday.idxmax() == 5  # the weekly profile peaks on Saturdays

    short = history[history["date"] > history["date"].max() - pd.Timedelta(days=60)]
    point_only = lightgbm_forecast(short, future)
    assert point_only[MEAN].notna().all() and "q0.1" not in point_only


def test_the_backtest_reports_each_model_over_all_origins_on_the_holdout_and_its_fit_time() -> None:
    sales = weekly_sales(n_series=2, n_days=120)

    def constant(level: float) -> Forecaster:
        def forecast(history: pd.DataFrame, future: pd.DataFrame) -> pd.DataFrame:
            return future[["item_id", "store_id", "date"]].assign(**{MEAN: level})

        return forecast

    result = run_backtest(
        sales, backtest_windows(sales, 14, 2), {"low": constant(1.0), "high": constant(9.0)}, show_progress=False
    )
    metrics, table = result.metrics(), result.metrics_table()

    assert metrics["high_rmsse"] == result.scores.metrics["high_rmsse"]
    assert metrics["holdout_low_rmsse"] == result.holdout_scores().metrics["low_rmsse"]
    assert metrics["low_fit_seconds"] == result.fit_seconds["low"]
    assert table["model"].tolist() == ["low", "high"] and table["fit_seconds"].tolist() == list(
        result.fit_seconds.values()
    )
    # A point forecast has no interval scores: a model's own run gets only the scores it has.
    high = result.model_metrics("high")
    assert high["rmsse"] == metrics["high_rmsse"] and high["fit_seconds"] == result.fit_seconds["high"]
    assert all(np.isfinite(value) for value in high.values())
    assert set(result.last_forecasts()["low"]["cutoff"]) == {result.windows[-1].cutoff}
