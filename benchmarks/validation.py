"""Seconds and peak memory to validate long sales tables of 1M and 10M rows against the data contract.

    python benchmarks/validation.py [--rows 1000000 10000000] [--out FILE]

Each size runs in its own process, so its peak RSS is its own. The table is made in memory
(365 days per series, the shape of a year's daily extract) and is not timed; the time is
`validate_tables`, every rule of the sales suite including the gap and drift checks.
Writes ``{"runs": [{"rows": n, "seconds": s, "peak_rss_mb": m}]}``.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

DAYS_PER_SERIES = 365


def sales_table(rows: int):  # noqa: ANN201 - pandas is imported in the worker only
    import numpy as np
    import pandas as pd

    n_series = -(-rows // DAYS_PER_SERIES)
    rng = np.random.default_rng(0)
    series = np.repeat(np.arange(n_series), DAYS_PER_SERIES)[:rows]
    day = np.tile(np.arange(DAYS_PER_SERIES), n_series)[:rows]
    return pd.DataFrame(
        {
            "item_id": pd.Series(series // 10).map("ITEM_{:06d}".format),
            "store_id": pd.Series(series % 10).map("STORE_{:02d}".format),
            "date": pd.Timestamp("2024-01-01") + pd.to_timedelta(day, unit="D"),
            "units": rng.poisson(3.0, rows),
            "price": rng.uniform(1, 10, rows).round(2),
            "promo": rng.integers(0, 2, rows),
        }
    )


def measure(rows: int) -> dict[str, float]:
    import os

    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    from expectations.validation import validate_tables
    from replenish.data.tables import RawTables

    raw = RawTables(sales=sales_table(rows), sources={"sales": f"benchmark({rows} rows)"})
    started = time.perf_counter()
    report = validate_tables(raw)
    seconds = time.perf_counter() - started
    if not report.success:
        raise SystemExit(f"benchmark data failed validation: {report.failures}")
    return {
        "rows": rows,
        "seconds": round(seconds, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--out", type=Path)
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(measure(args.worker)))
        return

    runs = []
    print(f"{'rows':>12}{'seconds':>10}{'peak RSS MB':>14}")
    for rows in args.rows:
        worker = subprocess.run([sys.executable, __file__, "--worker", str(rows)], capture_output=True, text=True)
        if worker.returncode != 0:
            raise SystemExit(worker.stderr[-3000:])
        run = json.loads(worker.stdout.strip().splitlines()[-1])
        runs.append(run)
        print(f"{run['rows']:>12,}{run['seconds']:>10.1f}{run['peak_rss_mb']:>14,.0f}")
    if args.out:
        from replenish.io import write_json_atomically

        write_json_atomically(args.out, {"runs": runs})


if __name__ == "__main__":
    main()
