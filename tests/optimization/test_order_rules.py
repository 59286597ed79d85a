"""The rules a plan's orders keep by default, one test each: whole case packs, zero or at least the
MOQ (by the MILP and by the repair of the LP), the order calendar, service levels by ABC class and
how they meet the shortage penalty, infeasibility named store by store, soft mode published, and the
item-master columns the data contract refuses."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from expectations.validation import validate_tables
from optimization.config import PlanningConfig
from optimization.grid import CALENDAR_EPOCH, order_calendar
from optimization.planning import explained_orders, planning_problem, service_level_targets, solve_plan
from optimization.problem import PlanInfeasibleError
from optimization.replenishment_lp import (
    CostSettings,
    ModelOptions,
    PlanningProblem,
    solve_replenishment_plan,
)
from optimization.service_levels import ServiceLevels, abc_classes, penalty_implied_level
from replenish.data.synthetic import SyntheticConfig, generate_synthetic
from replenish.data.tables import MasterDefaults, RetailData, complete_tables
from replenish.frequency import DAILY, Frequency
from replenish.plan_output import plan_files
from replenish.publishing import VIOLATIONS_FILE
from replenish.report import plan_report, render_html
from replenish.settings import load_settings
from tests.replenish.test_report import GIVEN_OUTLOOK, NO_PURCHASE_ORDERS, Tables

MONDAY = pd.Timestamp("2024-03-04")
NO_OPEN_ORDERS = pd.DataFrame(columns=["item_id", "store_id", "quantity", "arrival_date"])
NO_CAPACITY = pd.DataFrame(columns=["store_id", "capacity_volume"])


def problem(
    demand: dict[str, list[float]],
    *,
    stores: tuple[str, ...] = ("S1",),
    capacity: float | None = None,
    **item_columns: list[object],
) -> PlanningProblem:
    """Items named by `demand`'s keys at every store, no stock, lead time 1, holding 1% a day."""
    items = list(demand)
    n_periods = len(next(iter(demand.values())))
    return PlanningProblem(
        start_date=MONDAY,
        n_periods=n_periods,
        demand=pd.DataFrame(
            [
                (item, store, t, value)
                for item, values in demand.items()
                for store in stores
                for t, value in enumerate(values)
            ],
            columns=["item_id", "store_id", "period", "demand"],
        ),
        items=pd.DataFrame(
            {
                "item_id": items,
                "unit_cost": 10.0,
                "holding_cost_rate": 3.65,
                "lead_time_days": 1,
                "unit_volume": 1.0,
                **item_columns,
            }
        ),
        on_hand=pd.DataFrame(
            [(item, store, 0.0) for item in items for store in stores], columns=["item_id", "store_id", "on_hand"]
        ),
        open_orders=NO_OPEN_ORDERS,
        capacity=NO_CAPACITY
        if capacity is None
        else pd.DataFrame({"store_id": list(stores), "capacity_volume": capacity}),
    )


@pytest.mark.parametrize("whole_orders", ["milp", "repair"])
def test_orders_are_whole_case_packs(whole_orders: str) -> None:
    plan = solve_replenishment_plan(
        problem({"A": [2.3, 4.1, 3.7, 5.0, 1.2, 3.3]}, case_pack=[4]),
        CostSettings(ending_stock_value_share=1.0),
        options=ModelOptions(whole_orders=whole_orders),
    )

    quantities = plan.orders["quantity"].to_numpy()
    assert len(quantities) > 0 and (quantities % 4 == 0).all()


@pytest.mark.parametrize("whole_orders", ["milp", "repair"])
def test_an_order_is_zero_or_at_least_the_moq_in_whole_packs(whole_orders: str) -> None:
    # MOQ 12 in packs of 5: the least order is 15.
    plan = solve_replenishment_plan(
        problem({"A": [3.0] * 8, "B": [0.4] * 8}, case_pack=[5, 5], moq=[12, 12]),
        CostSettings(ending_stock_value_share=1.0),
        options=ModelOptions(whole_orders=whole_orders),
    )

    quantities = plan.orders["quantity"].to_numpy()
    assert len(quantities) > 0 and (quantities % 5 == 0).all() and (quantities >= 15).all()
    assert plan.solver_status == ("optimal" if whole_orders == "milp" else "repaired")


def test_the_repair_keeps_capacity_and_costs_little_more_than_the_milp() -> None:
    # Rounding every order up would need 4 × 6 on a shelf of 20.
    tight = problem({item: [2.5, 3.5, 2.0, 4.0, 3.0, 2.5] for item in "ABCD"}, capacity=20.0, case_pack=[6] * 4)
    costs = CostSettings(ending_stock_value_share=1.0)

    exact = solve_replenishment_plan(tight, costs, options=ModelOptions(whole_orders="milp"))
    repaired = solve_replenishment_plan(tight, costs, options=ModelOptions(whole_orders="repair"))

    assert (repaired.capacity_utilisation["volume_after_arrivals"] <= 20.0 + 1e-6).all()
    assert (repaired.orders["quantity"] % 6 == 0).all()
    assert exact.objective <= repaired.objective <= exact.objective * 1.05


def test_items_are_ordered_only_on_their_order_days() -> None:
    # Weekly on Wednesday (2) and every other Friday counted from the epoch's week (4).
    calendar = order_calendar(MONDAY, 21, DAILY, np.array([7, 14]), np.array([2, 4]))
    days = pd.date_range(MONDAY, periods=21)
    assert list(days[calendar[0]].day_name()) == ["Wednesday"] * 3
    fridays = days[calendar[1]]
    assert list(fridays.day_name()) == ["Friday"] and (fridays[0] - CALENDAR_EPOCH).days % 14 == 4
    # Weekly periods: an order every review rounded up to weeks, from the first planned week.
    weekly = order_calendar(MONDAY, 3, Frequency("W-SUN"), np.array([14, 8]), np.array([4, 0]))
    assert weekly.tolist() == [[True, False, True], [True, False, True]]

    plan = solve_replenishment_plan(problem({"A": [3.0] * 14}, review_days=[7], order_weekday=[2]))
    assert set(plan.orders["order_date"].dt.day_name()) == {"Wednesday"}


def test_items_are_classed_by_revenue_and_their_master_service_level_wins() -> None:
    revenue = pd.Series({"A": 50.0, "B": 30.0, "C": 10.0, "D": 6.0, "E": 4.0})
    # Revenue before each item, best sellers first: 0%, 50%, 80%, 90%, 96%.
    assert abc_classes(revenue, ServiceLevels()).tolist() == ["A", "A", "B", "B", "C"]

    data = complete_tables(
        generate_synthetic(SyntheticConfig(n_items=6, n_stores=1, n_days=120, seed=3)), MasterDefaults()
    )
    data = dataclasses.replace(data, items=data.items.assign(service_level=[0.97] + [np.nan] * 5))
    levels = PlanningConfig().service_levels
    targets = service_level_targets(data, PlanningConfig()).set_index("item_id")
    first = data.items["item_id"].iloc[0]
    assert targets.loc[first, "service_level"] == 0.97
    rest = targets.drop(index=first)
    assert (rest["service_level"] == rest["abc_class"].map({"A": levels.a, "B": levels.b, "C": levels.c})).all()
    assert set(targets["abc_class"]) <= {"A", "B", "C"}


def test_the_plan_follows_the_higher_of_the_target_and_the_level_the_penalty_implies() -> None:
    data = complete_tables(
        generate_synthetic(SyntheticConfig(n_items=4, n_stores=1, n_days=120, seed=5)), MasterDefaults()
    )
    items = data.items.set_index("item_id")
    holding_per_day = items["unit_cost"] * items["holding_cost_rate"] / 365

    for multiplier in (2.0, 1.001):
        targets = service_level_targets(
            data, PlanningConfig(costs=CostSettings(shortage_cost_multiplier=multiplier))
        ).set_index("item_id")
        implied = penalty_implied_level(
            items["unit_cost"], items["unit_cost"] * multiplier, holding_per_day, items["review_days"]
        )
        np.testing.assert_allclose(targets["penalty_level"], implied)
        np.testing.assert_allclose(targets["planned_level"], np.maximum(targets["service_level"], implied))
        # The penalty planned with implies the planned level (or is the configured one, when that is higher).
        np.testing.assert_allclose(
            penalty_implied_level(items["unit_cost"], targets["shortage_cost"], holding_per_day, items["review_days"]),
            targets["planned_level"],
            rtol=1e-9,
        )
    # A penalty of twice the cost outweighs a week's holding by far; one of barely the cost does not.
    assert (targets["penalty_level"] < targets["service_level"]).all()


def test_an_infeasible_plan_names_every_store_in_rounded_units_and_suggests_soft_mode() -> None:
    data = complete_tables(
        generate_synthetic(SyntheticConfig(n_items=4, n_stores=2, n_days=120, seed=5)), MasterDefaults()
    )
    data = dataclasses.replace(data, capacity=data.capacity.assign(capacity_volume=1.0))
    planning = PlanningConfig(horizon=14, uncertainty_mode="point")

    with pytest.raises(PlanInfeasibleError) as raised:
        solve_plan(planning_problem(data, flat_forecast(data, 14), planning), planning)

    message = str(raised.value)
    assert "capacity at store STORE_1" in message and "capacity at store STORE_2" in message
    assert not any(
        len(number.split(".")[-1]) > 2
        for number in message.replace(",", "").split()
        if "." in number and number.replace(".", "").isdigit()
    )
    assert "planning.model.soft_constraints=true" in message


def test_soft_mode_publishes_its_violations_and_the_report_leads_with_them() -> None:
    data = complete_tables(
        generate_synthetic(SyntheticConfig(n_items=4, n_stores=2, n_days=120, seed=5)), MasterDefaults()
    )
    data = dataclasses.replace(data, capacity=data.capacity.assign(capacity_volume=1.0))
    settings = load_settings(
        overrides=[
            "planning.horizon=14",
            "planning.uncertainty_mode=point",
            "planning.model.soft_constraints=true",
        ]
    )
    forecast = flat_forecast(data, 14)
    planned = planning_problem(data, forecast, settings.planning)

    plan = solve_plan(planned, settings.planning)
    report = plan_report(
        planned, plan, explained_orders(plan), forecast, data.sales, None, GIVEN_OUTLOOK, NO_PURCHASE_ORDERS
    )
    page = render_html(report, "run-1")

    assert set(plan.violations["store_id"]) == {"STORE_1", "STORE_2"}
    files = plan_files(settings.planning, "run-1", planned, plan, report)
    pd.testing.assert_frame_equal(files[VIOLATIONS_FILE], plan.violations)
    assert page.index("constraint(s) broken") < page.index("Key figures")
    assert {row[1] for row in Tables(page).tables["broken-constraints"][1:]} >= {"store STORE_1", "store STORE_2"}
    # Over capacity every period: the report counts them as at or over capacity.
    capacity = {row[0]: row for row in Tables(page).tables["capacity-use"][1:]}
    assert int(capacity["STORE_1"][-1]) == 14


def flat_forecast(data: RetailData, days: int) -> pd.DataFrame:
    dates = pd.date_range(data.snapshot_date + pd.Timedelta(days=1), periods=days)
    return (
        data.inventory[["item_id", "store_id"]]
        .merge(pd.DataFrame({"date": dates}), how="cross")
        .assign(**{"mean": 3.0, "q0.1": 1.0, "q0.5": 3.0, "q0.9": 5.0})
    )


@pytest.mark.parametrize(
    ("column", "values", "rule", "bad_row"),
    [
        ("case_pack", [0, 6, 6], "must be >= 1", 1),
        ("moq", [0, -12, 0], "must be >= 0", 2),
        ("service_level", [0.95, 0.9, 1.0], "must be above 0.5 and below 1", 3),
    ],
)
def test_the_contract_refuses_item_master_values_naming_file_column_and_rows(
    column: str, values: list[object], rule: str, bad_row: int
) -> None:
    raw = generate_synthetic(SyntheticConfig(n_items=3, n_stores=1, n_days=90))
    raw = dataclasses.replace(raw, items=raw.items.assign(**{column: values}), sources={"items": "/data/in/items.csv"})

    report = validate_tables(raw, pd.Timestamp("2024-06-01"))

    failures = [failure for failure in report.failures if failure.column == column]
    assert len(failures) == 1, report.failures
    described = failures[0].describe()
    assert described.startswith("/data/in/items.csv: column") and f"'{column}'" in described
    assert rule in described and f"rows {bad_row}" in described
