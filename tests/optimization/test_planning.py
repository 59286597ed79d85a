"""From forecast to planning problem (optimization/planning.py)."""

from __future__ import annotations

import pandas as pd
import pytest

from models.forecast_contract import ForecastContractError, ForecasterContract
from optimization.config import PlanningConfig
from optimization.planning import (
    covered_forecast,
    planning_problem,
    quantiles_needed,
    require_forecaster_contract,
)
from replenish.data.synthetic import SyntheticConfig, generate_synthetic
from replenish.data.tables import MasterDefaults, RetailData, complete_tables
from replenish.frequency import DAILY


def test_planning_problem_starts_the_day_after_the_snapshot_and_uses_the_demand_quantile() -> None:
    data = complete_tables(generate_synthetic(SyntheticConfig(n_items=2, n_stores=1, n_days=90)), MasterDefaults())
    dates = pd.date_range(data.snapshot_date + pd.Timedelta(days=1), periods=28, freq="D")
    keys = data.sales[["item_id", "store_id"]].drop_duplicates()
    forecast = keys.merge(pd.DataFrame({"date": dates}), how="cross").assign(**{"q0.5": 2.0, "q0.8": 3.0})
    problem = planning_problem(
        data, forecast, PlanningConfig(horizon=14, demand_quantile=0.8, uncertainty_mode="point")
    )
    assert problem.start_date == dates[0]
    assert problem.n_periods == 14
    assert sorted(problem.demand["period"].unique()) == list(range(14))
    assert (problem.demand["demand"] == 3.0).all()
    assert len(problem.demand) == len(keys) * 14


def uniform_forecast(data: RetailData, days: int) -> pd.DataFrame:
    dates = pd.date_range(data.snapshot_date + pd.Timedelta(days=1), periods=days, freq="D")
    return (
        data.inventory[["item_id", "store_id"]]
        .merge(pd.DataFrame({"date": dates}), how="cross")
        .assign(**{"mean": 2.0, "q0.5": 2.0, "q0.9": 3.0})
    )


def test_a_forecast_shorter_than_the_plan_is_refused_not_read_as_zero_demand() -> None:
    data = complete_tables(generate_synthetic(SyntheticConfig(n_items=2, n_stores=1, n_days=90)), MasterDefaults())
    with pytest.raises(ForecastContractError, match=r"does not cover 2 of 2 item-store\(s\).*14 day\(s\) from"):
        planning_problem(data, uniform_forecast(data, 14), PlanningConfig(horizon=28))


def test_an_item_store_without_forecast_rows_is_refused() -> None:
    data = complete_tables(generate_synthetic(SyntheticConfig(n_items=3, n_stores=1, n_days=90)), MasterDefaults())
    forecast = uniform_forecast(data, 28)
    missing = data.inventory.iloc[1]
    forecast = forecast[forecast["item_id"] != missing["item_id"]]
    with pytest.raises(ForecastContractError, match=f"{missing['item_id']}\\|{missing['store_id']} \\(28 day"):
        planning_problem(data, forecast, PlanningConfig())


def test_the_plan_reads_its_demand_quantile_and_in_quantile_mode_the_median() -> None:
    assert quantiles_needed(PlanningConfig(demand_quantile=0.9)) == {0.9}
    assert quantiles_needed(PlanningConfig(demand_quantile=0.9, uncertainty_mode="quantile")) == {0.5, 0.9}


def test_a_model_is_held_to_the_contract_it_recorded_and_one_without_is_taken_as_it_is() -> None:
    data = complete_tables(generate_synthetic(SyntheticConfig(n_items=2, n_stores=1, n_days=90)), MasterDefaults())
    recorded = ForecasterContract.of_model(14, DAILY, (0.1, 0.5, 0.9), ["item_id"], data.sales).as_tags()
    with pytest.raises(ForecastContractError, match="version 3 cannot serve this plan: it forecasts 14 days"):
        require_forecaster_contract(PlanningConfig(horizon=28), data.sales, recorded, "version 3")
    require_forecaster_contract(PlanningConfig(horizon=14, demand_quantile=0.9), data.sales, recorded, "version 3")
    require_forecaster_contract(PlanningConfig(horizon=28), data.sales, {}, "version 3")


def test_a_forecast_short_of_the_plan_is_refused_or_completed_by_seasonal_naive() -> None:
    data = complete_tables(generate_synthetic(SyntheticConfig(n_items=2, n_stores=1, n_days=90)), MasterDefaults())
    short = uniform_forecast(data, 14)
    with pytest.raises(ForecastContractError, match="does not cover 2 of 2"):
        covered_forecast(PlanningConfig(horizon=28), short, data.sales)
    covered = covered_forecast(PlanningConfig(horizon=28, missing_forecast="naive"), short, data.sales)
    assert covered.naive_fallback_series == 2 and covered.forecast["date"].nunique() == 28
