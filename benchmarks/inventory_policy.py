"""The product's policy simulation (`replenish simulate`) on a data set, as a table and JSON.

    python benchmarks/inventory_policy.py --data ../shared/data/m5_tiny --format m5 [--set key=value ...] [--out FILE]
    python benchmarks/inventory_policy.py --format synthetic [--out FILE]     (the default synthetic data)
    ... --drop-last-days 56     an earlier window, for choosing settings (the window it reports is the last)

It calls replenish.simulate with the product's settings: the defaults, and whatever --set gives
(data master defaults, for instance; planning flags too, but then it no longer measures what
`replenish plan` does by default).  The last simulate.weeks weeks are replayed under the default
policy, base stock on seasonal naive and perfect foresight (see replenish/simulate.py).

Writes {"policies": {name: {"total_cost", "fill_rate", "turns", "case_pack_violations"}},
"milp_gap": the repair's cost over the MILP's, less one (on "milp_gap_stores"), "cost_reduction", "gap_closed",
"metrics": every metric per policy, "seconds"} with --out.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SUMMARY_METRICS = ["total_cost", "fill_rate", "turns", "case_pack_violations"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, help="data folder (or long-format file); none for synthetic")
    parser.add_argument("--format", choices=["m5", "long", "synthetic"], required=True)
    parser.add_argument("--out", type=Path, help="write the JSON result here")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="settings override key=value")
    parser.add_argument(
        "--drop-last-days",
        type=int,
        default=0,
        help="replay an earlier window, ending this many days before the data does: for choosing "
        "settings without touching the window the benchmark reports",
    )
    args = parser.parse_args()

    if args.format != "synthetic" and (args.data is None or not args.data.exists()):
        print(f"skipped: data {args.data} not found (m5_tiny lives in ../shared/data/m5_tiny)")
        return
    os.environ.setdefault("MPLCONFIGDIR", tempfile.mkdtemp(prefix="mpl-"))
    from replenish.data.sources import read_tables
    from replenish.data.tables import without_last_days
    from replenish.settings import load_settings
    from replenish.simulate import POLICIES, simulate_policies

    data = [f"data.path={args.data}"] if args.data is not None else []
    settings = load_settings(overrides=[f"data.format={args.format}", *data, *args.overrides])
    started = time.perf_counter()
    simulation = simulate_policies(without_last_days(read_tables(settings.data), args.drop_last_days), settings)
    seconds = time.perf_counter() - started
    metrics = simulation.metrics
    result = {
        "policies": {
            name: {metric: float(metrics.loc[name, metric]) for metric in SUMMARY_METRICS} for name in POLICIES
        },
        "milp_gap": simulation.milp_gap,
        "milp_gap_stores": list(simulation.milp_gap_stores),
        "cost_reduction": simulation.cost_reduction(),
        "gap_closed": simulation.gap_closed(),
        "metrics": {name: {metric: float(value) for metric, value in row.items()} for name, row in metrics.iterrows()},
        "window": {
            "start": f"{simulation.start:%Y-%m-%d}",
            "days": simulation.days,
            "item_stores": simulation.item_stores,
            "dropped_last_days": args.drop_last_days,
        },
        "seconds": {
            **{name: round(value, 1) for name, value in simulation.seconds.items()},
            "total": round(seconds, 1),
        },
    }
    print_table(simulation, seconds)
    if args.out:
        from replenish.io import write_json_atomically

        write_json_atomically(args.out, result)


def print_table(simulation, seconds: float) -> None:  # noqa: ANN001 - a replenish.simulate.PolicySimulation
    metrics = simulation.metrics
    print(f"{simulation.item_stores} item-stores, {simulation.days} days replayed from {simulation.start:%Y-%m-%d}")
    print(f"{'metric':<32}" + "".join(f"{name:>20}" for name in metrics.index))
    for metric in metrics.columns:
        print(f"{metric:<32}" + "".join(f"{value:>20.4f}" for value in metrics[metric]))
    print(f"{'seconds':<32}" + "".join(f"{simulation.seconds[name]:>20.1f}" for name in metrics.index))
    print(
        "seconds of the other way to whole orders on the gap's stores: "
        + ", ".join(
            f"{value:.0f}" for name, value in simulation.seconds.items() if name not in (*metrics.index, "forecaster")
        )
    )
    print(
        f"default vs base stock: {simulation.cost_reduction():.1%} lower total cost; "
        f"{simulation.gap_closed():.1%} of the gap to perfect foresight closed; "
        f"repair vs MILP: {simulation.milp_gap:+.2%} total cost on {', '.join(simulation.milp_gap_stores)}"
    )
    print(f"total run time {seconds:.0f}s (forecaster fit {simulation.seconds['forecaster']:.0f}s)")


if __name__ == "__main__":
    main()
