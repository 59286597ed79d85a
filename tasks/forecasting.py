"""Features, training and holdout evaluation of the demand forecaster."""

from __future__ import annotations

import hashlib
import inspect
import json
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.context import TaskRunContext
from pytorch_lightning.loggers import MLFlowLogger

from models.evaluation import HoldoutEvaluation, evaluate_holdout, seasonal_naive_forecast
from models.features import build_feature_frame
from models.lstm.estimator import LSTMConfig, LSTMEstimator, LSTMPredictor
from models.lstm.module import LSTMQuantileNetwork
from replenish.settings import Settings
from replenish.tracking import data_fingerprint

# Cached features and models live in Prefect's result storage (inside work_dir by default).
CACHE_LIFETIME = timedelta(days=30)


@dataclass(frozen=True)
class HoldoutSplit:
    train: pd.DataFrame  # features up to and including the cutoff
    actual: pd.DataFrame  # the following ``horizon`` days, for scoring only
    cutoff: pd.Timestamp


@dataclass(frozen=True)
class HoldoutResult:
    evaluation: HoldoutEvaluation
    lstm_forecast: pd.DataFrame
    naive_forecast: pd.DataFrame


def lstm_config(settings: Settings) -> LSTMConfig:
    forecast = settings.forecast
    return LSTMConfig(
        horizon=forecast.horizon_days,
        context_length=forecast.context_length,
        quantiles=tuple(forecast.quantiles),
        hidden_size=forecast.hidden_size,
        num_layers=forecast.num_layers,
        embedding_dim=forecast.embedding_dim,
        dropout=forecast.dropout,
        learning_rate=forecast.learning_rate,
        batch_size=forecast.batch_size,
        max_epochs=forecast.max_epochs,
        window_stride_days=forecast.window_stride_days,
        early_stopping_patience=forecast.early_stopping_patience,
        seed=forecast.seed,
        accelerator=forecast.accelerator,
        devices=forecast.devices,
        strategy=forecast.strategy,
    )


def _code_version(*functions: object) -> str:
    """A change to the code that makes a result invalidates its cached copies too."""
    source = "".join(inspect.getsource(inspect.getmodule(function)) for function in functions)
    return hashlib.sha256(source.encode()).hexdigest()[:12]


def features_cache_key(context: TaskRunContext, parameters: dict[str, Any]) -> str:
    return f"features-{data_fingerprint(parameters['sales'])}-{_code_version(build_feature_frame)}"


def training_cache_key(context: TaskRunContext, parameters: dict[str, Any]) -> str:
    """Same training data and same model settings give the same model: the MLflow run id is left out."""
    config = json.dumps(asdict(lstm_config(parameters["settings"])), sort_keys=True)
    return "-".join([
        "lstm",
        data_fingerprint(parameters["train"]),
        hashlib.sha256(config.encode()).hexdigest()[:12],
        _code_version(LSTMEstimator, LSTMQuantileNetwork),
    ])


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


@task(name="split-holdout", cache_policy=NO_CACHE)
def split_holdout(features: pd.DataFrame, horizon_days: int) -> HoldoutSplit:
    cutoff = features["date"].max() - pd.Timedelta(days=horizon_days)
    return HoldoutSplit(
        train=features[features["date"] <= cutoff].reset_index(drop=True),
        actual=features[features["date"] > cutoff].reset_index(drop=True),
        cutoff=cutoff,
    )


def train_in_own_process(train: pd.DataFrame, config: LSTMConfig, checkpoints: Path,
                         tracking_uri: str, run_id: str) -> LSTMPredictor:
    """Data-parallel (DDP) training: Lightning re-launches the running script per device, so it
    must be a script of its own, not this task's process."""
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        train.to_parquet(work / "features.parquet", index=False)
        (work / "config.json").write_text(json.dumps(asdict(config)))
        command = [sys.executable, "-m", "models.lstm.train_process", "--features", str(work / "features.parquet"),
                   "--config", str(work / "config.json"), "--out", str(work / "predictor"),
                   "--checkpoints", str(checkpoints), "--mlflow-tracking-uri", tracking_uri, "--mlflow-run-id", run_id]
        finished = subprocess.run(command, capture_output=True, text=True)
        if finished.returncode != 0:
            raise RuntimeError(f"training process failed ({finished.returncode}):\n{finished.stderr[-4000:]}")
        return LSTMPredictor.load(work / "predictor")


@task(name="train-forecaster", cache_key_fn=training_cache_key, persist_result=True, cache_expiration=CACHE_LIFETIME)
def train_forecaster(train: pd.DataFrame, settings: Settings, run_id: str) -> LSTMPredictor:
    config = lstm_config(settings)
    checkpoints = settings.work_dir / "checkpoints" / run_id
    if config.strategy.startswith("ddp"):
        return train_in_own_process(train, config, checkpoints, settings.mlflow_tracking_uri, run_id)
    logger = MLFlowLogger(tracking_uri=settings.mlflow_tracking_uri, run_id=run_id)
    return LSTMEstimator(config, checkpoints, logger=logger).fit(train)


@task(name="evaluate-forecaster", cache_policy=NO_CACHE)
def evaluate_forecaster(predictor: LSTMPredictor, split: HoldoutSplit) -> HoldoutResult:
    lstm_forecast = predictor.predict(split.train)
    naive_forecast = seasonal_naive_forecast(split.train, predictor.config.horizon)
    evaluation = evaluate_holdout(split.train, split.actual, lstm_forecast, naive_forecast)
    return HoldoutResult(evaluation, lstm_forecast, naive_forecast)
