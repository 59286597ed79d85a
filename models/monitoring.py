"""Forecast monitoring: how the champion's logged forecasts did against the sales that arrived."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from models.evaluation import censored, score_forecasts, seasonal_naive_forecast
from models.forecast_frame import FORECAST_KEY, MEDIAN, quantile_column
from models.monitoring_config import MonitoringThresholds

PSI_BINS = 10


@dataclass(frozen=True)
class RetrainingDecision:
    retrain: bool
    reasons: list[str]


def population_stability_index(reference: np.ndarray, current: np.ndarray, bins: int = PSI_BINS) -> float:
    """PSI over the reference's quantile bins; 0 = same distribution, > 0.25 is commonly read as a shift."""
    reference, current = reference[~np.isnan(reference)], current[~np.isnan(current)]
    if len(reference) == 0 or len(current) == 0:
        return 0.0
    edges = np.unique(np.quantile(reference, np.linspace(0, 1, bins + 1)))
    if len(edges) < 2:
        return 0.0
    edges[0], edges[-1] = -np.inf, np.inf
    expected = np.histogram(reference, edges)[0] / len(reference)
    actual = np.histogram(current, edges)[0] / len(current)
    # A floor keeps empty bins from making the index infinite.
    expected, actual = np.clip(expected, 1e-4, None), np.clip(actual, 1e-4, None)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def covered_actuals(actual: pd.DataFrame, forecast: pd.DataFrame) -> pd.DataFrame:
    """The arrived sales a logged forecast answers for: the item-stores and days it gave every value of,
    less censored days (their sales are no demand). Nothing it did not forecast is scored, as zero or otherwise."""
    values = [column for column in forecast.columns if column not in FORECAST_KEY]
    forecast_rows = forecast.loc[forecast[values].notna().all(axis=1), FORECAST_KEY].drop_duplicates()
    return actual[~censored(actual)].merge(forecast_rows, on=FORECAST_KEY)


def recent_performance(history: pd.DataFrame, actual: pd.DataFrame, forecast: pd.DataFrame) -> dict[str, float]:
    """Scores of a logged forecast on the days that have arrived and it covered, beside a seasonal naive
    of the same item-stores and days.

    ``history``: sales up to the forecast origin; ``actual``: sales after it; ``forecast``: quantile columns."""
    scored_days = covered_actuals(actual, forecast)
    if scored_days.empty:
        return {"scored_days": 0.0}
    origin = history["date"].max()
    naive = seasonal_naive_forecast(history, (scored_days["date"].max() - origin).days)
    evaluation = score_forecasts(
        {"lstm": forecast.assign(cutoff=origin), "seasonal_naive": naive},
        scored_days,
        history,
    )
    joined = scored_days.merge(forecast, on=FORECAST_KEY)
    bias = float((joined[quantile_column(MEDIAN)] - joined["units"]).sum() / max(joined["units"].sum(), 1.0))
    return {
        "scored_days": float(scored_days["date"].nunique()),
        "rmsse": evaluation.metrics["lstm_rmsse"],
        "mase": evaluation.metrics["lstm_mase"],
        "coverage_80": evaluation.metrics["lstm_coverage_80"],
        "bias": bias,
        "seasonal_naive_rmsse": evaluation.metrics["seasonal_naive_rmsse"],
    }


def input_drift(history: pd.DataFrame, recent: pd.DataFrame) -> dict[str, float]:
    return {
        "psi_units": population_stability_index(history["units"].to_numpy(float), recent["units"].to_numpy(float)),
        "psi_price": population_stability_index(history["price"].to_numpy(float), recent["price"].to_numpy(float)),
    }


def decide_retraining(
    performance: dict[str, float], drift: dict[str, float], validation_rmsse: float, thresholds: MonitoringThresholds
) -> RetrainingDecision:
    if performance.get("scored_days", 0) < thresholds.min_days:
        return RetrainingDecision(
            False,
            [f"only {performance.get('scored_days', 0):.0f} day(s) of actuals so far (need {thresholds.min_days})"],
        )
    reasons = []
    rmsse = performance["rmsse"]
    if rmsse > thresholds.rmsse_ratio_to_validation * validation_rmsse:
        reasons.append(
            f"recent RMSSE {rmsse:.3f} > {thresholds.rmsse_ratio_to_validation:g} x validation RMSSE "
            f"{validation_rmsse:.3f}"
        )
    if rmsse > thresholds.rmsse_ratio_to_naive * performance["seasonal_naive_rmsse"]:
        reasons.append(
            f"recent RMSSE {rmsse:.3f} > {thresholds.rmsse_ratio_to_naive:g} x seasonal naive "
            f"{performance['seasonal_naive_rmsse']:.3f} on the same days"
        )
    for name, value in drift.items():
        if value > thresholds.psi_limit:
            reasons.append(f"{name} {value:.3f} > {thresholds.psi_limit:g}")
    if reasons:
        return RetrainingDecision(True, reasons)
    return RetrainingDecision(
        False,
        [
            f"recent RMSSE {rmsse:.3f} within limits (validation {validation_rmsse:.3f}, "
            f"seasonal naive {performance['seasonal_naive_rmsse']:.3f}); no drift"
        ],
    )


@dataclass(frozen=True)
class LoggedForecast:
    """A forecast a planning run logged, with the champion version that made it and its origin."""

    planning_run_id: str
    model_version: str
    origin: pd.Timestamp
    forecast: pd.DataFrame


@dataclass(frozen=True)
class MonitoringReport:
    model_version: str | None
    validation_rmsse: float | None
    performance: dict[str, float]
    drift: dict[str, float]
    decision: RetrainingDecision


def assess(
    sales: pd.DataFrame,
    logged: LoggedForecast | None,
    validation_rmsse: float | None,
    thresholds: MonitoringThresholds,
) -> MonitoringReport:
    """The champion's ``logged`` forecast scored on the sales after its origin, the input's drift since,
    and whether to retrain; no decision to retrain before a champion's forecast has been logged."""
    if logged is None or validation_rmsse is None:
        return MonitoringReport(
            None,
            None,
            {},
            {},
            RetrainingDecision(False, ["no champion forecast logged yet: run training and planning first"]),
        )
    history, actual = sales[sales["date"] <= logged.origin], sales[sales["date"] > logged.origin]
    performance = recent_performance(history, actual, logged.forecast)
    drift = input_drift(history, covered_actuals(actual, logged.forecast))
    return MonitoringReport(
        logged.model_version,
        validation_rmsse,
        performance,
        drift,
        decide_retraining(performance, drift, validation_rmsse, thresholds),
    )
