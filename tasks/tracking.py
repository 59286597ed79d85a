"""Record the run in MLflow and manage the model registry."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from models.backtest import BacktestResult, BacktestWindow
from models.evaluation import quantile_forecast_as_model_output, score_forecasts
from models.lstm.estimator import LSTMPredictor
from models.lstm.pyfunc import as_model_input
from replenish import tracking
from replenish.data.tables import RawTables
from replenish.plots import fan_chart_figure
from replenish.settings import Settings
from tasks.forecasting import TrainedForecaster

MLFLOW_RETRIES = {"retries": 3, "retry_delay_seconds": [1, 5, 15]}


@dataclass(frozen=True)
class RegistrationResult:
    model_name: str
    version: str
    candidate_rmsse: float
    champion_rmsse: float | None
    promoted: bool
    reason: str


@dataclass(frozen=True)
class ChampionComparison:
    """Candidate and current champion scored alike: the same holdout, the same inputs."""

    candidate_rmsse: float
    champion_rmsse: float | None


@task(name="start-tracking-run", cache_policy=NO_CACHE, **MLFLOW_RETRIES)
def start_tracking_run(settings: Settings, raw: RawTables, job: str) -> str:
    dataset = settings.data.path.stem if settings.data.path is not None else "synthetic"
    run_name = f"{job}-{dataset}-{pd.Timestamp.now():%Y%m%d-%H%M%S}"
    tags = {
        "job": job,
        "dataset": dataset,
        "prefect_flow_run_name": flow_run.get_name() or "local",
        "data_source": raw.sources.get("sales", "unknown"),
        "data_format": settings.data.format,
        "data_hash": tracking.data_fingerprint(raw.sales),
        "git_commit": tracking.git_commit(),
        "prefect_flow_run_id": str(flow_run.get_id() or "none"),
    }
    return tracking.start_run(settings, run_name, tags)


@task(name="log-backtest", cache_policy=NO_CACHE, **MLFLOW_RETRIES)
def log_backtest(settings: Settings, run_id: str, backtest: BacktestResult, final_fit: TrainedForecaster) -> dict[str, float]:
    """The training run is the backtest's parent: it gets every model's metrics side by side, the
    metrics table and fan charts; each model gets a child run with the same metric names."""
    holdout = backtest.holdout_scores()
    metrics = {
        **backtest.scores.metrics,
        **{f"holdout_{name}": value for name, value in holdout.metrics.items()},
        **{f"{model}_fit_seconds": seconds for model, seconds in backtest.fit_seconds.items()},
        "lstm_training_windows_per_second": final_fit.windows_per_second,
        "lstm_epochs": float(final_fit.epochs),
    }
    tracking.log_metrics(settings, run_id, metrics)
    table = backtest.scores.table().assign(fit_seconds=pd.Series(backtest.fit_seconds))
    tracking.log_table(settings, run_id, table.rename_axis("model").reset_index(), "backtest/metrics.csv")
    tracking.log_table(settings, run_id, backtest.scores.per_series, "backtest/metrics_per_series.csv")
    last = backtest.windows[-1]
    at_last = {name: frame[frame["cutoff"] == last.cutoff] for name, frame in backtest.forecasts.items()}
    figure = fan_chart_figure(last.history, last.actual, at_last["lstm"], {"seasonal naive": at_last["seasonal_naive"]},
                              title=f"LSTM on the holdout after {last.cutoff:%Y-%m-%d}")
    tracking.log_figure(settings, run_id, figure, "plots/backtest_fan_chart.png")

    cutoffs = ", ".join(f"{window.cutoff:%Y-%m-%d}" for window in backtest.windows)
    table_by_model = backtest.scores.table()
    for model in backtest.forecasts:
        child = tracking.start_child_run(settings, run_id, f"backtest-{model}",
                                         {"job": "backtest", "model": model, "backtest_cutoffs": cutoffs})
        scores = {metric: value for metric, value in table_by_model.loc[model].items() if pd.notna(value)}
        tracking.log_metrics(settings, child, {**scores, "fit_seconds": backtest.fit_seconds[model]})
        tracking.end_run(settings, child, "FINISHED")
    return metrics


@task(name="compare-with-champion", cache_policy=NO_CACHE, **MLFLOW_RETRIES)
def compare_with_champion(settings: Settings, holdout: BacktestWindow, candidate: LSTMPredictor) -> ChampionComparison:
    """Both models forecast the holdout from the same history through the same model input, the one the
    planning flow gives the champion, so the comparison cannot favour either."""
    model_input = as_model_input(holdout.history)

    def holdout_rmsse(forecast: pd.DataFrame) -> float:
        scored = score_forecasts({"model": quantile_forecast_as_model_output(forecast, holdout.cutoff)},
                                 holdout.actual, holdout.history)
        return scored.metrics["model_rmsse"]

    candidate_rmsse = holdout_rmsse(candidate.predict(model_input))
    if tracking.champion_version(settings) is None:
        return ChampionComparison(candidate_rmsse, None)
    return ChampionComparison(candidate_rmsse, holdout_rmsse(tracking.load_champion(settings).predict(model_input)))


@task(name="register-forecaster", cache_policy=NO_CACHE)
def register_forecaster(settings: Settings, run_id: str, predictor: LSTMPredictor, holdout: BacktestWindow,
                        comparison: ChampionComparison, backtest_metrics: dict[str, float]) -> RegistrationResult:
    example_series = holdout.history.groupby(["item_id", "store_id"]).ngroup() == 0
    version = tracking.log_forecaster(settings, run_id, predictor, holdout.history[example_series])
    decision = tracking.decide_promotion(comparison.candidate_rmsse, comparison.champion_rmsse)
    tracking.promote(settings, version, decision)
    lstm_metrics = {name: value for name, value in backtest_metrics.items() if name.startswith("lstm_")}
    tracking.describe_version(settings, version, lstm_metrics, decision)
    tracking.set_tags(settings, run_id, {"model_version": version.version, "promoted": str(decision.promote),
                                         "promotion_reason": decision.reason})
    return RegistrationResult(settings.tracking.registered_model_name, version.version, comparison.candidate_rmsse,
                              comparison.champion_rmsse, decision.promote, decision.reason)


@task(name="finish-tracking-run", cache_policy=NO_CACHE, **MLFLOW_RETRIES)
def finish_tracking_run(settings: Settings, run_id: str, status: str) -> None:
    tracking.end_run(settings, run_id, status)
