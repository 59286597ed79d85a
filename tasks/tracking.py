"""Record the run in MLflow and manage the model registry."""

from __future__ import annotations

from dataclasses import dataclass

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from models.backtest import BacktestResult, BacktestWindow
from models.evaluation import ForecastScores
from models.lstm.train_process import TrainedForecaster
from models.pyfunc import as_model_input
from models.registration import FORECASTER_TAG, Candidate, holdout_metric, holdout_rmsse, version_tags
from replenish.plots import fan_chart_figure
from replenish.report import registration_markdown
from replenish.tracking import ModelRegistry, RunTracker
from tasks.runs import MLFLOW_RETRIES


@dataclass(frozen=True)
class RegistrationResult:
    model_name: str
    version: str
    candidate_rmsse: float
    champion_rmsse: float | None
    promoted: bool
    reason: str
    forecaster: str  # which candidate was registered: "lstm" or "ensemble"


@task(name="log-backtest", cache_policy=NO_CACHE, **MLFLOW_RETRIES)
def log_backtest(tracker: RunTracker, backtest: BacktestResult, final_fit: TrainedForecaster) -> dict[str, float]:
    """The training run is the backtest's parent: it gets every model's metrics side by side, the
    metrics table and fan charts; each model gets a child run with the same metric names."""
    metrics = {
        **backtest.metrics(),
        "lstm_training_windows_per_second": final_fit.windows_per_second,
        "lstm_epochs": float(final_fit.epochs),
        "lstm_windows_per_epoch": float(final_fit.windows_per_epoch),
    }
    tracker.log_metrics(metrics)
    tracker.log_table(backtest.metrics_table(), "backtest/metrics.csv")
    tracker.log_table(backtest.scores.per_series, "backtest/metrics_per_series.csv")
    last, at_last = backtest.windows[-1], backtest.last_forecasts()
    figure = fan_chart_figure(
        last.history,
        last.actual,
        at_last["lstm"],
        {"seasonal naive": at_last["seasonal_naive"]},
        title=f"LSTM on the holdout after {last.cutoff:%Y-%m-%d}",
    )
    # At the run's root: MLflow's compare view offers only the files at the root that every compared run
    # has (it skips folders), so two training runs show their fan charts side by side.
    tracker.log_figure(figure, "backtest_fan_chart.png")
    cutoffs = ", ".join(f"{window.cutoff:%Y-%m-%d}" for window in backtest.windows)
    for model in backtest.forecasts:
        child = tracker.start_child(
            f"backtest-{model}", {"job": "backtest", "model": model, "backtest_cutoffs": cutoffs}
        )
        child.log_metrics(backtest.model_metrics(model))
        child.end("FINISHED")
    return metrics


@task(name="register-forecaster", cache_policy=NO_CACHE)
def register_forecaster(
    registry: ModelRegistry,
    tracker: RunTracker,
    candidates: dict[str, Candidate],
    holdout: BacktestWindow,
    backtest_scores: ForecastScores,
) -> RegistrationResult:
    """Register the candidate (the LSTM, the ensemble) that forecasts the holdout best as a new version, then
    compare it with the champion and promote it if better, atomically. On a tie the first candidate wins."""
    model_input = as_model_input(holdout.history)
    holdout_scores = {kind: holdout_rmsse(holdout, model_input, predictor) for kind, predictor in candidates.items()}
    kind = min(holdout_scores, key=holdout_scores.__getitem__)
    predictor, candidate_rmsse = candidates[kind], holdout_scores[kind]
    example_series = holdout.history.groupby(["item_id", "store_id"]).ngroup() == 0
    version = registry.log_forecaster(tracker, predictor, holdout.history[example_series])
    registry.tag_version(version, version_tags(kind, predictor, holdout, holdout_scores))
    decision, champion_rmsse = registry.promote_if_better(
        version,
        candidate_rmsse,
        lambda champion: holdout_rmsse(holdout, model_input, registry.load_version(champion.version)),
        holdout_metric(kind),
    )
    holdout_metrics = {holdout_metric(name): score for name, score in holdout_scores.items()}
    registry.describe_version(version, holdout_metrics, backtest_scores.metrics, decision)
    tracker.log_metrics(holdout_metrics)
    tracker.set_tags(
        {
            "model_version": version.version,
            "promoted": str(decision.promote),
            "promotion_reason": decision.reason,
            FORECASTER_TAG: kind,
        },
    )
    create_markdown_artifact(
        key="training-registration",
        description="The backtest, the version registered, the promotion",
        markdown=registration_markdown(backtest_scores, holdout_metrics, kind, version.version, decision, tracker.link),
    )
    get_run_logger().info(f"registered {kind} as version {version.version} of {registry.name}: {decision.reason}")
    return RegistrationResult(
        registry.name,
        version.version,
        candidate_rmsse,
        champion_rmsse,
        decision.promote,
        decision.reason,
        kind,
    )
