"""Model options one by one: backorders, fixed costs, lots, limits, review days, diagnosis,
soft mode, explanations, decomposition by location and scenario sampling."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from optimization.replenishment_lp import (
    CostSettings,
    ModelOptions,
    PlanInfeasibleError,
    PlanningProblem,
    solve_replenishment_plan,
)
from optimization.uncertainty import (
    QuantileFunction,
    calibrate_scenarios,
    expected_demand_from_quantiles,
    planning_demand,
    sample_demand_scenarios,
    widened,
)
from replenish.frequency import DAILY, Frequency
from tests.optimization.test_replenishment_lp import FRACTIONAL, PLAIN_COSTS

START = pd.Timestamp("2024-03-01")
NO_OPEN_ORDERS = pd.DataFrame(columns=["item_id", "store_id", "quantity", "arrival_date"])


def _problem(
    demand: dict[str, list[float]],
    *,
    lead_time_days: int = 0,
    capacity: float | None = None,
    unit_cost: float = 10.0,
    opening_stock: float = 0.0,
    item_columns: dict[str, list[object]] | None = None,
    safety_stock: float | None = None,
    frequency: Frequency = DAILY,
) -> PlanningProblem:
    """Items named by `demand` keys, all at store S1, holding 1% of unit cost per period."""
    item_ids = list(demand)
    n_periods = len(next(iter(demand.values())))
    demand_frame = pd.DataFrame(
        [(item, "S1", t, value) for item, values in demand.items() for t, value in enumerate(values)],
        columns=["item_id", "store_id", "period", "demand"],
    )
    targets = None
    if safety_stock is not None:
        targets = demand_frame[["item_id", "store_id", "period"]].assign(safety_stock=safety_stock)
    return PlanningProblem(
        start_date=START,
        n_periods=n_periods,
        demand=demand_frame,
        items=pd.DataFrame(
            {
                "item_id": item_ids,
                "unit_cost": unit_cost,
                "holding_cost_rate": 0.365 / frequency.days_per_period,
                "lead_time_days": lead_time_days,
                "unit_volume": 1.0,
                **(item_columns or {}),
            }
        ),
        on_hand=pd.DataFrame({"item_id": item_ids, "store_id": "S1", "on_hand": opening_stock}),
        open_orders=NO_OPEN_ORDERS,
        capacity=pd.DataFrame(
            {
                "store_id": ["S1"] if capacity is not None else [],
                "capacity_volume": [capacity] if capacity is not None else [],
            }
        ),
        frequency=frequency,
        safety_stock=targets,
    )


def test_backorders_are_filled_late_and_count_against_the_fill_rate() -> None:
    problem = _problem({"A": [5.0] * 4}, lead_time_days=2)

    result = solve_replenishment_plan(problem, options=ModelOptions(shortage_mode="backorder"))

    # Nothing lands before day 2; the first delivery clears the 10 backlogged units too.
    assert result.inventory["backlog"].tolist() == pytest.approx([5, 10, 0, 0])
    assert result.inventory["lost_sales"].sum() == 0.0
    assert result.orders["quantity"].tolist() == pytest.approx([15.0, 5.0])
    assert result.expected_fill_rate == pytest.approx(0.5)
    # 15 units backlogged for a day each at 2 × unit cost.
    assert result.cost_breakdown["shortage"] == pytest.approx(15 * 20.0)


def test_weekly_periods_round_lead_times_up_to_whole_periods() -> None:
    problem = _problem({"A": [70.0] * 4}, lead_time_days=3, frequency=Frequency("W-FRI"), opening_stock=70.0)

    result = solve_replenishment_plan(problem)

    assert result.orders["order_date"].tolist() == [START, START + pd.Timedelta(days=7), START + pd.Timedelta(days=14)]
    assert (result.orders["arrival_date"] - result.orders["order_date"]).dt.days.eq(7).all()
    assert result.inventory["date"].tolist() == list(pd.date_range(START, periods=4, freq="7D"))


def test_a_fixed_cost_per_order_batches_orders_into_one() -> None:
    problem = _problem({"A": [10.0] * 6})
    # One order of 60 pays 50 fixed and 0.01 × (50+40+30+20+10) holding; two would pay 100 fixed.
    batched = solve_replenishment_plan(
        problem, CostSettings(fixed_order_cost=50.0, ending_stock_value_share=0.0), options=FRACTIONAL
    )
    daily = solve_replenishment_plan(problem, PLAIN_COSTS, options=FRACTIONAL)

    assert len(daily.orders) == 6
    assert batched.orders["quantity"].tolist() == pytest.approx([60.0])
    assert batched.cost_breakdown["ordering"] == pytest.approx(50.0)
    assert batched.cost_breakdown["holding"] == pytest.approx(1.5)
    assert batched.solver_status == "optimal"


def test_integer_orders_are_whole_case_packs_of_at_least_the_moq() -> None:
    problem = _problem({"A": [7.0] * 4}, item_columns={"case_pack": [6], "moq": [12]})

    result = solve_replenishment_plan(problem, PLAIN_COSTS, options=ModelOptions(whole_orders="milp"))

    quantities = result.orders["quantity"].to_numpy()
    assert len(quantities) > 0
    assert np.all(quantities % 6 == 0) and np.all(quantities >= 12)
    assert result.inventory["lost_sales"].sum() == pytest.approx(0.0)
    assert quantities.sum() == pytest.approx(30.0)  # the least whole packs covering 28 units


def test_max_order_caps_each_order_and_is_reported_binding() -> None:
    problem = _problem({"A": [10.0] * 4})

    result = solve_replenishment_plan(problem, options=ModelOptions(max_order_quantity=8.0))

    assert result.orders["quantity"].tolist() == pytest.approx([8.0] * 4)
    assert result.inventory["lost_sales"].tolist() == pytest.approx([2.0] * 4)
    assert result.explanations["binding"].str.contains("max_order").all()


def test_budget_limits_spend_per_period_and_goes_to_the_dearer_shortage() -> None:
    problem = _problem({"A": [10.0] * 3, "B": [10.0] * 3}, item_columns={"shortage_cost": [50.0, 30.0]})

    result = solve_replenishment_plan(problem, options=ModelOptions(budget_per_period=150.0))

    spend = result.orders.assign(spend=result.orders["quantity"] * 10.0).groupby("order_date")["spend"].sum()
    assert (spend <= 150.0 + 1e-6).all()
    ordered = result.orders.groupby("item_id")["quantity"].sum()
    assert ordered.to_dict() == pytest.approx({"A": 30.0, "B": 15.0})
    assert result.explanations["binding"].str.contains("budget").all()


def test_orders_only_on_review_periods() -> None:
    # Every 3 days from Friday (weekday 4): 2024-03-01 is a Friday, so days 0, 3 and 6.
    problem = _problem({"A": [4.0] * 9}, item_columns={"review_days": [3], "order_weekday": [4]})

    result = solve_replenishment_plan(problem)

    assert ((result.orders["order_date"] - START).dt.days % 3 == 0).all()
    assert result.orders["quantity"].tolist() == pytest.approx([12.0] * 3)


def test_targets_above_capacity_name_the_store_and_period() -> None:
    problem = _problem({"A": [5.0] * 5, "B": [5.0] * 5}, capacity=25.0, safety_stock=13.0)

    with pytest.raises(PlanInfeasibleError) as error:
        solve_replenishment_plan(problem)

    message = str(error.value)
    # Sales may be lost, but each item must still keep 13 at day end: 26 > 25 on the shelf.
    assert "capacity at store S1 in period 0 (2024-03-01) is below the minimum stock the targets require" in message
    assert "25 available, 26 needed" in message


def test_moq_above_capacity_is_named() -> None:
    problem = _problem({"A": [2.0] * 4}, capacity=30.0, safety_stock=3.0, item_columns={"moq": [50], "case_pack": [1]})

    with pytest.raises(PlanInfeasibleError, match="MOQ exceeds capacity: item A at store S1 needs 50 volume"):
        solve_replenishment_plan(problem, options=ModelOptions(whole_orders="milp"))


def test_soft_mode_returns_a_plan_and_prices_the_violations() -> None:
    problem = _problem({"A": [5.0] * 5, "B": [5.0] * 5}, capacity=25.0, safety_stock=13.0)

    soft = ModelOptions(soft_constraints=True, violation_penalty=1000.0, whole_orders="none")
    result = solve_replenishment_plan(problem, PLAIN_COSTS, options=soft)

    assert result.solver_status == "optimal"
    assert not result.violations.empty
    assert set(result.violations["constraint"]) <= {"store_capacity", "stock_target"}
    assert result.cost_breakdown["constraint_violation"] == pytest.approx(
        1000.0 * result.violations["amount"].sum(), rel=1e-6
    )
    assert result.objective == pytest.approx(sum(result.cost_breakdown.values()))


def test_explanations_add_up_for_every_order() -> None:
    problem = _problem({"A": [3.0, 4.0, 5.0, 6.0, 2.0, 3.0]}, lead_time_days=2, opening_stock=9.0, safety_stock=2.0)

    result = solve_replenishment_plan(problem)
    explained = result.explanations

    assert len(explained) == len(result.orders)
    np.testing.assert_allclose(
        explained["inventory_position_after_order"],
        explained["on_hand"] + explained["pipeline"] + explained["quantity"],
    )
    np.testing.assert_allclose(
        explained["safety_stock"],
        explained["inventory_position_after_order"] - explained["demand_over_protection"],
    )
    # Day 0: 9 on hand, nothing in transit; the order covers days 0-2 (lead time 2 + review 1).
    first = explained.iloc[0]
    assert (first["on_hand"], first["pipeline"], first["demand_over_protection"]) == pytest.approx((9.0, 0.0, 12.0))


def _three_store_problem() -> PlanningProblem:
    rng = np.random.default_rng(5)
    stores = ["S0", "S1", "S2"]
    items = pd.DataFrame(
        {
            "item_id": [f"I{i}" for i in range(6)],
            "unit_cost": rng.uniform(1, 10, 6),
            "holding_cost_rate": 0.3,
            "lead_time_days": rng.integers(0, 3, 6),
            "unit_volume": rng.uniform(0.5, 2, 6),
        }
    )
    cells = pd.MultiIndex.from_product(
        [items["item_id"], stores, range(8)], names=["item_id", "store_id", "period"]
    ).to_frame(index=False)
    return PlanningProblem(
        start_date=START,
        n_periods=8,
        demand=cells.assign(demand=rng.poisson(5, len(cells)).astype(float)),
        items=items,
        on_hand=cells.loc[cells["period"] == 0, ["item_id", "store_id"]].assign(on_hand=2.0),
        open_orders=NO_OPEN_ORDERS,
        capacity=pd.DataFrame({"store_id": stores, "capacity_volume": [30.0, 20.0, 1e6]}),
    )


def test_decomposing_by_store_in_two_processes_gives_the_joint_plan() -> None:
    problem = _three_store_problem()

    joint = solve_replenishment_plan(problem, PLAIN_COSTS, options=FRACTIONAL)
    in_parts = ModelOptions(decompose_by_location=True, workers=2, whole_orders="none")
    parts = solve_replenishment_plan(problem, PLAIN_COSTS, options=in_parts)

    assert parts.objective == pytest.approx(joint.objective, rel=1e-7)
    assert parts.expected_fill_rate == pytest.approx(joint.expected_fill_rate, rel=1e-7)
    pd.testing.assert_frame_equal(
        parts.inventory[["item_id", "store_id", "period", "on_hand_end"]],
        joint.inventory[["item_id", "store_id", "period", "on_hand_end"]],
        atol=1e-6,
    )
    assert joint.capacity_utilisation["binding"].any()


def test_a_budget_refuses_decomposition() -> None:
    with pytest.raises(ValueError, match="budget couples all stores"):
        solve_replenishment_plan(
            _three_store_problem(),
            options=ModelOptions(decompose_by_location=True, budget_per_period=10.0),
        )


def test_scenarios_follow_the_forecast_quantiles() -> None:
    forecast = pd.DataFrame(
        {
            "item_id": "A",
            "store_id": "S1",
            "period": [0, 1],
            "q0.1": [2.0, 10.0],
            "q0.5": [5.0, 20.0],
            "q0.9": [9.0, 40.0],
        }
    )

    scenarios = sample_demand_scenarios(forecast, n_scenarios=20000, seed=0, period_correlation=0.5)
    by_period = scenarios.pivot(index="scenario", columns="period", values="demand")

    for period in (0, 1):
        drawn = by_period[period]
        for level in (0.1, 0.5, 0.9):
            assert drawn.quantile(level) == pytest.approx(forecast.loc[period, f"q{level:g}"], rel=0.03)
        assert drawn.mean() == pytest.approx(expected_demand_from_quantiles(forecast)["demand"][period], rel=0.02)
    assert (scenarios["demand"] >= 0).all()
    assert np.corrcoef(by_period[0], by_period[1])[0, 1] == pytest.approx(0.5, abs=0.05)


def test_planning_demand_modes_shape_the_problem_inputs() -> None:
    forecast = pd.DataFrame({"item_id": "A", "store_id": "S1", "period": range(4), "q0.5": 10.0, "q0.9": 15.0})
    protection = pd.Series([3], index=pd.MultiIndex.from_tuples([("A", "S1")], names=["item_id", "store_id"]))

    point, no_targets = planning_demand(forecast, "point", demand_level=0.9)
    median, targets = planning_demand(forecast, "quantile", service_level=0.9, protection_periods=protection)
    scenarios, _ = planning_demand(forecast, "scenario", n_scenarios=7, seed=1)

    assert no_targets is None and (point["demand"] == 15.0).all()
    assert (median["demand"] == 10.0).all()
    # sigma = 5 / z(0.9) a day, so z(0.9)·sigma·sqrt(days so far, at most 3) = 5·sqrt(...).
    assert targets["safety_stock"].tolist() == pytest.approx(5 * np.sqrt([1, 2, 3, 3]))
    assert sorted(scenarios["scenario"].unique()) == list(range(7))
    with pytest.raises(ValueError, match="no quantile 0.8"):
        planning_demand(forecast, "point", demand_level=0.8)


def _paths(
    n_series: int, correlation: float, quantiles: dict[str, float], seed: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    forecast = (
        pd.MultiIndex.from_product(
            [[f"I{i}" for i in range(n_series)], ["S1"], range(28)], names=["item_id", "store_id", "period"]
        )
        .to_frame(index=False)
        .assign(**quantiles)
        .sort_values(["item_id", "store_id", "period"], ignore_index=True)
    )
    drawn = sample_demand_scenarios(forecast, n_scenarios=1, seed=seed, period_correlation=correlation)
    return forecast, drawn


@pytest.mark.parametrize("correlation", [0.0, 0.4])
def test_period_correlation_is_recovered_from_forecast_errors(correlation: float) -> None:
    # Slow movers: demand is exactly zero half the time, so sums of few periods tie often.
    quantiles = {"q0.1": 0.0, "q0.5": 0.0, "q0.8": 1.0, "q0.9": 2.0, "q0.95": 3.0}
    forecast, drawn = _paths(400, correlation, quantiles, seed=3)

    estimate = calibrate_scenarios(forecast, drawn["demand"].to_numpy(), window_periods=14, seed=4)

    assert (drawn["demand"] == 0).mean() == pytest.approx(0.5, abs=0.03)
    assert estimate.period_correlation == pytest.approx(correlation, abs=0.1)
    assert estimate.spread == 1.0


def test_a_forecast_narrower_than_what_sells_is_widened_to_it() -> None:
    # Demand drawn from quantiles twice as far from the median as the forecast says.
    quantiles = {"q0.1": 6.0, "q0.5": 10.0, "q0.9": 14.0, "q0.95": 16.0}
    forecast, _ = _paths(400, 0.0, quantiles, seed=3)
    drawn = sample_demand_scenarios(widened(forecast, 2.0), n_scenarios=1, seed=5, period_correlation=0.2)

    estimate = calibrate_scenarios(forecast, drawn["demand"].to_numpy(), window_periods=14, seed=4)

    assert estimate.spread == 2.0
    assert estimate.period_correlation == pytest.approx(0.2, abs=0.1)
    assert widened(forecast, 2.0)["q0.1"].tolist() == [2.0] * len(forecast)


def test_the_upper_tail_beyond_the_top_quantile_is_exponential() -> None:
    forecast = pd.DataFrame(
        {"item_id": ["A"], "store_id": ["S1"], "period": [0], "q0.5": [10.0], "q0.9": [20.0], "q0.95": [25.0]}
    )
    quantile_function = QuantileFunction.of(forecast)

    # Through q0.9 and q0.95: b = 5 / ln 2, so q0.99 = 25 + b·ln 5.
    assert quantile_function.at(np.array([[0.99]]))[0, 0] == pytest.approx(25 + 5 / np.log(2) * np.log(5))
    assert quantile_function.at(np.array([[0.9, 0.5]]))[0].tolist() == pytest.approx([20.0, 10.0])
