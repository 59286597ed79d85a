"""Rolling-origin backtest of the LSTM against the baselines, by the shared backtest protocol.

    python benchmarks/forecast_accuracy.py --data ../shared/data/m5_tiny --format m5 [--out FILE]
    python benchmarks/forecast_accuracy.py --format synthetic      (the default generated data)
    python benchmarks/forecast_accuracy.py --data weekly.csv --format long --frequency W --horizon 13
    make forecast-benchmark            (the same, on ../shared/data/m5_tiny)

Protocol (../shared/BACKTEST_PROTOCOL.md): h = 28 days, origins T-84, T-56, T-28 (weekly and monthly
data: --frequency, or inferred, and h in their periods, 13 weeks or 6 months by default); every model is
refitted on all data up to each cutoff; calendar, prices, events and SNAP of the test window are
given, its units never; forecasts clipped at 0. Metrics from utilsforecast: RMSSE (one-step scale),
MASE (7-step scale), 80% and 95% coverage, scaled pinball at q0.1/0.5/0.9, and WRMSSE with
revenue weights over the 28 days up to each cutoff. The LSTM runs with the project's settings
(--set key=value changes them, e.g. --set forecast.lstm.max_epochs=4).

The ensemble is the product's (forecast.ensemble): at every origin it backtests its members on the
origins before it, learns its weights and interval scales there, and combines the members' forecasts.
Every model forecasts each cutoff once: the ensemble reuses the fits of the other origins. The
champion row is whichever of lstm and ensemble has the lower RMSSE on the last origin, as the training
flow chooses on its holdout.

Prints a table ("vs naive": how much lower a model's RMSSE is than seasonal naive's) and writes
{"dataset", "protocol", "models": {name: {rmsse, mase, wrmsse, pinball, coverage_80, coverage_95,
fit_seconds}}, "lstm_training": {...}} with --out.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

ALL_MODELS = ["lstm", "seasonal_naive", "auto_ets", "croston", "tsb", "lightgbm", "ensemble"]
CHAMPION_CANDIDATES = ("lstm", "ensemble")
COLUMNS = ["rmsse", "mase", "wrmsse", "pinball", "coverage_80", "coverage_95", "fit_seconds"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, help="data folder (M5 layout) or long-format file; none for synthetic")
    parser.add_argument(
        "--format",
        choices=["m5", "long", "synthetic"],
        required=True,
        help="synthetic: the project's default generated data (data.synthetic.*)",
    )
    parser.add_argument("--out", type=Path, help="write the JSON result here")
    parser.add_argument("--origins", type=int, default=3)
    parser.add_argument(
        "--horizon", type=int, default=None, help="periods forecast; default 28 days, 13 weeks or 6 months"
    )
    parser.add_argument(
        "--frequency", help="D, W, W-FRI, M, MS or ME (data.frequency); default: inferred from the dates"
    )
    parser.add_argument(
        "--drop-last-days",
        type=int,
        default=0,
        help="score on earlier windows, ending this many days before the data does: for choosing "
        "settings without touching the protocol's test windows",
    )
    parser.add_argument("--models", default=",".join(ALL_MODELS), help=f"comma-separated, from {ALL_MODELS}")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="settings override key=value")
    args = parser.parse_args()

    if args.format != "synthetic" and (args.data is None or not args.data.exists()):
        print(f"skipped: data {args.data} not found (m5_tiny lives in ../shared/data/m5_tiny)")
        return
    os.environ.setdefault("MPLCONFIGDIR", tempfile.mkdtemp(prefix="mpl-"))
    result = run(args)
    print_table(result)
    if args.out:
        from replenish.io import write_json_atomically

        write_json_atomically(args.out, result)
        print(f"wrote {args.out}")


def run(args: argparse.Namespace) -> dict:
    from models.backtest import backtest_windows, cached_by_cutoff, run_backtest
    from models.baselines import baseline_forecasters
    from models.ensemble.estimator import ensemble_forecaster
    from models.forecast_frame import series_codes
    from replenish.data.sources import read_tables
    from replenish.data.tables import complete_tables, parse_days, without_last_days
    from replenish.frequency import DAILY, infer_frequency
    from replenish.settings import load_settings

    source = [
        f"data.format={args.format}",
        *([f"data.path={args.data}"] if args.data else []),
        *([f"data.frequency={args.frequency}"] if args.frequency else []),
        *([f"forecast.horizon={args.horizon}"] if args.horizon else []),
    ]
    settings = load_settings(overrides=[*source, *args.overrides])
    raw = without_last_days(read_tables(settings.data), args.drop_last_days)
    series = series_codes(raw.sales)
    frequency = (
        settings.data.declared_frequency or infer_frequency(parse_days(raw.sales["date"]), series).frequency or DAILY
    )
    settings = settings.for_frequency(frequency)
    horizon = settings.forecast.horizon_in(frequency)
    sales = complete_tables(raw, settings.data.master_defaults, frequency=frequency).sales
    names = [name.strip() for name in args.models.split(",") if name.strip()]
    unknown = sorted(set(names) - set(ALL_MODELS))
    if unknown:
        raise SystemExit(f"unknown models {unknown}; choose from {ALL_MODELS}")
    print(
        f"{sales.groupby(['item_id', 'store_id']).ngroups} series, {len(sales):,} rows, "
        f"{args.origins} origins × {horizon} {frequency.name}s ({frequency.alias})",
        flush=True,
    )

    ensemble = settings.forecast.ensemble
    # The training flow's members at this size: AutoETS is left out above forecast.auto_ets_max_series.
    affordable = settings.forecast.baselines_for(int(series.nunique()))
    ensemble_members = [name for name in ensemble.members if name == "lstm" or name in affordable]
    needed = [
        name
        for name in dict.fromkeys([*names, *(ensemble_members if "ensemble" in names else [])])
        if name != "ensemble"
    ]
    baselines = baseline_forecasters([name for name in needed if name != "lstm"], horizon, settings.forecast.seed)
    training: list[dict] = []
    members = {
        name: cached_by_cutoff(forecaster)
        for name, forecaster in {
            **({"lstm": _lstm_forecaster(settings.forecast, training)} if "lstm" in needed else {}),
            **baselines,
        }.items()
    }
    forecasters = {name: members[name] for name in names if name in members}
    if "ensemble" in names:
        forecasters["ensemble"] = ensemble_forecaster(
            {name: members[name] for name in ensemble_members}, ensemble, horizon, settings.forecast.quantiles
        )
    started = time.perf_counter()
    backtest = run_backtest(sales, backtest_windows(sales, horizon, args.origins), forecasters)
    table = backtest.scores.table().assign(fit_seconds=pd.Series(backtest.fit_seconds))
    chosen = None
    if all(name in names for name in CHAMPION_CANDIDATES):
        holdout = backtest.holdout_scores().table()["rmsse"]
        chosen = min(CHAMPION_CANDIDATES, key=holdout.__getitem__)  # a tie keeps the LSTM, as the flow does
        table.loc["champion"] = table.loc[chosen]
    result = {
        "dataset": args.data.resolve().name if args.data else args.format,
        "protocol": {
            "horizon": horizon,
            "frequency": frequency.alias,
            "cutoffs": [f"{window.cutoff:%Y-%m-%d}" for window in backtest.windows],
            "series": int(sales.groupby(["item_id", "store_id"]).ngroups),
            "dropped_last_days": args.drop_last_days,
        },
        "models": {model: {column: _number(value) for column, value in row.items()} for model, row in table.iterrows()},
        "seconds": round(time.perf_counter() - started, 1),
    }
    if chosen is not None:
        result["champion"] = chosen
    if training:
        windows = sum(fit["windows_per_epoch"] * fit["epochs"] for fit in training)
        seconds = sum(fit["train_seconds"] for fit in training)
        result["lstm_training"] = {
            "per_origin": training,
            "windows_per_second": round(windows / seconds, 1),
            "train_seconds_total": round(seconds, 1),
            "threads": _threads(),
            "settings": {key: str(value) for key, value in settings.forecast.model_dump().items()},
        }
    return result


def _lstm_forecaster(settings, training: list[dict]):  # noqa: ANN001, ANN202 - ForecastSettings and Forecaster, imported lazily
    from models.features import build_feature_frame
    from models.lstm.estimator import LSTMEstimator

    def forecast(history: pd.DataFrame, future: pd.DataFrame) -> pd.DataFrame:
        cutoff = history["date"].max()
        estimator = LSTMEstimator(
            settings.lstm,
            settings.horizon,
            settings.quantiles,
            settings.seed,
            Path(tempfile.mkdtemp(prefix="forecast-bench-ckpt-")),
            show_progress=False,
        )
        fit_started = time.perf_counter()
        predictor = estimator.fit(build_feature_frame(history))
        seconds = time.perf_counter() - fit_started
        training.append(
            {
                "cutoff": f"{cutoff:%Y-%m-%d}",
                "train_seconds": round(seconds, 1),
                "training_windows": estimator.training_windows,
                "windows_per_epoch": estimator.windows_per_epoch,
                "epochs": estimator.epochs_run,
            }
        )
        print(
            f"  LSTM at {cutoff:%Y-%m-%d}: {estimator.epochs_run} epochs of {estimator.windows_per_epoch:,} "
            f"windows (of {estimator.training_windows:,}) in {seconds:.0f}s",
            flush=True,
        )
        return predictor.predict(history, future).assign(cutoff=cutoff)

    return forecast


def _threads() -> int:
    import torch

    return torch.get_num_threads()


def _number(value: object) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else round(float(value), 4)


def print_table(result: dict) -> None:
    models = result["models"]
    naive = (models.get("seasonal_naive") or {}).get("rmsse")
    print(
        f"\n{result['dataset']}: {result['protocol']['series']} series, "
        f"cutoffs {', '.join(result['protocol']['cutoffs'])}"
    )
    header = f"{'model':<16}" + "".join(f"{column:>13}" for column in COLUMNS) + f"{'vs naive':>10}"
    print(header)
    print("-" * len(header))
    for model, row in models.items():
        cells = "".join(
            f"{'–' if row[c] is None else format(row[c], '.3f' if c != 'fit_seconds' else '.1f'):>13}" for c in COLUMNS
        )
        relative = f"{1 - row['rmsse'] / naive:>+10.1%}" if naive and row["rmsse"] is not None else f"{'':>10}"
        print(f"{model:<16}{cells}{relative}")
    if "champion" in result:
        print(f"\nchampion: {result['champion']} (the lower RMSSE on the last origin)")
    print(f"whole backtest: {result['seconds']:.0f}s")
    if "lstm_training" in result:
        lstm = result["lstm_training"]
        print(
            f"\nLSTM training: {lstm['windows_per_second']:,.0f} windows/s, {lstm['train_seconds_total']:.0f}s "
            f"over {len(lstm['per_origin'])} origins on {lstm['threads']} threads"
        )


if __name__ == "__main__":
    main()
