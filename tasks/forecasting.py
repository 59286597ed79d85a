"""Features, training and the rolling-origin backtest of the demand forecaster."""

from __future__ import annotations

import hashlib
import inspect
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.context import TaskRunContext

from models.backtest import BacktestResult, BacktestWindow, backtest_windows, run_backtest
from models.baselines import baseline_forecasters
from models.ensemble.estimator import EnsemblePredictor, ensemble_from_backtest
from models.evaluation import quantile_forecast_as_model_output
from models.features import build_feature_frame
from models.lstm.estimator import LSTMConfig, LSTMEstimator, LSTMPredictor, training_curves_logger
from models.lstm.module import LSTMQuantileNetwork
from models.lstm.train_process import TRAINING_SUMMARY
from replenish.model_config import lstm_config
from replenish.settings import Settings
from replenish.tracking import data_fingerprint

# Cached features and models live in Prefect's result storage (inside work_dir by default).
CACHE_LIFETIME = timedelta(days=30)


@dataclass(frozen=True)
class TrainedForecaster:
    predictor: LSTMPredictor
    fit_seconds: float
    training_windows: int  # per epoch
    epochs: int
    resumed_from_epoch: int | None

    @property
    def windows_per_second(self) -> float:
        return self.training_windows * self.epochs / self.fit_seconds if self.fit_seconds > 0 else float("nan")


def _code_version(*functions: object) -> str:
    """A change to the code that makes a result invalidates its cached copies too."""
    source = "".join(inspect.getsource(inspect.getmodule(function)) for function in functions)
    return hashlib.sha256(source.encode()).hexdigest()[:12]


def features_cache_key(context: TaskRunContext, parameters: dict[str, Any]) -> str:
    return f"features-{data_fingerprint(parameters['sales'])}-{_code_version(build_feature_frame)}"


def training_key(train: pd.DataFrame, settings: Settings) -> str:
    """Same training data and same model settings give the same model."""
    config = json.dumps(asdict(lstm_config(settings.forecast)), sort_keys=True)
    return "-".join(
        [
            "lstm",
            data_fingerprint(train),
            hashlib.sha256(config.encode()).hexdigest()[:12],
            _code_version(LSTMEstimator, LSTMQuantileNetwork),
        ]
    )


def training_cache_key(context: TaskRunContext, parameters: dict[str, Any]) -> str:
    # The MLflow run that receives the training curves does not change the model: left out.
    return training_key(parameters["train"], parameters["settings"])


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
def split_backtest(features: pd.DataFrame, settings: Settings) -> list[BacktestWindow]:
    """The rolling origins, oldest first; the last window is the holdout models are promoted on."""
    return backtest_windows(features, settings.forecast.horizon_days, settings.forecast.backtest_origins)


def train_in_own_process(
    train: pd.DataFrame, config: LSTMConfig, checkpoints: Path, resume: bool, tracking_uri: str, log_run_id: str | None
) -> TrainedForecaster:
    """Data-parallel (DDP) training: Lightning re-launches the running script per device, so it
    must be a script of its own, not this task's process."""
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        train.to_parquet(work / "features.parquet", index=False)
        (work / "config.json").write_text(json.dumps(asdict(config)))
        command = [
            sys.executable,
            "-m",
            "models.lstm.train_process",
            "--features",
            str(work / "features.parquet"),
            "--config",
            str(work / "config.json"),
            "--out",
            str(work / "predictor"),
            "--checkpoints",
            str(checkpoints),
            *(["--resume"] if resume else []),
        ]
        if log_run_id:
            command += ["--mlflow-tracking-uri", tracking_uri, "--mlflow-run-id", log_run_id]
        started = time.perf_counter()
        finished = subprocess.run(command, capture_output=True, text=True)
        if finished.returncode != 0:
            raise RuntimeError(f"training process failed ({finished.returncode}):\n{finished.stderr[-4000:]}")
        fit = json.loads((work / "predictor" / TRAINING_SUMMARY).read_text())
        return TrainedForecaster(
            LSTMPredictor.load(work / "predictor"),
            time.perf_counter() - started,
            fit["training_windows"],
            fit["epochs"],
            fit["resumed_from_epoch"],
        )


@task(name="train-forecaster", cache_key_fn=training_cache_key, persist_result=True, cache_expiration=CACHE_LIFETIME)
def train_forecaster(train: pd.DataFrame, settings: Settings, log_run_id: str | None) -> TrainedForecaster:
    """Fit the LSTM on ``train``. Checkpoints are kept per training key, so a fit interrupted by a crash
    or a cancelled flow run resumes from its last epoch when the same training is asked for again."""
    config = lstm_config(settings.forecast)
    checkpoints = settings.work_dir / "checkpoints" / training_key(train, settings)
    resume = settings.forecast.resume_training
    if config.strategy.startswith("ddp"):
        return train_in_own_process(train, config, checkpoints, resume, settings.mlflow_tracking_uri, log_run_id)
    started = time.perf_counter()
    logger = training_curves_logger(settings.mlflow_tracking_uri, log_run_id)
    estimator = LSTMEstimator(config, checkpoints, logger=logger, resume=resume)
    predictor = estimator.fit(train)
    return TrainedForecaster(
        predictor,
        time.perf_counter() - started,
        estimator.training_windows,
        estimator.epochs_run,
        estimator.resumed_from_epoch,
    )


@task(name="backtest-forecasters", cache_policy=NO_CACHE)
def backtest_forecasters(
    features: pd.DataFrame, windows: list[BacktestWindow], trained: list[TrainedForecaster], settings: Settings
) -> BacktestResult:
    """Score the LSTM fitted at each origin beside the baselines refitted at the same origins."""
    forecast = settings.forecast
    by_cutoff = {window.cutoff: fit.predictor for window, fit in zip(windows, trained, strict=False)}

    def lstm(history: pd.DataFrame, future: pd.DataFrame) -> pd.DataFrame:
        cutoff = history["date"].max()
        return quantile_forecast_as_model_output(by_cutoff[cutoff].predict(history, future), cutoff)

    forecasters = {"lstm": lstm, **baseline_forecasters(list(forecast.baselines), forecast.horizon_days, forecast.seed)}
    result = run_backtest(features, windows, forecasters)
    # The LSTMs were fitted by their own (cached) tasks; their fit time belongs to the model's figure.
    fit_seconds = {**result.fit_seconds, "lstm": result.fit_seconds["lstm"] + sum(fit.fit_seconds for fit in trained)}
    return replace(result, fit_seconds=fit_seconds)


@task(name="fit-ensemble", cache_policy=NO_CACHE)
def fit_ensemble(
    backtest: BacktestResult, final_fit: TrainedForecaster, settings: Settings
) -> EnsemblePredictor | None:
    """The combination of the final LSTM and the baselines, learned on the backtest's origins before the
    holdout (None where there is no such origin or fewer than two members)."""
    return ensemble_from_backtest(
        backtest.forecasts, backtest.windows, final_fit.predictor, settings.forecast.ensemble, settings.forecast.seed
    )
