"""Rolling-origin backtest: every model refitted at each origin, scored on the same windows.

The protocol (``BACKTEST_PROTOCOL.md`` beside the data): origins at T-h·n ... T-h, disjoint test
windows of ``h`` periods (days, weeks or months, as the sales), nothing carried over between
origins, known-in-advance covariates (calendar, price, promotion, events) of the test window given
to the models, its units never.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd
from tqdm.auto import tqdm

from models.evaluation import ForecastScores, score_forecasts
from replenish.frequency import Frequency, frequency_of

# (history up to the cutoff, the test window's rows without units) -> the forecast frame (models.forecast_frame)
Forecaster = Callable[[pd.DataFrame, pd.DataFrame], pd.DataFrame]


@dataclass(frozen=True)
class BacktestWindow:
    cutoff: pd.Timestamp
    history: pd.DataFrame  # every row up to and including the cutoff
    actual: pd.DataFrame  # the ``horizon`` periods after it

    @property
    def future(self) -> pd.DataFrame:
        """The test window as a model may see it: covariates, no target."""
        return self.actual.drop(columns="units")


def backtest_cutoffs(last_date: pd.Timestamp, horizon: int, n_origins: int, frequency: Frequency) -> list[pd.Timestamp]:
    return [frequency.shift(last_date, -horizon * k) for k in range(n_origins, 0, -1)]


def backtest_windows(sales: pd.DataFrame, horizon: int, n_origins: int) -> list[BacktestWindow]:
    frequency = frequency_of(sales["date"])
    windows = []
    for cutoff in backtest_cutoffs(sales["date"].max(), horizon, n_origins, frequency):
        in_window = (sales["date"] > cutoff) & (sales["date"] <= frequency.shift(cutoff, horizon))
        windows.append(
            BacktestWindow(
                cutoff=cutoff,
                history=sales[sales["date"] <= cutoff].reset_index(drop=True),
                actual=sales[in_window].reset_index(drop=True),
            )
        )
    return windows


def cached_by_cutoff(forecaster: Forecaster) -> Forecaster:
    """``forecaster`` remembering its forecast per cutoff. Within one backtest every history is a prefix of
    the same sales, so a forecast made at a cutoff depends on that cutoff alone: an ensemble that backtests
    its members at earlier origins reuses the fits the other origins made, instead of repeating them."""
    forecasts: dict[pd.Timestamp, pd.DataFrame] = {}

    def forecast(history: pd.DataFrame, future: pd.DataFrame) -> pd.DataFrame:
        cutoff = history["date"].max()
        if cutoff not in forecasts:
            forecasts[cutoff] = forecaster(history, future)
        return forecasts[cutoff]

    return forecast


@dataclass(frozen=True)
class BacktestResult:
    windows: list[BacktestWindow]
    forecasts: dict[str, pd.DataFrame]  # model -> common-shape forecasts of every origin
    scores: ForecastScores
    fit_seconds: dict[str, float]  # model -> fit + predict time summed over origins

    def last_forecasts(self) -> dict[str, pd.DataFrame]:
        """Every model's forecast at the last origin: of the holdout."""
        last = self.windows[-1]
        return {name: frame[frame["cutoff"] == last.cutoff] for name, frame in self.forecasts.items()}

    def holdout_scores(self) -> ForecastScores:
        """Scores on the last origin's window alone: the holdout a new model is promoted on."""
        last = self.windows[-1]
        return score_forecasts(self.last_forecasts(), last.actual, last.history)

    def metrics(self) -> dict[str, float]:
        """Every model's scores over all origins, and on the holdout (holdout_<metric>), and fit times."""
        return {
            **self.scores.metrics,
            **{f"holdout_{name}": value for name, value in self.holdout_scores().metrics.items()},
            **{f"{model}_fit_seconds": seconds for model, seconds in self.fit_seconds.items()},
        }

    def metrics_table(self) -> pd.DataFrame:
        """One row per model: its scores over all origins and its fit time."""
        table = self.scores.table().assign(fit_seconds=pd.Series(self.fit_seconds))
        return table.rename_axis("model").reset_index()

    def model_metrics(self, model: str) -> dict[str, float]:
        """One model's scores over all origins (those it has) and its fit time, by the metrics' own names."""
        scores = {metric: value for metric, value in self.scores.table().loc[model].items() if pd.notna(value)}
        return {**scores, "fit_seconds": self.fit_seconds[model]}


def run_backtest(
    sales: pd.DataFrame, windows: list[BacktestWindow], forecasters: dict[str, Forecaster], show_progress: bool = True
) -> BacktestResult:
    """Every forecaster at every window of ``backtest_windows(sales, ...)``; ``sales`` gives the scales."""
    forecasts: dict[str, list[pd.DataFrame]] = {name: [] for name in forecasters}
    fit_seconds = dict.fromkeys(forecasters, 0.0)
    steps = tqdm(total=len(windows) * len(forecasters), desc="backtest", unit="fit", disable=not show_progress)
    for window in windows:
        for name, forecaster in forecasters.items():
            steps.set_postfix_str(f"{name} @ {window.cutoff:%Y-%m-%d}")
            started = time.perf_counter()
            forecast = forecaster(window.history, window.future)
            fit_seconds[name] += time.perf_counter() - started
            forecasts[name].append(forecast.assign(cutoff=window.cutoff))
            steps.update()
    steps.close()
    combined = {name: pd.concat(parts, ignore_index=True) for name, parts in forecasts.items()}
    actual = pd.concat([window.actual for window in windows], ignore_index=True)
    scores = score_forecasts(combined, actual, sales)
    return BacktestResult(windows, combined, scores, fit_seconds)
