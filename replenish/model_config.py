"""Settings to model configuration: the one place the settings' names meet the model's."""

from __future__ import annotations

from models.lstm.estimator import LSTMConfig
from replenish.settings import ForecastSettings


def lstm_config(forecast: ForecastSettings) -> LSTMConfig:
    return LSTMConfig(
        horizon=forecast.horizon_days,
        context_length=forecast.context_length,
        quantiles=tuple(forecast.quantiles),
        hidden_size=forecast.hidden_size,
        num_layers=forecast.num_layers,
        embedding_dim=forecast.embedding_dim,
        dropout=forecast.dropout,
        learning_rate=forecast.learning_rate,
        mean_loss_weight=forecast.mean_loss_weight,
        metric_scaled_loss=forecast.metric_scaled_loss,
        cosine_learning_rate=forecast.cosine_learning_rate,
        batch_size=forecast.batch_size,
        max_epochs=forecast.max_epochs,
        window_stride_days=forecast.window_stride_days,
        max_training_days=forecast.max_training_days,
        early_stopping_patience=forecast.early_stopping_patience,
        seed=forecast.seed,
        ensemble_size=forecast.ensemble_size,
        accelerator=forecast.accelerator,
        devices=forecast.devices,
        strategy=forecast.strategy,
    )
