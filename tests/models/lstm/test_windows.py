"""Training windows drawn under a budget: reproducible, weighted, every series reachable, sharded by rank."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
from lightning_fabric.utilities.distributed import DistributedSamplerWrapper
from pytorch_lightning.callbacks import Callback

from models.features import build_feature_frame
from models.lstm.windows import budget_sampler, build_panel, training_window_starts, window_weights
from tests.models.lstm.test_lstm import estimator, small_config, weekly_sales

CONTEXT = 28
HORIZON = 7


def candidate_windows(n_series: int = 12, n_days: int = 400) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows, first forecast positions and weights of every stride-1 window, the first series selling nothing."""
    sales = weekly_sales(n_series=n_series, n_days=n_days)
    sales.loc[sales["item_id"] == "ITEM_0", "units"] = 0
    panel = build_panel(build_feature_frame(sales), CONTEXT)
    last = panel.target.shape[1] - 1
    rows, starts = training_window_starts(panel, HORIZON, 1, last_target_position=last)
    return rows, starts, window_weights(panel, rows, starts, last, half_life=60.0)


def test_the_same_seed_draws_the_same_windows_and_each_epoch_draws_afresh() -> None:
    _, _, weights = candidate_windows()
    first, again = budget_sampler(weights, 500, seed=7), budget_sampler(weights, 500, seed=7)
    epoch_1, epoch_2 = list(first), list(first)
    assert len(epoch_1) == 500 and epoch_1 == list(again)
    assert epoch_1 != epoch_2
    assert list(budget_sampler(weights, 500, seed=8)) != epoch_1


def test_recent_and_high_volume_windows_are_drawn_more_often_and_every_series_is_reachable() -> None:
    rows, starts, weights = candidate_windows()
    assert (weights > 0).all()
    drawn = np.array(list(budget_sampler(weights, 20_000, seed=0)))
    per_series = Counter(rows[drawn].tolist())
    assert set(per_series) == set(rows.tolist())  # the series that never sold included
    # ITEM_i's level grows with i: the busiest series is drawn more than the one that never sold.
    assert per_series[max(per_series)] > per_series[0]
    ages = starts.max() - starts[drawn]
    assert (ages < 60).mean() > 0.4 > (ages >= 180).mean()


def test_each_process_of_a_data_parallel_fit_draws_its_own_shard_of_the_same_windows() -> None:
    _, _, weights = candidate_windows()
    shards = [
        list(DistributedSamplerWrapper(budget_sampler(weights, 400, seed=3), num_replicas=2, rank=rank, seed=3))
        for rank in (0, 1)
    ]
    assert len(shards[0]) == len(shards[1]) == 200
    assert sorted(shards[0] + shards[1]) == sorted(budget_sampler(weights, 400, seed=3))


class WindowsPerEpoch(Callback):
    def __init__(self) -> None:
        self.counts: list[int] = []

    def on_train_epoch_start(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        self.counts.append(0)

    def on_train_batch_start(self, trainer: pl.Trainer, module: pl.LightningModule, batch: dict, index: int) -> None:
        self.counts[-1] += len(batch["past_target"])


def test_a_fit_under_a_budget_draws_that_many_windows_per_epoch(tmp_path: Path) -> None:
    features = build_feature_frame(weekly_sales(n_series=4, n_days=120))
    seen = WindowsPerEpoch()
    fit = estimator(
        small_config(windows_per_epoch=96, max_epochs=2, early_stopping_patience=5),
        tmp_path,
        show_progress=False,
        callbacks=[seen],
    )
    predictor = fit.fit(features)
    assert seen.counts == [96, 96] and fit.windows_per_epoch == 96 < fit.training_windows
    assert len(predictor.predict(weekly_sales(n_series=4, n_days=120))) == 4 * 14
    everything = estimator(small_config(windows_per_epoch=10**6, max_epochs=1), tmp_path / "all", show_progress=False)
    everything.fit(features)
    assert everything.windows_per_epoch == everything.training_windows
