"""`replenish validate`: Data Docs, quarantine, warnings, and the Prefect artifact."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path
from uuid import UUID

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from replenish.cli import app
from replenish.orchestration import PROCESS_TAG_PREFIX, process_tag
from replenish.settings import load_settings
from tests.conftest import BAD_INPUT_CORPUS

CORPUS = BAD_INPUT_CORPUS
pytestmark = pytest.mark.slow


def invoke(args: list[str]) -> tuple[int, str, str]:
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(stdout):
        exit_code = app(args, standalone_mode=False)
    return exit_code or 0, stdout.getvalue(), stderr.getvalue()


@pytest.fixture
def overrides(tmp_path: Path) -> list[str]:
    return [f"work_dir={tmp_path / 'state'}", f"output_dir={tmp_path / 'output'}"]


def options(overrides: list[str]) -> list[str]:
    return [part for override in overrides for part in ("--set", override)]


def test_failed_validation_renders_data_docs_that_show_the_failure(overrides: list[str]) -> None:
    exit_code, _, stderr = invoke(["validate", "--data", str(CORPUS / "negative_units.csv"), *options(overrides)])

    assert exit_code == 1
    index = Path(re.search(r"Data Docs: (\S+index\.html)", stderr).group(1))
    assert index.is_file()
    [sales_page] = index.parent.glob("validations/sales_contract/**/*.html")
    page = sales_page.read_text()
    assert "units" in page and "-3" in page and "must be between 0" in page

    settings = load_settings(overrides=overrides)
    client = MlflowClient(settings.mlflow_tracking_uri)
    [run] = client.search_runs([client.get_experiment_by_name(settings.tracking.experiment_name).experiment_id])
    assert run.info.status == "FAILED" and run.data.tags["validation_status"] == "failed"
    assert run.data.metrics["validation_errors"] == 1
    logged = {artifact.path for artifact in client.list_artifacts(run.info.run_id, "data_docs")}
    assert "data_docs/index.html" in logged


def test_quarantine_drops_and_reports_the_failing_rows(overrides: list[str]) -> None:
    exit_code, stdout, stderr = invoke(
        [
            "validate",
            "--data",
            str(CORPUS / "negative_units.csv"),
            *options(overrides),
            "--set",
            "data.validation.quarantine=true",
        ]
    )

    assert exit_code == 0, stderr
    assert "quarantined 2 row(s) of sales" in stdout
    settings = load_settings(overrides=overrides)
    client = MlflowClient(settings.mlflow_tracking_uri)
    [run] = client.search_runs([client.get_experiment_by_name(settings.tracking.experiment_name).experiment_id])
    assert run.data.metrics["validation_quarantined_rows"] == 2
    dropped = pd.read_csv(client.download_artifacts(run.info.run_id, "validation/quarantined_sales.csv"))
    assert dropped["units"].tolist() == [-3, -3]
    assert dropped["broken_rules"].str.contains("must be between 0").all()


def test_quarantine_cannot_fix_a_missing_column(overrides: list[str]) -> None:
    exit_code, _, stderr = invoke(
        [
            "validate",
            "--data",
            str(CORPUS / "missing_column.csv"),
            *options(overrides),
            "--set",
            "data.validation.quarantine=true",
        ]
    )
    assert exit_code == 1 and "required column must be present" in stderr


def test_level_shift_warns_without_stopping(overrides: list[str], tmp_path: Path) -> None:
    dates = pd.date_range("2024-01-01", periods=120, freq="D")
    units = np.where(np.arange(120) >= 92, 40, 5)  # the last 28 days jump eightfold
    pd.DataFrame({"item_id": "A", "store_id": "S", "date": dates.strftime("%Y-%m-%d"), "units": units}).to_csv(
        tmp_path / "shift.csv", index=False
    )

    exit_code, stdout, stderr = invoke(["validate", "--data", str(tmp_path / "shift.csv"), *options(overrides)])

    assert exit_code == 0, stderr
    assert "validation passed" in stdout
    assert "warning:" in stdout and "sudden level shift" in stdout


def test_validation_result_is_a_prefect_artifact(overrides: list[str]) -> None:
    from prefect import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    exit_code, _, _ = invoke(["validate", *options(overrides)])
    assert exit_code == 0

    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["data-validation"]))
        )
    newest = max(artifacts, key=lambda artifact: artifact.created)
    assert "# Data validation passed" in newest.data
    # The Data Docs are reached through the MLflow run's page, not a path on the flow's machine.
    assert "Data Docs" in newest.data and "file://" not in newest.data
    assert re.search(r"\(http://127\.0\.0\.1:5000/#/experiments/\w+/runs/\w{32}\)", newest.data), newest.data


def test_the_flow_run_carries_the_process_tag_and_none_of_its_task_runs_do(overrides: list[str]) -> None:
    """The tag marks what a later command closes if this process dies; a task run with it would cost
    an API round trip for a concurrency lease (replenish.orchestration)."""
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    exit_code, _, stderr = invoke(["validate", *options(overrides)])
    assert exit_code == 0, stderr[-3000:]
    settings = load_settings(overrides=overrides)
    client = MlflowClient(settings.mlflow_tracking_uri)
    [run] = client.search_runs([client.get_experiment_by_name(settings.tracking.experiment_name).experiment_id])
    with get_client(sync_client=True) as prefect:
        flow_run = prefect.read_flow_run(UUID(run.data.tags["prefect_flow_run_id"]))
        task_runs = prefect.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run.id])))
    assert process_tag() in flow_run.tags
    names = {task_run.name.rsplit("-", 1)[0] for task_run in task_runs}
    assert {"load-data", "start-tracking-run", "validate-data", "finish-tracking-run"} <= names, names
    assert not [task_run.name for task_run in task_runs if any(t.startswith(PROCESS_TAG_PREFIX) for t in task_run.tags)]
