"""Replay held-out days under three ordering policies and compare cost, fill rate and turns.

    python benchmarks/inventory_policy.py --data ../shared/data/m5_tiny --format m5 [--out FILE]

1. The last --test-days days of sales are held out.  The project's LSTM is trained on the days
   before (the last --history-days of them); opening stock, capacity and item costs come from
   `complete_tables` on those days with the settings' master defaults.
2. Every --review-days days each policy orders; orders land after the item's lead time; unmet
   demand is lost.  Policies:
   * lp_probabilistic: the LP re-planned at each review on the LSTM forecast made that day
     (scenario mode: two-stage SAA on paths sampled from its quantiles; or quantile mode);
   * base_stock_snaive: order up to a seasonal-naive forecast over lead time + review plus a
     normal safety stock for the planning service level;
   * perfect_foresight: the LP solved once on the actual demand of the whole test window.
3. Costs are holding, lost-sale penalty and ordering (see optimization.simulation).

Prints a table and writes {"policies": {name: {"total_cost", "fill_rate", "turns"}}} with --out.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

DAYS_PER_YEAR = 365
TABLE_METRICS = [
    "total_cost",
    "holding_cost",
    "shortage_cost",
    "ordering_cost",
    "fill_rate",
    "cycle_service_level",
    "stockout_days",
    "turns",
    "average_on_hand",
    "capacity_breach_store_days",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="data folder (or long-format file)")
    parser.add_argument("--format", choices=["m5", "long"], required=True)
    parser.add_argument("--out", type=Path, help="write the JSON result here")
    parser.add_argument("--test-days", type=int, default=56)
    parser.add_argument("--review-days", type=int, default=7)
    parser.add_argument("--history-days", type=int, default=540, help="training days before the test window")
    parser.add_argument("--lp-mode", choices=["scenario", "quantile"], default="scenario")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="settings override key=value")
    args = parser.parse_args()

    if not args.data.exists():
        print(f"skipped: data {args.data} not found (m5_tiny lives in ../shared/data/m5_tiny)")
        return
    os.environ.setdefault("MPLCONFIGDIR", tempfile.mkdtemp(prefix="mpl-"))
    started = time.perf_counter()
    result = run(args)
    result["seconds"] = round(time.perf_counter() - started, 1)
    print_table(result)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"policies": result["policies"]}, indent=2))


def run(args: argparse.Namespace) -> dict:
    from replenish.data.sources import read_tables
    from replenish.data.tables import MasterDefaults, RawTables, complete_tables
    from replenish.settings import load_settings

    settings = load_settings(
        overrides=[f"data.format={args.format}", f"data.path={args.data}", *args.overrides]
    )
    raw = read_tables(settings.data)
    defaults = MasterDefaults(**settings.data.master_defaults.model_dump())
    raw_dates = pd.to_datetime(raw.sales["date"])
    test_start = raw_dates.max().normalize() - pd.Timedelta(days=args.test_days - 1)
    before = RawTables(sales=raw.sales.loc[raw_dates < test_start], items=raw.items, capacity=raw.capacity)
    data = complete_tables(before, defaults)  # stock and capacity as of the test window's start
    sales = complete_tables(RawTables(sales=raw.sales, items=raw.items), defaults).sales

    keys = data.inventory[["item_id", "store_id"]].reset_index(drop=True)
    actual = _daily_matrix(sales, keys, test_start, args.test_days)
    history = _daily_matrix(sales, keys, test_start - pd.Timedelta(days=args.history_days), args.history_days)
    item_stores = keys.merge(data.items, on="item_id", how="left")
    print(
        f"{len(keys)} item-stores, test window {test_start.date()} + {args.test_days} days, "
        f"review every {args.review_days} days, LP in {args.lp_mode} mode",
        flush=True,
    )

    train_started = time.perf_counter()
    predictor = _train_lstm(data.sales, test_start, args.history_days, settings)
    print(f"LSTM trained in {time.perf_counter() - train_started:.0f}s", flush=True)

    system = _inventory_system(item_stores, data, settings, args.review_days, args.test_days)
    policies = {
        "lp_probabilistic": _lp_policy(args, settings, data, keys, item_stores, sales, test_start, predictor),
        "base_stock_snaive": _base_stock_policy(args, settings, item_stores, history),
        "perfect_foresight": _perfect_foresight_policy(args, settings, data, keys, actual, test_start),
    }
    from optimization.simulation import simulate

    metrics = {}
    for name, policy in policies.items():
        policy_started = time.perf_counter()
        metrics[name] = simulate(system, actual, policy).metrics
        metrics[name]["seconds"] = time.perf_counter() - policy_started
    return {
        "policies": {
            name: {key: values[key] for key in ("total_cost", "fill_rate", "turns")}
            for name, values in metrics.items()
        },
        "metrics": metrics,
    }


def _daily_matrix(sales: pd.DataFrame, keys: pd.DataFrame, start: pd.Timestamp, n_days: int) -> np.ndarray:
    """Units per item-store (rows in `keys` order) and day; days without a sales row count 0."""
    window = sales.loc[(sales["date"] >= start) & (sales["date"] < start + pd.Timedelta(days=n_days))]
    located = window.merge(keys.reset_index(names="row"), on=["item_id", "store_id"], how="inner")
    matrix = np.zeros((len(keys), n_days))
    matrix[located["row"].to_numpy(), (located["date"] - start).dt.days.to_numpy()] = located["units"].to_numpy(
        dtype=float
    )
    return matrix


def _train_lstm(sales: pd.DataFrame, test_start: pd.Timestamp, history_days: int, settings):  # noqa: ANN001, ANN202
    from models.features import build_feature_frame
    from models.lstm.estimator import LSTMEstimator
    from replenish.model_config import lstm_config

    config = lstm_config(settings.forecast)
    recent = sales.loc[sales["date"] >= test_start - pd.Timedelta(days=history_days)]
    checkpoints = Path(tempfile.mkdtemp(prefix="policy-bench-ckpt-"))
    return LSTMEstimator(config, checkpoints).fit(build_feature_frame(recent))


def _costs(settings, ending_stock_value_share: float):  # noqa: ANN001, ANN202
    from optimization.problem import CostSettings

    planning = settings.planning
    return CostSettings(
        shortage_cost_multiplier=planning.shortage_cost_multiplier,
        order_cost_per_unit=planning.order_cost_per_unit,
        fixed_order_cost=planning.fixed_order_cost,
        ending_stock_value_share=ending_stock_value_share,
    )


def _inventory_system(item_stores: pd.DataFrame, data, settings, review_days: int, n_days: int):  # noqa: ANN001, ANN202
    from optimization.simulation import InventorySystem

    planning = settings.planning
    unit_cost = item_stores["unit_cost"].to_numpy(dtype=float)
    stores = data.capacity["store_id"]
    return InventorySystem(
        unit_cost=unit_cost,
        holding_cost_per_day=unit_cost * item_stores["holding_cost_rate"].to_numpy(dtype=float) / DAYS_PER_YEAR,
        shortage_cost=unit_cost * planning.shortage_cost_multiplier,
        lead_time_days=item_stores["lead_time_days"].to_numpy(dtype=int),
        opening_on_hand=data.inventory["on_hand"].to_numpy(dtype=float),
        open_arrivals=np.zeros((len(item_stores), n_days)),
        review_days=review_days,
        fixed_order_cost=planning.fixed_order_cost,
        order_cost_per_unit=planning.order_cost_per_unit,
        unit_volume=item_stores["unit_volume"].to_numpy(dtype=float),
        store_index=pd.Index(stores).get_indexer(item_stores["store_id"]),
        store_capacity=data.capacity["capacity_volume"].to_numpy(dtype=float),
    )


def _solver(settings):  # noqa: ANN001, ANN202
    from optimization.problem import SolverSettings

    planning = settings.planning
    return SolverSettings(
        time_limit_seconds=planning.solver_time_limit_seconds,
        mip_rel_gap=planning.solver_mip_rel_gap,
        backend=planning.solver_backend,
    )


def _options(settings, review_days: int):  # noqa: ANN001, ANN202
    from optimization.problem import ModelOptions

    planning = settings.planning
    # Only store capacity couples item-stores here, so one model per store is exact.
    return ModelOptions(review_periods=review_days, decompose_by_location=True, workers=1,
                        integer_orders=planning.integer_orders, max_order_quantity=planning.max_order_quantity)


def _lp_policy(args, settings, data, keys, item_stores, sales, test_start, predictor):  # noqa: ANN001, ANN202
    from optimization.policies import lp_policy
    from optimization.uncertainty import planning_demand

    planning = settings.planning
    max_lead = int(item_stores["lead_time_days"].max())
    # Long enough for the order placed today and the next one to land and be used.
    n_periods = min(max_lead + 2 * args.review_days, settings.forecast.horizon_days)
    protection = pd.Series(
        (item_stores["lead_time_days"] + args.review_days).to_numpy(), index=pd.MultiIndex.from_frame(keys)
    )
    context_days = 2 * settings.forecast.context_length

    def forecast_from(day: pd.Timestamp, periods: int) -> pd.DataFrame:
        recent = sales.loc[(sales["date"] < day) & (sales["date"] >= day - pd.Timedelta(days=context_days))]
        forecast = predictor.predict(recent)
        forecast = forecast.assign(period=(forecast["date"] - day).dt.days).drop(columns="date")
        return forecast.loc[forecast["period"] < periods].merge(keys, on=["item_id", "store_id"])

    correlation = planning.scenario_period_correlation
    if args.lp_mode == "scenario" and not any(o.startswith("planning.scenario_period_correlation") for o in args.overrides):
        correlation = _calibrated_correlation(forecast_from, sales, test_start, settings, max_lead + args.review_days)

    def demand_model(state):  # noqa: ANN001, ANN202
        return planning_demand(
            forecast_from(test_start + pd.Timedelta(days=state.day), n_periods),
            args.lp_mode,
            demand_level=planning.demand_quantile,
            service_level=planning.service_level,
            protection_periods=protection,
            n_scenarios=planning.n_scenarios,
            seed=planning.scenario_seed + state.day,
            period_correlation=correlation,
        )

    return lp_policy(
        keys, data.items, data.capacity, test_start, n_periods, demand_model,
        _costs(settings, ending_stock_value_share=1.0), _solver(settings), _options(settings, args.review_days),
    )


def _calibrated_correlation(forecast_from, sales, test_start, settings, window_periods):  # noqa: ANN001, ANN202
    """Fit the scenarios' period correlation on the forecast horizon just before the test window."""
    from optimization.uncertainty import calibrate_period_correlation

    horizon = settings.forecast.horizon_days
    origin = test_start - pd.Timedelta(days=horizon)
    forecast = forecast_from(origin, horizon)
    dated = forecast.assign(date=origin + pd.to_timedelta(forecast["period"], unit="D"))
    actual = dated.merge(sales[["item_id", "store_id", "date", "units"]], on=["item_id", "store_id", "date"], how="left")
    correlation = calibrate_period_correlation(
        forecast, actual["units"].fillna(0.0).to_numpy(), window_periods, seed=settings.planning.scenario_seed
    )
    print(f"scenario period correlation calibrated on {origin.date()} + {horizon} days: {correlation}", flush=True)
    return correlation


def _base_stock_policy(args, settings, item_stores, history):  # noqa: ANN001, ANN202
    from optimization.policies import base_stock_policy, seasonal_naive_order_up_to

    return base_stock_policy(
        seasonal_naive_order_up_to(
            history,
            item_stores["lead_time_days"].to_numpy(dtype=int),
            args.review_days,
            settings.planning.service_level,
        )
    )


def _perfect_foresight_policy(args, settings, data, keys, actual, test_start):  # noqa: ANN001, ANN202
    from optimization.policies import fixed_schedule_policy
    from optimization.problem import PlanningProblem
    from optimization.replenishment_lp import solve_replenishment_plan

    n_days = actual.shape[1]
    rows, days = np.indices(actual.shape)
    demand = pd.DataFrame(
        {
            "item_id": keys["item_id"].to_numpy()[rows.ravel()],
            "store_id": keys["store_id"].to_numpy()[rows.ravel()],
            "period": days.ravel(),
            "demand": actual.ravel(),
        }
    )
    problem = PlanningProblem(
        start_date=test_start, n_periods=n_days, demand=demand, items=data.items,
        on_hand=data.inventory, open_orders=data.open_orders, capacity=data.capacity,
    )
    plan = solve_replenishment_plan(
        problem, _costs(settings, ending_stock_value_share=1.0), _solver(settings), _options(settings, args.review_days)
    )
    schedule = np.zeros(actual.shape)
    placed = plan.orders.merge(keys.reset_index(names="row"), on=["item_id", "store_id"])
    schedule[placed["row"].to_numpy(), (placed["order_date"] - test_start).dt.days.to_numpy()] = placed["quantity"]
    return fixed_schedule_policy(schedule)


def print_table(result: dict) -> None:
    metrics = result["metrics"]
    names = list(metrics)
    print(f"{'metric':<28}" + "".join(f"{name:>20}" for name in names))
    for metric in [*TABLE_METRICS, "seconds"]:
        print(f"{metric:<28}" + "".join(f"{metrics[name][metric]:>20.4f}" for name in names))
    base, lp, best = (metrics[name]["total_cost"] for name in ("base_stock_snaive", "lp_probabilistic", "perfect_foresight"))
    reduction = 1 - lp / base if base > 0 else float("nan")
    gap_closed = (base - lp) / (base - best) if base > best else float("nan")
    print(f"LP vs base stock: {reduction:.1%} lower total cost; {gap_closed:.1%} of the gap to perfect foresight closed")
    print(f"total run time {result['seconds']}s")


if __name__ == "__main__":
    main()
