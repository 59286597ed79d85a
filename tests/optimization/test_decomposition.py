"""Per-store plans merged into one (rows sorted, costs and times summed, the fill rate recomputed),
and a store split into blocks of items."""

from __future__ import annotations

import pandas as pd

from optimization.decomposition import merge_results, split_by_items
from optimization.problem import PlanningProblem, PlanResult


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


def test_items_split_into_blocks_of_whole_item_stores_without_capacity() -> None:
    keys = pd.MultiIndex.from_product([["A", "B", "C"], ["S1", "S2"]], names=["item_id", "store_id"]).to_frame(
        index=False
    )
    demand = keys.merge(pd.DataFrame({"scenario": [0, 1]}), how="cross").merge(
        pd.DataFrame({"period": [0, 1, 2]}), how="cross"
    )
    problem = PlanningProblem(
        start_date=pd.Timestamp("2024-03-01"),
        n_periods=3,
        demand=demand.assign(demand=1.0),
        items=pd.DataFrame({"item_id": ["A", "B", "C"], "unit_cost": 1.0}),
        on_hand=keys.assign(on_hand=2.0),
        open_orders=keys.iloc[[0, 5]].assign(quantity=3.0, arrival_date=pd.Timestamp("2024-03-02")),
        capacity=pd.DataFrame({"store_id": ["S1", "S2"], "capacity_volume": 10.0}),
    )

    # Two item-stores of 2 scenarios × 3 periods fit 12 cells; 13 fit no third.
    blocks = split_by_items(problem, cells_per_block=13)

    assert [sorted(set(zip(block.on_hand["item_id"], block.on_hand["store_id"], strict=True))) for block in blocks] == [
        [("A", "S1"), ("A", "S2")],
        [("B", "S1"), ("B", "S2")],
        [("C", "S1"), ("C", "S2")],
    ]
    assert sum(len(block.demand) for block in blocks) == len(problem.demand)
    assert [len(block.open_orders) for block in blocks] == [1, 0, 1]
    assert [block.items["item_id"].tolist() for block in blocks] == [["A"], ["B"], ["C"]]
    assert all(block.capacity.empty for block in blocks)
    assert split_by_items(problem, cells_per_block=36) == [problem]
