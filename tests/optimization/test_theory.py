"""The planner's decisions against inventory theory: newsvendor, perfect foresight, base stock."""

from __future__ import annotations

from dataclasses import replace
from statistics import NormalDist

import numpy as np
import pandas as pd
import pytest
from scipy.stats import poisson

from optimization.grid import CALENDAR_EPOCH
from optimization.replenishment_lp import (
    CostSettings,
    ModelOptions,
    PlanningProblem,
    SolverSettings,
    solve_replenishment_plan,
)
from optimization.uncertainty import safety_stock_from_quantiles
from tests.optimization.test_replenishment_lp import FRACTIONAL, PLAIN_COSTS

START = pd.Timestamp("2024-03-01")
NO_OPEN_ORDERS = pd.DataFrame(columns=["item_id", "store_id", "quantity", "arrival_date"])
NO_CAPACITY = pd.DataFrame(columns=["store_id", "capacity_volume"])
UNIT_COST = 10.0
# Unbiased sample quantiles need N·fractile off the integers, hence the odd sample size.
N_SCENARIOS = 4001


def _one_item(
    demand: pd.DataFrame,
    n_periods: int,
    *,
    lead_time_days: int = 0,
    holding_per_period: float = 1.0,
    shortage_cost: float = 30.0,
    opening_stock: float = 0.0,
    capacity: pd.DataFrame = NO_CAPACITY,
    safety_stock: pd.DataFrame | None = None,
    review_days: int = 1,
) -> PlanningProblem:
    return PlanningProblem(
        start_date=START,
        n_periods=n_periods,
        demand=demand.assign(item_id="A", store_id="S1"),
        items=pd.DataFrame(
            {
                "item_id": ["A"],
                "unit_cost": [UNIT_COST],
                "holding_cost_rate": [holding_per_period * 365 / UNIT_COST],
                "lead_time_days": [lead_time_days],
                "unit_volume": [1.0],
                "shortage_cost": [shortage_cost],
                **calendar_from_start(review_days),
            }
        ),
        on_hand=pd.DataFrame({"item_id": ["A"], "store_id": ["S1"], "on_hand": [opening_stock]}),
        open_orders=NO_OPEN_ORDERS,
        capacity=capacity,
        safety_stock=safety_stock,
    )


def calendar_from_start(review_days: int) -> dict[str, int]:
    """Item columns for an order every `review_days` days, the first on START."""
    return {"review_days": review_days, "order_weekday": (START - CALENDAR_EPOCH).days % review_days}


def _single_period_scenarios(sample: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({"scenario": np.arange(len(sample)), "period": 0, "demand": sample})


def _newsvendor_order(sample: np.ndarray, holding: float, shortage_cost: float) -> float:
    problem = _one_item(_single_period_scenarios(sample), 1, holding_per_period=holding, shortage_cost=shortage_cost)
    result = solve_replenishment_plan(problem, PLAIN_COSTS, options=FRACTIONAL)
    assert result.solver_status == "optimal"
    return float(result.orders["quantity"].sum())


def _lost_sales_fractile(holding: float, shortage_cost: float) -> float:
    """Underage p = penalty less the unit cost saved; overage h = unit cost plus holding."""
    underage = shortage_cost - UNIT_COST
    overage = UNIT_COST + holding
    return underage / (underage + overage)


def test_newsvendor_with_normal_demand_orders_the_critical_fractile() -> None:
    mean, std, holding, shortage_cost = 100.0, 20.0, 2.0, 30.0
    sample = np.random.default_rng(1).normal(mean, std, N_SCENARIOS)
    fractile = _lost_sales_fractile(holding, shortage_cost)

    order = _newsvendor_order(sample, holding, shortage_cost)

    assert fractile == pytest.approx(0.625)
    # SAA's optimum is the sample's fractile; the true one is within sampling error of it.
    assert order == pytest.approx(np.quantile(sample, fractile, method="inverted_cdf"), abs=1e-6)
    standard_error = np.sqrt(fractile * (1 - fractile) / N_SCENARIOS) / (
        NormalDist().pdf(NormalDist().inv_cdf(fractile)) / std
    )
    assert order == pytest.approx(NormalDist(mean, std).inv_cdf(fractile), abs=3 * standard_error)


def test_newsvendor_with_poisson_demand_orders_the_critical_fractile() -> None:
    # F(12) = 0.576 and F(13) = 0.682 sit far from 0.625 relative to the CDF's sampling error.
    rate, holding, shortage_cost = 12.0, 2.0, 30.0
    sample = np.random.default_rng(2).poisson(rate, N_SCENARIOS).astype(float)

    order = _newsvendor_order(sample, holding, shortage_cost)

    assert order == pytest.approx(poisson.ppf(_lost_sales_fractile(holding, shortage_cost), rate))


def _random_problem(seed: int, scenarios: int) -> PlanningProblem:
    rng = np.random.default_rng(seed)
    n_items, n_periods = 5, 10
    items = pd.DataFrame(
        {
            "item_id": [f"I{i}" for i in range(n_items)],
            "unit_cost": rng.uniform(1.0, 20.0, n_items),
            "holding_cost_rate": rng.uniform(0.1, 0.4, n_items),
            "lead_time_days": rng.integers(0, 4, n_items),
            "unit_volume": rng.uniform(0.5, 2.0, n_items),
        }
    )
    cells = pd.MultiIndex.from_product([items["item_id"], range(n_periods)], names=["item_id", "period"]).to_frame(
        index=False
    )
    demand = cells.assign(store_id="S1", demand=rng.poisson(6.0, len(cells)).astype(float))
    repeated = pd.concat([demand.assign(scenario=s) for s in range(scenarios)], ignore_index=True)
    return PlanningProblem(
        start_date=START,
        n_periods=n_periods,
        demand=repeated if scenarios > 1 else demand,
        items=items,
        on_hand=items[["item_id"]].assign(store_id="S1", on_hand=3.0),
        open_orders=NO_OPEN_ORDERS,
        capacity=pd.DataFrame({"store_id": ["S1"], "capacity_volume": [40.0]}),
    )


def test_identical_scenarios_give_the_perfect_foresight_plan() -> None:
    foresight = solve_replenishment_plan(_random_problem(seed=4, scenarios=1), PLAIN_COSTS, options=FRACTIONAL)
    scenario_mode = solve_replenishment_plan(_random_problem(seed=4, scenarios=6), PLAIN_COSTS, options=FRACTIONAL)

    assert foresight.capacity_utilisation["binding"].any()
    assert scenario_mode.objective == pytest.approx(foresight.objective, rel=1e-7)
    assert scenario_mode.cost_breakdown == pytest.approx(foresight.cost_breakdown, rel=1e-6, abs=1e-6)
    pd.testing.assert_frame_equal(
        scenario_mode.inventory[["demand", "lost_sales", "on_hand_end"]],
        foresight.inventory[["demand", "lost_sales", "on_hand_end"]],
        atol=1e-6,
    )


def test_backorder_scenarios_order_up_to_the_base_stock_level() -> None:
    # Stationary normal demand, lead time 2: the one order that can land (period 2) must bring
    # the inventory position to S = F_{L+1}^{-1}(b / (b + h)).  Ending stock and backlog are
    # valued at unit cost, as a stationary backorder system buys every demanded unit anyway.
    mean, std, lead_time, backorder_cost, holding = 50.0, 10.0, 2, 9.0, 1.0
    sample = np.random.default_rng(3).normal(mean, std, (N_SCENARIOS, lead_time + 1))
    scenarios = pd.DataFrame(
        {
            "scenario": np.repeat(np.arange(N_SCENARIOS), lead_time + 1),
            "period": np.tile(np.arange(lead_time + 1), N_SCENARIOS),
            "demand": sample.ravel(),
        }
    )
    opening_stock = 30.0
    problem = _one_item(
        scenarios,
        lead_time + 1,
        lead_time_days=lead_time,
        holding_per_period=holding,
        shortage_cost=backorder_cost,
        opening_stock=opening_stock,
    )

    result = solve_replenishment_plan(
        problem,
        CostSettings(ending_stock_value_share=1.0),
        options=ModelOptions(shortage_mode="backorder", whole_orders="none"),
    )

    fractile = backorder_cost / (backorder_cost + holding)
    over_lead_time = NormalDist((lead_time + 1) * mean, np.sqrt(lead_time + 1) * std)
    order_up_to = opening_stock + result.orders["quantity"].sum()
    assert order_up_to == pytest.approx(np.quantile(sample.sum(axis=1), fractile, method="inverted_cdf"), abs=1e-6)
    standard_error = np.sqrt(fractile * (1 - fractile) / N_SCENARIOS) / over_lead_time.pdf(
        over_lead_time.inv_cdf(fractile)
    )
    assert order_up_to == pytest.approx(over_lead_time.inv_cdf(fractile), abs=3 * standard_error)


def test_quantile_targets_give_the_periodic_review_base_stock_level() -> None:
    # Normal daily demand: S = (L + R)·mean + z·std·sqrt(L + R), the textbook order-up-to level.
    mean, std, lead_time, review, service_level = 40.0, 8.0, 3, 2, 0.95
    n_periods = 12
    forecast = pd.DataFrame({"item_id": "A", "store_id": "S1", "period": range(n_periods)})
    for level in (0.1, 0.5, 0.8, 0.9, 0.95):
        forecast[f"q{level:g}"] = mean + std * NormalDist().inv_cdf(level)
    protection = pd.Series(
        [lead_time + review], index=pd.MultiIndex.from_tuples([("A", "S1")], names=["item_id", "store_id"])
    )
    targets = safety_stock_from_quantiles(forecast, service_level, protection)
    opening_stock = lead_time * mean
    problem = _one_item(
        forecast[["period"]].assign(demand=mean),
        n_periods,
        lead_time_days=lead_time,
        opening_stock=opening_stock,
        safety_stock=targets,
        review_days=review,
    )

    result = solve_replenishment_plan(problem, PLAIN_COSTS, options=FRACTIONAL)

    z = NormalDist().inv_cdf(service_level)
    safety_stock = z * std * np.sqrt(lead_time + review)
    first = result.explanations.iloc[0]
    assert first["order_date"] == START
    assert opening_stock + first["quantity"] == pytest.approx((lead_time + review) * mean + safety_stock, rel=1e-9)
    assert first["safety_stock"] == pytest.approx(safety_stock, rel=1e-9)
    assert first["demand_over_protection"] == pytest.approx((lead_time + review) * mean)
    assert "stock_target" in first["binding"]
    assert ((result.orders["order_date"] - START).dt.days % review == 0).all()


def test_pyomo_and_direct_highspy_builds_reach_the_same_objective() -> None:
    problem = _random_problem(seed=8, scenarios=1)
    costs = CostSettings(fixed_order_cost=5.0, ending_stock_value_share=0.0)

    every_other_day = replace(problem, items=problem.items.assign(**calendar_from_start(2)))
    backorders = ModelOptions(shortage_mode="backorder", whole_orders="none")
    for options, planned in ((FRACTIONAL, problem), (backorders, every_other_day)):
        through_pyomo = solve_replenishment_plan(planned, costs, SolverSettings(backend="pyomo"), options)
        direct = solve_replenishment_plan(planned, costs, SolverSettings(backend="highspy"), options)

        assert through_pyomo.solver_status == direct.solver_status == "optimal"
        assert through_pyomo.objective == pytest.approx(direct.objective, rel=1e-6)
