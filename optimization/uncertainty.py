"""From quantile forecasts to what the planner needs: stock targets or demand scenarios.

Forecast frames here have item_id, store_id, period and one column per quantile level, named
"q<level>" as the forecaster writes them (q0.1, q0.5, ...).
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import pandas as pd
from scipy.special import ndtr

from models.forecast_frame import SERIES_KEY, quantile_levels

STANDARD_NORMAL = NormalDist()


def safety_stock_from_quantiles(
    forecast: pd.DataFrame,
    service_level: float | pd.Series,
    protection_periods: pd.Series,
) -> pd.DataFrame:
    """Least end stock per item-store and period for a cycle service level target.

    Each period's forecast is read as normal: sigma = (q_a - q_0.5) / z_a for the forecast
    quantile a nearest the target above the median.  Demand errors accumulate from today, and
    a plan re-made every review period only needs to cover the errors of one protection
    interval (lead time plus review period, P periods), so with independent periods

        safety_stock[t] = z_target * sqrt(sum of sigma[j]^2 over the last P periods up to t).

    service_level: one level, or a Series indexed by item_id.  protection_periods: a Series
    indexed by (item_id, store_id).  Returns item_id, store_id, period, safety_stock.
    """
    levels = quantile_levels(forecast)
    if 0.5 not in levels:
        raise ValueError("the forecast needs a median column q0.5")
    frame = forecast.sort_values([*SERIES_KEY, "period"], ignore_index=True)
    target = _per_row(frame, service_level).to_numpy(dtype=float)
    if ((target <= 0.5) | (target >= 1)).any():
        raise ValueError("service levels must lie strictly between 0.5 and 1")
    upper_levels = np.array([level for level in levels if level > 0.5])
    if len(upper_levels) == 0:
        raise ValueError("the forecast needs at least one quantile above the median")
    nearest = upper_levels[np.abs(upper_levels[None, :] - target[:, None]).argmin(axis=1)]
    upper = np.choose(
        np.searchsorted(upper_levels, nearest),
        [frame[levels[level]].to_numpy(dtype=float) for level in upper_levels],
    )
    z_nearest = np.array([STANDARD_NORMAL.inv_cdf(level) for level in nearest])
    sigma = np.maximum(upper - frame[levels[0.5]].to_numpy(dtype=float), 0.0) / z_nearest
    window = frame[SERIES_KEY].merge(protection_periods.rename("window").reset_index(), on=SERIES_KEY, how="left")[
        "window"
    ]
    if window.isna().any():
        raise ValueError("protection_periods lacks some item-stores of the forecast")
    variance = _trailing_sums(frame, sigma**2, window.to_numpy(dtype=int))
    z_target = np.array([STANDARD_NORMAL.inv_cdf(level) for level in target])
    return frame[[*SERIES_KEY, "period"]].assign(safety_stock=z_target * np.sqrt(variance))


def _per_row(frame: pd.DataFrame, value: float | pd.Series) -> pd.Series:
    if isinstance(value, pd.Series):
        mapped = frame["item_id"].map(value)
        if mapped.isna().any():
            raise ValueError("service_level lacks some items of the forecast")
        return mapped
    return pd.Series(float(value), index=frame.index)


def _trailing_sums(frame: pd.DataFrame, values: np.ndarray, window: np.ndarray) -> np.ndarray:
    """Per row: sum of values over the `window` rows up to it, within its item-store."""
    group_start = frame.groupby(SERIES_KEY, sort=False).cumcount().to_numpy()
    cumulative = np.concatenate([[0.0], np.cumsum(values)])
    rows = np.arange(len(values))
    first = rows - np.minimum(group_start, window - 1)
    return cumulative[rows + 1] - cumulative[first]


def sample_demand_scenarios(
    forecast: pd.DataFrame, n_scenarios: int, seed: int, period_correlation: float = 0.0
) -> pd.DataFrame:
    """Demand paths drawn from the forecast quantiles (see QuantileFunction).

    Periods of one item-store share a Gaussian-copula correlation `period_correlation`, since
    forecast errors of neighbouring days usually move together (a level the model misjudged).
    Returns item_id, store_id, scenario, period, demand.
    """
    if not 0 <= period_correlation < 1:
        raise ValueError("period_correlation must lie in [0, 1)")
    frame = forecast.sort_values([*SERIES_KEY, "period"], ignore_index=True)
    rng = np.random.default_rng(seed)
    series = frame.groupby(SERIES_KEY, sort=False).ngroup().to_numpy()
    shared = rng.standard_normal((series.max() + 1 if len(series) else 0, n_scenarios))[series]
    own = rng.standard_normal((len(frame), n_scenarios))
    normal = np.sqrt(period_correlation) * shared + np.sqrt(1 - period_correlation) * own
    draws = QuantileFunction.of(frame).at(ndtr(normal))
    return pd.DataFrame(
        {
            "item_id": np.repeat(frame["item_id"].to_numpy(), n_scenarios),
            "store_id": np.repeat(frame["store_id"].to_numpy(), n_scenarios),
            "scenario": np.tile(np.arange(n_scenarios), len(frame)),
            "period": np.repeat(frame["period"].to_numpy(), n_scenarios),
            "demand": draws.ravel(),
        }
    )


@dataclass(frozen=True)
class QuantileFunction:
    """One demand distribution per forecast row, read off its quantiles.

    Piecewise linear through the forecast quantiles; below the lowest, linear down to level 0
    (never below zero); above the highest level a, an exponential tail through the two top
    quantiles, q(u) = q_a + b·ln((1 - a) / (1 - u)).  Retail demand has long right tails, and
    the plan's critical fractiles often lie above the forecaster's top quantile.
    """

    levels: np.ndarray  # 0 and the forecast's levels, increasing
    values: np.ndarray  # rows × levels, non-decreasing along each row
    tail_scale: np.ndarray  # b per row

    @classmethod
    def of(cls, forecast: pd.DataFrame) -> QuantileFunction:
        levels = quantile_levels(forecast)
        if len(levels) < 2:
            raise ValueError("a demand distribution needs at least two forecast quantiles")
        level_values = np.array(list(levels))
        quantiles = np.maximum.accumulate(
            np.maximum(forecast[list(levels.values())].to_numpy(dtype=float), 0.0), axis=1
        )
        low_slope = (quantiles[:, 1] - quantiles[:, 0]) / (level_values[1] - level_values[0])
        at_zero = np.clip(quantiles[:, 0] - low_slope * level_values[0], 0.0, quantiles[:, 0])
        top, below_top = level_values[-1], level_values[-2]
        tail_scale = (quantiles[:, -1] - quantiles[:, -2]) / np.log((1 - below_top) / (1 - top))
        return cls(
            levels=np.concatenate([[0.0], level_values]),
            values=np.column_stack([at_zero, quantiles]),
            tail_scale=tail_scale,
        )

    def at(self, uniforms: np.ndarray) -> np.ndarray:
        """Quantiles at levels uniforms[row, :]."""
        top = self.levels[-1]
        inside = np.minimum(uniforms, top)
        segment = np.clip(np.searchsorted(self.levels, inside, side="right") - 1, 0, len(self.levels) - 2)
        left = np.take_along_axis(self.values, segment, axis=1)
        right = np.take_along_axis(self.values, segment + 1, axis=1)
        weight = (inside - self.levels[segment]) / (self.levels[segment + 1] - self.levels[segment])
        body = left + weight * (right - left)
        excess = np.log((1 - top) / np.maximum(1 - uniforms, 1e-300))
        return np.where(uniforms > top, self.values[:, -1:] + self.tail_scale[:, None] * excess, body)

    def mean(self) -> np.ndarray:
        widths = np.diff(self.levels)
        body = ((self.values[:, :-1] + self.values[:, 1:]) / 2 * widths).sum(axis=1)
        # E[-ln V] = 1 for V uniform on (0, 1).
        return body + (1 - self.levels[-1]) * (self.values[:, -1] + self.tail_scale)


CORRELATIONS = tuple(np.round(np.arange(0.0, 0.95, 0.1), 2))
SPREADS = (1.0, 1.25, 1.5, 2.0, 2.5)


@dataclass(frozen=True)
class ScenarioCalibration:
    """How demand paths are drawn from a forecast: the Gaussian-copula correlation of its periods,
    and the factor its quantiles' distances from the median are widened by."""

    period_correlation: float = 0.0
    spread: float = 1.0


def widened(forecast: pd.DataFrame, spread: float) -> pd.DataFrame:
    """The forecast with every quantile's distance from the median times `spread`, never below zero:
    a forecaster whose intervals cover less than they say, widened to cover it."""
    if spread == 1.0:
        return forecast
    levels = quantile_levels(forecast)
    if 0.5 not in levels:
        raise ValueError("widening a forecast needs its median q0.5")
    median = forecast[levels[0.5]].to_numpy(dtype=float)
    return forecast.assign(
        **{
            column: np.maximum(median + spread * (forecast[column].to_numpy(dtype=float) - median), 0.0)
            for column in levels.values()
        }
    )


def calibrate_scenarios(
    forecast: pd.DataFrame,
    actual: np.ndarray,
    window_periods: int,
    correlations: tuple[float, ...] = CORRELATIONS,
    spreads: tuple[float, ...] = SPREADS,
    n_scenarios: int = 200,
    seed: int = 0,
) -> ScenarioCalibration:
    """The spread and correlation under which demand drawn from `forecast` best matches history.

    Each is chosen by how well actual demand sits among demand sampled under it: every actual value
    gets its level among the samples (mid-rank for ties), and the candidate whose levels are closest
    to uniform (Cramér-von Mises distance) wins, the first one on a tie.  The spread first, on each
    period's demand alone; then the correlation, on demand summed over the first `window_periods`
    (a protection interval), which is what a plan needs right and what the correlation widens.
    `actual` is aligned with the forecast's rows.
    """
    frame = forecast.assign(actual=np.asarray(actual, dtype=float))
    frame = frame.loc[frame["period"] < window_periods].sort_values([*SERIES_KEY, "period"], ignore_index=True)
    demand = frame.drop(columns="actual")
    actual_sums = frame.groupby(SERIES_KEY, sort=True)["actual"].sum().to_numpy()

    def per_period(spread: float) -> float:
        paths = sample_demand_scenarios(widened(demand, spread), n_scenarios, seed)
        draws = paths["demand"].to_numpy().reshape(len(frame), n_scenarios)
        return _uniformity(draws, frame["actual"].to_numpy())

    def summed(correlation: float) -> float:
        paths = sample_demand_scenarios(widened(demand, spread), n_scenarios, seed, correlation)
        sums = paths.groupby([*SERIES_KEY, "scenario"], sort=True)["demand"].sum()
        return _uniformity(sums.to_numpy().reshape(len(actual_sums), n_scenarios), actual_sums)

    spread = min(spreads, key=per_period)
    return ScenarioCalibration(min(correlations, key=summed), spread)


def _uniformity(samples: np.ndarray, actual: np.ndarray) -> float:
    """Cramér-von Mises distance from uniform of each actual value's mid-rank level among its samples (a row each)."""
    below = (samples < actual[:, None]).mean(axis=1)
    tied = (samples == actual[:, None]).mean(axis=1)
    levels = np.sort(below + tied / 2)
    expected = (np.arange(len(levels)) + 0.5) / len(levels)
    return float(((levels - expected) ** 2).mean())


def expected_demand_from_quantiles(forecast: pd.DataFrame) -> pd.DataFrame:
    """Mean of the same distribution the scenarios are drawn from."""
    mean = QuantileFunction.of(forecast).mean()
    return forecast[[*SERIES_KEY, "period"]].assign(demand=mean)


def planning_demand(
    forecast: pd.DataFrame,
    mode: str,
    *,
    demand_level: float = 0.5,
    service_level: float | pd.Series = 0.95,
    protection_periods: pd.Series | None = None,
    n_scenarios: int = 50,
    seed: int = 0,
    period_correlation: float = 0.0,
) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """Demand (and stock targets) for the planner from a quantile forecast by period.

    "point": the demand_level quantile; "quantile": that plus service-level targets (needs
    protection_periods); "scenario": sampled demand paths.
    """
    keys = [*SERIES_KEY, "period"]
    if mode == "scenario":
        return sample_demand_scenarios(forecast, n_scenarios, seed, period_correlation), None
    column = quantile_levels(forecast).get(demand_level)
    if column is None:
        raise ValueError(f"the forecast has no quantile {demand_level}")
    point = forecast[keys].assign(demand=forecast[column].to_numpy(dtype=float))
    if mode == "point":
        return point, None
    if mode == "quantile":
        if protection_periods is None:
            raise ValueError("quantile mode needs protection_periods (lead time plus review)")
        return point, safety_stock_from_quantiles(forecast, service_level, protection_periods)
    raise ValueError(f"unknown uncertainty mode {mode!r}; use point, quantile or scenario")
