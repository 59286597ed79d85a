"""Long-format sales files for the frequency benchmark: a weekly retail set and a monthly spare-parts set.

    python benchmarks/frequency_data.py [--weekly FILE] [--monthly FILE] [--series N] [--periods N] [--seed S]

--weekly: the synthetic retail generator summed to weeks ending Sunday (W-SUN), by default 3,000
series (300 items x 10 stores) x 150 weeks; columns item_id, store_id, date, units, price, promo,
dept_id, cat_id.
--monthly: intermittent spare-parts demand on month starts (MS), three months in four without
demand, by default 2,000 series x 51 months; columns item_id, store_id, date, units.
--series and --periods replace both sets' defaults. A file is CSV, or Parquet if it ends in .parquet.
"""

from __future__ import annotations

import argparse
import math
from datetime import date
from pathlib import Path

import pandas as pd

from replenish.data.synthetic import SyntheticConfig, generate_intermittent_monthly, generate_synthetic
from replenish.io import write_atomically

WEEKLY_SERIES = 3000
WEEKLY_PERIODS = 150
WEEKLY_STORES = 10
WEEKLY_COLUMNS = ["item_id", "store_id", "date", "units", "price", "promo", "dept_id", "cat_id"]
# A Monday: the simulated days then fill whole weeks ending Sunday, none cut off at the start.
WEEKLY_START = date(2024, 1, 1)
MONTHLY_SERIES = 2000
MONTHLY_PERIODS = 51


def weekly_sales(n_series: int, n_weeks: int, seed: int) -> pd.DataFrame:
    """About `n_series` series (whole items across up to 10 stores) of `n_weeks` weeks."""
    n_stores = min(WEEKLY_STORES, n_series)
    config = SyntheticConfig(
        n_items=math.ceil(n_series / n_stores),
        n_stores=n_stores,
        n_days=7 * n_weeks,
        start_date=WEEKLY_START,
        seed=seed,
        frequency="W",
    )
    return generate_synthetic(config).sales[WEEKLY_COLUMNS]


def write(path: Path, sales: pd.DataFrame) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, sales)
    n_series = len(sales.drop_duplicates(["item_id", "store_id"]))
    print(
        f"{path}: {len(sales):,} rows, {n_series:,} series x {sales['date'].nunique()} periods "
        f"({sales['date'].min():%Y-%m-%d} .. {sales['date'].max():%Y-%m-%d}), "
        f"zero share {(sales['units'] == 0).mean():.3f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weekly", type=Path, help="weekly retail sales file to write")
    parser.add_argument("--monthly", type=Path, help="monthly intermittent sales file to write")
    parser.add_argument("--series", type=int, help=f"series per set (default {WEEKLY_SERIES}, {MONTHLY_SERIES})")
    parser.add_argument("--periods", type=int, help=f"periods per series (default {WEEKLY_PERIODS}, {MONTHLY_PERIODS})")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    if args.weekly is None and args.monthly is None:
        parser.error("give --weekly FILE, --monthly FILE or both")
    for name in ("series", "periods"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")

    if args.weekly is not None:
        write(args.weekly, weekly_sales(args.series or WEEKLY_SERIES, args.periods or WEEKLY_PERIODS, args.seed))
    if args.monthly is not None:
        monthly = generate_intermittent_monthly(
            n_series=args.series or MONTHLY_SERIES, n_months=args.periods or MONTHLY_PERIODS, seed=args.seed
        )
        write(args.monthly, monthly)


if __name__ == "__main__":
    main()
