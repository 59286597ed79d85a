"""Real HiGHS solves of the replenishment LP against hand-computed and simulated answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from optimization.replenishment_lp import (
    CostSettings,
    PlanInfeasibleError,
    PlanningProblem,
    PlanResult,
    SolverSettings,
    build_model,
    solve_replenishment_plan,
)

START = pd.Timestamp("2024-03-01")
NO_OPEN_ORDERS = pd.DataFrame(columns=["item_id", "store_id", "quantity", "arrival_date"])
AMPLE_CAPACITY = pd.DataFrame({"store_id": ["S1"], "capacity_volume": [1e6]})


def _single_item_problem(
    *,
    daily_demand: list[float],
    lead_time_days: int,
    opening_stock: float,
    unit_cost: float = 10.0,
    unit_volume: float = 1.0,
    open_orders: pd.DataFrame = NO_OPEN_ORDERS,
    capacity: pd.DataFrame = AMPLE_CAPACITY,
) -> PlanningProblem:
    n_periods = len(daily_demand)
    return PlanningProblem(
        start_date=START,
        n_periods=n_periods,
        demand=pd.DataFrame(
            {"item_id": "A", "store_id": "S1", "period": range(n_periods), "demand": daily_demand}
        ),
        items=pd.DataFrame(
            {
                "item_id": ["A"],
                "unit_cost": [unit_cost],
                # 0.365 a year makes holding exactly 1% of unit cost per day.
                "holding_cost_rate": [0.365],
                "lead_time_days": [lead_time_days],
                "unit_volume": [unit_volume],
            }
        ),
        on_hand=pd.DataFrame({"item_id": ["A"], "store_id": ["S1"], "on_hand": [opening_stock]}),
        open_orders=open_orders,
        capacity=capacity,
    )


def _open_order(quantity: float, arrival_date: str) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "item_id": ["A"],
            "store_id": ["S1"],
            "quantity": [quantity],
            "arrival_date": [pd.Timestamp(arrival_date)],
        }
    )


def _random_problem(
    n_items: int, n_stores: int, n_periods: int, seed: int, capacity_volume: float
) -> PlanningProblem:
    rng = np.random.default_rng(seed)
    stores = [f"S{s}" for s in range(n_stores)]
    items = pd.DataFrame(
        {
            "item_id": [f"I{i:03d}" for i in range(n_items)],
            "unit_cost": rng.uniform(1.0, 20.0, n_items),
            "holding_cost_rate": rng.uniform(0.1, 0.4, n_items),
            "lead_time_days": rng.integers(0, 6, n_items),
            "unit_volume": rng.uniform(0.1, 2.0, n_items),
        }
    )
    item_stores = pd.MultiIndex.from_product(
        [items["item_id"], stores], names=["item_id", "store_id"]
    ).to_frame(index=False)
    demand = item_stores.merge(pd.DataFrame({"period": range(n_periods)}), how="cross")
    demand["demand"] = rng.poisson(4.0, len(demand)).astype(float)
    on_hand = item_stores.assign(on_hand=rng.integers(0, 15, len(item_stores)).astype(float))
    # Some open orders are overdue and some land after the horizon.
    open_orders = item_stores.sample(frac=0.3, random_state=seed)
    arrival_offsets = rng.integers(-2, n_periods + 3, len(open_orders))
    open_orders = open_orders.assign(
        quantity=rng.integers(5, 30, len(open_orders)).astype(float),
        arrival_date=START + pd.to_timedelta(arrival_offsets, unit="D"),
    )
    return PlanningProblem(
        start_date=START,
        n_periods=n_periods,
        demand=demand,
        items=items,
        on_hand=on_hand,
        open_orders=open_orders,
        capacity=pd.DataFrame({"store_id": stores, "capacity_volume": capacity_volume}),
    )


def _end_volumes(result: PlanResult, items: pd.DataFrame) -> pd.Series:
    volumes = result.inventory.merge(items[["item_id", "unit_volume"]], on="item_id")
    return (volumes["on_hand_end"] * volumes["unit_volume"]).groupby(
        [volumes["store_id"], volumes["period"]]
    ).sum()


def test_hand_computed_single_item_plan() -> None:
    problem = _single_item_problem(daily_demand=[3.0] * 6, lead_time_days=2, opening_stock=5.0)

    result = solve_replenishment_plan(problem, CostSettings(order_cost_per_unit=0.5))

    # Stock 5 covers day 0 and 2 of day 1's 3; orders land from day 2 on and match demand.
    assert result.solver_status == "optimal"
    assert result.orders["order_date"].tolist() == list(pd.date_range("2024-03-01", periods=4))
    assert result.orders["arrival_date"].tolist() == list(pd.date_range("2024-03-03", periods=4))
    assert result.orders["quantity"].tolist() == pytest.approx([3.0] * 4)
    assert result.orders["lead_time_days"].tolist() == [2] * 4
    assert result.inventory["lost_sales"].tolist() == pytest.approx([0, 1, 0, 0, 0, 0])
    assert result.inventory["on_hand_end"].tolist() == pytest.approx([2, 0, 0, 0, 0, 0])
    # 12 units bought at 10 + 0.5 handling, 2 units held a day at 0.1, 1 lost sale at 2 × 10.
    assert result.cost_breakdown == pytest.approx(
        {"purchase": 120.0, "ordering": 6.0, "holding": 0.02, "shortage": 20.0}
    )
    assert result.objective == pytest.approx(146.02)
    assert result.expected_fill_rate == pytest.approx(1 - 1 / 18)


def test_nothing_arrives_before_the_lead_time_so_early_shortfall_is_lost() -> None:
    problem = _single_item_problem(daily_demand=[4.0] * 8, lead_time_days=3, opening_stock=2.0)

    result = solve_replenishment_plan(problem)

    assert (result.orders["arrival_date"] >= START + pd.Timedelta(days=3)).all()
    assert result.inventory["arrivals"].tolist()[:3] == [0.0, 0.0, 0.0]
    assert result.inventory["lost_sales"].tolist() == pytest.approx([2, 4, 4, 0, 0, 0, 0, 0])


def test_open_orders_arrive_on_their_date_and_replace_planned_orders() -> None:
    without_open = _single_item_problem(daily_demand=[5.0] * 5, lead_time_days=1, opening_stock=0.0)
    with_open = _single_item_problem(
        daily_demand=[5.0] * 5,
        lead_time_days=1,
        opening_stock=0.0,
        open_orders=_open_order(10.0, "2024-03-03"),
    )

    baseline = solve_replenishment_plan(without_open)
    result = solve_replenishment_plan(with_open)

    assert baseline.orders["quantity"].sum() == pytest.approx(20.0)
    assert result.orders["quantity"].sum() == pytest.approx(10.0)
    # The 10 open units feed days 2 and 3, so orders land only on days 1 and 4.
    assert result.orders["arrival_date"].tolist() == [
        pd.Timestamp("2024-03-02"),
        pd.Timestamp("2024-03-05"),
    ]
    assert result.inventory["arrivals"].tolist() == pytest.approx([0, 5, 10, 0, 5])
    assert result.inventory["on_hand_end"].tolist() == pytest.approx([0, 0, 5, 0, 0])


def test_overdue_open_orders_land_in_period_zero_and_late_ones_are_ignored() -> None:
    open_orders = pd.concat([_open_order(4.0, "2024-02-27"), _open_order(50.0, "2024-03-20")])
    problem = _single_item_problem(
        daily_demand=[2.0] * 4, lead_time_days=5, opening_stock=0.0, open_orders=open_orders
    )

    result = solve_replenishment_plan(problem)

    assert result.inventory["arrivals"].tolist() == pytest.approx([4, 0, 0, 0])
    assert result.inventory["lost_sales"].tolist() == pytest.approx([0, 0, 2, 2])
    assert result.orders.empty


def test_tight_capacity_is_met_exactly_and_never_exceeded() -> None:
    # 20 opening units of volume 2 less day 0's demand of 5 leave volume 30 that no plan avoids.
    problem = _single_item_problem(
        daily_demand=[5.0] * 6,
        lead_time_days=0,
        opening_stock=20.0,
        unit_volume=2.0,
        capacity=pd.DataFrame({"store_id": ["S1"], "capacity_volume": [30.0]}),
    )

    result = solve_replenishment_plan(problem)
    volumes = _end_volumes(result, problem.items)

    assert result.solver_status == "optimal"
    assert volumes.loc[("S1", 0)] == pytest.approx(30.0)
    assert (volumes <= 30.0 + 1e-6).all()
    assert result.inventory["lost_sales"].sum() == pytest.approx(0.0)


def test_capacity_binds_across_items_in_a_store() -> None:
    problem = _random_problem(n_items=6, n_stores=2, n_periods=10, seed=3, capacity_volume=1e6)
    loose = solve_replenishment_plan(problem)
    tightest = _end_volumes(loose, problem.items).groupby(level="store_id").max()
    # The loose plan's peak volume is forced by opening stock and open orders, so it is feasible.
    capacity = tightest.rename("capacity_volume").reset_index()
    tight_problem = PlanningProblem(**{**problem.__dict__, "capacity": capacity})

    result = solve_replenishment_plan(tight_problem)
    volumes = _end_volumes(result, problem.items)

    assert result.solver_status == "optimal"
    for store, limit in tightest.items():
        assert volumes.loc[store].max() == pytest.approx(limit)
        assert (volumes.loc[store] <= limit + 1e-6).all()


def test_lost_sales_cheaper_than_buying_means_no_orders() -> None:
    problem = _single_item_problem(daily_demand=[3.0] * 6, lead_time_days=1, opening_stock=4.0)

    result = solve_replenishment_plan(problem, CostSettings(shortage_cost_multiplier=0.5))

    assert result.orders.empty
    assert result.cost_breakdown["purchase"] == pytest.approx(0.0)
    assert result.inventory["lost_sales"].sum() == pytest.approx(18.0 - 4.0)


def test_stock_stuck_above_capacity_names_store_and_date() -> None:
    problem = _single_item_problem(
        daily_demand=[0.0] * 5,
        lead_time_days=1,
        opening_stock=0.0,
        unit_volume=2.0,
        open_orders=_open_order(90.0, "2024-03-04"),
        capacity=pd.DataFrame({"store_id": ["S1"], "capacity_volume": [120.0]}),
    )

    with pytest.raises(PlanInfeasibleError, match=r"store S1 on 2024-03-04 \(period 3\)") as error:
        solve_replenishment_plan(problem)
    assert "at least 180.0" in str(error.value)


def test_demand_before_an_open_order_cannot_drain_what_arrives_later() -> None:
    # Days 0-2 lose 30 units of sales; that cannot make room for the 60 units landing on day 3.
    problem = _single_item_problem(
        daily_demand=[10.0, 10.0, 10.0, 0.0, 0.0],
        lead_time_days=1,
        opening_stock=0.0,
        open_orders=_open_order(60.0, "2024-03-04"),
        capacity=pd.DataFrame({"store_id": ["S1"], "capacity_volume": [50.0]}),
    )

    at_fault = r"store S1 on 2024-03-04 \(period 3\) is 50.0 .* at least 60.0"
    with pytest.raises(PlanInfeasibleError, match=at_fault):
        solve_replenishment_plan(problem)


def test_capacity_a_hair_below_forced_stock_is_infeasible() -> None:
    problem = _single_item_problem(
        daily_demand=[5.0] * 6,
        lead_time_days=0,
        opening_stock=20.0,
        unit_volume=2.0,
        capacity=pd.DataFrame({"store_id": ["S1"], "capacity_volume": [29.9]}),
    )

    with pytest.raises(PlanInfeasibleError, match=r"store S1 on 2024-03-01 \(period 0\)"):
        solve_replenishment_plan(problem)


def test_inventory_matches_an_independent_simulation_of_the_plan() -> None:
    problem = _random_problem(n_items=8, n_stores=3, n_periods=14, seed=7, capacity_volume=1e6)

    result = solve_replenishment_plan(problem)

    arrivals = pd.concat(
        [
            result.orders[["item_id", "store_id", "arrival_date", "quantity"]],
            problem.open_orders[["item_id", "store_id", "arrival_date", "quantity"]],
        ]
    )
    arrivals["period"] = (arrivals["arrival_date"] - START).dt.days.clip(lower=0)
    arrivals_by_cell = arrivals.groupby(["item_id", "store_id", "period"])["quantity"].sum()
    demand_by_cell = problem.demand.set_index(["item_id", "store_id", "period"])["demand"]
    opening = problem.on_hand.set_index(["item_id", "store_id"])["on_hand"]

    simulated_rows = []
    for (item, store), stock in opening.items():
        for period in range(problem.n_periods):
            available = stock + arrivals_by_cell.get((item, store, period), 0.0)
            wanted = demand_by_cell.get((item, store, period), 0.0)
            stock = max(available - wanted, 0.0)
            lost = max(wanted - available, 0.0)
            simulated_rows.append((item, store, period, stock, lost))
    simulated = pd.DataFrame(
        simulated_rows, columns=["item_id", "store_id", "period", "on_hand_end", "lost_sales"]
    )
    compared = simulated.merge(
        result.inventory, on=["item_id", "store_id", "period"], suffixes=("_simulated", "")
    )

    assert len(compared) == len(result.inventory) == len(opening) * problem.n_periods
    for column in ["on_hand_end", "lost_sales"]:
        np.testing.assert_allclose(compared[column], compared[f"{column}_simulated"], atol=1e-6)


def test_two_hundred_item_stores_over_four_weeks_solve_to_optimal() -> None:
    problem = _random_problem(n_items=40, n_stores=5, n_periods=28, seed=11, capacity_volume=1e6)

    result = solve_replenishment_plan(problem)

    assert result.solver_status == "optimal"
    assert len(result.inventory) == 200 * 28
    assert 0.0 < result.expected_fill_rate <= 1.0
    assert result.objective == pytest.approx(sum(result.cost_breakdown.values()))
    assert (result.orders["quantity"] > 1e-6).all()
    assert (result.orders["arrival_date"] <= START + pd.Timedelta(days=27)).all()


def test_time_limit_reaches_highs() -> None:
    problem = _random_problem(n_items=40, n_stores=5, n_periods=28, seed=11, capacity_volume=1e6)

    with pytest.raises(RuntimeError, match="maxTimeLimit"):
        solve_replenishment_plan(problem, solver=SolverSettings(time_limit_seconds=0.0))


def test_free_form_highs_options_pass_through() -> None:
    problem = _single_item_problem(daily_demand=[3.0] * 6, lead_time_days=2, opening_stock=5.0)
    interior_point = SolverSettings(options={"solver": "ipm", "run_crossover": "on"})

    result = solve_replenishment_plan(problem, solver=interior_point)

    assert result.solver_status == "optimal"
    assert result.objective == pytest.approx(140.02)


def test_missing_item_rows_are_named() -> None:
    problem = _single_item_problem(daily_demand=[1.0] * 3, lead_time_days=0, opening_stock=0.0)
    extra_demand = pd.DataFrame({"item_id": "B", "store_id": "S1", "period": [0], "demand": [1.0]})
    broken = PlanningProblem(
        **{**problem.__dict__, "demand": pd.concat([problem.demand, extra_demand])}
    )

    with pytest.raises(ValueError, match=r"item_id \['B'\]"):
        solve_replenishment_plan(broken)


def test_model_has_no_order_that_would_arrive_after_the_horizon() -> None:
    problem = _single_item_problem(daily_demand=[1.0] * 6, lead_time_days=2, opening_stock=0.0)

    model = build_model(problem, CostSettings())

    assert sorted(model.order) == [(0, 0), (0, 1), (0, 2), (0, 3)]
    assert len(model.stock_balance) == 6
    assert len(model.store_capacity) == 6


def test_nothing_to_plan_gives_an_empty_optimal_plan() -> None:
    problem = _single_item_problem(daily_demand=[], lead_time_days=0, opening_stock=0.0)
    empty = PlanningProblem(
        **{**problem.__dict__, "on_hand": problem.on_hand.iloc[:0], "n_periods": 3}
    )

    result = solve_replenishment_plan(empty)

    assert result.orders.empty and result.inventory.empty
    assert result.objective == 0.0
    assert result.expected_fill_rate == 1.0
