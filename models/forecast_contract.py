"""What a forecast promises the stage that consumes it, checked where it crosses into that stage.

A registered forecaster records its contract (horizon, frequency, quantiles, features, training
window) as model-version tags, which planning checks before it asks the model for anything. The
forecast the model then gives must cover every item-store and day the plan includes: a gap would
otherwise enter the plan as zero demand without a word.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

import pandas as pd

from models.evaluation import seasonal_naive_forecast
from models.forecast_frame import FORECAST_KEY, MEAN, SERIES_KEY
from replenish.frequency import Frequency, frequency_of

# Rows planned on the seasonal naive forecast because the model's forecast lacked them.
NAIVE_FALLBACK = "naive_fallback"
# Enough examples to find the problem without flooding the message.
MAX_NAMED_SERIES = 5

MissingForecast = Literal["refuse", "naive"]


class ForecastContractError(ValueError):
    """A forecast, or the model that makes it, does not give what the consuming stage needs."""


@dataclass(frozen=True)
class ForecasterContract:
    horizon: int  # periods of ``frequency``
    frequency: str  # a Frequency alias: D, W-SUN, MS, ...
    quantiles: tuple[float, ...]
    features: tuple[str, ...]
    first_training_date: pd.Timestamp
    last_training_date: pd.Timestamp

    @classmethod
    def of_model(
        cls,
        horizon: int,
        frequency: Frequency,
        quantiles: Iterable[float],
        features: Iterable[str],
        training: pd.DataFrame,
    ) -> ForecasterContract:
        """The contract of a model fitted on ``training`` (long sales with a date column)."""
        return cls(
            horizon,
            frequency.alias,
            tuple(quantiles),
            tuple(features),
            pd.Timestamp(training["date"].min()),
            pd.Timestamp(training["date"].max()),
        )

    def as_tags(self) -> dict[str, str]:
        return {
            "forecast.horizon": str(self.horizon),
            "forecast.frequency": self.frequency,
            "forecast.quantiles": json.dumps(list(self.quantiles)),
            "forecast.features": ",".join(self.features),
            "training.first_date": f"{self.first_training_date:%Y-%m-%d}",
            "training.last_date": f"{self.last_training_date:%Y-%m-%d}",
        }

    @classmethod
    def from_tags(cls, tags: Mapping[str, str]) -> ForecasterContract | None:
        """The contract a model version's tags record; None for a version registered without one."""
        horizon = tags.get("forecast.horizon")
        if horizon is None:
            return None
        return cls(
            horizon=int(horizon),
            frequency=tags["forecast.frequency"],
            quantiles=tuple(float(level) for level in json.loads(tags["forecast.quantiles"])),
            features=tuple(name for name in tags["forecast.features"].split(",") if name),
            first_training_date=pd.Timestamp(tags["training.first_date"]),
            last_training_date=pd.Timestamp(tags["training.last_date"]),
        )

    def require(self, horizon: int, frequency: Frequency, quantiles: Iterable[float], model: str) -> None:
        """Refuse, naming every mismatch, a use on other periods, or that needs more of them or other
        quantiles, than ``model`` gives."""
        problems = []
        if self.frequency != frequency.alias:
            problems.append(
                f"it forecasts {Frequency(self.frequency).description} periods, the data is {frequency.description}"
            )
        elif horizon > self.horizon:
            problems.append(
                f"it forecasts {self.horizon} {frequency.name}s (trained with forecast.horizon="
                f"{self.horizon}), the plan covers {horizon} (planning.horizon)"
            )
        lacking = sorted(set(quantiles) - set(self.quantiles))
        if lacking:
            problems.append(f"it forecasts quantiles {list(self.quantiles)}, the plan needs {lacking} as well")
        if problems:
            raise ForecastContractError(
                f"{model} cannot serve this plan: {'; '.join(problems)}. Retrain with matching forecast "
                "settings, or plan within what the model gives"
            )


@dataclass(frozen=True)
class CoveredForecast:
    forecast: pd.DataFrame  # the model's rows, plus seasonal naive rows marked in NAIVE_FALLBACK
    naive_fallback_series: int  # item-stores with at least one day from the seasonal naive forecast


def uncovered(forecast: pd.DataFrame, series: pd.DataFrame, dates: pd.DatetimeIndex) -> pd.DataFrame:
    """The (item_id, store_id, date) of ``series`` × ``dates`` that no forecast row gives every value of."""
    values = [column for column in forecast.columns if column not in FORECAST_KEY and column != NAIVE_FALLBACK]
    needed = series[SERIES_KEY].drop_duplicates().merge(pd.DataFrame({"date": dates}), how="cross")
    given = forecast.loc[forecast[values].notna().all(axis=1), FORECAST_KEY].drop_duplicates()
    located = needed.merge(given, on=FORECAST_KEY, how="left", indicator=True)
    return located.loc[located["_merge"] == "left_only", FORECAST_KEY].reset_index(drop=True)


def require_coverage(forecast: pd.DataFrame, series: pd.DataFrame, dates: pd.DatetimeIndex) -> None:
    gaps = uncovered(forecast, series, dates)
    if gaps.empty:
        return
    lacking = gaps.groupby(SERIES_KEY, sort=True)["date"].agg(["min", "size"]).reset_index()
    examples = ", ".join(
        f"{row.item_id}|{row.store_id} ({row.size} day(s) from {row.min:%Y-%m-%d})"
        for row in lacking.head(MAX_NAMED_SERIES).itertuples()
    )
    raise ForecastContractError(
        f"the forecast does not cover {len(lacking)} of {len(series[SERIES_KEY].drop_duplicates())} item-store(s) "
        f"for every planned day {dates.min():%Y-%m-%d} to {dates.max():%Y-%m-%d}: {examples}"
        f"{', ...' if len(lacking) > MAX_NAMED_SERIES else ''}. Planning would read those days as zero demand; "
        "set planning.missing_forecast=naive to plan them on a seasonal naive forecast instead"
    )


def cover_planned_days(
    forecast: pd.DataFrame, history: pd.DataFrame, dates: pd.DatetimeIndex, missing_forecast: MissingForecast
) -> CoveredForecast:
    """``forecast`` checked to cover every series of ``history`` on every one of ``dates``: refused
    otherwise, or with ``missing_forecast="naive"`` completed from a seasonal naive forecast of the
    series' own history (every value column set to its mean: a fallback has no spread to offer)."""
    series = history[SERIES_KEY].drop_duplicates()
    gaps = uncovered(forecast, series, dates)
    if gaps.empty or missing_forecast == "refuse":
        require_coverage(forecast, series, dates)
        return CoveredForecast(forecast.assign(**{NAIVE_FALLBACK: False}), 0)
    lacking = gaps[SERIES_KEY].drop_duplicates()
    own_history = history.merge(lacking, on=SERIES_KEY)
    frequency = frequency_of(history["date"])
    last_seen = own_history.groupby(SERIES_KEY)["date"].max().min()
    periods_ahead = int(frequency.periods_since(last_seen, pd.DatetimeIndex([dates.max()]))[0])
    naive = seasonal_naive_forecast(own_history, periods_ahead)
    values = [column for column in forecast.columns if column not in FORECAST_KEY]
    fallback = gaps.merge(naive[[*FORECAST_KEY, MEAN]], on=FORECAST_KEY, how="left")
    fallback = fallback.assign(**{column: fallback[MEAN] for column in values}, **{NAIVE_FALLBACK: True})
    kept = forecast.merge(gaps, on=FORECAST_KEY, how="left", indicator=True)
    completed = pd.concat(
        [
            kept.loc[kept["_merge"] == "left_only", forecast.columns].assign(**{NAIVE_FALLBACK: False}),
            fallback[[*forecast.columns, NAIVE_FALLBACK]],
        ],
        ignore_index=True,
    ).sort_values(FORECAST_KEY, kind="stable", ignore_index=True)
    # A series too short for a seasonal naive forecast is still a gap: refused, by name.
    require_coverage(completed, series, dates)
    return CoveredForecast(completed, len(lacking))
