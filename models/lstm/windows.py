"""Series panel and training windows: long frames in, fixed-shape tensors out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset, WeightedRandomSampler

from models.features import CATEGORY_COLUMNS, COVARIATE_COLUMNS
from models.forecast_frame import SeriesCodes
from replenish.frequency import Frequency, frequency_of

UNKNOWN_CATEGORY = "unknown"


@dataclass(frozen=True)
class SeriesPanel:
    """Every series on one grid of the data's periods, left-padded by ``context_length`` unobserved periods."""

    series: SeriesCodes  # [series] the rows' series: row i is code i, its item_id and store_id row i of series.keys
    start_date: pd.Timestamp  # date at padded position ``context_length``
    context_length: int
    target: np.ndarray  # [series, padded_time] units, 0 where unknown
    observed: np.ndarray  # [series, padded_time] 1 where units are known
    trainable: np.ndarray  # [series, padded_time] observed and not censored by a stockout
    covariates: np.ndarray  # [series, padded_time, covariates]
    categories: np.ndarray  # [series, len(CATEGORY_COLUMNS)] id values (str) of each series
    frequency: Frequency

    def position(self, dates: pd.Series | pd.DatetimeIndex) -> np.ndarray:
        start = self.frequency.ordinals(pd.DatetimeIndex([self.start_date]))[0]
        return self.context_length + self.frequency.ordinals(dates) - start


def build_panel(frame: pd.DataFrame, context_length: int) -> SeriesPanel:
    """``frame`` holds covariates for every row; ``units`` is NaN on rows to be forecast."""
    series = SeriesCodes.of(frame)
    row_series = series.codes(frame)  # [rows] each row's panel row
    frequency = frequency_of(frame["date"])
    start_date = frame["date"].min()
    period = frequency.ordinals(frame["date"])
    column = context_length + period - period.min()
    shape = (len(series), context_length + int(period.max() - period.min()) + 1)

    units = frame["units"].to_numpy(dtype=float)
    known = ~np.isnan(units)
    available = frame["available"].to_numpy(dtype=float) if "available" in frame else np.ones(len(frame))
    target = np.zeros(shape, dtype=np.float32)
    observed = np.zeros(shape, dtype=np.float32)
    trainable = np.zeros(shape, dtype=np.float32)
    covariates = np.zeros((*shape, len(COVARIATE_COLUMNS)), dtype=np.float32)
    target[row_series, column] = np.where(known, units, 0.0)
    observed[row_series, column] = known
    trainable[row_series, column] = known & (available > 0)
    covariates[row_series, column] = frame[COVARIATE_COLUMNS].to_numpy(dtype=np.float32)
    first_row = np.unique(row_series, return_index=True)[1]
    categories = np.column_stack(
        [
            frame[name].astype(str).to_numpy()[first_row] if name in frame else np.full(len(series), UNKNOWN_CATEGORY)
            for name in CATEGORY_COLUMNS
        ]
    )
    return SeriesPanel(
        series, start_date, context_length, target, observed, trainable, covariates, categories, frequency
    )


def gather_windows(
    panel: SeriesPanel, series_rows: np.ndarray, first_future: np.ndarray, horizon: int
) -> dict[str, torch.Tensor]:
    """Cut one window per (series row, first forecast position) pair."""
    context = panel.context_length
    past = first_future[:, None] + np.arange(-context, 0)  # [windows, context]
    future = first_future[:, None] + np.arange(horizon)  # [windows, horizon]
    rows = series_rows[:, None]
    return {
        "past_target": torch.from_numpy(panel.target[rows, past]),  # [windows, context]
        "past_observed": torch.from_numpy(panel.observed[rows, past]),  # [windows, context]
        "past_covariates": torch.from_numpy(panel.covariates[rows, past]),  # [windows, context, covariates]
        "future_covariates": torch.from_numpy(panel.covariates[rows, future]),  # [windows, horizon, covariates]
        "future_target": torch.from_numpy(panel.target[rows, future]),  # [windows, horizon]
        "future_mask": torch.from_numpy(panel.trainable[rows, future]),  # [windows, horizon]
    }


def training_window_starts(
    panel: SeriesPanel, horizon: int, stride: int, last_target_position: int
) -> tuple[np.ndarray, np.ndarray]:
    """Every ``stride``-th window whose targets end by ``last_target_position`` and that has
    at least one observed past day and one trainable future day."""
    candidates = np.arange(panel.context_length + 1, last_target_position - horizon + 2)[::-1][::stride]
    row_grid, start_grid = np.meshgrid(np.arange(len(panel.series)), candidates, indexing="ij")
    rows, starts = row_grid.ravel(), start_grid.ravel()
    observed_cumsum = np.concatenate([np.zeros((len(panel.series), 1)), panel.observed.cumsum(axis=1)], axis=1)
    trainable_cumsum = np.concatenate([np.zeros((len(panel.series), 1)), panel.trainable.cumsum(axis=1)], axis=1)
    past_observed = observed_cumsum[rows, starts] - observed_cumsum[rows, starts - panel.context_length]
    future_trainable = trainable_cumsum[rows, starts + horizon] - trainable_cumsum[rows, starts]
    keep = (past_observed > 0) & (future_trainable > 0)
    return rows[keep], starts[keep]


def window_weights(
    panel: SeriesPanel, series_rows: np.ndarray, first_future: np.ndarray, last_position: int, half_life: float | None
) -> np.ndarray:
    """[windows] how often each window is drawn under a budget: in proportion to the square root of 1 + its
    series' mean observed units up to ``last_position`` and, with a ``half_life`` in periods, halving every
    ``half_life`` periods before there. Every weight is above zero, so every series stays reachable."""
    observed = panel.observed[:, : last_position + 1]
    with np.errstate(invalid="ignore", divide="ignore"):
        level = (panel.target[:, : last_position + 1] * observed).sum(axis=1) / observed.sum(axis=1)
    volume = np.sqrt(1.0 + np.nan_to_num(level))  # [series]
    weights = volume[series_rows]  # [windows]
    if half_life is not None:
        weights = weights * 0.5 ** ((last_position - first_future) / half_life)
    return weights


def budget_sampler(weights: np.ndarray, budget: int, seed: int) -> WeightedRandomSampler:
    """Draws ``budget`` windows afresh each epoch, in proportion to ``weights``, from a generator seeded by
    ``seed``: the same fit draws the same windows. In a data-parallel fit every process draws the same list,
    and Lightning's distributed wrapper gives each process its own shard of it."""
    return WeightedRandomSampler(
        torch.from_numpy(weights), budget, replacement=True, generator=torch.Generator().manual_seed(seed)
    )


def in_sample_scales(panel: SeriesPanel, last_position: int) -> np.ndarray:
    """[series, 2]: mean squared and mean absolute one-step change of the observed units up to
    ``last_position``, the scales of RMSSE and of the scaled pinball loss (M5). NaN for a series
    with no two consecutive observed days."""
    target = panel.target[:, : last_position + 1]
    both = panel.observed[:, 1 : last_position + 1] * panel.observed[:, :last_position]  # [series, time - 1]
    change = np.diff(target, axis=1) * both
    pairs = both.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.column_stack([(change**2).sum(axis=1) / pairs, np.abs(change).sum(axis=1) / pairs]).astype(np.float32)


class WindowDataset(Dataset):
    """Windows cut on demand; ``__getitems__`` gathers a whole batch with one fancy index."""

    def __init__(
        self,
        panel: SeriesPanel,
        series_rows: np.ndarray,
        first_future: np.ndarray,
        horizon: int,
        category_indices: np.ndarray,
        loss_scales: np.ndarray,
    ) -> None:
        self.panel = panel
        self.series_rows = series_rows
        self.first_future = first_future
        self.horizon = horizon
        self.category_indices = category_indices  # [series, categories] embedding indices per panel row
        self.loss_scales = loss_scales  # [series, 2] see in_sample_scales

    def __len__(self) -> int:
        return len(self.series_rows)

    def __getitems__(self, indices: list[int]) -> dict[str, torch.Tensor]:
        picked = np.asarray(indices)
        rows = self.series_rows[picked]
        batch = gather_windows(self.panel, rows, self.first_future[picked], self.horizon)
        batch["categories"] = torch.from_numpy(self.category_indices[rows])
        batch["loss_scales"] = torch.from_numpy(self.loss_scales[rows])  # [batch, 2]
        return batch

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {name: tensor[0] for name, tensor in self.__getitems__([index]).items()}


def already_batched(batch: Any) -> dict[str, torch.Tensor]:
    """The DataLoader's collate: WindowDataset.__getitems__ already returns one batch's tensors (typed
    Any, as the loader declares its collate to take a list of samples)."""
    return batch
