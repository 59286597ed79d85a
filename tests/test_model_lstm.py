"""The LSTM forecaster: network, loss, windows, estimator and predictor."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from models.features import COVARIATE_COLUMNS, build_feature_frame, future_rows
from models.lstm.estimator import LSTMConfig, LSTMEstimator, LSTMPredictor
from models.lstm.module import LSTMQuantileNetwork, pinball_loss
from models.lstm.windows import build_panel, training_window_starts

WEEKLY_PROFILE = np.array([4.0, 5.0, 6.0, 8.0, 12.0, 16.0, 6.0])


def weekly_sales(n_series: int = 6, n_days: int = 160, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    dates = pd.date_range("2024-01-01", periods=n_days, freq="D")
    frames = []
    for index in range(n_series):
        level = 1.0 + index / 2
        frames.append(pd.DataFrame({
            "item_id": f"ITEM_{index}", "store_id": "S1", "date": dates,
            "units": rng.poisson(level * WEEKLY_PROFILE[dates.day_of_week]),
            "price": 2.0, "promo": 0, "event": 0, "available": 1,
        }))
    return pd.concat(frames, ignore_index=True)


def small_config(**changes: object) -> LSTMConfig:
    return LSTMConfig(**{"horizon": 14, "context_length": 28, "hidden_size": 16, "max_epochs": 6,
                         "batch_size": 64, **changes})


@pytest.fixture(scope="module")
def fitted(tmp_path_factory: pytest.TempPathFactory) -> LSTMPredictor:
    features = build_feature_frame(weekly_sales())
    return LSTMEstimator(small_config(), tmp_path_factory.mktemp("checkpoints")).fit(features)


def test_network_returns_non_crossing_quantiles_per_horizon_day() -> None:
    network = LSTMQuantileNetwork(n_series=4, n_covariates=len(COVARIATE_COLUMNS), horizon=5, n_quantiles=3,
                                  hidden_size=8, num_layers=2, embedding_dim=3, dropout=0.1)
    batch, context = 7, 12
    scaled, scale = network(
        torch.rand(batch, context) * 10, torch.ones(batch, context),
        torch.randn(batch, context, len(COVARIATE_COLUMNS)), torch.randn(batch, 5, len(COVARIATE_COLUMNS)),
        torch.randint(0, 4, (batch,)),
    )
    assert scaled.shape == (batch, 5, 3) and scale.shape == (batch,)
    assert (scaled.diff(dim=-1) >= 0).all()
    assert (scale >= 1.0).all()


def test_pinball_loss_ignores_censored_days() -> None:
    levels = torch.tensor([0.1, 0.5, 0.9])
    predicted = torch.zeros(1, 2, 3)
    target = torch.tensor([[1.0, 1000.0]])
    only_first_day = pinball_loss(predicted, target, torch.tensor([[1.0, 0.0]]), levels)
    assert only_first_day == pytest.approx(pinball_loss(predicted[:, :1], target[:, :1], torch.ones(1, 1), levels))
    assert pinball_loss(predicted, target, torch.ones(1, 2), levels) > 100 * only_first_day


def test_training_windows_stay_inside_the_training_span_and_see_history() -> None:
    sales = weekly_sales(n_series=2, n_days=60)
    # The second series starts 30 days late: leading days are unobserved, not zero demand.
    sales = sales[~((sales["item_id"] == "ITEM_1") & (sales["date"] < "2024-01-31"))]
    panel = build_panel(build_feature_frame(sales), context_length=14)
    assert panel.observed[1, 14:44].sum() == 0 and panel.observed[1, 44:].all()
    last_position = panel.target.shape[1] - 1 - 7
    rows, starts = training_window_starts(panel, horizon=7, stride=1, last_target_position=last_position)
    assert (starts + 7 - 1 <= last_position).all()
    for row, start in zip(rows, starts):
        assert panel.observed[row, start - 14:start].sum() > 0
        assert panel.trainable[row, start:start + 7].sum() > 0


def test_predictor_learns_the_weekly_pattern(fitted: LSTMPredictor) -> None:
    history = weekly_sales()
    forecast = fitted.predict(history)
    assert len(forecast) == 6 * 14
    assert forecast["date"].min() == history["date"].max() + pd.Timedelta(days=1)
    by_weekday = forecast.groupby(forecast["date"].dt.day_of_week)["q0.5"].mean()
    assert np.corrcoef(by_weekday.to_numpy(), WEEKLY_PROFILE)[0, 1] > 0.8
    columns = ["q0.1", "q0.5", "q0.8", "q0.9", "q0.95"]
    assert (forecast[columns].diff(axis=1).iloc[:, 1:] >= 0).all().all()


def test_predictor_round_trips_through_disk(fitted: LSTMPredictor, tmp_path: Path) -> None:
    fitted.save(tmp_path / "predictor")
    reloaded = LSTMPredictor.load(tmp_path / "predictor")
    history = weekly_sales()
    pd.testing.assert_frame_equal(fitted.predict(history), reloaded.predict(history))


def test_predictor_handles_short_history_and_unseen_series(fitted: LSTMPredictor) -> None:
    newcomer = weekly_sales(n_series=1, n_days=5).assign(item_id="NEW_ITEM")
    forecast = fitted.predict(newcomer)
    assert len(forecast) == 14 and (forecast["q0.1"] >= 0).all() and forecast["q0.5"].notna().all()


def test_predictor_uses_given_future_covariates(fitted: LSTMPredictor) -> None:
    history = weekly_sales()
    planned = future_rows(history, 14)
    promoted = planned.assign(promo=1, price=planned["price"] * 0.5)
    assert not np.allclose(fitted.predict(history, planned)["q0.5"], fitted.predict(history, promoted)["q0.5"])


def test_same_seed_gives_the_same_model(tmp_path: Path) -> None:
    features = build_feature_frame(weekly_sales(n_series=3, n_days=90))
    config = small_config(max_epochs=2)
    first = LSTMEstimator(config, tmp_path / "a").fit(features)
    second = LSTMEstimator(config, tmp_path / "b").fit(features)
    pd.testing.assert_frame_equal(first.predict(features), second.predict(features))


def test_too_little_history_is_a_clear_error(tmp_path: Path) -> None:
    features = build_feature_frame(weekly_sales(n_series=2, n_days=20))
    with pytest.raises(ValueError, match="too little history"):
        LSTMEstimator(small_config(), tmp_path).fit(features)
