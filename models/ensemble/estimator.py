"""The ensemble as a backtest forecaster (learns its combination at every origin from earlier ones) and as a
predictor (fitted members and a learned combination, saved and loaded like the LSTM's)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

from models.backtest import BacktestWindow, Forecaster, backtest_windows
from models.baselines import baseline_forecasters
from models.ensemble.combination import Combination, combine, fit_combination, series_groups
from models.ensemble.config import EnsembleConfig
from models.features import future_rows
from models.lstm.estimator import LSTMPredictor

LSTM = "lstm"


def ensemble_forecaster(
    member_forecasters: dict[str, Forecaster], config: EnsembleConfig, horizon: int, levels: tuple[float, ...]
) -> Forecaster:
    """A backtest forecaster: at each cutoff it backtests its members on ``config.calibration_origins``
    earlier origins of the history it is given, learns the combination there, and combines the members'
    forecasts of the test window. Nothing of the test window is seen; pass members wrapped by
    ``models.backtest.cached_by_cutoff`` so a member fitted at one origin is not fitted again as another
    origin's earlier origin."""

    def forecast(history: pd.DataFrame, future: pd.DataFrame) -> pd.DataFrame:
        cutoff = history["date"].max()
        earlier = backtest_windows(history, horizon, config.calibration_origins)
        backtests = {
            name: pd.concat(
                [member(window.history, window.future).assign(cutoff=window.cutoff) for window in earlier],
                ignore_index=True,
            )
            for name, member in member_forecasters.items()
        }
        actual = pd.concat([window.actual for window in earlier], ignore_index=True)
        groups = series_groups(history, config.grouping)
        combination = fit_combination(backtests, actual, history, groups, levels, config)
        forecasts = {name: member(history, future) for name, member in member_forecasters.items()}
        return combine(forecasts, combination, groups).assign(cutoff=cutoff)

    return forecast


def ensemble_from_backtest(
    forecasts: dict[str, pd.DataFrame],
    windows: list[BacktestWindow],
    lstm: LSTMPredictor,
    config: EnsembleConfig,
    seed: int,
) -> EnsemblePredictor | None:
    """The ensemble for the last window (the holdout), its combination learned from the backtest's
    forecasts at the origins before it. None without such an origin, or with fewer than two of
    ``config.members`` among the backtest's models (an ensemble of one is its member)."""
    members = [name for name in config.members if name in forecasts]
    if len(windows) < 2 or len(members) < 2:
        return None
    earlier, holdout = windows[:-1], windows[-1]
    cutoffs = [window.cutoff for window in earlier]
    backtests = {name: forecasts[name][forecasts[name]["cutoff"].isin(cutoffs)] for name in members}
    actual = pd.concat([window.actual for window in earlier], ignore_index=True)
    groups = series_groups(holdout.history, config.grouping)
    combination = fit_combination(backtests, actual, holdout.history, groups, lstm.quantiles, config)
    return EnsemblePredictor(combination, config, lstm.horizon, seed, lstm if LSTM in members else None)


@dataclass
class EnsemblePredictor:
    """Fitted members and the combination learned for them. The LSTM forecasts from its fitted network;
    the baselines are refitted on the history given to ``predict`` (local statistical models and the
    recursive LightGBM fit in seconds to minutes, and always on the newest data)."""

    combination: Combination
    config: EnsembleConfig
    horizon: int
    seed: int
    lstm: LSTMPredictor | None

    @property
    def quantiles(self) -> tuple[float, ...]:
        return self.combination.levels

    def member_forecasters(self) -> dict[str, Forecaster]:
        baselines = baseline_forecasters(
            [name for name in self.combination.members if name != LSTM], self.horizon, self.seed
        )
        if LSTM not in self.combination.members:
            return baselines
        lstm = self.lstm
        if lstm is None:
            raise ValueError("the combination has the LSTM as a member but no fitted LSTM")

        def lstm_forecast(history: pd.DataFrame, future: pd.DataFrame) -> pd.DataFrame:
            return lstm.predict(history, future).assign(cutoff=history["date"].max())

        return {LSTM: lstm_forecast, **baselines}

    def predict(self, history: pd.DataFrame, future: pd.DataFrame | None = None) -> pd.DataFrame:
        """Like ``LSTMPredictor.predict``: item_id, store_id, date, mean, q<level>... for the ``horizon`` days
        after each series' last history date."""
        future = future_rows(history, self.horizon) if future is None else future
        forecasts = {name: member(history, future) for name, member in self.member_forecasters().items()}
        combined = combine(forecasts, self.combination, series_groups(history, self.config.grouping))
        return combined.drop(columns=["cutoff"], errors="ignore")

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        if self.lstm is not None:
            self.lstm.save(directory / LSTM)
        metadata = {
            "combination": self.combination.as_dict(),
            "config": asdict(self.config),
            "horizon": self.horizon,
            "seed": self.seed,
        }
        (directory / "ensemble.json").write_text(json.dumps(metadata, indent=1))

    @classmethod
    def load(cls, directory: Path) -> EnsemblePredictor:
        metadata = json.loads((directory / "ensemble.json").read_text())
        config = EnsembleConfig(**{**metadata["config"], "members": tuple(metadata["config"]["members"])})
        lstm = LSTMPredictor.load(directory / LSTM) if (directory / LSTM).exists() else None
        return cls(Combination.from_dict(metadata["combination"]), config, metadata["horizon"], metadata["seed"], lstm)
