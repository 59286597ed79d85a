"""Data-parallel training: DDP on 2 CPU processes (gloo), launched as its own process."""

from __future__ import annotations

from pathlib import Path

import pytest

from models.features import build_feature_frame
from models.lstm.config import LSTMConfig
from models.lstm.train_process import LSTMTraining, train_lstm
from tests.models.lstm.test_lstm import weekly_sales

pytestmark = pytest.mark.slow


def test_ddp_on_two_cpu_processes_yields_a_model_that_loads_and_predicts(tmp_path: Path) -> None:
    features = build_feature_frame(weekly_sales(n_series=4, n_days=120))
    config = LSTMConfig(
        context_length=28,
        hidden_size=16,
        max_epochs=2,
        batch_size=32,
        windows_per_epoch=64,  # drawn under a budget, each process its own shard
        trainer={"accelerator": "cpu", "devices": 2, "strategy": "ddp"},
    )
    tracking_uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri)
    run_id = client.create_run(client.create_experiment("ddp", artifact_location=(tmp_path / "a").as_uri())).info.run_id

    fit = LSTMTraining(config, 14, (0.1, 0.5, 0.9), 0, tmp_path / "checkpoints", False, tracking_uri, run_id)
    trained = train_lstm(features, fit)  # a ddp strategy: in a process of its own

    assert trained.epochs == 2 and trained.windows_per_epoch > 0
    forecast = trained.predictor.predict(weekly_sales(n_series=4, n_days=120))
    assert len(forecast) == 4 * 14 and (forecast["q0.5"] >= 0).all()
    assert "train_loss" in client.get_run(run_id).data.metrics  # rank 0 logged
