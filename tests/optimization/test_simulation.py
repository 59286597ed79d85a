"""The rolling-horizon simulator and the policies it compares."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from optimization.grid import CALENDAR_EPOCH
from optimization.policies import (
    base_stock_policy,
    fixed_schedule_policy,
    rounded_up_to_whole_orders,
    seasonal_naive_order_up_to,
)
from optimization.replenishment_lp import (
    CostSettings,
    PlanningProblem,
    solve_replenishment_plan,
)
from optimization.simulation import InventorySystem, ReviewState, simulate

START = pd.Timestamp("2024-03-01")
NO_OPEN_ORDERS = pd.DataFrame(columns=["item_id", "store_id", "quantity", "arrival_date"])


def _system(
    n_days: int, *, lead_time: int, opening: float, review_days: int = 1, **overrides: object
) -> InventorySystem:
    settings = {
        "unit_cost": np.array([10.0]),
        "holding_cost_per_day": np.array([0.1]),
        "shortage_cost": np.array([20.0]),
        "lead_time_days": np.array([lead_time]),
        "opening_on_hand": np.array([opening]),
        "open_arrivals": np.zeros((1, n_days)),
        "order_days": (np.arange(n_days) % review_days == 0)[None, :],
    }
    return InventorySystem(**{**settings, **overrides})


def test_orders_land_after_their_lead_time_and_unmet_demand_is_lost() -> None:
    demand = np.array([[4.0, 4.0, 4.0, 4.0, 4.0]])
    orders = np.array([[6.0, 0.0, 0.0, 0.0, 0.0]])

    result = simulate(_system(5, lead_time=2, opening=5.0), demand, fixed_schedule_policy(orders))

    # Day 0: 5 - 4 = 1; day 1: 1 - 4, 3 lost; day 2: 6 arrive, 2 left; day 3: 2 lost; day 4: 4 lost.
    assert result.on_hand_end.tolist() == [[1.0, 0.0, 2.0, 0.0, 0.0]]
    assert result.unmet_demand.tolist() == [[0.0, 3.0, 0.0, 2.0, 4.0]]
    metrics = result.metrics
    assert metrics["fill_rate"] == pytest.approx(1 - 9 / 20)
    assert metrics["stockout_days"] == 3
    assert metrics["holding_cost"] == pytest.approx(0.1 * 3)
    assert metrics["shortage_cost"] == pytest.approx(20.0 * 9)
    assert metrics["total_cost"] == pytest.approx(0.3 + 180.0)
    assert metrics["purchase_cost"] == pytest.approx(60.0)
    assert metrics["average_on_hand"] == pytest.approx(3 / 5)
    # 11 units sold at cost 10 over an average stock worth 6, for 5 days, annualised.
    assert metrics["turns"] == pytest.approx(110 / 6 * 365 / 5)
    assert metrics["cycle_service_level"] == pytest.approx(2 / 5)  # days 0 and 2 had no shortage


def test_backorders_are_served_first_when_stock_lands() -> None:
    demand = np.array([[3.0, 3.0, 3.0]])
    orders = np.array([[10.0, 0.0, 0.0]])
    system = _system(3, lead_time=1, opening=0.0, shortage_mode="backorder", fixed_order_cost=5.0)

    result = simulate(system, demand, fixed_schedule_policy(orders))

    # Day 0: 3 backlogged; day 1: 10 land, backlog 3 and today's 3 served, 4 left; day 2: 1 left.
    assert result.on_hand_end.tolist() == [[0.0, 4.0, 1.0]]
    assert result.unmet_demand.tolist() == [[3.0, 0.0, 0.0]]
    assert result.metrics["shortage_cost"] == pytest.approx(20.0 * 3)  # one unit-day each
    assert result.metrics["ordering_cost"] == pytest.approx(5.0)


def test_base_stock_reorders_what_was_sold_and_holds_the_level() -> None:
    rng = np.random.default_rng(0)
    demand = rng.poisson(5.0, (1, 30)).astype(float)

    result = simulate(
        _system(30, lead_time=3, opening=40.0),
        demand,
        base_stock_policy(lambda state: np.array([40.0])),
    )

    # Starting at the level, each day's order replaces the previous day's sales.
    np.testing.assert_allclose(result.orders[0, 1:], demand[0, :-1] - result.unmet_demand[0, :-1])
    assert result.orders[0, 0] == 0.0


def test_seasonal_naive_level_repeats_last_week_and_has_no_safety_stock_for_a_perfect_pattern() -> None:
    week = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0])
    history = np.tile(week, 10)[None, :]
    level = seasonal_naive_order_up_to(
        history, np.array([3]), review_days=np.array([7]), service_level=np.array([0.95])
    )

    state = ReviewState(0, np.zeros(1), np.zeros(1), np.zeros((1, 20)), np.zeros((1, 0)))
    # Lead time 3 + review 7 = 10 days ahead: a full week (28) plus Monday to Wednesday (6).
    assert level(state) == pytest.approx([34.0])


def test_replaying_the_perfect_foresight_plan_reproduces_its_costs() -> None:
    rng = np.random.default_rng(1)
    n_days, lead_time = 21, 2
    actual = rng.poisson(6.0, n_days).astype(float)
    problem = PlanningProblem(
        start_date=START,
        n_periods=n_days,
        demand=pd.DataFrame({"item_id": "A", "store_id": "S1", "period": range(n_days), "demand": actual}),
        items=pd.DataFrame(
            {
                "item_id": ["A"],
                "unit_cost": [10.0],
                "holding_cost_rate": [3.65],
                "lead_time_days": [lead_time],
                "unit_volume": [1.0],
                "review_days": [7],
                "order_weekday": [(START - CALENDAR_EPOCH).days % 7],
            }
        ),
        on_hand=pd.DataFrame({"item_id": ["A"], "store_id": ["S1"], "on_hand": [10.0]}),
        open_orders=NO_OPEN_ORDERS,
        capacity=pd.DataFrame(columns=["store_id", "capacity_volume"]),
    )
    plan = solve_replenishment_plan(problem, CostSettings(ending_stock_value_share=1.0))
    schedule = np.zeros((1, n_days))
    schedule[0, (plan.orders["order_date"] - START).dt.days.to_numpy()] = plan.orders["quantity"].to_numpy()

    result = simulate(
        _system(n_days, lead_time=lead_time, opening=10.0, review_days=7),
        actual[None, :],
        fixed_schedule_policy(schedule),
    )

    np.testing.assert_allclose(result.on_hand_end[0], plan.inventory["on_hand_end"], atol=1e-6)
    np.testing.assert_allclose(result.unmet_demand[0], plan.inventory["lost_sales"], atol=1e-6)
    assert result.metrics["holding_cost"] == pytest.approx(plan.cost_breakdown["holding"], rel=1e-6)


def test_policies_order_only_on_their_order_days_and_whole_packs_when_rounded() -> None:
    demand = np.full((2, 14), 3.0)
    system = InventorySystem(
        unit_cost=np.array([1.0, 1.0]),
        holding_cost_per_day=np.array([0.01, 0.01]),
        shortage_cost=np.array([2.0, 2.0]),
        lead_time_days=np.array([1, 1]),
        opening_on_hand=np.array([5.0, 5.0]),
        open_arrivals=np.zeros((2, 14)),
        # Weekly from day 0, and every 3 days from day 1.
        order_days=np.array([np.arange(14) % 7 == 0, np.arange(14) % 3 == 1]),
        case_pack=np.array([6.0, 6.0]),
        moq=np.array([12.0, 0.0]),
    )
    wants_a_little = base_stock_policy(lambda state: np.array([20.0, 9.0]))

    raw = simulate(system, demand, wants_a_little)
    rounded = simulate(system, demand, rounded_up_to_whole_orders(wants_a_little, system.case_pack, system.moq))

    for result in (raw, rounded):
        assert (result.orders[~system.order_days] == 0).all()
    assert raw.metrics["case_pack_violations"] > 0
    assert rounded.metrics["case_pack_violations"] == 0
    placed = rounded.orders[rounded.orders > 0]
    assert (placed % 6 == 0).all() and (rounded.orders[0][rounded.orders[0] > 0] >= 12).all()
