"""`replenish run` at growing numbers of series: seconds and peak memory per stage, and how each grows.

    python benchmarks/scale.py --series 1000 3000 10000 30000 --days 730 [--set key=value ...] --out FILE

Each size is the synthetic generator's data (10 stores, series / 10 items, ``--days`` days), run with the
product's default settings by `benchmarks/pipeline.py` in a process of its own, so that one size's memory
does not carry into the next. A stage's growth exponent is the slope of log seconds against log series
between the sizes from ``--from-series`` (3,000) up: 1 is linear, and the goal is at most 1.15.
Writes ``{"runs": [{"series", "total_seconds", "peak_rss_mb", "stages": {stage: seconds}, ...}],
"growth_exponents": {stage: slope}}``.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
from pathlib import Path

PIPELINE = Path(__file__).with_name("pipeline.py")
STORES = 10  # as M5: 30,490 series are 3,049 items in 10 stores


def growth_exponents(runs: list[dict], from_series: int) -> dict[str, float]:
    """Least-squares slope of log(seconds) on log(series) per stage, over the runs of at least
    ``from_series`` series in which the stage took any time; stages seen at fewer than two sizes are left out."""
    measured = [run for run in runs if run["series"] >= from_series]
    stages = {stage for run in measured for stage in run["stages"]} | {"total"}
    exponents = {}
    for stage in sorted(stages):
        points = [
            (math.log(run["series"]), math.log(seconds))
            for run in measured
            if (seconds := run["total_seconds"] if stage == "total" else run["stages"].get(stage, 0.0)) > 0
        ]
        if len({x for x, _ in points}) < 2:
            continue
        mean_x = sum(x for x, _ in points) / len(points)
        mean_y = sum(y for _, y in points) / len(points)
        slope = sum((x - mean_x) * (y - mean_y) for x, y in points) / sum((x - mean_x) ** 2 for x, _ in points)
        exponents[stage] = round(slope, 3)
    return exponents


def run_size(series: int, days: int, overrides: list[str], timeout_seconds: float) -> dict:
    if series % STORES:
        raise SystemExit(f"--series {series}: a multiple of {STORES} (items in {STORES} stores)")
    with tempfile.TemporaryDirectory(prefix="replenish-scale-") as folder:
        out = Path(folder) / "pipeline.json"
        command = [
            sys.executable,
            str(PIPELINE),
            "--out",
            str(out),
            "--set",
            f"data.synthetic.n_items={series // STORES}",
            "--set",
            f"data.synthetic.n_stores={STORES}",
            "--set",
            f"data.synthetic.n_days={days}",
            *(argument for override in overrides for argument in ("--set", override)),
        ]
        print(f"{series:,} series x {days} days ...", flush=True)
        subprocess.run(command, check=True, timeout=timeout_seconds)
        result = json.loads(out.read_text())
    return {
        "series": series,
        "days": days,
        "total_seconds": result["total_seconds"],
        "peak_rss_mb": result["peak_rss_mb"],
        "stages": {stage: timing["seconds"] for stage, timing in result["stages"].items()},
        "stage_peak_rss_mb": {stage: timing["peak_rss_mb"] for stage, timing in result["stages"].items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--series", type=int, nargs="+", default=[1000, 3000, 10000, 30000])
    parser.add_argument("--days", type=int, default=730)
    parser.add_argument("--from-series", type=int, default=3000, help="growth exponents from this size up")
    parser.add_argument("--timeout-hours", type=float, default=4.0, help="per size")
    parser.add_argument("--out", type=Path, help="write the JSON result here")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="settings override key=value")
    args = parser.parse_args()

    runs = [run_size(n, args.days, args.overrides, args.timeout_hours * 3600) for n in sorted(args.series)]
    result = {
        "runs": runs,
        "growth_exponents": growth_exponents(runs, args.from_series),
        "days": args.days,
        "overrides": args.overrides,
    }

    stages = list(dict.fromkeys(stage for run in runs for stage in run["stages"]))
    header = f"{'stage':<28}" + "".join(f"{run['series']:>12,}" for run in runs) + f"{'exponent':>10}"
    print(header)
    for stage in [*stages, "total"]:
        cells = "".join(
            f"{run['total_seconds'] if stage == 'total' else run['stages'].get(stage, 0.0):>12.1f}" for run in runs
        )
        exponent = result["growth_exponents"].get(stage)
        print(f"{stage:<28}{cells}{'' if exponent is None else f'{exponent:>10.2f}'}")
    print(f"{'peak RSS MB':<28}" + "".join(f"{run['peak_rss_mb']:>12,.0f}" for run in runs))
    if args.out:
        from replenish.io import write_json_atomically

        write_json_atomically(args.out, result)


if __name__ == "__main__":
    main()
