"""Expensive tasks are cached on their input data and settings: a re-run skips them; new data or new
model settings make a new key."""

from __future__ import annotations

from pathlib import Path
from uuid import UUID

import pytest
from mlflow import MlflowClient

from replenish.data.synthetic import SyntheticConfig, generate_synthetic
from replenish.settings import load_settings
from tasks.forecasting import features_cache_key, training_key
from tests.conftest import TINY_RUN, invoke_cli, set_options


def train(overrides: list[str]) -> None:
    exit_code, _, stderr = invoke_cli("train", *set_options(overrides))
    assert exit_code == 0, stderr[-3000:]


def task_states(overrides: list[str]) -> list[dict[str, str]]:
    """Task name -> state name, for each training run in MLflow, oldest first."""
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    settings = load_settings(overrides=overrides)
    client = MlflowClient(settings.mlflow_tracking_uri)
    experiment = client.get_experiment_by_name(settings.tracking.experiment_name)
    runs = client.search_runs([experiment.experiment_id], "tags.job = 'train'", order_by=["attributes.start_time ASC"])
    states = []
    with get_client(sync_client=True) as prefect:
        for run in runs:
            flow_run_id = UUID(run.data.tags["prefect_flow_run_id"])
            task_runs = prefect.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
            states.append({task_run.name.rsplit("-", 1)[0]: task_run.state_name for task_run in task_runs})
    return states


@pytest.mark.slow
def test_rerun_hits_the_cache(tmp_path: Path) -> None:
    overrides = [
        f"work_dir={tmp_path / 'state'}",
        f"output_dir={tmp_path / 'out'}",
        *TINY_RUN,
        "data.synthetic.seed=101",
    ]
    train(overrides)
    train(overrides)

    first, again = task_states(overrides)
    assert first["train-forecaster"] == "Completed" and first["build-features"] == "Completed"
    assert again["train-forecaster"] == "Cached" and again["build-features"] == "Cached"


def test_new_data_or_new_model_settings_miss_the_cache() -> None:
    """The keys the two cached tasks use: one change to the data, or to a model setting, makes a new key."""
    sales = generate_synthetic(SyntheticConfig(n_items=3, n_stores=1, n_days=90, seed=101)).sales
    changed = sales.assign(units=sales["units"].where(sales.index != 10, sales["units"] + 1))
    settings = load_settings(overrides=TINY_RUN)
    features_key = features_cache_key(None, {"sales": sales})  # type: ignore[arg-type]
    assert features_key == features_cache_key(None, {"sales": sales.copy()})  # type: ignore[arg-type]
    assert features_key != features_cache_key(None, {"sales": changed})  # type: ignore[arg-type]
    key = training_key(sales, settings.forecast)
    assert key == training_key(sales.copy(), load_settings(overrides=TINY_RUN).forecast)
    assert key != training_key(changed, settings.forecast)
    assert key != training_key(sales, load_settings(overrides=[*TINY_RUN, "forecast.lstm.hidden_size=17"]).forecast)
