"""Real HiGHS solves of the replenishment LP against hand-computed and simulated answers."""

from __future__ import annotations

import re
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from optimization.replenishment_lp import (
    CostSettings,
    ModelOptions,
    PlanInfeasibleError,
    PlanningProblem,
    PlanResult,
    SolverLimitError,
    SolverSettings,
    build_model,
    solve_replenishment_plan,
)

START = pd.Timestamp("2024-03-01")
NO_OPEN_ORDERS = pd.DataFrame(columns=["item_id", "store_id", "quantity", "arrival_date"])
AMPLE_CAPACITY = pd.DataFrame({"store_id": ["S1"], "capacity_volume": [1e6]})
NO_CAPACITY = pd.DataFrame(columns=["store_id", "capacity_volume"])


# The plain model of the hand-computed plans and the theory tests: fractional orders, and stock left at
# the horizon's end worth nothing (the product's defaults round to whole case packs and value that stock at cost).
PLAIN_COSTS = CostSettings(ending_stock_value_share=0.0)
FRACTIONAL = ModelOptions(whole_orders="none")


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
        demand=pd.DataFrame({"item_id": "A", "store_id": "S1", "period": range(n_periods), "demand": daily_demand}),
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


def _random_problem(n_items: int, n_stores: int, n_periods: int, seed: int, capacity_volume: float) -> PlanningProblem:
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
    item_stores = pd.MultiIndex.from_product([items["item_id"], stores], names=["item_id", "store_id"]).to_frame(
        index=False
    )
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


def _items_a_and_b(lead_time_days: list[int], unit_volume: list[float]) -> pd.DataFrame:
    """Items A and B at a unit cost of 10, holding exactly 1% of it a day."""
    return pd.DataFrame(
        {
            "item_id": ["A", "B"],
            "unit_cost": [10.0, 10.0],
            "holding_cost_rate": [0.365, 0.365],
            "lead_time_days": lead_time_days,
            "unit_volume": unit_volume,
        }
    )


def _capacity(volume: float) -> pd.DataFrame:
    return pd.DataFrame({"store_id": ["S1"], "capacity_volume": [volume]})


def _arrivals_by_cell(problem: PlanningProblem, result: PlanResult | None) -> pd.Series:
    """Units landing per (item, store, period): open orders plus, if given, the plan's orders."""
    columns = ["item_id", "store_id", "arrival_date", "quantity"]
    frames = [problem.open_orders[columns]]
    if result is not None:
        frames.append(result.orders[columns])
    arrivals = pd.concat(frames)
    arrivals["period"] = (pd.to_datetime(arrivals["arrival_date"]) - START).dt.days.clip(lower=0)
    return arrivals.groupby(["item_id", "store_id", "period"])["quantity"].sum()


def _store_volumes(stock: pd.DataFrame, column: str, items: pd.DataFrame) -> pd.Series:
    volumes = stock.merge(items[["item_id", "unit_volume"]], on="item_id")
    return (volumes[column] * volumes["unit_volume"]).groupby([volumes["store_id"], volumes["period"]]).sum()


def _recomputed_volumes_after_arrivals(problem: PlanningProblem, result: PlanResult) -> pd.Series:
    """Store volume after each day's deliveries, rebuilt from orders, open orders and end stock."""
    arrivals = _arrivals_by_cell(problem, result)
    opening = problem.on_hand.set_index(["item_id", "store_id"])["on_hand"]
    end_stock = result.inventory.set_index(["item_id", "store_id", "period"])["on_hand_end"]
    rows = []
    for item, store, period in end_stock.index:
        before = opening.get((item, store), 0.0) if period == 0 else end_stock.loc[(item, store, period - 1)]
        after = before + arrivals.get((item, store, period), 0.0)
        rows.append((item, store, period, after))
    stock = pd.DataFrame(rows, columns=["item_id", "store_id", "period", "after_arrivals"])
    return _store_volumes(stock, "after_arrivals", problem.items)


def _forced_volumes_after_arrivals(problem: PlanningProblem) -> pd.Series:
    """Post-delivery store volume with no new orders and every sale served that stock allows."""
    arrivals = _arrivals_by_cell(problem, None)
    demand = problem.demand.set_index(["item_id", "store_id", "period"])["demand"]
    rows = []
    for (item, store), stock in problem.on_hand.set_index(["item_id", "store_id"])["on_hand"].items():
        for period in range(problem.n_periods):
            after = stock + arrivals.get((item, store, period), 0.0)
            rows.append((item, store, period, after))
            stock = max(after - demand.get((item, store, period), 0.0), 0.0)
    stock_frame = pd.DataFrame(rows, columns=["item_id", "store_id", "period", "after_arrivals"])
    return _store_volumes(stock_frame, "after_arrivals", problem.items)


def test_hand_computed_single_item_plan() -> None:
    problem = _single_item_problem(daily_demand=[3.0] * 6, lead_time_days=2, opening_stock=5.0)

    result = solve_replenishment_plan(
        problem, CostSettings(order_cost_per_unit=0.5, ending_stock_value_share=0.0), options=FRACTIONAL
    )

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
    problem = _single_item_problem(daily_demand=[2.0] * 4, lead_time_days=5, opening_stock=0.0, open_orders=open_orders)

    result = solve_replenishment_plan(problem)

    assert result.inventory["arrivals"].tolist() == pytest.approx([4, 0, 0, 0])
    assert result.inventory["lost_sales"].tolist() == pytest.approx([0, 0, 2, 2])
    assert result.orders.empty


def test_opening_stock_on_the_shelf_is_met_exactly_and_never_exceeded() -> None:
    # 20 opening units of volume 2 fill 40 of space on day 0 before anything is sold.
    problem = _single_item_problem(
        daily_demand=[5.0] * 6,
        lead_time_days=0,
        opening_stock=20.0,
        unit_volume=2.0,
        capacity=_capacity(40.0),
    )

    result = solve_replenishment_plan(problem, PLAIN_COSTS, options=FRACTIONAL)
    volumes = _recomputed_volumes_after_arrivals(problem, result)

    assert result.solver_status == "optimal"
    assert volumes.loc[("S1", 0)] == pytest.approx(40.0)
    assert (volumes <= 40.0 + 1e-6).all()
    assert result.inventory["lost_sales"].sum() == pytest.approx(0.0)
    utilisation = result.capacity_utilisation
    assert utilisation["binding"].tolist() == [True, False, False, False, False, False]
    assert utilisation["utilisation"].iloc[0] == pytest.approx(1.0)


def test_tight_capacity_caps_each_delivery_although_no_stock_is_kept_overnight() -> None:
    # Unconstrained, 30 units land each day from day 2; a one-shot order would bring 120.
    demand = [0.0, 0.0, 30.0, 30.0, 30.0, 30.0]
    loose = solve_replenishment_plan(_single_item_problem(daily_demand=demand, lead_time_days=2, opening_stock=0.0))
    problem = _single_item_problem(daily_demand=demand, lead_time_days=2, opening_stock=0.0, capacity=_capacity(25.0))

    result = solve_replenishment_plan(problem)
    volumes = _recomputed_volumes_after_arrivals(problem, result)

    assert loose.orders["quantity"].tolist() == pytest.approx([30.0] * 4)
    assert loose.inventory["lost_sales"].sum() == pytest.approx(0.0)
    # Every delivery is cut to the 25 that fit; the other 5 a day are lost sales.
    assert result.orders["quantity"].tolist() == pytest.approx([25.0] * 4)
    assert result.inventory["lost_sales"].tolist() == pytest.approx([0, 0, 5, 5, 5, 5])
    # Nothing is ever left at day end, so an end-of-day limit could not have changed this plan.
    assert result.inventory["on_hand_end"].tolist() == pytest.approx([0.0] * 6)
    assert result.objective > loose.objective
    assert (volumes <= 25.0 + 1e-6).all()
    np.testing.assert_allclose(result.inventory["on_hand_after_arrivals"], [0, 0, 25, 25, 25, 25], atol=1e-6)
    utilisation = result.capacity_utilisation
    assert utilisation["binding"].tolist() == [False, False, True, True, True, True]
    np.testing.assert_allclose(utilisation["volume_after_arrivals"], volumes.to_numpy(), atol=1e-6)


def test_shared_shelf_space_goes_to_the_item_that_loses_most_per_volume() -> None:
    # A and B cost the same, but B takes twice the space, so a lost B sale frees more room.
    problem = PlanningProblem(
        start_date=START,
        n_periods=5,
        demand=pd.DataFrame(
            {
                "item_id": ["A"] * 5 + ["B"] * 5,
                "store_id": "S1",
                "period": list(range(5)) * 2,
                "demand": [20.0] * 5 + [10.0] * 5,
            }
        ),
        items=_items_a_and_b(lead_time_days=[0, 1], unit_volume=[1.0, 2.0]),
        on_hand=pd.DataFrame({"item_id": ["B"], "store_id": ["S1"], "on_hand": [5.0]}),
        open_orders=NO_OPEN_ORDERS,
        capacity=_capacity(30.0),
    )

    result = solve_replenishment_plan(problem)
    volumes = _recomputed_volumes_after_arrivals(problem, result)
    lost = result.inventory.pivot(index="period", columns="item_id", values="lost_sales")
    ordered = result.orders.groupby("item_id")["quantity"].sum()

    # A fills 20 of the 30 every day; B gets the 10 left, i.e. 5 of its 10 units.
    assert lost["A"].tolist() == pytest.approx([0.0] * 5)
    assert lost["B"].tolist() == pytest.approx([5.0] * 5)
    assert ordered.to_dict() == pytest.approx({"A": 100.0, "B": 20.0})
    assert (volumes <= 30.0 + 1e-6).all()
    assert result.capacity_utilisation["binding"].all()


def test_capacity_binds_across_items_and_stores() -> None:
    problem = _random_problem(n_items=6, n_stores=2, n_periods=10, seed=3, capacity_volume=1e6)
    loose = solve_replenishment_plan(problem, PLAIN_COSTS, options=FRACTIONAL)
    loose_peak = _recomputed_volumes_after_arrivals(problem, loose).groupby(level=0).max()
    forced_peak = _forced_volumes_after_arrivals(problem).groupby(level=0).max()
    # Halfway between what no plan avoids and what the unconstrained plan brings in.
    limits = (loose_peak + forced_peak) / 2
    assert (limits < loose_peak - 1.0).all()
    capacity = limits.rename("capacity_volume").rename_axis("store_id").reset_index()
    tight_problem = PlanningProblem(**{**problem.__dict__, "capacity": capacity})

    result = solve_replenishment_plan(tight_problem, PLAIN_COSTS, options=FRACTIONAL)
    volumes = _recomputed_volumes_after_arrivals(tight_problem, result)
    utilisation = result.capacity_utilisation.set_index(["store_id", "period"])

    assert result.solver_status == "optimal"
    assert result.objective > loose.objective
    for store, limit in limits.items():
        assert (volumes.loc[store] <= limit + 1e-6).all()
        assert utilisation.loc[store, "binding"].any()
        assert utilisation.loc[store, "capacity_volume"].eq(limit).all()
    np.testing.assert_allclose(utilisation["volume_after_arrivals"], volumes.loc[utilisation.index], atol=1e-6)
    np.testing.assert_allclose(
        utilisation["utilisation"],
        utilisation["volume_after_arrivals"] / utilisation["capacity_volume"],
    )


def test_loosest_capacity_gives_the_same_plan_cost_as_no_capacity_row() -> None:
    unlimited = _random_problem(n_items=8, n_stores=3, n_periods=14, seed=5, capacity_volume=0.0)
    unlimited = PlanningProblem(**{**unlimited.__dict__, "capacity": NO_CAPACITY})
    huge = PlanningProblem(
        **{
            **unlimited.__dict__,
            "capacity": pd.DataFrame({"store_id": ["S0", "S1", "S2"], "capacity_volume": 1e12}),
        }
    )

    free = solve_replenishment_plan(unlimited)
    capped = solve_replenishment_plan(huge)

    assert capped.objective == pytest.approx(free.objective, rel=1e-9)
    assert free.capacity_utilisation.empty
    assert len(capped.capacity_utilisation) == 3 * 14
    assert not capped.capacity_utilisation["binding"].any()


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
    # The 90 units stay unsold, so days 3 and 4 both start over capacity: one reason for the store.
    assert str(error.value) == (
        "no feasible plan: capacity at store S1 on 2024-03-04 (period 3) is 120 but opening stock and "
        "open orders already need at least 180 there (and on 1 later day(s))"
    )


def test_demand_before_an_open_order_cannot_drain_what_arrives_later() -> None:
    # Days 0-2 lose 30 units of sales; that cannot make room for the 60 units landing on day 3.
    problem = _single_item_problem(
        daily_demand=[10.0, 10.0, 10.0, 0.0, 0.0],
        lead_time_days=1,
        opening_stock=0.0,
        open_orders=_open_order(60.0, "2024-03-04"),
        capacity=pd.DataFrame({"store_id": ["S1"], "capacity_volume": [50.0]}),
    )

    at_fault = r"store S1 on 2024-03-04 \(period 3\) is 50 .* need at least 60 "
    with pytest.raises(PlanInfeasibleError, match=at_fault):
        solve_replenishment_plan(problem)


def test_sales_on_the_delivery_day_do_not_make_room_for_the_delivery() -> None:
    # All 60 units sell on day 3, yet they all stand on the shelf first.
    def problem(capacity_volume: float) -> PlanningProblem:
        return _single_item_problem(
            daily_demand=[0.0, 0.0, 0.0, 60.0, 0.0],
            lead_time_days=1,
            opening_stock=0.0,
            open_orders=_open_order(60.0, "2024-03-04"),
            capacity=_capacity(capacity_volume),
        )

    at_fault = r"^no feasible plan: capacity at store S1 on 2024-03-04 \(period 3\) is 59 .* at least 60 there$"
    with pytest.raises(PlanInfeasibleError, match=at_fault):
        solve_replenishment_plan(problem(59.0))
    result = solve_replenishment_plan(problem(60.0))
    assert result.capacity_utilisation["binding"].tolist() == [False, False, False, True, False]
    assert result.inventory["lost_sales"].sum() == pytest.approx(0.0)


def test_capacity_a_hair_below_forced_stock_is_infeasible() -> None:
    problem = _single_item_problem(
        daily_demand=[5.0] * 6,
        lead_time_days=0,
        opening_stock=20.0,
        unit_volume=2.0,
        capacity=_capacity(39.9),
    )

    at_fault = r"store S1 on 2024-03-01 \(period 0\) is 39.9 .* need at least 40 there"
    with pytest.raises(PlanInfeasibleError, match=at_fault):
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
            simulated_rows.append((item, store, period, stock, lost, available))
    simulated = pd.DataFrame(
        simulated_rows,
        columns=[
            "item_id",
            "store_id",
            "period",
            "on_hand_end",
            "lost_sales",
            "on_hand_after_arrivals",
        ],
    )
    compared = simulated.merge(result.inventory, on=["item_id", "store_id", "period"], suffixes=("_simulated", ""))

    assert len(compared) == len(result.inventory) == len(opening) * problem.n_periods
    for column in ["on_hand_end", "lost_sales", "on_hand_after_arrivals"]:
        np.testing.assert_allclose(compared[column], compared[f"{column}_simulated"], atol=1e-6)


def test_two_hundred_item_stores_over_four_weeks_solve_to_optimal() -> None:
    problem = _random_problem(n_items=40, n_stores=5, n_periods=28, seed=11, capacity_volume=1e6)

    result = solve_replenishment_plan(problem, PLAIN_COSTS, options=FRACTIONAL)

    assert result.solver_status == "optimal"
    assert len(result.inventory) == 200 * 28
    assert 0.0 < result.expected_fill_rate <= 1.0
    assert result.objective == pytest.approx(sum(result.cost_breakdown.values()))
    assert (result.orders["quantity"] > 1e-6).all()
    assert (result.orders["arrival_date"] <= START + pd.Timedelta(days=27)).all()


def test_time_limit_reaches_highs_and_a_solve_it_stops_names_the_stores_and_the_setting() -> None:
    problem = _random_problem(n_items=40, n_stores=5, n_periods=28, seed=11, capacity_volume=1e6)

    with pytest.raises(SolverLimitError, match="maxTimeLimit") as stopped:
        solve_replenishment_plan(problem, solver=SolverSettings(time_limit_seconds=1e-9, backend="pyomo"))
    stores = set(problem.demand["store_id"].astype(str))
    named = re.search(r"any plan for store\(s\) (.+?): ", str(stopped.value)).group(1).split(", ")
    assert named and set(named) <= stores
    assert "Raise planning.solver.time_limit_seconds (now 1e-09)" in str(stopped.value)


def test_free_form_highs_options_pass_through() -> None:
    problem = _single_item_problem(daily_demand=[3.0] * 6, lead_time_days=2, opening_stock=5.0)
    interior_point = SolverSettings(options={"solver": "ipm", "run_crossover": "on"})

    result = solve_replenishment_plan(problem, PLAIN_COSTS, interior_point, FRACTIONAL)

    assert result.solver_status == "optimal"
    assert result.objective == pytest.approx(140.02)


def test_missing_item_rows_are_named() -> None:
    problem = _single_item_problem(daily_demand=[1.0] * 3, lead_time_days=0, opening_stock=0.0)
    extra_demand = pd.DataFrame({"item_id": "B", "store_id": "S1", "period": [0], "demand": [1.0]})
    broken = PlanningProblem(**{**problem.__dict__, "demand": pd.concat([problem.demand, extra_demand])})

    with pytest.raises(ValueError, match=r"item_id \['B'\]"):
        solve_replenishment_plan(broken)


def test_model_has_no_order_that_would_arrive_after_the_horizon() -> None:
    problem = _single_item_problem(daily_demand=[1.0] * 6, lead_time_days=2, opening_stock=0.0)

    model = build_model(problem, CostSettings())

    # Orders on days 0-3 land on days 2-5; later ones would land after the horizon.
    assert len(model.order) == 4
    assert len(model.stock_balance) == 6
    # Day 0's shelf holds only opening stock, a constant the pre-check covers, so it has no row.
    assert len(model.store_capacity) == 5


def test_nothing_to_plan_gives_an_empty_optimal_plan() -> None:
    problem = _single_item_problem(daily_demand=[], lead_time_days=0, opening_stock=0.0)
    empty = PlanningProblem(**{**problem.__dict__, "on_hand": problem.on_hand.iloc[:0], "n_periods": 3})

    result = solve_replenishment_plan(empty)

    assert result.orders.empty and result.inventory.empty
    assert result.capacity_utilisation.empty
    assert result.objective == 0.0
    assert result.expected_fill_rate == 1.0


# Three item-stores of ten periods to a block: the random problems below split into several.
SMALL_BLOCKS = ModelOptions(whole_orders="none", block_cells=30)
ONE_MODEL = ModelOptions(whole_orders="none", block_cells=None)


def test_blocks_of_items_give_the_whole_models_plan_when_capacity_is_slack() -> None:
    problem = _random_problem(n_items=8, n_stores=2, n_periods=10, seed=7, capacity_volume=1e6)

    whole = solve_replenishment_plan(problem, PLAIN_COSTS, options=ONE_MODEL)
    blocks = solve_replenishment_plan(problem, PLAIN_COSTS, options=SMALL_BLOCKS)

    assert blocks.objective == pytest.approx(whole.objective, rel=1e-9)
    assert blocks.expected_fill_rate == pytest.approx(whole.expected_fill_rate, rel=1e-9)
    pd.testing.assert_frame_equal(
        blocks.inventory[["item_id", "store_id", "period"]], whole.inventory[["item_id", "store_id", "period"]]
    )
    columns = ["store_id", "period", "volume_after_arrivals", "capacity_volume"]
    pd.testing.assert_frame_equal(blocks.capacity_utilisation[columns], whole.capacity_utilisation[columns], atol=1e-6)


def test_capacity_broken_only_by_the_blocks_together_is_planned_as_one_model() -> None:
    problem = _random_problem(n_items=8, n_stores=2, n_periods=10, seed=7, capacity_volume=1e6)
    loose = solve_replenishment_plan(problem, PLAIN_COSTS, options=ONE_MODEL)
    loose_peak = _recomputed_volumes_after_arrivals(problem, loose).groupby(level=0).max()
    forced_peak = _forced_volumes_after_arrivals(problem).groupby(level=0).max()
    limits = (loose_peak + forced_peak) / 2
    capacity = limits.rename("capacity_volume").rename_axis("store_id").reset_index()
    tight_problem = PlanningProblem(**{**problem.__dict__, "capacity": capacity})

    whole = solve_replenishment_plan(tight_problem, PLAIN_COSTS, options=ONE_MODEL)
    blocks = solve_replenishment_plan(tight_problem, PLAIN_COSTS, options=SMALL_BLOCKS)

    # Each block alone has no capacity to break; their plans together break it, so the store is solved whole.
    assert whole.objective > loose.objective
    assert blocks.objective == pytest.approx(whole.objective, rel=1e-9)
    volumes = _recomputed_volumes_after_arrivals(tight_problem, blocks)
    for store, limit in limits.items():
        assert (volumes.loc[store] <= limit + 1e-6).all()


def test_blocks_of_items_name_the_same_infeasibility_as_one_model() -> None:
    problem = _random_problem(n_items=8, n_stores=2, n_periods=10, seed=7, capacity_volume=1.0)

    with pytest.raises(PlanInfeasibleError) as whole:
        solve_replenishment_plan(problem, PLAIN_COSTS, options=ONE_MODEL)
    with pytest.raises(PlanInfeasibleError) as blocks:
        solve_replenishment_plan(problem, PLAIN_COSTS, options=SMALL_BLOCKS)

    assert str(blocks.value) == str(whole.value)


def test_capacity_use_is_the_fullest_scenarios_not_each_items_own_fullest() -> None:
    # Two items that sell out in opposite scenarios: each holds 10 units in one scenario, so the
    # shelf holds 10 in either, never 20.  Nothing ordered could land within two days.
    problem = PlanningProblem(
        start_date=START,
        n_periods=2,
        demand=pd.DataFrame(
            {
                "item_id": ["A", "A", "A", "A", "B", "B", "B", "B"],
                "store_id": "S1",
                "scenario": [0, 0, 1, 1, 0, 0, 1, 1],
                "period": [0, 1, 0, 1, 0, 1, 0, 1],
                "demand": [0.0, 0.0, 10.0, 0.0, 10.0, 0.0, 0.0, 0.0],
            }
        ),
        items=_items_a_and_b(lead_time_days=[5, 5], unit_volume=[1.0, 1.0]),
        on_hand=pd.DataFrame({"item_id": ["A", "B"], "store_id": ["S1", "S1"], "on_hand": [10.0, 10.0]}),
        open_orders=NO_OPEN_ORDERS,
        capacity=_capacity(40.0),
    )

    result = solve_replenishment_plan(problem, PLAIN_COSTS, options=FRACTIONAL)

    assert result.capacity_utilisation["volume_after_arrivals"].tolist() == pytest.approx([20.0, 10.0])
    assert result.capacity_utilisation["utilisation"].tolist() == pytest.approx([0.5, 0.25])


def test_blocks_that_leave_no_room_for_one_more_case_are_planned_as_one_model() -> None:
    problem = _random_problem(n_items=8, n_stores=2, n_periods=10, seed=7, capacity_volume=1e6)
    whole_units = ModelOptions(block_cells=None)
    loose = solve_replenishment_plan(problem, PLAIN_COSTS, options=whole_units)
    peak = _recomputed_volumes_after_arrivals(problem, loose).groupby(level=0).max()
    # The free plan fits, with less room left than one unit of the smallest item takes.
    limits = peak + 0.5 * problem.items["unit_volume"].min()
    capacity = limits.rename("capacity_volume").rename_axis("store_id").reset_index()
    near_full = PlanningProblem(**{**problem.__dict__, "capacity": capacity})

    whole = solve_replenishment_plan(near_full, PLAIN_COSTS, options=whole_units)
    blocks = solve_replenishment_plan(near_full, PLAIN_COSTS, options=replace(whole_units, block_cells=30))

    assert whole.explanations["binding"].str.contains("capacity").any()
    pd.testing.assert_frame_equal(blocks.explanations, whole.explanations)
    assert blocks.objective == pytest.approx(whole.objective, rel=1e-9)
