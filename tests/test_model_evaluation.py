"""Holdout scoring against the seasonal-naive baseline."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.evaluation import evaluate_holdout, seasonal_naive_forecast


def series(units: list[float], item_id: str = "A", start: str = "2024-01-01") -> pd.DataFrame:
    return pd.DataFrame({"item_id": item_id, "store_id": "S", "units": units,
                         "date": pd.date_range(start, periods=len(units), freq="D")})


def test_seasonal_naive_repeats_the_last_week() -> None:
    history = series([float(day) for day in range(21)])
    forecast = seasonal_naive_forecast(history, horizon=10)
    assert forecast["seasonal_naive"].tolist() == [14, 15, 16, 17, 18, 19, 20, 14, 15, 16]
    assert forecast["date"].iloc[0] == pd.Timestamp("2024-01-22")


def test_perfect_forecast_scores_zero_and_full_coverage() -> None:
    rng = np.random.default_rng(3)
    units = rng.poisson(5, 49).astype(float).tolist()
    train, actual = series(units[:42]), series(units[42:], start="2024-02-12")
    perfect = actual.assign(**{"q0.1": actual["units"] - 1, "q0.5": actual["units"], "q0.9": actual["units"] + 1})
    naive = seasonal_naive_forecast(train, horizon=7)
    evaluation = evaluate_holdout(train, actual, perfect.drop(columns="units"), naive)
    assert evaluation.metrics["lstm_rmsse"] == 0 and evaluation.metrics["lstm_mase"] == 0
    assert evaluation.metrics["lstm_coverage_80"] == 1
    assert evaluation.metrics["seasonal_naive_rmsse"] > 0
    assert evaluation.beats_seasonal_naive


def test_rmsse_uses_the_in_sample_one_step_scale() -> None:
    train = series([0.0, 2.0] * 10)  # one-step differences are all 2: scale = mean(4) = 4
    actual = series([1.0] * 7, start="2024-01-21")
    forecast = actual.assign(**{"q0.1": 0.0, "q0.5": 3.0, "q0.9": 5.0})  # error 2 each day: MSE 4
    evaluation = evaluate_holdout(train, actual, forecast.drop(columns="units"), seasonal_naive_forecast(train, 7))
    assert evaluation.metrics["lstm_rmsse"] == pytest.approx(1.0)
