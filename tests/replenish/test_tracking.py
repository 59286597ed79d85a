"""MLflow records and the champion rule, on a real SQLite-backed registry."""

from __future__ import annotations

import json
import pickle
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from mlflow import MlflowClient
from mlflow.utils.logging_utils import eprint

from models.features import build_feature_frame
from models.lstm.config import LSTMConfig
from models.lstm.estimator import LSTMEstimator
from replenish import tracking
from replenish.settings import load_settings
from tests.models.lstm.test_lstm import weekly_sales
from tests.servers import stop_process


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
    registry = tracking.ModelRegistry.open(settings)
    first_run = tracking.start_run(settings, "first", {})
    first = registry.log_forecaster(first_run, predictor, sales)
    registry.promote(first, tracking.decide_promotion(0.8, None, "holdout_rmsse"))
    second_run = tracking.start_run(settings, "second", {})
    second = registry.log_forecaster(second_run, predictor, sales)
    registry.promote(second, tracking.decide_promotion(0.95, 0.8, "holdout_rmsse"))

    client = MlflowClient(settings.mlflow_tracking_uri, settings.mlflow_registry_uri)
    name = settings.tracking.registered_model_name
    assert client.get_model_version_by_alias(name, "champion").version == first.version
    assert client.get_model_version_by_alias(name, "challenger").version == second.version
    assert "does not beat" in client.get_model_version(name, second.version).tags["promotion_decision"]
    forecast = registry.load_champion().predict(sales)
    pd.testing.assert_frame_equal(forecast, predictor.predict(sales), check_dtype=False)
    assert str(tmp_path) in client.get_run(first_run.run_id).info.artifact_uri


def test_version_description_holds_its_metrics_and_the_decision(tmp_path: Path) -> None:
    settings = load_settings(overrides=[f"work_dir={tmp_path}", f"output_dir={tmp_path / 'out'}"])
    registry = tracking.ModelRegistry.open(settings)
    client, name = registry.client, registry.name
    client.create_registered_model(name)
    run_id = tracking.start_run(settings, "described", {}).run_id
    version = client.create_model_version(name, source=f"runs:/{run_id}/model", run_id=run_id)
    decision = tracking.decide_promotion(0.7, 0.8, "holdout_rmsse")
    registry.describe_version(
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
    child = parent.start_child("backtest-lstm", {"model": "lstm"})
    tags = child.get_run().data.tags
    assert tags["mlflow.parentRunId"] == parent.run_id and tags["data_hash"] == "abc123" and tags["model"] == "lstm"
    assert child.url == f"{parent.ui_url}/#/experiments/{parent.experiment_id}/runs/{child.run_id}"


def test_the_experiment_opens_as_model_training_and_metrics_carry_the_time_they_were_logged(tmp_path: Path) -> None:
    settings = load_settings(overrides=[f"work_dir={tmp_path}", f"output_dir={tmp_path / 'out'}"])
    before = time.time() * 1000
    tracker = tracking.start_run(settings, "timed", {})
    tracker.log_metrics({"lstm_rmsse": 0.7})
    client = MlflowClient(settings.mlflow_tracking_uri)
    run = client.get_run(tracker.run_id)
    experiment = client.get_experiment(run.info.experiment_id)
    assert experiment.tags[tracking.EXPERIMENT_KIND_TAG] == "custom_model_development"
    (metric,) = client.get_metric_history(tracker.run_id, "lstm_rmsse")
    assert before <= metric.timestamp <= time.time() * 1000


def test_tables_are_logged_as_csv_when_small_and_parquet_when_large(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = load_settings(overrides=[f"work_dir={tmp_path}", f"output_dir={tmp_path / 'out'}"])
    monkeypatch.setattr(tracking, "TABLE_CSV_MAX_ROWS", 3)
    tracker = tracking.start_run(settings, "tables", {})
    small, large = pd.DataFrame({"units": [1, 2, 3]}), pd.DataFrame({"units": [1, 2, 3, 4]})
    assert tracker.log_table(small, "plan/small.csv") == "plan/small.csv"
    assert tracker.log_table(large, "plan/large.csv") == "plan/large.parquet"
    client, run_id = tracker.client, tracker.run_id
    pd.testing.assert_frame_equal(pd.read_csv(client.download_artifacts(run_id, "plan/small.csv")), small)
    pd.testing.assert_frame_equal(pd.read_parquet(client.download_artifacts(run_id, "plan/large.parquet")), large)
    pd.testing.assert_frame_equal(tracker.load_table("plan/small.csv"), small)
    pd.testing.assert_frame_equal(tracker.load_table("plan/large.csv"), large)
    tracker.log_table(large, "top_level.csv")
    # Read as a later command reads it: by the run's id, from its experiment.
    pd.testing.assert_frame_equal(tracking.Experiment.open(settings).run(run_id).load_table("top_level.csv"), large)


def test_a_tracker_pickled_for_another_worker_records_to_the_same_run(tmp_path: Path) -> None:
    settings = load_settings(overrides=[f"work_dir={tmp_path}", f"output_dir={tmp_path / 'out'}"])
    tracker = tracking.start_run(settings, "pickled", {})
    copy = pickle.loads(pickle.dumps(tracker))
    copy.log_metrics({"plan_cost": 12.5})
    copy.set_tags({"where": "worker"})
    run = tracker.get_run()
    assert run.data.metrics["plan_cost"] == 12.5 and run.data.tags["where"] == "worker"
    assert copy.link == tracker.link


def test_mlflow_registration_notices_are_dropped_and_everything_else_on_stderr_kept(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with tracking.registration_notices_dropped():
        eprint("Successfully registered model 'replenish-demand-lstm'.")
        eprint("Registered model 'replenish-demand-lstm' already exists. Creating a new version of this model...")
        eprint("Created version '2' of model 'replenish-demand-lstm'.")
        print("WARNING mlflow: a real problem", file=sys.stderr)
    assert capsys.readouterr().err == "WARNING mlflow: a real problem\n"
    with pytest.raises(RuntimeError, match="registry down"), tracking.registration_notices_dropped():
        print("the registry said no", file=sys.stderr)
        raise RuntimeError("registry down")
    assert capsys.readouterr().err == "the registry said no\n"


def test_the_input_data_is_logged_as_a_dataset_with_its_hash(tmp_path: Path) -> None:
    settings = load_settings(overrides=[f"work_dir={tmp_path}", f"output_dir={tmp_path / 'out'}"])
    sales_file = tmp_path / "sales.csv"
    sales_file.write_text("item_id,store_id,date,units\n")
    tracker = tracking.start_run(settings, "lineage", {})
    tracker.log_dataset("sales", str(sales_file), "abc123", 42, "train")
    (logged,) = tracker.get_run().inputs.dataset_inputs
    assert (logged.dataset.name, logged.dataset.digest, logged.dataset.source_type) == ("sales", "abc123", "local")
    assert json.loads(logged.dataset.source)["uri"] == sales_file.as_uri()
    assert json.loads(logged.dataset.profile)["num_rows"] == 42
    assert {tag.key: tag.value for tag in logged.tags}["mlflow.data.context"] == "train"


def test_concurrent_promotions_compare_with_each_other(tmp_path: Path) -> None:
    """Two registrations at once: the lock makes the second compare with the first, never both 'first model'."""
    settings = load_settings(overrides=[f"work_dir={tmp_path}", f"output_dir={tmp_path / 'out'}"])
    client = MlflowClient(settings.mlflow_tracking_uri, settings.mlflow_registry_uri)
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
