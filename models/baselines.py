"""The baselines a demand planner already trusts: statsforecast's local models and a global LightGBM
through mlforecast (the M5 winner's approach). Each returns the backtest's forecast frame
(:mod:`models.forecast_frame`): item_id, store_id, date, cutoff, mean and, where the model has
intervals, the protocol's quantiles q0.025 q0.1 q0.5 q0.9 q0.975. They fit on the data's grid of days, weeks or months
(its season: a week of days, a year of weeks or of months) with censored periods' units carried from
an earlier one (``demand_history``), so a closed day or a stockout is not zero demand.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import lightgbm
import pandas as pd
from mlforecast import MLForecast
from mlforecast.lag_transforms import RollingMean
from mlforecast.utils import PredictionIntervals
from statsforecast import StatsForecast
from statsforecast.models import TSB, AutoETS, CrostonOptimized, SeasonalNaive

from models.backtest import Forecaster
from models.evaluation import demand_history, from_nixtla, to_nixtla
from models.forecast_frame import INTERVAL_QUANTILES, MEAN, MEDIAN, SERIES_KEY, SeriesCodes, quantile_column
from replenish.frequency import frequency_of

INTERVAL_LEVELS = tuple(INTERVAL_QUANTILES)  # 80 and 95 (%)
# ETS estimates one state per season position; past 24 (weekly data's 52) it cannot, and statsforecast
# fits it without a season there.
STATISTICAL_MODELS: dict[str, Callable[[int], object]] = {
    "seasonal_naive": lambda season: SeasonalNaive(season_length=season),
    "auto_ets": lambda season: AutoETS(season_length=season if season <= 24 else 1),
    "croston": lambda season: CrostonOptimized(),
    "tsb": lambda season: TSB(alpha_d=0.1, alpha_p=0.1),
}
# Croston and TSB forecast a rate with no distribution around it: point forecasts only.
WITHOUT_INTERVALS = {"croston", "tsb"}
BASELINES = (*STATISTICAL_MODELS, "lightgbm")


def _forecast_frame(
    forecast: pd.DataFrame, series: SeriesCodes, column: str, cutoff: pd.Timestamp, with_intervals: bool
) -> pd.DataFrame:
    """Nixtla's <model>, <model>-lo-80 ... columns to the mean and quantiles, clipped at 0. The intervals
    of these models are symmetric around the point forecast, so their median is the mean."""
    shaped = from_nixtla(forecast, series).assign(cutoff=cutoff, **{MEAN: forecast[column].clip(lower=0).to_numpy()})
    if with_intervals:
        shaped[quantile_column(MEDIAN)] = shaped[MEAN]
        for level, (low, high) in INTERVAL_QUANTILES.items():
            shaped[low] = forecast[f"{column}-lo-{level}"].clip(lower=0).to_numpy()
            shaped[high] = forecast[f"{column}-hi-{level}"].clip(lower=0).to_numpy()
    return shaped


def statistical_forecasts(history: pd.DataFrame, horizon: int, names: list[str]) -> dict[str, pd.DataFrame]:
    """Fit each named statsforecast model per series on ``history`` and forecast ``horizon`` periods."""
    unknown = sorted(set(names) - set(STATISTICAL_MODELS))
    if unknown:
        raise ValueError(f"unknown statistical baselines {unknown}; choose from {sorted(STATISTICAL_MODELS)}")
    cutoff = history["date"].max()
    frequency = frequency_of(history["date"])
    series = SeriesCodes.of(history)
    train = to_nixtla(demand_history(history), {"units": "y"}, series)
    forecasts = {}
    for with_intervals in (True, False):
        group = [name for name in names if (name not in WITHOUT_INTERVALS) == with_intervals]
        if not group:
            continue
        engine = StatsForecast(
            models=[STATISTICAL_MODELS[name](frequency.season_length) for name in group], freq=frequency.alias, n_jobs=1
        )
        raw = engine.forecast(h=horizon, df=train, level=list(INTERVAL_LEVELS) if with_intervals else None)
        for name, model in zip(group, engine.models, strict=False):
            forecasts[name] = _forecast_frame(raw, series, str(model), cutoff, with_intervals)
    return forecasts


# The protocol's LightGBM: tweedie loss, lags 7/14/28, rolling means of lags 7 and 28, calendar,
# price, SNAP and event, categorical ids, recursive forecasts, conformal intervals over 5 windows.
LIGHTGBM_PARAMS: dict[str, Any] = {"objective": "tweedie", "n_estimators": 500, "learning_rate": 0.05, "num_leaves": 63}
STATIC_COLUMNS = ["item_id", "store_id", "dept_id", "cat_id"]
DYNAMIC_COLUMNS = ["price", "promo", "event", "snap"]
CONFORMAL_WINDOWS = 5
# LightGBM reads a missing price (a period not on sale, a source without prices) as missing, which is
# what it is; mlforecast warns about it on every fit.
warnings.filterwarnings("ignore", message="Found null values in", category=UserWarning, module="mlforecast")


def _week_of_year(dates: pd.DatetimeIndex) -> Any:
    return dates.isocalendar().week.to_numpy()


@dataclass(frozen=True)
class LagFeatures:
    """The global model's lags, rolling means of some lags, and calendar features, in periods."""

    lags: tuple[int, ...]
    rolled_lags: tuple[int, ...]  # lags whose rolling means are features
    windows: tuple[int, ...]  # the rolling means' lengths
    date_features: tuple[Any, ...]

    @property
    def warmup(self) -> int:
        """Periods before the first row with every feature."""
        return max(max(self.lags), max(self.rolled_lags) + max(self.windows))


# Daily: the protocol's. Weekly: the last weeks and a quarter back, the season from the week of the
# year (a lag of 52 would leave under three years of weekly history little to learn from). Monthly:
# the last months and a year back.
LAG_FEATURES = {
    "D": LagFeatures((7, 14, 28), (7, 28), (7, 28), ("dayofweek", "month")),
    "W": LagFeatures((1, 2, 4, 13), (1, 13), (4, 13), (_week_of_year, "month")),
    "M": LagFeatures((1, 2, 3, 6, 12), (1,), (3, 12), ("month",)),
}


def _lightgbm_frame(
    frame: pd.DataFrame, series: SeriesCodes, categories: dict[str, pd.Index], with_target: bool
) -> pd.DataFrame:
    nixtla = to_nixtla(frame, {"units": "y"} if with_target else {}, series)
    for column, values in categories.items():
        nixtla[column] = pd.Categorical(frame[column].astype(str), categories=values)
    for column in DYNAMIC_COLUMNS:
        nixtla[column] = frame[column].to_numpy(dtype=float) if column in frame else 0.0
    return nixtla


def lightgbm_forecast(history: pd.DataFrame, future: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """Global LightGBM over all series. ``future`` holds the known covariates (price, promo, event,
    snap) of the forecast periods; the horizon is its number of periods per series."""
    horizon = int(future.groupby(SERIES_KEY)["date"].size().max())
    frequency = frequency_of(history["date"])
    features = LAG_FEATURES[frequency.kind]
    categories = {
        column: pd.Index(sorted(set(history[column].astype(str)) | set(future[column].astype(str))))
        for column in STATIC_COLUMNS
        if column in history and column in future
    }
    series = SeriesCodes.of(history, future)
    train = _lightgbm_frame(demand_history(history), series, categories, with_target=True)
    exogenous = _lightgbm_frame(future, series, categories, with_target=False)
    engine = MLForecast(
        models={"lightgbm": lightgbm.LGBMRegressor(**LIGHTGBM_PARAMS, random_state=seed, verbosity=-1, n_jobs=1)},
        freq=frequency.alias,
        lags=list(features.lags),
        lag_transforms={
            lag: [RollingMean(window_size=window) for window in features.windows] for lag in features.rolled_lags
        },
        date_features=list(features.date_features),
    )
    # Conformal intervals need every series to cover its calibration windows, and the fit before the
    # earliest window needs days beyond the longest lag and its rolling mean. Short histories get fewer
    # windows; with less than one the forecast has no intervals at all.
    lengths = train.groupby("unique_id").size()
    windows = min(
        CONFORMAL_WINDOWS,
        (int(lengths.min()) - 1) // horizon,
        (int(lengths.max()) - features.warmup - 1) // horizon,
    )
    intervals = PredictionIntervals(n_windows=windows, h=horizon) if windows >= 2 else None
    try:
        engine.fit(train, static_features=list(categories), prediction_intervals=intervals)
    except lightgbm.basic.LightGBMError:
        if intervals is None:
            raise
        # A calibration window's fit can see only zeros on intermittent data (tweedie refuses it):
        # the forecast goes without intervals rather than without the model.
        intervals = None
        engine.fit(train, static_features=list(categories), prediction_intervals=None)
    raw = engine.predict(
        h=horizon, X_df=exogenous.drop(columns=list(categories)), level=list(INTERVAL_LEVELS) if intervals else None
    )
    return _forecast_frame(raw, series, "lightgbm", history["date"].max(), with_intervals=intervals is not None)


def baseline_forecasters(names: list[str], horizon: int, seed: int = 0) -> dict[str, Forecaster]:
    """Backtest forecasters for the named baselines (see ``BASELINES``)."""
    unknown = sorted(set(names) - set(BASELINES))
    if unknown:
        raise ValueError(f"unknown baselines {unknown}; choose from {list(BASELINES)}")

    def statistical(name: str) -> Forecaster:
        return lambda history, future: statistical_forecasts(history, horizon, [name])[name]

    return {
        name: (lambda history, future: lightgbm_forecast(history, future, seed))
        if name == "lightgbm"
        else statistical(name)
        for name in names
    }
