"""The contract a forecast and its model keep with planning: recorded tags, coverage, naive fallback."""

from __future__ import annotations

import pandas as pd
import pytest

from models.forecast_contract import (
    NAIVE_FALLBACK,
    ForecastContractError,
    ForecasterContract,
    cover_planned_days,
    require_coverage,
    uncovered,
)
from replenish.frequency import DAILY, Frequency

QUANTILES = (0.1, 0.5, 0.9)
PLANNED = pd.date_range("2024-03-01", periods=28, freq="D", unit="ns")


def contract(horizon: int = 28) -> ForecasterContract:
    training = pd.DataFrame({"date": pd.to_datetime(["2023-01-01", "2024-02-29"])})
    return ForecasterContract.of_model(horizon, DAILY, QUANTILES, ["item_id", "promo"], training)


def history(series: list[str], days: int = 28) -> pd.DataFrame:
    """Sales up to the day before PLANNED, weekday levels 1..7 (2024-02-26 is a Monday)."""
    dates = pd.date_range(end="2024-02-29", periods=days, freq="D", unit="ns")
    return pd.concat(
        [
            pd.DataFrame(
                {"item_id": item, "store_id": "S1", "date": dates, "units": (dates.day_of_week + 1).astype(float)}
            )
            for item in series
        ],
        ignore_index=True,
    )


def forecast(series: list[str], days: int = 28) -> pd.DataFrame:
    dates = PLANNED[:days]
    return pd.concat(
        [
            pd.DataFrame(
                {
                    "item_id": item,
                    "store_id": "S1",
                    "date": dates,
                    "mean": 10.0,
                    "q0.1": 8.0,
                    "q0.5": 10.0,
                    "q0.9": 12.0,
                }
            )
            for item in series
        ],
        ignore_index=True,
    )


def test_the_contract_round_trips_through_version_tags() -> None:
    recorded = contract()
    tags = recorded.as_tags()
    assert tags["forecast.frequency"] == "D" and tags["forecast.horizon"] == "28"
    assert tags["training.first_date"] == "2023-01-01" and tags["training.last_date"] == "2024-02-29"
    assert all(isinstance(value, str) for value in tags.values())
    assert ForecasterContract.from_tags({**tags, "promotion_decision": "first model"}) == recorded


def test_a_version_registered_before_contracts_has_none() -> None:
    assert ForecasterContract.from_tags({"promotion_decision": "first model: no champion yet"}) is None


def test_a_plan_longer_than_the_model_horizon_or_needing_other_quantiles_is_refused() -> None:
    contract(28).require(28, DAILY, {0.5, 0.9}, "champion version 1")
    with pytest.raises(ForecastContractError) as refused:
        contract(14).require(28, DAILY, {0.5, 0.8}, "champion version 3")
    message = str(refused.value)
    assert message.startswith("champion version 3 cannot serve this plan")
    assert "forecasts 14 days" in message and "covers 28 (planning.horizon)" in message
    assert "needs [0.8]" in message and "\n" not in message


def test_a_model_of_other_periods_is_refused() -> None:
    with pytest.raises(ForecastContractError, match="it forecasts daily .D. periods, the data is weekly"):
        contract(28).require(4, Frequency("W-SUN"), {0.5}, "champion version 2")


def test_coverage_names_the_item_stores_and_days_a_forecast_lacks() -> None:
    # B's forecast stops after 14 days (a model trained for 14), C has none, A has a hole in a value.
    partial = pd.concat([forecast(["A"]), forecast(["B"], days=14)], ignore_index=True)
    partial.loc[3, "q0.9"] = float("nan")
    series = history(["A", "B", "C"])

    gaps = uncovered(partial, series, PLANNED)

    assert gaps.groupby("item_id").size().to_dict() == {"A": 1, "B": 14, "C": 28}
    assert gaps.loc[gaps["item_id"] == "B", "date"].min() == PLANNED[14]
    with pytest.raises(ForecastContractError) as refused:
        require_coverage(partial, series, PLANNED)
    message = str(refused.value)
    assert "does not cover 3 of 3 item-store(s)" in message
    assert "B|S1 (14 day(s) from 2024-03-15)" in message and "C|S1 (28 day(s) from 2024-03-01)" in message
    assert "planning.missing_forecast=naive" in message
    require_coverage(forecast(["A", "B", "C"]), series, PLANNED)


def test_refuse_keeps_a_covering_forecast_and_refuses_a_gap() -> None:
    covered = cover_planned_days(forecast(["A"]), history(["A"]), PLANNED, "refuse")
    assert covered.naive_fallback_series == 0 and not covered.forecast[NAIVE_FALLBACK].any()
    with pytest.raises(ForecastContractError):
        cover_planned_days(forecast(["A"], days=14), history(["A"]), PLANNED, "refuse")


def test_naive_fills_only_the_gaps_from_each_series_own_week_and_counts_the_series() -> None:
    partial = pd.concat([forecast(["A"]), forecast(["B"], days=14)], ignore_index=True)

    covered = cover_planned_days(partial, history(["A", "B", "C"]), PLANNED, "naive")

    result = covered.forecast
    assert covered.naive_fallback_series == 2
    assert len(result) == 3 * 28 and not result.duplicated(["item_id", "store_id", "date"]).any()
    model_rows = result[~result[NAIVE_FALLBACK]]
    assert set(model_rows["item_id"]) == {"A", "B"} and (model_rows["q0.5"] == 10.0).all()
    fallback = result[result[NAIVE_FALLBACK]]
    assert fallback.groupby("item_id").size().to_dict() == {"B": 14, "C": 28}
    weekday_level = (fallback["date"].dt.day_of_week + 1).astype(float)
    for column in ("mean", "q0.1", "q0.5", "q0.9"):
        assert (fallback[column] == weekday_level).all()


def test_naive_still_refuses_a_series_too_short_for_a_weekly_naive() -> None:
    short = pd.concat([history(["A"]), history(["NEW"], days=3)], ignore_index=True)
    with pytest.raises(ForecastContractError, match=r"NEW\|S1"):
        cover_planned_days(forecast(["A"]), short, PLANNED, "naive")
