"""Per-store plans merged into one: rows sorted, costs and times summed, the fill rate recomputed."""

from __future__ import annotations

import pandas as pd

from optimization.decomposition import merge_results
from optimization.problem import PlanResult


def part(store: str, demand: float, unmet: float, cost: float, status: str = "optimal") -> PlanResult:
    return PlanResult(
        orders=pd.DataFrame(
            {"item_id": ["A"], "store_id": [store], "order_date": [pd.Timestamp("2024-01-01")], "quantity": [demand]}
        ),
        inventory=pd.DataFrame(
            {"item_id": ["A"], "store_id": [store], "period": [0], "demand": [demand], "unmet_demand": [unmet]}
        ),
        objective=cost,
        cost_breakdown={"holding": cost / 2, "shortage": cost / 2},
        solver_status=status,
        solve_seconds=1.5,
        expected_fill_rate=1.0 - unmet / demand,
        capacity_utilisation=pd.DataFrame({"store_id": [store], "period": [0], "utilisation": [0.5]}),
        explanations=pd.DataFrame(),
        violations=pd.DataFrame(),
        build_seconds=0.25,
    )


def test_parts_merge_into_one_plan() -> None:
    merged = merge_results(
        [part("S2", demand=30.0, unmet=0.0, cost=10.0), part("S1", demand=10.0, unmet=4.0, cost=6.0)]
    )

    assert merged.orders["store_id"].tolist() == ["S1", "S2"]
    assert merged.capacity_utilisation["store_id"].tolist() == ["S1", "S2"]
    assert merged.objective == 16.0 and merged.cost_breakdown == {"holding": 8.0, "shortage": 8.0}
    assert merged.solve_seconds == 3.0 and merged.build_seconds == 0.5
    # Weighted by demand, not the mean of the parts' rates (0.8).
    assert merged.expected_fill_rate == 1.0 - 4.0 / 40.0
    assert merged.solver_status == "optimal" and merged.explanations.empty


def test_a_part_that_is_not_optimal_shows_in_the_status() -> None:
    merged = merge_results([part("S1", 10.0, 0.0, 1.0), part("S2", 10.0, 0.0, 1.0, status="time_limit")])

    assert merged.solver_status == "time_limit"
