"""Forecast scoring as in the backtest protocol (M5 scales), with utilsforecast's metrics.

Every model's forecast comes in the backtest's forecast frame (:mod:`models.forecast_frame`):
item_id, store_id, date, cutoff (the last day the model saw), ``mean`` and, for probabilistic models,
the protocol's quantile columns ``q0.025 q0.1 q0.5 q0.9 q0.975``.

Censored days (``available`` = 0: a stockout, a closed or a missing day) show sales that are not
demand: they are never scored, and never give a model a zero to learn.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from statsforecast import StatsForecast
from statsforecast.models import SeasonalNaive
from utilsforecast import losses

from models.forecast_frame import (
    FORECAST_KEY,
    INTERVAL_QUANTILES,
    MEAN,
    PINBALL_QUANTILES,
    QUANTILE_COLUMNS,
    SERIES_KEY,
    SeriesCodes,
    quantile_level,
    series_codes,
)
from replenish.frequency import frequency_of

METRICS = ("rmsse", "mase", "wrmsse", "pinball", "coverage_80", "coverage_95")


def to_nixtla(frame: pd.DataFrame, columns: dict[str, str], series: SeriesCodes) -> pd.DataFrame:
    """Long (item_id, store_id, date, ...) to Nixtla's (unique_id, ds, ...) layout; ``unique_id`` is the
    series' code in ``series``."""
    return pd.DataFrame({"unique_id": series.codes(frame), "ds": frame["date"].to_numpy()}).assign(
        **{target: frame[source].to_numpy(dtype=float) for source, target in columns.items()}
    )


def from_nixtla(frame: pd.DataFrame, series: SeriesCodes) -> pd.DataFrame:
    """Nixtla's (unique_id, ds) back to item_id, store_id, date, through the codes ``to_nixtla`` gave."""
    return series.keys_of(frame["unique_id"]).assign(date=frame["ds"].to_numpy())


def censored(frame: pd.DataFrame) -> np.ndarray:
    """Rows whose units are no demand: ``available`` = 0 (a frame without the column has none)."""
    return frame["available"].to_numpy() == 0 if "available" in frame else np.zeros(len(frame), dtype=bool)


def demand_history(history: pd.DataFrame) -> pd.DataFrame:
    """``history`` with the units of each censored period replaced by the series' units in the latest
    uncensored period of the same season position (the same weekday for daily data, any earlier period
    for weekly and monthly; the next one for censored periods at the start; 0 where there is none),
    for the models that need a regular history and would otherwise learn zero demand from those periods."""
    unknown = censored(history)
    if not unknown.any():
        return history
    by_date = np.argsort(history["date"].to_numpy(), kind="stable")
    units = np.where(unknown, np.nan, history["units"].to_numpy(dtype=float))[by_date]
    # A week or a month has no weekday; the season there is too long to wait for.
    position = history["date"].dt.day_of_week if frequency_of(history["date"]).kind == "D" else 0
    same_weekday = [
        series_codes(history).to_numpy()[by_date],
        np.broadcast_to(np.asarray(position), len(history))[by_date],
    ]
    carried = pd.Series(units).groupby(same_weekday).ffill()
    carried = carried.groupby(same_weekday).bfill().fillna(0.0)
    filled = np.empty(len(history))
    filled[by_date] = carried.to_numpy()
    return history.assign(units=filled)


def seasonal_naive_forecast(history: pd.DataFrame, horizon: int) -> pd.DataFrame:
    """Seasonal naive point forecast for every series (the season of the data's frequency: a week of
    days, a year of weeks or of months): item_id, store_id, date, cutoff, mean."""
    frequency = frequency_of(history["date"])
    model = StatsForecast(models=[SeasonalNaive(season_length=frequency.season_length)], freq=frequency.alias, n_jobs=1)
    series = SeriesCodes.of(history)
    forecast = model.forecast(h=horizon, df=to_nixtla(demand_history(history), {"units": "y"}, series))
    return from_nixtla(forecast, series).assign(
        cutoff=history["date"].max(), **{MEAN: forecast["SeasonalNaive"].clip(lower=0).to_numpy()}
    )


@dataclass(frozen=True)
class ForecastScores:
    metrics: dict[str, float]  # <model>_<metric>, same names on every run so runs compare side by side
    per_series: pd.DataFrame  # item_id, store_id, cutoff and <model>_<metric> per (series, origin)

    def table(self) -> pd.DataFrame:
        """One row per model, one column per metric (NaN where a model has no intervals)."""
        rows: dict[str, dict[str, float]] = {}
        for name, value in self.metrics.items():
            model, metric = _split_metric_name(name)
            rows.setdefault(model, {})[metric] = value
        return pd.DataFrame.from_dict(rows, orient="index").reindex(columns=list(METRICS))


def _split_metric_name(name: str) -> tuple[str, str]:
    for metric in METRICS:
        if name.endswith("_" + metric):
            return name[: -len(metric) - 1], metric
    raise ValueError(f"not a <model>_<metric> name: {name}")


def revenue_weights(history: pd.DataFrame, cutoffs: list[pd.Timestamp], periods: int) -> pd.DataFrame:
    """WRMSSE weights: each series' dollar sales over the ``periods`` up to each cutoff, normalised per cutoff.
    Sales without any price weigh series by units sold."""
    frequency = frequency_of(history["date"])
    priced = "price" in history and bool(history["price"].notna().any())
    parts = []
    for cutoff in cutoffs:
        window = history[(history["date"] > frequency.shift(cutoff, -periods)) & (history["date"] <= cutoff)]
        price = window["price"].fillna(0.0) if priced else 1.0
        revenue = (window["units"] * price).groupby([window[column] for column in SERIES_KEY]).sum()
        total = revenue.sum()
        parts.append(
            revenue.index.to_frame(index=False).assign(
                cutoff=cutoff, weight=revenue.to_numpy() / total if total > 0 else 0.0
            )
        )
    return pd.concat(parts, ignore_index=True)


def score_forecasts(forecasts: dict[str, pd.DataFrame], actual: pd.DataFrame, history: pd.DataFrame) -> ForecastScores:
    """Score every model on the same (series, origin, day) rows.

    ``forecasts``: model name -> forecast frame with its cutoff; ``actual``: item_id, store_id, date, units
    of the forecast days; ``history``: all known sales (item_id, store_id, date, units, price), from which
    each origin's in-sample scales use only the days up to its cutoff. Censored days of either are left out.
    """
    keys = FORECAST_KEY
    frequency = frequency_of(history["date"])
    scored = actual.loc[~censored(actual), [*keys, "units"]]
    columns: dict[str, str] = {"units": "y"}
    for name, forecast in forecasts.items():
        present = [column for column in (MEAN, *QUANTILE_COLUMNS) if column in forecast]
        scored = scored.merge(
            forecast[[*keys, "cutoff", *present]].rename(columns={c: f"{name}:{c}" for c in present}),
            on=[*keys, "cutoff"] if "cutoff" in scored else keys,
        )
        columns.update({f"{name}:{column}": f"{name}{_nixtla_suffix(column)}" for column in present})
    known = history[~censored(history)].sort_values(keys)
    series = SeriesCodes.of(scored, known)
    frame = to_nixtla(scored, columns, series).assign(cutoff=scored["cutoff"].to_numpy())
    train = to_nixtla(known, {"units": "y"}, series)

    names = list(forecasts)
    probabilistic = [
        name for name in names if all(f"{name}{_nixtla_suffix(c)}" in frame for c in PINBALL_QUANTILES.values())
    ]
    per_series = _suffixed(losses.rmsse(frame, names, seasonality=1, train_df=train), "rmsse").merge(
        _suffixed(losses.mase(frame, names, seasonality=frequency.season_length, train_df=train), "mase"),
        on=["unique_id", "cutoff"],
    )
    for level in INTERVAL_QUANTILES:
        with_interval = [name for name in names if f"{name}-lo-{level}" in frame and f"{name}-hi-{level}" in frame]
        if with_interval:
            per_series = per_series.merge(
                _suffixed(losses.coverage(frame, with_interval, level=level), f"coverage_{level}"),
                on=["unique_id", "cutoff"],
                how="left",
            )
    for name in probabilistic:
        pinball = [
            losses.scaled_quantile_loss(
                frame, {name: f"{name}{_nixtla_suffix(column)}"}, seasonality=1, train_df=train, q=q
            ).set_index(["unique_id", "cutoff"])[name]
            for q, column in PINBALL_QUANTILES.items()
        ]
        per_series = per_series.merge(
            (sum(pinball) / len(pinball)).rename(f"{name}_pinball").reset_index(),
            on=["unique_id", "cutoff"],
            how="left",
        )
    # A constant in-sample history has a zero scale; its ratios carry no information.
    per_series = per_series.replace([np.inf, -np.inf], np.nan)
    per_series = pd.concat(
        [series.keys_of(per_series["unique_id"]), per_series.drop(columns="unique_id").reset_index(drop=True)], axis=1
    )

    # The protocol's 28 days; the same horizon's worth of weeks or months.
    weights = revenue_weights(history, sorted(frame["cutoff"].unique()), periods=frequency.default_horizon)
    weighted = per_series.merge(weights, on=[*SERIES_KEY, "cutoff"], how="left").fillna({"weight": 0.0})
    metrics: dict[str, float] = {}
    for name in names:
        for metric in ("rmsse", "mase", "pinball", "coverage_80", "coverage_95"):
            column = f"{name}_{metric}"
            if column in per_series:
                metrics[column] = float(per_series[column].mean())
        by_cutoff = (weighted[f"{name}_rmsse"].fillna(0.0) * weighted["weight"]).groupby(weighted["cutoff"]).sum()
        metrics[f"{name}_wrmsse"] = float(by_cutoff.mean())
    return ForecastScores(metrics=metrics, per_series=per_series)


def _nixtla_suffix(column: str) -> str:
    """Forecast frame column to utilsforecast's naming: mean -> model, q0.1 -> model-lo-80, ..."""
    if column == MEAN:
        return ""
    for level, (low, high) in INTERVAL_QUANTILES.items():
        if column == low:
            return f"-lo-{level}"
        if column == high:
            return f"-hi-{level}"
    return f"-q-{quantile_level(column)}"


def _suffixed(per_series: pd.DataFrame, metric: str) -> pd.DataFrame:
    return per_series.rename(
        columns={c: f"{c}_{metric}" for c in per_series.columns if c not in ("unique_id", "cutoff")}
    )
