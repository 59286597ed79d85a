"""Forecast scoring by the backtest protocol, checked against values worked out by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.evaluation import (
    demand_history,
    from_nixtla,
    revenue_weights,
    score_forecasts,
    seasonal_naive_forecast,
    to_nixtla,
)
from models.forecast_frame import SeriesCodes


def series(units: list[float], item_id: str = "A", start: str = "2024-01-01", price: float = 1.0) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "item_id": item_id,
            "store_id": "S",
            "units": units,
            "price": price,
            "date": pd.date_range(start, periods=len(units), freq="D"),
        }
    )


CUTOFF = pd.Timestamp("2024-01-14")


def test_seasonal_naive_repeats_the_last_week() -> None:
    history = series([float(day) for day in range(21)])
    forecast = seasonal_naive_forecast(history, horizon=10)
    assert forecast["mean"].tolist() == [14, 15, 16, 17, 18, 19, 20, 14, 15, 16]
    assert forecast["date"].iloc[0] == pd.Timestamp("2024-01-22")
    assert (forecast["cutoff"] == pd.Timestamp("2024-01-21")).all()


def hand_worked_case() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Series A: history 0,2,0,2,... (one-step |diff| 2, squared 4; 7-step |diff| 2); 7 actual days of 1,
    forecast 3 with q0.1 0, q0.9 5, q0.025 0, q0.975 0.5. Series B: history 1,3,...; actual 2, forecast 2."""
    history = pd.concat([series([0.0, 2.0] * 7, "A"), series([1.0, 3.0] * 7, "B")], ignore_index=True)
    actual = pd.concat([series([1.0] * 7, "A", "2024-01-15"), series([2.0] * 7, "B", "2024-01-15")], ignore_index=True)
    forecast = actual.drop(columns=["units", "price"]).assign(cutoff=CUTOFF)
    is_a = forecast["item_id"] == "A"
    forecast["mean"] = np.where(is_a, 3.0, 2.0)
    forecast["q0.5"] = forecast["mean"]
    forecast["q0.1"] = np.where(is_a, 0.0, 2.0)
    forecast["q0.9"] = np.where(is_a, 5.0, 2.0)
    forecast["q0.025"] = np.where(is_a, 0.0, 2.0)
    forecast["q0.975"] = np.where(is_a, 0.5, 2.0)
    return history, actual, forecast


def test_metrics_match_the_hand_computed_values() -> None:
    history, actual, forecast = hand_worked_case()
    scores = score_forecasts({"model": forecast}, actual, history)
    per_series = scores.per_series.set_index(["item_id", "store_id"])
    # A: MSE 4 over scale 4 -> RMSSE 1; MAE 2 over 7-step scale 2 -> MASE 1.
    assert per_series.loc[("A", "S"), "model_rmsse"] == pytest.approx(1.0)
    assert per_series.loc[("A", "S"), "model_mase"] == pytest.approx(1.0)
    # 1 lies in [0, 5] but not in [0, 0.5].
    assert per_series.loc[("A", "S"), "model_coverage_80"] == 1.0
    assert per_series.loc[("A", "S"), "model_coverage_95"] == 0.0
    # Pinball: q0.1 -> 0.1·1, q0.5 -> 0.5·2, q0.9 -> 0.1·4; each over the one-step scale 2, then averaged.
    assert per_series.loc[("A", "S"), "model_pinball"] == pytest.approx((0.1 / 2 + 1.0 / 2 + 0.4 / 2) / 3)
    assert per_series.loc[("B", "S"), ["model_rmsse", "model_mase", "model_pinball"]].tolist() == [0.0, 0.0, 0.0]
    # Revenue over the 28 days to the cutoff: A 14, B 28 -> weights 1/3 and 2/3.
    assert scores.metrics["model_wrmsse"] == pytest.approx(1 / 3)
    assert scores.metrics["model_rmsse"] == pytest.approx(0.5)
    assert scores.metrics["model_coverage_95"] == pytest.approx(0.5)


def test_scales_use_only_the_history_up_to_each_cutoff() -> None:
    history, actual, forecast = hand_worked_case()
    # Days after the cutoff with wild swings must not change the scale of that origin.
    later = pd.concat([history, series([0.0, 100.0] * 7, "A", "2024-01-22")], ignore_index=True)
    before = score_forecasts({"model": forecast}, actual, history).metrics
    after = score_forecasts({"model": forecast}, actual, later).metrics
    assert before["model_rmsse"] == pytest.approx(after["model_rmsse"])


def test_point_only_models_get_no_interval_metrics_and_tables_line_up() -> None:
    history, actual, forecast = hand_worked_case()
    point_only = forecast[["item_id", "store_id", "date", "cutoff", "mean"]]
    scores = score_forecasts({"probabilistic": forecast, "point_only": point_only}, actual, history)
    table = scores.table()
    assert list(table.index) == ["probabilistic", "point_only"]
    assert table.loc["point_only", ["coverage_80", "pinball"]].isna().all()
    assert table.loc["point_only", "rmsse"] == pytest.approx(table.loc["probabilistic", "rmsse"])


def test_censored_days_are_not_scored_and_do_not_shape_the_scales() -> None:
    history, actual, forecast = hand_worked_case()
    expected = score_forecasts({"model": forecast}, actual, history).metrics
    # Censored days (a stockout before the history, a closed day after the test week) show sales that are
    # no demand: scored, or in the one-step scale, they would move every metric of series A.
    censored_history = pd.concat(
        [series([100.0], "A", "2023-12-31", price=np.nan).assign(available=0), history.assign(available=1)],
        ignore_index=True,
    )
    censored_actual = pd.concat(
        [actual.assign(available=1), series([0.0], "A", "2024-01-22").assign(available=0)], ignore_index=True
    )
    forecast = pd.concat([forecast, forecast.iloc[[0]].assign(date=pd.Timestamp("2024-01-22"))], ignore_index=True)

    scores = score_forecasts({"model": forecast}, censored_actual, censored_history).metrics

    for metric in ("model_rmsse", "model_mase", "model_pinball", "model_coverage_80", "model_wrmsse"):
        assert scores[metric] == pytest.approx(expected[metric])


def test_demand_history_takes_censored_days_from_the_same_weekday() -> None:
    units = [float(day % 7) for day in range(21)]  # 2024-01-01 is a Monday: each weekday has its own level
    history = series(units).assign(available=1)
    censored_rows = [2, 9, 14]  # the first two Wednesdays (nothing uncensored before them) and a Monday
    history.loc[censored_rows, ["units", "available"]] = [0.0, 0]

    assert demand_history(history)["units"].tolist() == units
    assert seasonal_naive_forecast(history, 7)["mean"].tolist() == units[:7]
    uncensored = series(units)
    assert demand_history(uncensored) is uncensored


def test_revenue_weights_count_units_where_sales_have_no_price() -> None:
    history = pd.concat([series([2.0] * 28, "A", price=np.nan), series([6.0] * 28, "B", price=np.nan)])

    weights = revenue_weights(history, [history["date"].max()], periods=28)

    assert weights.set_index(["item_id", "store_id"])["weight"].to_dict() == {("A", "S"): 0.25, ("B", "S"): 0.75}


def test_weekly_seasonal_naive_repeats_the_same_week_a_year_before() -> None:
    weeks = pd.date_range("2023-01-01", periods=60, freq="W-SUN")
    history = pd.DataFrame({"item_id": "A", "store_id": "S", "date": weeks, "units": np.arange(60.0), "price": 1.0})

    forecast = seasonal_naive_forecast(history, 3)

    assert forecast["date"].tolist() == list(pd.date_range(weeks[-1], periods=4, freq="W-SUN")[1:])
    assert forecast["mean"].tolist() == [8.0, 9.0, 10.0]  # weeks 9-11 of the 60, 52 before


def test_ids_holding_the_old_separator_stay_two_ids_through_nixtla() -> None:
    """("A|B", "S") and ("A", "B|S") were one series "A|B|S" when ids were joined; they are two, and each
    forecast and score comes back to its own item and store."""
    history = pd.concat(
        [series([0.0, 2.0] * 7, "A|B").assign(store_id="S"), series([1.0, 5.0] * 7, "A").assign(store_id="B|S")],
        ignore_index=True,
    )
    codes = SeriesCodes.of(history)
    nixtla = to_nixtla(history, {"units": "y"}, codes)
    assert nixtla["unique_id"].nunique() == 2
    pd.testing.assert_frame_equal(from_nixtla(nixtla, codes), history[["item_id", "store_id", "date"]])

    forecast = seasonal_naive_forecast(history, horizon=7)
    repeated = forecast.groupby(["item_id", "store_id"])["mean"].agg(lambda points: sorted(set(points)))
    assert repeated.to_dict() == {("A", "B|S"): [1.0, 5.0], ("A|B", "S"): [0.0, 2.0]}
    # Off by 1 (A|B) and by 4 (A) every day, over 7-step changes of 2 and 4: MASE 1/2 and 1.
    actual = forecast[["item_id", "store_id", "date"]].assign(
        units=forecast["mean"] + np.where(forecast["item_id"] == "A", 4.0, 1.0)
    )
    scores = score_forecasts({"naive": forecast}, actual, history)
    mase = scores.per_series.set_index(["item_id", "store_id"])["naive_mase"]
    assert mase.to_dict() == {("A", "B|S"): pytest.approx(1.0), ("A|B", "S"): pytest.approx(0.5)}
