"""Build and solve time and peak memory of the replenishment LP at scale, Pyomo vs direct highspy.

    python benchmarks/lp_scale.py [--sizes 1000 10000 100000] [--out FILE]

Each size N is N item-stores (--items-per-store per store) × 13 weekly periods of synthetic
Poisson demand, lead times of 1-2 weeks, opening stock and a capacity per store that binds on
the weeks deliveries land.  Only store capacity couples item-stores, so the LP is decomposed by
store and the stores are solved in --workers processes, on both paths:

* pyomo: the formulation's arrays -> a Pyomo model -> HiGHS through Pyomo's contrib interface;
* highspy: the same arrays -> a HighsLp passed to highspy directly.

Each (N, path) runs in a fresh process so peak memory is its own.  build_seconds and
solve_seconds are summed over the stores and divided by the number of workers (stores run
side by side); wall_seconds, printed, is the whole run.  peak_rss_mb adds the parent's peak to
each worker's peak (an upper bound: forked workers share pages with the parent).

Writes {"runs": [{"n_items", "periods", "path", "build_seconds", "solve_seconds",
"peak_rss_mb", "objective"}]} with --out.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from optimization.backends import solve_program  # noqa: E402
from optimization.decomposition import split_by_location  # noqa: E402
from optimization.formulation import formulate  # noqa: E402
from optimization.grid import prepare_grid  # noqa: E402
from optimization.problem import CostSettings, ModelOptions, PlanningProblem, SolverSettings  # noqa: E402
from replenish.frequency import Frequency  # noqa: E402

PERIODS = 13
WEEK = 7
# Store-sized LPs (1,000 item-stores) solve about 3x faster with simplex than with interior
# point; interior point without crossover wins on large monolithic LPs (STACK_NOTES).
SOLVER_OPTIONS = {
    "simplex": {"solver": "simplex"},
    "ipm": {"solver": "ipm", "run_crossover": "off"},
}


def synthetic_problem(n_item_stores: int, items_per_store: int, seed: int = 0) -> PlanningProblem:
    rng = np.random.default_rng(seed)
    n_stores = max(1, n_item_stores // items_per_store)
    n_items = n_item_stores // n_stores
    items = pd.DataFrame(
        {
            "item_id": [f"I{i:06d}" for i in range(n_items)],
            "unit_cost": rng.uniform(1.0, 30.0, n_items),
            "holding_cost_rate": rng.uniform(0.15, 0.35, n_items),
            "lead_time_days": rng.choice([3, 7, 10, 14], n_items),
            "unit_volume": rng.uniform(0.2, 3.0, n_items),
        }
    )
    stores = [f"S{s:04d}" for s in range(n_stores)]
    item_codes = np.repeat(np.arange(n_items), n_stores)
    store_codes = np.tile(np.arange(n_stores), n_items)
    weekly_mean = rng.gamma(2.0, 10.0, len(item_codes))
    demand = rng.poisson(weekly_mean[:, None], (len(item_codes), PERIODS)).astype(float)
    item_ids = items["item_id"].to_numpy()[item_codes]
    store_ids = np.array(stores)[store_codes]
    opening = np.rint(weekly_mean * rng.uniform(0.5, 2.0, len(item_codes)))
    volume = items["unit_volume"].to_numpy()[item_codes]
    # About 1.2 weeks of demand on the shelf right after a delivery: capacity binds.
    capacity = pd.Series(1.2 * weekly_mean * volume).groupby(store_ids).sum()
    return PlanningProblem(
        start_date=pd.Timestamp("2025-01-06"),
        n_periods=PERIODS,
        demand=pd.DataFrame(
            {
                "item_id": np.repeat(item_ids, PERIODS),
                "store_id": np.repeat(store_ids, PERIODS),
                "period": np.tile(np.arange(PERIODS), len(item_codes)),
                "demand": demand.ravel(),
            }
        ),
        items=items,
        on_hand=pd.DataFrame({"item_id": item_ids, "store_id": store_ids, "on_hand": opening}),
        open_orders=pd.DataFrame(columns=["item_id", "store_id", "quantity", "arrival_date"]),
        capacity=capacity.rename("capacity_volume").rename_axis("store_id").reset_index(),
        frequency=Frequency("W-SUN"),
    )


def solve_store(part: PlanningProblem, backend: str, algorithm: str) -> dict[str, float]:
    """Build and solve one store's LP; build covers arrays and the backend's model."""
    started = time.perf_counter()
    grid = prepare_grid(part)
    program = formulate(grid, part.capacity, CostSettings(), ModelOptions()).program
    arrays_seconds = time.perf_counter() - started
    solution = solve_program(
        program, SolverSettings(time_limit_seconds=600, options=SOLVER_OPTIONS[algorithm], backend=backend)
    )
    if solution.status != "optimal":
        raise RuntimeError(f"store LP ended {solution.status}")
    return {
        "build_seconds": arrays_seconds + solution.build_seconds,
        "solve_seconds": solution.solve_seconds,
        "objective": float(program.objective @ solution.values),
        "pid": os.getpid(),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def run_one(n_item_stores: int, path: str, items_per_store: int, workers: int, algorithm: str) -> dict[str, float]:
    problem = synthetic_problem(n_item_stores, items_per_store)
    parts = split_by_location(problem)
    started = time.perf_counter()
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        stores = list(pool.map(solve_store, parts, [path] * len(parts), [algorithm] * len(parts)))
    wall = time.perf_counter() - started
    worker_peaks: dict[int, float] = {}
    for store in stores:
        worker_peaks[store["pid"]] = max(worker_peaks.get(store["pid"], 0.0), store["peak_rss_mb"])
    parent_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "n_items": n_item_stores,
        "periods": PERIODS,
        "path": path,
        "build_seconds": round(sum(store["build_seconds"] for store in stores) / workers, 3),
        "solve_seconds": round(sum(store["solve_seconds"] for store in stores) / workers, 3),
        "peak_rss_mb": round(parent_peak + sum(worker_peaks.values()), 1),
        "objective": sum(store["objective"] for store in stores),
        "wall_seconds": round(wall, 3),
        "stores": len(parts),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    parser.add_argument("--paths", nargs="+", choices=["pyomo", "highspy"], default=["highspy", "pyomo"])
    parser.add_argument("--items-per-store", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--algorithm", choices=list(SOLVER_OPTIONS), default="simplex")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--single", nargs=2, metavar=("N", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.single:
        print(
            json.dumps(run_one(int(args.single[0]), args.single[1], args.items_per_store, args.workers, args.algorithm))
        )
        return
    runs = []
    print(
        f"{'n_items':>8} {'path':>8} {'stores':>7} {'build_s':>9} {'solve_s':>9} {'wall_s':>8} {'peak_mb':>9} "
        f"{'objective':>16}"
    )
    for n_item_stores in args.sizes:
        for path in args.paths:
            command = [
                sys.executable,
                __file__,
                "--single",
                str(n_item_stores),
                path,
                "--items-per-store",
                str(args.items_per_store),
                "--workers",
                str(args.workers),
                "--algorithm",
                args.algorithm,
            ]
            output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
            run = json.loads(output.strip().splitlines()[-1])  # HiGHS prints a banner first
            runs.append(run)
            print(
                f"{run['n_items']:>8} {run['path']:>8} {run['stores']:>7} {run['build_seconds']:>9.2f} "
                f"{run['solve_seconds']:>9.2f} {run['wall_seconds']:>8.2f} {run['peak_rss_mb']:>9.0f} "
                f"{run['objective']:>16.2f}",
                flush=True,
            )
    _print_ratios(runs)
    if args.out:
        keys = ["n_items", "periods", "path", "build_seconds", "solve_seconds", "peak_rss_mb", "objective"]
        from replenish.io import write_json_atomically

        write_json_atomically(args.out, {"runs": [{key: run[key] for key in keys} for run in runs]})


def _print_ratios(runs: list[dict]) -> None:
    by_size: dict[int, dict[str, dict]] = {}
    for run in runs:
        by_size.setdefault(run["n_items"], {})[run["path"]] = run
    for size, paths in by_size.items():
        if {"pyomo", "highspy"} <= set(paths):
            pyomo, direct = paths["pyomo"], paths["highspy"]
            print(
                f"N={size}: pyomo/highspy wall {pyomo['wall_seconds'] / direct['wall_seconds']:.2f}x; "
                "objectives differ by "
                f"{abs(pyomo['objective'] - direct['objective']) / abs(direct['objective']):.1e} (relative)"
            )


if __name__ == "__main__":
    main()
