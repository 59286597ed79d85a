"""Monitoring scores a logged forecast only where it answered: its item-stores and days, censored days left out;
drift is measured by PSI, and the retraining rule reads both."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.monitoring import (
    LoggedForecast,
    assess,
    covered_actuals,
    decide_retraining,
    population_stability_index,
    recent_performance,
)
from models.monitoring_config import MonitoringThresholds

ORIGIN = pd.Timestamp("2024-03-31")
CLOSED_DAY = pd.Timestamp("2024-04-03")
WEEKLY = np.array([4.0, 5.0, 6.0, 8.0, 12.0, 16.0, 6.0])


def sales(items: list[str], start: str, days: int) -> pd.DataFrame:
    dates = pd.date_range(start, periods=days, freq="D")
    return pd.concat(
        [
            pd.DataFrame(
                {
                    "item_id": item,
                    "store_id": "S1",
                    "date": dates,
                    "price": 1.0,
                    "available": 1,
                    "units": WEEKLY[dates.day_of_week],
                }
            )
            for item in items
        ],
        ignore_index=True,
    )


def logged_forecast(items: list[str], days: int) -> pd.DataFrame:
    """A forecast off by one unit every day, as monitoring reads it back from the planning run."""
    dates = pd.date_range(ORIGIN + pd.Timedelta(days=1), periods=days, freq="D")
    level = WEEKLY[dates.day_of_week] + 1.0
    return pd.concat(
        [
            pd.DataFrame(
                {
                    "item_id": item,
                    "store_id": "S1",
                    "date": dates,
                    "mean": level,
                    "q0.1": level - 2,
                    "q0.5": level,
                    "q0.9": level + 2,
                }
            )
            for item in items
        ],
        ignore_index=True,
    )


def test_only_the_forecasts_item_stores_and_days_are_scored() -> None:
    history = sales(["A", "B"], "2024-01-01", 91)
    forecast = logged_forecast(["A"], 14)
    arrived = sales(["A", "B"], "2024-04-01", 28)
    # Days the forecast did not cover, and a series it never forecast, go wild: none of it may count.
    wild = (arrived["item_id"] == "B") | (arrived["date"] > ORIGIN + pd.Timedelta(days=14))
    arrived.loc[wild, "units"] = 500.0
    # A closed day inside the window shows zero sales: censored, not scored as demand.
    closed = (arrived["item_id"] == "A") & (arrived["date"] == CLOSED_DAY)
    arrived.loc[closed, ["units", "available"]] = [0.0, 0]

    covered = covered_actuals(arrived, forecast)
    performance = recent_performance(history, arrived, forecast)

    assert set(covered["item_id"]) == {"A"} and len(covered) == 13
    assert covered["date"].max() == ORIGIN + pd.Timedelta(days=14) and (covered["date"] != CLOSED_DAY).all()
    assert performance["scored_days"] == 13
    assert performance["bias"] == pytest.approx(13 / covered["units"].sum())
    # Seasonal naive repeats the last week exactly: a perfect score on the same days, not on wild ones.
    assert performance["seasonal_naive_rmsse"] == pytest.approx(0.0)
    assert performance["rmsse"] > 0


def test_a_forecast_without_a_value_on_a_day_does_not_cover_it() -> None:
    forecast = logged_forecast(["A"], 7)
    forecast.loc[forecast["date"] == ORIGIN + pd.Timedelta(days=2), "q0.9"] = np.nan
    covered = covered_actuals(sales(["A"], "2024-04-01", 7), forecast)
    assert len(covered) == 6


def test_nothing_covered_scores_nothing() -> None:
    later = sales(["A"], "2024-06-01", 7)
    assert recent_performance(sales(["A"], "2024-01-01", 91), later, logged_forecast(["A"], 7)) == {"scored_days": 0.0}


def test_psi_is_zero_for_the_same_distribution_and_grows_with_the_shift() -> None:
    rng = np.random.default_rng(0)
    reference = rng.poisson(5.0, 5_000).astype(float)
    assert population_stability_index(reference, rng.poisson(5.0, 5_000).astype(float)) < 0.01
    small, large = (
        population_stability_index(reference, rng.poisson(level, 5_000).astype(float)) for level in (6.0, 12.0)
    )
    assert 0.01 < small < large and large > 0.5


def test_psi_says_nothing_without_data_or_spread() -> None:
    assert population_stability_index(np.array([]), np.array([1.0])) == 0.0
    assert population_stability_index(np.full(50, 3.0), np.arange(50.0)) == 0.0
    assert population_stability_index(np.array([np.nan, 1.0, 2.0, 3.0]), np.array([np.nan])) == 0.0


PERFORMANCE = {"scored_days": 28.0, "rmsse": 0.80, "seasonal_naive_rmsse": 1.00}
NO_DRIFT = {"psi_units": 0.1, "psi_price": 0.0}


@pytest.mark.parametrize(
    ("performance", "drift", "retrain", "reason"),
    [
        (PERFORMANCE, NO_DRIFT, False, "within limits"),
        ({**PERFORMANCE, "scored_days": 6.0}, {"psi_units": 9.0}, False, "only 6 day(s) of actuals"),
        ({**PERFORMANCE, "rmsse": 0.95}, NO_DRIFT, True, "x validation RMSSE"),
        ({**PERFORMANCE, "seasonal_naive_rmsse": 0.75}, NO_DRIFT, True, "x seasonal naive"),
        (PERFORMANCE, {"psi_units": 0.6, "psi_price": 0.0}, True, "psi_units 0.600 > 0.5"),
    ],
)
def test_retraining_follows_each_threshold(
    performance: dict[str, float], drift: dict[str, float], retrain: bool, reason: str
) -> None:
    decision = decide_retraining(performance, drift, validation_rmsse=0.70, thresholds=MonitoringThresholds())
    assert decision.retrain is retrain
    assert any(reason in line for line in decision.reasons), decision.reasons


def test_no_logged_forecast_keeps_the_champion_and_says_why() -> None:
    report = assess(sales(["A"], "2024-01-01", 91), None, None, MonitoringThresholds())
    assert not report.decision.retrain and report.model_version is None and report.performance == {}
    assert "no champion forecast logged yet" in report.decision.reasons[0]


def test_the_logged_forecast_is_scored_on_the_sales_after_its_origin() -> None:
    arrived = pd.concat([sales(["A"], "2024-01-01", 91), sales(["A"], "2024-04-01", 28)], ignore_index=True)
    logged = LoggedForecast("run-1", "4", ORIGIN, logged_forecast(["A"], 28))
    report = assess(arrived, logged, 0.70, MonitoringThresholds())
    assert report.model_version == "4" and report.validation_rmsse == 0.70
    assert report.performance["scored_days"] == 28 and set(report.drift) == {"psi_units", "psi_price"}
