"""The LSTM forecaster: network, loss, windows, estimator and predictor."""

from __future__ import annotations

import dataclasses
import json
import signal
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback

from models.features import COVARIATE_COLUMNS, build_feature_frame, future_rows
from models.lstm.config import LSTMConfig
from models.lstm.estimator import EpochWeights, LSTMEstimator, LSTMPredictor, category_indices
from models.lstm.module import (
    LSTMQuantileNetwork,
    pinball_loss,
    rolling_means,
    seasonal_lags,
    series_scale,
    squared_error_loss,
)
from models.lstm.windows import build_panel, in_sample_scales, training_window_starts

WEEKLY_PROFILE = np.array([4.0, 5.0, 6.0, 8.0, 12.0, 16.0, 6.0])


def weekly_sales(n_series: int = 6, n_days: int = 160, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    dates = pd.date_range("2024-01-01", periods=n_days, freq="D")
    frames = []
    for index in range(n_series):
        level = 1.0 + index / 2
        frames.append(
            pd.DataFrame(
                {
                    "item_id": f"ITEM_{index}",
                    "store_id": "S1",
                    "dept_id": f"DEPT_{index % 2}",
                    "cat_id": "CAT",
                    "date": dates,
                    "units": rng.poisson(level * WEEKLY_PROFILE[dates.day_of_week]),
                    "price": 2.0,
                    "promo": 0,
                    "event": 0,
                    "available": 1,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


HORIZON = 14
QUANTILES = (0.025, 0.1, 0.5, 0.8, 0.9, 0.95, 0.975)
SEED = 42


def small_config(**changes: object) -> LSTMConfig:
    return LSTMConfig(**{"context_length": 28, "hidden_size": 16, "max_epochs": 6, "batch_size": 64, **changes})


def estimator(config: LSTMConfig, checkpoints: Path, **options: object) -> LSTMEstimator:
    """The estimator of a 14-day forecast at the default quantile levels."""
    return LSTMEstimator(config, HORIZON, QUANTILES, SEED, checkpoints, **options)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def fitted(tmp_path_factory: pytest.TempPathFactory) -> LSTMPredictor:
    features = build_feature_frame(weekly_sales())
    return estimator(small_config(), tmp_path_factory.mktemp("checkpoints")).fit(features)


def test_network_returns_a_mean_and_non_crossing_quantiles_per_horizon_day() -> None:
    network = LSTMQuantileNetwork(
        category_cardinalities=[5, 3, 3, 2],
        n_covariates=len(COVARIATE_COLUMNS),
        horizon=5,
        n_quantiles=3,
        hidden_size=8,
        num_layers=2,
        embedding_dim=3,
        dropout=0.1,
    )
    batch, context = 7, 30
    mean, quantiles, scale = network(
        torch.rand(batch, context) * 10,
        torch.ones(batch, context),
        torch.randn(batch, context, len(COVARIATE_COLUMNS)),
        torch.randn(batch, 5, len(COVARIATE_COLUMNS)),
        torch.randint(0, 2, (batch, 4)),
    )
    assert mean.shape == (batch, 5) and quantiles.shape == (batch, 5, 3) and scale.shape == (batch,)
    assert (mean >= 0).all() and (quantiles.diff(dim=-1) >= 0).all()
    assert (scale >= 1.0).all()


def test_rolling_means_count_only_observed_days() -> None:
    values = torch.tensor([[2.0, 4.0, 100.0, 6.0]])
    observed = torch.tensor([[1.0, 1.0, 0.0, 1.0]])  # the 100 is not a known value
    means = rolling_means(values, observed, windows=(2, 4))
    assert means[0, :, 0].tolist() == [2.0, 3.0, 4.0, 6.0]
    assert means[0, :, 1].tolist() == [2.0, 3.0, 3.0, 4.0]


def test_the_recent_scale_follows_a_relaunch_and_falls_back_to_the_whole_context() -> None:
    # A series back on sale for its last 4 days at 20 a day, after 8 days of nothing.
    relaunched = torch.tensor([[0.0] * 8 + [20.0] * 4])
    seen = torch.ones_like(relaunched)
    assert series_scale(relaunched, seen).item() == pytest.approx(80 / 12)
    assert series_scale(relaunched, seen, window=4).item() == pytest.approx(20.0)
    # Nothing observed in the recent window: the level of the whole context, never below one unit.
    unseen_lately = torch.tensor([[1.0, 0.0, 0.0, 0.0, 0.0, 0.0]])
    assert series_scale(torch.tensor([[9.0, 3.0, 0.0, 0.0, 5.0, 5.0]]), unseen_lately, window=3).item() == 9.0
    assert series_scale(torch.zeros(1, 6), torch.ones(1, 6), window=3).item() == 1.0


def test_seasonal_lags_repeat_the_last_season_over_the_horizon() -> None:
    values = torch.arange(28, dtype=torch.float32)[None, :]  # day t holds t
    lags = seasonal_lags(values, torch.ones_like(values), horizon=10, lags=(7, 28))
    assert lags[0, :, 0].tolist() == [21, 22, 23, 24, 25, 26, 27, 21, 22, 23]  # same weekday last week
    assert lags[0, :, 2].tolist() == list(range(10))  # four weeks earlier
    assert (lags[0, :, 1] == 1).all() and (lags[0, :, 3] == 1).all()


def test_pinball_loss_ignores_censored_days() -> None:
    levels = torch.tensor([0.1, 0.5, 0.9])
    predicted = torch.zeros(1, 2, 3)
    target = torch.tensor([[1.0, 1000.0]])
    only_first_day = pinball_loss(predicted, target, torch.tensor([[1.0, 0.0]]), levels)
    assert only_first_day == pytest.approx(pinball_loss(predicted[:, :1], target[:, :1], torch.ones(1, 1), levels))
    assert pinball_loss(predicted, target, torch.ones(1, 2), levels) > 100 * only_first_day
    mean = torch.zeros(1, 2)
    assert squared_error_loss(mean, target, torch.tensor([[1.0, 0.0]])) == pytest.approx(1.0)


def test_in_sample_scales_use_consecutive_observed_days_only() -> None:
    sales = pd.DataFrame(
        {
            "item_id": ["A"] * 4 + ["B"] * 3,
            "store_id": "S",
            "units": [0, 2, 0, 2, 1, 3, 5],
            "date": [
                *pd.date_range("2024-01-01", periods=4),
                *pd.to_datetime(["2024-01-01", "2024-01-03", "2024-01-04"]),
            ],
            "price": 1.0,
        }
    )
    panel = build_panel(build_feature_frame(sales), context_length=28)
    scales = in_sample_scales(panel, last_position=panel.target.shape[1] - 1)
    assert scales[0].tolist() == [4.0, 2.0]  # changes of ±2
    assert scales[1].tolist() == [4.0, 2.0]  # only 3 -> 5 is a change between two known days


def test_stockout_days_are_not_training_targets() -> None:
    sales = weekly_sales(n_series=1, n_days=40)
    sales.loc[sales.index[20:25], ["units", "available"]] = [0, 0]  # sold out: zero sales, not zero demand
    panel = build_panel(build_feature_frame(sales), context_length=28)
    assert panel.observed[0, 28 + 20 : 28 + 25].all()
    assert not panel.trainable[0, 28 + 20 : 28 + 25].any()
    assert panel.trainable[0, 28 : 28 + 20].all() and panel.trainable[0, 28 + 25 :].all()


def test_training_windows_stay_inside_the_training_span_and_see_history() -> None:
    sales = weekly_sales(n_series=2, n_days=60)
    # The second series starts 30 days late: leading days are unobserved, not zero demand.
    sales = sales[~((sales["item_id"] == "ITEM_1") & (sales["date"] < "2024-01-31"))]
    panel = build_panel(build_feature_frame(sales), context_length=28)
    assert panel.observed[1, 28:58].sum() == 0 and panel.observed[1, 58:].all()
    last_position = panel.target.shape[1] - 1 - 7
    rows, starts = training_window_starts(panel, horizon=7, stride=1, last_target_position=last_position)
    assert (starts + 7 - 1 <= last_position).all()
    for row, start in zip(rows, starts, strict=False):
        assert panel.observed[row, start - 28 : start].sum() > 0
        assert panel.trainable[row, start : start + 7].sum() > 0


def test_predictor_learns_the_weekly_pattern(fitted: LSTMPredictor) -> None:
    history = weekly_sales()
    forecast = fitted.predict(history)
    assert len(forecast) == 6 * 14
    assert forecast["date"].min() == history["date"].max() + pd.Timedelta(days=1)
    for point in ("q0.5", "mean"):
        by_weekday = forecast.groupby(forecast["date"].dt.day_of_week)[point].mean()
        assert np.corrcoef(by_weekday.to_numpy(), WEEKLY_PROFILE)[0, 1] > 0.8, point
    columns = ["q0.025", "q0.1", "q0.5", "q0.8", "q0.9", "q0.95", "q0.975"]
    assert (forecast[columns].diff(axis=1).iloc[:, 1:] >= 0).all().all()


def test_predictor_round_trips_through_disk(fitted: LSTMPredictor, tmp_path: Path) -> None:
    fitted.save(tmp_path / "predictor")
    reloaded = LSTMPredictor.load(tmp_path / "predictor")
    history = weekly_sales()
    pd.testing.assert_frame_equal(fitted.predict(history), reloaded.predict(history))


def test_a_predictor_saved_before_the_scale_window_setting_scales_by_its_whole_context(tmp_path: Path) -> None:
    features = build_feature_frame(weekly_sales(n_series=2, n_days=90))
    config = small_config(max_epochs=1, scale_window="recent")
    fitted = estimator(config, tmp_path / "checkpoints", show_progress=False).fit(features)
    fitted.save(tmp_path / "predictor")
    metadata_file = tmp_path / "predictor" / "predictor.json"
    metadata = json.loads(metadata_file.read_text())
    del metadata["config"]["scale_window"]
    metadata_file.write_text(json.dumps(metadata))
    reloaded = LSTMPredictor.load(tmp_path / "predictor")
    assert fitted.networks[0].scale_window == 28
    assert reloaded.config.scale_window == "context" and reloaded.networks[0].scale_window is None


def test_predictor_handles_short_history_and_unseen_series(fitted: LSTMPredictor) -> None:
    newcomer = weekly_sales(n_series=1, n_days=5).assign(item_id="NEW_ITEM")
    forecast = fitted.predict(newcomer)
    assert len(forecast) == 14 and (forecast["q0.1"] >= 0).all() and forecast["q0.5"].notna().all()
    # A new item still gets its store's, department's and category's embeddings.
    panel = build_panel(build_feature_frame(newcomer), context_length=28)
    assert category_indices(panel, fitted.vocabularies).tolist() == [[0, 1, 1, 1]]


def test_predictor_keeps_ids_holding_the_old_separator_apart(fitted: LSTMPredictor) -> None:
    """("ITEM_0|S1", "x") and ("ITEM_0", "S1|x") were one series "ITEM_0|S1|x" when ids were joined."""
    history = weekly_sales(n_series=2, n_days=60)
    history["item_id"] = np.where(history["item_id"] == "ITEM_0", "ITEM_0|S1", "ITEM_0")
    history["store_id"] = np.where(history["item_id"] == "ITEM_0", "S1|x", "x")
    forecast = fitted.predict(history)
    assert forecast.groupby(["item_id", "store_id"]).size().to_dict() == {
        ("ITEM_0", "S1|x"): 14,
        ("ITEM_0|S1", "x"): 14,
    }
    # Series are forecast apart: the second one sells more.
    mean = forecast.groupby("store_id")["mean"].mean()
    assert mean["S1|x"] > mean["x"]


def test_predictor_uses_given_future_covariates(fitted: LSTMPredictor) -> None:
    history = weekly_sales()
    planned = future_rows(history, 14)
    promoted = planned.assign(promo=1, price=planned["price"] * 0.5)
    assert not np.allclose(fitted.predict(history, planned)["q0.5"], fitted.predict(history, promoted)["q0.5"])


class ValidationRecorder(Callback):
    """Every validated epoch's loss and network weights, as the test sees them."""

    def __init__(self) -> None:
        self.epochs: list[tuple[float, dict[str, torch.Tensor]]] = []

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.sanity_checking:
            weights = {name: value.detach().clone() for name, value in pl_module.network.state_dict().items()}
            self.epochs.append((float(trainer.callback_metrics["val_loss"]), weights))


def mean_of_lowest(epochs: list[tuple[float, dict[str, torch.Tensor]]], count: int) -> dict[str, torch.Tensor]:
    lowest = [weights for _, weights in sorted(epochs, key=lambda epoch: epoch[0])[:count]]
    return {name: sum(weights[name] for weights in lowest) / len(lowest) for name in lowest[0]}


def test_epoch_weights_keep_the_epochs_of_lowest_validation_loss_and_average_them() -> None:
    def validated(loss: float) -> SimpleNamespace:
        return SimpleNamespace(sanity_checking=False, callback_metrics={"val_loss": torch.tensor(loss)})

    def trained(weight: float) -> SimpleNamespace:
        return SimpleNamespace(network=SimpleNamespace(state_dict=lambda: {"weight": torch.full((2,), weight)}))

    epochs = EpochWeights(3)
    for loss, weight in [(0.9, 10.0), (0.5, 2.0), (0.7, 7.0), (0.6, 6.0)]:
        epochs.on_validation_end(validated(loss), trained(weight))  # type: ignore[arg-type]
    assert [loss for loss, _ in epochs.epochs] == pytest.approx([0.5, 0.6, 0.7])  # 0.9's weights not kept
    assert epochs.averaged()["weight"].tolist() == [5.0, 5.0]
    # From a checkpoint's state, as a resumed fit: with a smaller count, the lowest of those kept.
    resumed = EpochWeights(2)
    resumed.load_state_dict(epochs.state_dict())
    assert resumed.averaged()["weight"].tolist() == [4.0, 4.0]


def test_a_fit_with_averaged_epochs_predicts_from_the_averaged_network(tmp_path: Path) -> None:
    features = build_feature_frame(weekly_sales(n_series=3, n_days=120))
    recorded = ValidationRecorder()
    config = small_config(max_epochs=3, averaged_epochs=2)
    predictor = estimator(config, tmp_path, callbacks=[recorded], show_progress=False).fit(features)
    assert len(recorded.epochs) == 3
    expected = mean_of_lowest(recorded.epochs, 2)
    for name, value in predictor.networks[0].state_dict().items():
        torch.testing.assert_close(value, expected[name])


def test_same_seed_gives_the_same_model(tmp_path: Path) -> None:
    features = build_feature_frame(weekly_sales(n_series=3, n_days=90))
    config = small_config(max_epochs=2)
    first = estimator(config, tmp_path / "a").fit(features)
    second = estimator(config, tmp_path / "b").fit(features)
    pd.testing.assert_frame_equal(first.predict(features), second.predict(features))


def test_too_little_history_is_a_clear_error(tmp_path: Path) -> None:
    features = build_feature_frame(weekly_sales(n_series=2, n_days=20))
    with pytest.raises(ValueError, match="too little history"):
        estimator(small_config(), tmp_path).fit(features)


class CrashAtEpoch(Callback):
    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_train_epoch_end(self, trainer: object, pl_module: object) -> None:
        if trainer.current_epoch == self.epoch:
            raise RuntimeError("simulated crash")


class EpochCounter(Callback):
    def __init__(self) -> None:
        self.epochs_started = 0

    def on_train_epoch_start(self, trainer: object, pl_module: object) -> None:
        self.epochs_started += 1


def test_interrupted_fit_resumes_from_its_last_checkpoint_and_averages_epochs_from_before_it(tmp_path: Path) -> None:
    features = build_feature_frame(weekly_sales(n_series=3, n_days=90))
    config = small_config(max_epochs=4, early_stopping_patience=10, averaged_epochs=2)
    with pytest.raises(RuntimeError, match="simulated crash"):
        estimator(config, tmp_path, resume=True, callbacks=[CrashAtEpoch(3)], show_progress=False).fit(features)
    checkpoint = torch.load(tmp_path / "last.ckpt", map_location="cpu", weights_only=True)
    before_crash = checkpoint["callbacks"]["EpochWeights"]["epochs"]

    counter = EpochCounter()
    after_crash = ValidationRecorder()
    resumed = estimator(config, tmp_path, resume=True, callbacks=[counter, after_crash], show_progress=False)
    predictor = resumed.fit(features)
    # The crash came in the last epoch: at least the first three are in the last checkpoint.
    assert resumed.resumed_from_epoch in (3, 4) and len(before_crash) == 2
    assert counter.epochs_started == 4 - resumed.resumed_from_epoch  # finished epochs were not trained again
    assert resumed.epochs_run == 4
    # The average is over the best two epochs of the whole fit: at least one of them before the crash.
    expected = mean_of_lowest([*before_crash, *after_crash.epochs], 2)
    for name, value in predictor.networks[0].state_dict().items():
        torch.testing.assert_close(value, expected[name])
    assert predictor.predict(features)["q0.5"].notna().all()


def test_without_resume_a_fit_starts_over(tmp_path: Path) -> None:
    features = build_feature_frame(weekly_sales(n_series=3, n_days=90))
    config = small_config(max_epochs=2, early_stopping_patience=10)
    estimator(config, tmp_path, show_progress=False).fit(features)
    counter = EpochCounter()
    again = estimator(config, tmp_path, resume=False, callbacks=[counter], show_progress=False)
    again.fit(features)
    assert again.resumed_from_epoch is None and counter.epochs_started == 2


def test_an_ensemble_averages_its_members_and_round_trips(tmp_path: Path) -> None:
    features = build_feature_frame(weekly_sales(n_series=3, n_days=90))
    config = small_config(max_epochs=2, ensemble_size=2)
    ensemble = estimator(config, tmp_path / "ensemble", show_progress=False).fit(features)
    assert len(ensemble.networks) == 2
    members = [dataclasses.replace(ensemble, networks=[network]).predict(features) for network in ensemble.networks]
    assert not np.allclose(members[0]["mean"], members[1]["mean"])  # different seeds, different members
    forecast = ensemble.predict(features)
    np.testing.assert_allclose(forecast["mean"], (members[0]["mean"] + members[1]["mean"]) / 2, rtol=1e-5)
    ensemble.save(tmp_path / "saved")
    pd.testing.assert_frame_equal(LSTMPredictor.load(tmp_path / "saved").predict(features), forecast)


KILL_AT_EPOCH_SCRIPT = """
import os, signal, sys
from pathlib import Path
from pytorch_lightning import Callback
from models.features import build_feature_frame
from tests.models.lstm.test_lstm import estimator, small_config, weekly_sales

class KillAtEpochStart(Callback):
    def on_train_epoch_start(self, trainer, pl_module):
        if trainer.current_epoch == int(sys.argv[2]):
            os.kill(os.getpid(), signal.SIGKILL)  # no exception, no cleanup: as a killed process

features = build_feature_frame(weekly_sales(n_series=3, n_days=90))
config = small_config(max_epochs=4, early_stopping_patience=10)
estimator(config, Path(sys.argv[1]), resume=True, callbacks=[KillAtEpochStart()], show_progress=False).fit(features)
"""


def test_a_killed_fit_resumes_from_the_last_epoch_it_finished_and_ends_alike(tmp_path: Path) -> None:
    killed = subprocess.run(
        [sys.executable, "-c", KILL_AT_EPOCH_SCRIPT, str(tmp_path / "killed"), "2"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]

    features = build_feature_frame(weekly_sales(n_series=3, n_days=90))
    config = small_config(max_epochs=4, early_stopping_patience=10)
    counter = EpochCounter()
    resumed = estimator(config, tmp_path / "killed", resume=True, callbacks=[counter], show_progress=False)
    resumed_forecast = resumed.fit(features).predict(features)
    uninterrupted = estimator(config, tmp_path / "whole", show_progress=False).fit(features).predict(features)

    # Epochs 0 and 1 finished: the last checkpoint is epoch 1's, whether or not it improved val_loss.
    assert resumed.resumed_from_epoch == 2 and counter.epochs_started == 2
    # Repeatable within tolerance: the resumed fit forecasts like the fit that was never interrupted.
    gap = (resumed_forecast["q0.5"] - uninterrupted["q0.5"]).abs().mean() / uninterrupted["q0.5"].abs().mean()
    assert gap < 0.1, gap
