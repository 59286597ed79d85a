"""Holdout evaluation: the LSTM against a weekly seasonal-naive forecast, scored with utilsforecast."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from statsforecast import StatsForecast
from statsforecast.models import SeasonalNaive
from utilsforecast import losses

from models.features import series_id

WEEK = 7


def to_nixtla(frame: pd.DataFrame, columns: dict[str, str]) -> pd.DataFrame:
    """Long (item_id, store_id, date, ...) to Nixtla's (unique_id, ds, ...) layout."""
    return pd.DataFrame({"unique_id": series_id(frame).to_numpy(), "ds": frame["date"].to_numpy()}).assign(
        **{target: frame[source].to_numpy(dtype=float) for source, target in columns.items()}
    )


def seasonal_naive_forecast(history: pd.DataFrame, horizon: int) -> pd.DataFrame:
    """Weekly seasonal naive for every series: item_id, store_id, date, seasonal_naive."""
    model = StatsForecast(models=[SeasonalNaive(season_length=WEEK)], freq="D", n_jobs=1)
    forecast = model.forecast(h=horizon, df=to_nixtla(history, {"units": "y"}))
    item_store = forecast["unique_id"].str.split("|", n=1, expand=True)
    return pd.DataFrame({
        "item_id": item_store[0], "store_id": item_store[1], "date": forecast["ds"],
        "seasonal_naive": forecast["SeasonalNaive"].clip(lower=0),
    })


@dataclass(frozen=True)
class HoldoutEvaluation:
    metrics: dict[str, float]  # <model>_<metric>, same names on every run so runs compare side by side
    per_series: pd.DataFrame  # unique_id and one column per model × metric

    @property
    def beats_seasonal_naive(self) -> bool:
        return self.metrics["lstm_rmsse"] < self.metrics["seasonal_naive_rmsse"]


def evaluate_holdout(
    train: pd.DataFrame, actual: pd.DataFrame, lstm_forecast: pd.DataFrame, naive_forecast: pd.DataFrame
) -> HoldoutEvaluation:
    """Score point forecasts (LSTM median, seasonal naive) and the LSTM's 80% interval (q0.1..q0.9)."""
    keys = ["item_id", "store_id", "date"]
    scored = actual[keys + ["units"]].merge(lstm_forecast, on=keys).merge(naive_forecast, on=keys)
    frame = to_nixtla(scored, {
        "units": "y", "q0.5": "lstm", "seasonal_naive": "seasonal_naive",
        "q0.1": "lstm-lo-80", "q0.9": "lstm-hi-80",
    })
    train_frame = to_nixtla(train, {"units": "y"})
    point_models = ["lstm", "seasonal_naive"]
    # rmsse scale = one-step differences (M5); mase scale = weekly differences, as in the backtest protocol.
    per_series = (
        losses.rmsse(frame, point_models, seasonality=1, train_df=train_frame)
        .merge(losses.mase(frame, point_models, seasonality=WEEK, train_df=train_frame), on="unique_id", suffixes=("_rmsse", "_mase"))
        .merge(losses.coverage(frame, ["lstm"], level=80).rename(columns={"lstm": "lstm_coverage_80"}), on="unique_id")
    )
    finite = per_series.replace([float("inf"), -float("inf")], float("nan"))
    metrics = {column: float(finite[column].mean()) for column in finite.columns if column != "unique_id"}
    return HoldoutEvaluation(metrics=metrics, per_series=per_series)
