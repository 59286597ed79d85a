"""Record the run in MLflow and manage the model registry."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import mlflow
import pandas as pd
from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from models.backtest import BacktestResult, BacktestWindow
from models.ensemble.estimator import EnsemblePredictor
from models.evaluation import ForecastScores, quantile_forecast_as_model_output, score_forecasts
from models.features import CATEGORY_COLUMNS, COVARIATE_COLUMNS
from models.forecast_contract import ForecasterContract
from models.lstm.estimator import LSTMPredictor
from models.lstm.train_process import TrainedForecaster
from models.pyfunc import as_model_input
from replenish import tracking
from replenish.frequency import frequency_of
from replenish.plots import fan_chart_figure
from replenish.tracking import ModelRegistry, RunTracker
from tasks.runs import MLFLOW_RETRIES

# The version tag that says which forecaster a version is: "lstm" or "ensemble".
FORECASTER_TAG = "forecaster"
Predictor = LSTMPredictor | EnsemblePredictor


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
    holdout = backtest.holdout_scores()
    metrics = {
        **backtest.scores.metrics,
        **{f"holdout_{name}": value for name, value in holdout.metrics.items()},
        **{f"{model}_fit_seconds": seconds for model, seconds in backtest.fit_seconds.items()},
        "lstm_training_windows_per_second": final_fit.windows_per_second,
        "lstm_epochs": float(final_fit.epochs),
    }
    tracker.log_metrics(metrics)
    table = backtest.scores.table().assign(fit_seconds=pd.Series(backtest.fit_seconds))
    tracker.log_table(table.rename_axis("model").reset_index(), "backtest/metrics.csv")
    tracker.log_table(backtest.scores.per_series, "backtest/metrics_per_series.csv")
    last = backtest.windows[-1]
    at_last = {name: frame[frame["cutoff"] == last.cutoff] for name, frame in backtest.forecasts.items()}
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
    table_by_model = backtest.scores.table()
    for model in backtest.forecasts:
        child = tracker.start_child(
            f"backtest-{model}", {"job": "backtest", "model": model, "backtest_cutoffs": cutoffs}
        )
        scores = {metric: value for metric, value in table_by_model.loc[model].items() if pd.notna(value)}
        child.log_metrics({**scores, "fit_seconds": backtest.fit_seconds[model]})
        child.end("FINISHED")
    return metrics


def holdout_metric(candidate: str) -> str:
    """The one name of a candidate's holdout score, as the registration computes it (holdout_rmsse): the
    run's metric, the version's tag and description, and the promotion reason all use it."""
    return f"holdout_pyfunc_{candidate}_rmsse"


def holdout_rmsse(
    holdout: BacktestWindow, model_input: pd.DataFrame, forecaster: Predictor | mlflow.pyfunc.PyFuncModel
) -> float:
    """RMSSE on the holdout of a forecast made from ``model_input``: the same input the planning flow
    gives the champion, so candidates and champion are scored alike."""
    forecast = forecaster.predict(model_input)
    scored = score_forecasts(
        {"model": quantile_forecast_as_model_output(forecast, holdout.cutoff)}, holdout.actual, holdout.history
    )
    return scored.metrics["model_rmsse"]


def forecaster_tags(kind: str, predictor: Predictor, holdout_scores: dict[str, float]) -> dict[str, str]:
    """What a version is (the LSTM or the ensemble, and the ensemble's members and weights), and how each
    candidate forecast the holdout."""
    tags = {FORECASTER_TAG: kind, **{holdout_metric(name): f"{score:.4f}" for name, score in holdout_scores.items()}}
    if isinstance(predictor, EnsemblePredictor):
        tags.update(
            {
                "ensemble.members": ",".join(predictor.combination.members),
                "ensemble.config": json.dumps(asdict(predictor.config)),
                "ensemble.weights": json.dumps(predictor.combination.weights),
            }
        )
    return tags


def registration_markdown(
    backtest_scores: ForecastScores,
    holdout_metrics: dict[str, float],
    kind: str,
    version: str,
    decision: tracking.PromotionDecision,
    mlflow_run: str,
) -> str:
    """What the Prefect UI shows for a training run: the backtest per model, the candidates on the holdout,
    and the version registered and whether it became champion."""
    table = backtest_scores.table().dropna(axis=1, how="all")
    header = "| model | " + " | ".join(table.columns) + " |"
    return "\n".join(
        [
            f"# Registered: {kind}, version {version} "
            f"({'promoted to champion' if decision.promote else 'not promoted'})",
            f"{decision.reason}. {mlflow_run}.",
            "",
            "Holdout scores of the candidates: "
            + ", ".join(f"`{name}` {value:.4f}" for name, value in holdout_metrics.items()),
            "",
            "Backtest, over all its origins:",
            "",
            header,
            "|---|" + "---|" * len(table.columns),
            *(
                f"| {model} | " + " | ".join("" if pd.isna(value) else f"{value:.4f}" for value in row) + " |"
                for model, row in table.iterrows()
            ),
        ]
    )


@task(name="register-forecaster", cache_policy=NO_CACHE)
def register_forecaster(
    registry: ModelRegistry,
    tracker: RunTracker,
    candidates: dict[str, Predictor],
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
    # Planning checks these before it asks the model for a forecast; the final fit learnt from the holdout's history.
    contract = ForecasterContract.of_model(
        predictor.horizon,
        frequency_of(holdout.history["date"]),
        predictor.quantiles,
        [*CATEGORY_COLUMNS, *COVARIATE_COLUMNS],
        holdout.history,
    )
    registry.tag_version(version, {**contract.as_tags(), **forecaster_tags(kind, predictor, holdout_scores)})
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
