"""Features, training and the rolling-origin backtest of the demand forecaster."""

from __future__ import annotations

import hashlib
import inspect
import json
from dataclasses import asdict, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pandas as pd
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.context import TaskRunContext

from models.backtest import BacktestResult, BacktestWindow, backtest_windows, run_backtest
from models.baselines import baseline_forecasters
from models.ensemble.estimator import EnsemblePredictor, ensemble_from_backtest
from models.features import build_feature_frame
from models.forecast_frame import series_codes
from models.lstm.estimator import LSTMEstimator
from models.lstm.module import LSTMQuantileNetwork
from models.lstm.train_process import LSTMTraining, TrainedForecaster, train_lstm
from replenish.frequency import Frequency, frequency_of
from replenish.settings import ForecastSettings
from replenish.tracking import RunTracker, data_fingerprint

# Cached features and models live in Prefect's result storage (inside work_dir by default).
CACHE_LIFETIME = timedelta(days=30)


def _code_version(*functions: object) -> str:
    """A change to the code that makes a result invalidates its cached copies too."""
    source = "".join(inspect.getsource(inspect.getmodule(function)) for function in functions)
    return hashlib.sha256(source.encode()).hexdigest()[:12]


def features_cache_key(context: TaskRunContext, parameters: dict[str, Any]) -> str:
    return f"features-{data_fingerprint(parameters['sales'])}-{_code_version(build_feature_frame)}"


def lstm_fit_settings(forecast: ForecastSettings, frequency: Frequency) -> dict[str, Any]:
    """What decides the fitted LSTM besides its data: its configuration, and the forecast's horizon,
    quantile levels and seed."""
    return {
        "config": asdict(forecast.lstm),
        "horizon": forecast.horizon_in(frequency),
        "quantiles": list(forecast.quantiles),
        "seed": forecast.seed,
    }


def training_key(train: pd.DataFrame, forecast: ForecastSettings) -> str:
    """Same training data and same model settings give the same model."""
    config = json.dumps(lstm_fit_settings(forecast, frequency_of(train["date"])), sort_keys=True)
    return "-".join(
        [
            "lstm",
            data_fingerprint(train),
            hashlib.sha256(config.encode()).hexdigest()[:12],
            _code_version(LSTMEstimator, LSTMQuantileNetwork),
        ]
    )


def training_cache_key(context: TaskRunContext, parameters: dict[str, Any]) -> str:
    # Where the checkpoints go, and the MLflow run that receives the training curves, do not change the
    # model: left out.
    return training_key(parameters["train"], parameters["forecast"])


@task(name="build-features", cache_key_fn=features_cache_key, persist_result=True, cache_expiration=CACHE_LIFETIME)
def build_features(sales: pd.DataFrame) -> pd.DataFrame:
    return build_feature_frame(sales)


@task(name="split-by-store", cache_policy=NO_CACHE)
def split_sales_by_store(sales: pd.DataFrame) -> list[pd.DataFrame]:
    """Features are per series, so stores can be built apart (and on different workers)."""
    return [part.reset_index(drop=True) for _, part in sales.groupby("store_id", sort=True)]


@task(name="combine-features", cache_policy=NO_CACHE)
def combine_features(parts: list[pd.DataFrame]) -> pd.DataFrame:
    return pd.concat(parts, ignore_index=True)


@task(name="split-backtest", cache_policy=NO_CACHE)
def split_backtest(features: pd.DataFrame, forecast: ForecastSettings) -> list[BacktestWindow]:
    """The rolling origins, oldest first; the last window is the holdout models are promoted on."""
    horizon = forecast.horizon_in(frequency_of(features["date"]))
    return backtest_windows(features, horizon, forecast.backtest_origins)


@task(name="train-forecaster", cache_key_fn=training_cache_key, persist_result=True, cache_expiration=CACHE_LIFETIME)
def train_forecaster(
    train: pd.DataFrame, forecast: ForecastSettings, work_dir: Path, tracker: RunTracker | None
) -> TrainedForecaster:
    """Fit the LSTM on ``train``, its training curves logged to ``tracker``'s run if given. Checkpoints are
    kept per training key under work_dir, so a fit interrupted by a crash or a cancelled flow run resumes
    from its last epoch when the same training is asked for again."""
    fit = LSTMTraining(
        forecast.lstm,
        forecast.horizon_in(frequency_of(train["date"])),
        forecast.quantiles,
        forecast.seed,
        checkpoints=work_dir / "checkpoints" / training_key(train, forecast),
        resume=forecast.resume_training,
        tracking_uri=tracker.client.tracking_uri if tracker is not None else "",
        log_run_id=tracker.run_id if tracker is not None else None,
    )
    return train_lstm(train, fit)


@task(name="backtest-forecasters", cache_policy=NO_CACHE)
def backtest_forecasters(
    features: pd.DataFrame, windows: list[BacktestWindow], trained: list[TrainedForecaster], forecast: ForecastSettings
) -> BacktestResult:
    """Score the LSTM fitted at each origin beside the baselines refitted at the same origins."""
    by_cutoff = {window.cutoff: fit.predictor for window, fit in zip(windows, trained, strict=False)}

    def lstm(history: pd.DataFrame, future: pd.DataFrame) -> pd.DataFrame:
        cutoff = history["date"].max()
        return by_cutoff[cutoff].predict(history, future).assign(cutoff=cutoff)

    horizon = forecast.horizon_in(frequency_of(features["date"]))
    n_series = int(series_codes(features).nunique())
    baselines = forecast.baselines_for(n_series)
    if left_out := sorted(set(forecast.baselines) - set(baselines)):
        get_run_logger().info(
            "%s left out of the backtest at %s series (forecast.auto_ets_max_series %s)",
            ", ".join(left_out),
            f"{n_series:,}",
            forecast.auto_ets_max_series,
        )
    forecasters = {"lstm": lstm, **baseline_forecasters(list(baselines), horizon, forecast.seed)}
    result = run_backtest(features, windows, forecasters)
    # The LSTMs were fitted by their own (cached) tasks; their fit time belongs to the model's figure.
    fit_seconds = {**result.fit_seconds, "lstm": result.fit_seconds["lstm"] + sum(fit.fit_seconds for fit in trained)}
    return replace(result, fit_seconds=fit_seconds)


@task(name="fit-ensemble", cache_policy=NO_CACHE)
def fit_ensemble(
    backtest: BacktestResult, final_fit: TrainedForecaster, forecast: ForecastSettings
) -> EnsemblePredictor | None:
    """The combination of the final LSTM and the baselines, learned on the backtest's origins before the
    holdout (None where there is no such origin or fewer than two members)."""
    return ensemble_from_backtest(
        backtest.forecasts, backtest.windows, final_fit.predictor, forecast.ensemble, forecast.seed
    )
