"""A store's plan solved whole or in blocks of items: seconds and cost, capacity slack and binding.

    python benchmarks/plan_blocks.py [--items 100] [--scenarios 200] [--blocks 0 15000 30000 60000] [--out FILE]

One store of --items items × --scenarios equally likely demand paths × 28 days, the shape of the
default plan (scenario mode, weekly review, whole case packs and MOQs), planned by the product's
`solve_replenishment_plan` with its default settings but for `block_cells` (0: the store as one
model).  Each size is planned twice: with a capacity no plan reaches (slack) and with one at 70%
of the slack plan's peak shelf volume (binding), where the blocks' plans together break it and the
store falls back to one model.  The objectives must agree across block sizes: the blocks are exact.
Writes {"runs": [{"capacity", "block_cells", "seconds", "objective", "peak_utilisation"}]}.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from optimization.problem import ModelOptions, PlanningProblem  # noqa: E402
from optimization.replenishment_lp import solve_replenishment_plan  # noqa: E402
from replenish.io import write_json_atomically  # noqa: E402

DAYS = 28


def store_problem(n_items: int, n_scenarios: int, seed: int = 0) -> PlanningProblem:
    """Gamma-Poisson demand paths around each item's own daily mean, weekly review on varied weekdays."""
    rng = np.random.default_rng(seed)
    item_ids = [f"I{i:04d}" for i in range(n_items)]
    daily_mean = rng.gamma(1.5, 4.0, n_items)
    rates = rng.gamma(4.0, daily_mean[:, None, None] / 4.0, (n_items, n_scenarios, DAYS))
    units = rng.poisson(rates).astype(float)
    index = pd.MultiIndex.from_product(
        [item_ids, range(n_scenarios), range(DAYS)], names=["item_id", "scenario", "period"]
    ).to_frame(index=False)
    return PlanningProblem(
        start_date=pd.Timestamp("2025-03-03"),
        n_periods=DAYS,
        demand=index.assign(store_id="S1", demand=units.ravel()),
        items=pd.DataFrame(
            {
                "item_id": item_ids,
                "unit_cost": rng.uniform(1.0, 30.0, n_items),
                "holding_cost_rate": 0.25,
                "lead_time_days": rng.choice([2, 3, 5, 7], n_items),
                "unit_volume": rng.uniform(0.2, 3.0, n_items),
                "case_pack": rng.choice([1, 6, 12], n_items),
                "moq": rng.choice([0, 12, 24], n_items),
                "review_days": 7,
                "order_weekday": rng.integers(0, 7, n_items),
            }
        ),
        on_hand=pd.DataFrame(
            {"item_id": item_ids, "store_id": "S1", "on_hand": np.rint(daily_mean * rng.uniform(2, 10, n_items))}
        ),
        open_orders=pd.DataFrame(columns=["item_id", "store_id", "quantity", "arrival_date"]),
        capacity=pd.DataFrame({"store_id": ["S1"], "capacity_volume": [1e12]}),
    )


def timed_plan(problem: PlanningProblem, block_cells: int) -> dict[str, float]:
    started = time.perf_counter()
    result = solve_replenishment_plan(problem, options=ModelOptions(block_cells=block_cells or None))
    return {
        "seconds": round(time.perf_counter() - started, 2),
        "objective": round(result.objective, 2),
        "peak_volume": float(result.capacity_utilisation["volume_after_arrivals"].max()),
        "peak_utilisation": round(float(result.capacity_utilisation["utilisation"].max()), 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=100)
    parser.add_argument("--scenarios", type=int, default=200)
    parser.add_argument("--blocks", type=int, nargs="+", default=[0, 15_000, 30_000, 60_000])
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    slack = store_problem(args.items, args.scenarios)
    problems = {"slack": slack}
    runs = []
    print(f"{'capacity':>9} {'block_cells':>12} {'seconds':>8} {'objective':>14} {'peak_util':>10}")
    for capacity in ["slack", "binding"]:
        for block_cells in args.blocks:
            run = {"capacity": capacity, "block_cells": block_cells, **timed_plan(problems[capacity], block_cells)}
            if "binding" not in problems:
                limit = pd.DataFrame({"store_id": ["S1"], "capacity_volume": [0.7 * run["peak_volume"]]})
                problems["binding"] = PlanningProblem(**{**slack.__dict__, "capacity": limit})
            del run["peak_volume"]
            runs.append(run)
            print(
                f"{capacity:>9} {block_cells or 'one model':>12} {run['seconds']:>8.2f} {run['objective']:>14.2f} "
                f"{run['peak_utilisation']:>10.4f}",
                flush=True,
            )
    if args.out:
        write_json_atomically(args.out, {"runs": runs})


if __name__ == "__main__":
    main()
