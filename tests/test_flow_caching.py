"""Expensive tasks are cached on their input data and settings: a re-run skips them, new data does not."""

from __future__ import annotations

from pathlib import Path
from uuid import UUID

import pytest
from mlflow import MlflowClient

from replenish.settings import load_settings
from tests.conftest import TINY_RUN, invoke_cli, set_options

pytestmark = pytest.mark.slow


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


def test_rerun_hits_the_cache_and_new_data_misses_it(tmp_path: Path) -> None:
    overrides = [
        f"work_dir={tmp_path / 'state'}",
        f"output_dir={tmp_path / 'out'}",
        *TINY_RUN,
        "data.synthetic.seed=101",
    ]
    train(overrides)
    train(overrides)
    train([*overrides, "data.synthetic.seed=102"])

    first, again, new_data = task_states(overrides)
    assert first["train-forecaster"] == "Completed" and first["build-features"] == "Completed"
    assert again["train-forecaster"] == "Cached" and again["build-features"] == "Cached"
    assert new_data["train-forecaster"] == "Completed" and new_data["build-features"] == "Completed"
