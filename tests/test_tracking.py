"""MLflow records and the champion rule, on a real SQLite-backed registry."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from mlflow import MlflowClient

from models.features import build_feature_frame
from models.lstm.config import LSTMConfig
from models.lstm.estimator import LSTMEstimator
from replenish import tracking
from replenish.settings import load_settings
from tests.servers import stop_process
from tests.test_model_lstm import weekly_sales


def test_promotion_requires_a_strictly_better_holdout_score() -> None:
    assert tracking.decide_promotion(0.9, None, "holdout_rmsse").promote
    assert tracking.decide_promotion(0.8, 0.9, "holdout_rmsse").promote
    assert not tracking.decide_promotion(0.9, 0.9, "holdout_rmsse").promote
    assert not tracking.decide_promotion(1.1, 0.9, "holdout_rmsse").promote


def test_data_fingerprint_follows_content_not_row_order() -> None:
    sales = weekly_sales(n_series=2, n_days=20)
    assert tracking.data_fingerprint(sales) == tracking.data_fingerprint(sales.sample(frac=1, random_state=1))
    changed = sales.copy()
    changed.loc[3, "units"] += 1
    assert tracking.data_fingerprint(sales) != tracking.data_fingerprint(changed)


def test_flatten_joins_nested_keys() -> None:
    assert tracking.flatten({"a": {"b": 1, "c": {"d": 2}}, "e": 3}) == {"a.b": 1, "a.c.d": 2, "e": 3}


@pytest.mark.slow
def test_worse_model_never_replaces_the_champion(tmp_path: Path) -> None:
    settings = load_settings(overrides=[f"work_dir={tmp_path}", f"output_dir={tmp_path / 'out'}"])
    sales = weekly_sales(n_series=2, n_days=80)
    predictor = LSTMEstimator(
        LSTMConfig(context_length=28, max_epochs=1), 7, (0.1, 0.5, 0.9), 0, tmp_path / "ckpt"
    ).fit(build_feature_frame(sales))
    first_run = tracking.start_run(settings, "first", {})
    first = tracking.log_forecaster(settings, first_run, predictor, sales)
    tracking.promote(settings, first, tracking.decide_promotion(0.8, None, "holdout_rmsse"))
    second_run = tracking.start_run(settings, "second", {})
    second = tracking.log_forecaster(settings, second_run, predictor, sales)
    tracking.promote(settings, second, tracking.decide_promotion(0.95, 0.8, "holdout_rmsse"))

    client = MlflowClient(settings.mlflow_tracking_uri, settings.mlflow_registry_uri)
    name = settings.tracking.registered_model_name
    assert client.get_model_version_by_alias(name, "champion").version == first.version
    assert client.get_model_version_by_alias(name, "challenger").version == second.version
    assert "does not beat" in client.get_model_version(name, second.version).tags["promotion_decision"]
    tracking.client_for(settings)  # sets the tracking and the registry URI
    forecast = mlflow.pyfunc.load_model(f"models:/{name}@champion").predict(sales)
    pd.testing.assert_frame_equal(forecast, predictor.predict(sales), check_dtype=False)
    assert str(tmp_path) in client.get_run(first_run).info.artifact_uri


def test_version_description_holds_its_metrics_and_the_decision(tmp_path: Path) -> None:
    settings = load_settings(overrides=[f"work_dir={tmp_path}", f"output_dir={tmp_path / 'out'}"])
    client = tracking.client_for(settings)
    name = settings.tracking.registered_model_name
    client.create_registered_model(name)
    run_id = tracking.start_run(settings, "described", {})
    version = client.create_model_version(name, source=f"runs:/{run_id}/model", run_id=run_id)
    decision = tracking.decide_promotion(0.7, 0.8, "holdout_rmsse")
    tracking.describe_version(
        settings,
        version,
        {"holdout_pyfunc_lstm_rmsse": 0.7},
        {"lstm_rmsse": 0.7123, "lstm_coverage_80": 0.81},
        decision,
    )
    description = client.get_model_version(name, version.version).description
    assert "lstm_rmsse: 0.7123" in description and "lstm_coverage_80: 0.8100" in description
    assert "holdout_pyfunc_lstm_rmsse: 0.7000" in description
    assert "holdout_rmsse 0.7000 beats champion's 0.8000" in description


def test_child_runs_nest_under_their_parent_and_inherit_its_lineage(tmp_path: Path) -> None:
    settings = load_settings(overrides=[f"work_dir={tmp_path}", f"output_dir={tmp_path / 'out'}"])
    parent = tracking.start_run(settings, "backtest", {"data_hash": "abc123"})
    child = tracking.start_child_run(settings, parent, "backtest-lstm", {"model": "lstm"})
    tags = tracking.client_for(settings).get_run(child).data.tags
    assert tags["mlflow.parentRunId"] == parent and tags["data_hash"] == "abc123" and tags["model"] == "lstm"


def test_the_experiment_opens_as_model_training_and_metrics_carry_the_time_they_were_logged(tmp_path: Path) -> None:
    settings = load_settings(overrides=[f"work_dir={tmp_path}", f"output_dir={tmp_path / 'out'}"])
    before = time.time() * 1000
    run_id = tracking.start_run(settings, "timed", {})
    tracking.log_metrics(settings, run_id, {"lstm_rmsse": 0.7})
    client = tracking.client_for(settings)
    run = client.get_run(run_id)
    experiment = client.get_experiment(run.info.experiment_id)
    assert experiment.tags[tracking.EXPERIMENT_KIND_TAG] == "custom_model_development"
    (metric,) = client.get_metric_history(run_id, "lstm_rmsse")
    assert before <= metric.timestamp <= time.time() * 1000


def test_tables_are_logged_as_csv_when_small_and_parquet_when_large(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = load_settings(overrides=[f"work_dir={tmp_path}", f"output_dir={tmp_path / 'out'}"])
    monkeypatch.setattr(tracking, "TABLE_CSV_MAX_ROWS", 3)
    run_id = tracking.start_run(settings, "tables", {})
    small, large = pd.DataFrame({"units": [1, 2, 3]}), pd.DataFrame({"units": [1, 2, 3, 4]})
    assert tracking.log_table(settings, run_id, small, "plan/small.csv") == "plan/small.csv"
    assert tracking.log_table(settings, run_id, large, "plan/large.csv") == "plan/large.parquet"
    client = tracking.client_for(settings)
    pd.testing.assert_frame_equal(pd.read_csv(client.download_artifacts(run_id, "plan/small.csv")), small)
    pd.testing.assert_frame_equal(pd.read_parquet(client.download_artifacts(run_id, "plan/large.parquet")), large)
    pd.testing.assert_frame_equal(tracking.load_table(settings, run_id, "plan/small.csv"), small)
    pd.testing.assert_frame_equal(tracking.load_table(settings, run_id, "plan/large.csv"), large)
    tracking.log_table(settings, run_id, large, "top_level.csv")
    pd.testing.assert_frame_equal(tracking.load_table(settings, run_id, "top_level.csv"), large)


def test_the_input_data_is_logged_as_a_dataset_with_its_hash(tmp_path: Path) -> None:
    settings = load_settings(overrides=[f"work_dir={tmp_path}", f"output_dir={tmp_path / 'out'}"])
    sales_file = tmp_path / "sales.csv"
    sales_file.write_text("item_id,store_id,date,units\n")
    run_id = tracking.start_run(settings, "lineage", {})
    tracking.log_dataset(settings, run_id, "sales", str(sales_file), "abc123", 42, "train")
    (logged,) = tracking.client_for(settings).get_run(run_id).inputs.dataset_inputs
    assert (logged.dataset.name, logged.dataset.digest, logged.dataset.source_type) == ("sales", "abc123", "local")
    assert json.loads(logged.dataset.source)["uri"] == sales_file.as_uri()
    assert json.loads(logged.dataset.profile)["num_rows"] == 42
    assert {tag.key: tag.value for tag in logged.tags}["mlflow.data.context"] == "train"


def test_concurrent_promotions_compare_with_each_other(tmp_path: Path) -> None:
    """Two registrations at once: the lock makes the second compare with the first, never both 'first model'."""
    settings = load_settings(overrides=[f"work_dir={tmp_path}", f"output_dir={tmp_path / 'out'}"])
    client = tracking.client_for(settings)
    client.create_registered_model(settings.tracking.registered_model_name)  # as a first registration would
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.promotion_worker", str(tmp_path), str(score)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        for score in (0.9, 0.8)
    ]
    try:
        outcomes = []
        for worker in workers:
            stdout, stderr = worker.communicate(timeout=180)
            assert worker.returncode == 0, stderr[-3000:]
            outcomes.append(json.loads(stdout.strip().splitlines()[-1]))
    finally:
        for worker in workers:
            stop_process(worker)

    assert sum(outcome["champion_rmsse"] is None for outcome in outcomes) == 1, outcomes
    better = min(outcomes, key=lambda outcome: outcome["candidate_rmsse"])
    # Read from the database itself: this process's MLflow client may hold an older snapshot of it.
    with sqlite3.connect(tmp_path / "mlflow.db") as database:
        ((champion,),) = database.execute("select version from registered_model_aliases where alias = 'champion'")
    assert str(champion) == str(better["version"]), outcomes
