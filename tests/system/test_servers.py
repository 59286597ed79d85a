"""The flows against a real Prefect server and a real MLflow tracking server, both on PostgreSQL:
`prefect deploy --all` with a process worker while another process trains, the feedback loop through
the deployments `replenish serve` serves, and that loop's runs as the Prefect UI shows them."""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml
from mlflow import MlflowClient

from tests.browser import CHROMIUM, missing, render, visible_text
from tests.conftest import REPOSITORY, set_options
from tests.integration import BIN, INTEGRATION, REPLENISH, Servers, finished, replenish
from tests.servers import stop_process

pytestmark = INTEGRATION
ROOT = REPOSITORY  # where prefect.yaml is


SERVED = {"daily-planning", "weekly-monitoring", "train-on-demand", "main-on-demand"}


def wait_for_deployments(servers: Servers, serving: subprocess.Popen[str], log: Path) -> None:
    """`serve` registers its deployments one by one before it starts polling."""
    deadline = time.monotonic() + 120
    while True:
        names = {d["name"] for d in httpx.post(f"{servers.prefect_api}/deployments/filter", json={}, timeout=30).json()}
        if SERVED <= names:
            return
        assert serving.poll() is None, log.read_text()[-3000:]
        assert time.monotonic() < deadline, f"deployments registered so far: {names}"
        time.sleep(1)


@contextmanager
def served(servers: Servers, overrides: list[str], log: Path) -> Iterator[None]:
    """`replenish serve` running, with its deployments registered, until the block ends.  Its output
    (and that of the flow runs it starts) goes to `log`: a pipe nobody reads would fill and block them."""
    with log.open("w") as output:
        # Polling for runs every second, not every 10 s: a triggered run starts without a wait.
        serving = subprocess.Popen(
            [REPLENISH, "serve", *set_options(overrides)],
            stdout=output,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
            env={**os.environ, "PREFECT_RUNNER_POLL_FREQUENCY": "1"},
        )
    try:
        wait_for_deployments(servers, serving, log)
        yield
    finally:
        stop_process(serving)


def settings_file(overrides: list[str], path: Path) -> Path:
    """The overrides as a YAML settings file, as a deployment's config_file parameter names one."""
    nested: dict = {}
    for override in overrides:
        key, value = override.split("=", 1)
        *sections, name = key.split(".")
        target = nested
        for section in sections:
            target = target.setdefault(section, {})
        target[name] = yaml.safe_load(value)
    path.write_text(yaml.safe_dump(nested))
    return path


@dataclass(frozen=True)
class DeployedTraining:
    """`prefect deploy --all` from the repository root, and a run of its training deployment triggered
    and taken by a process worker while the feedback loop's `replenish run` ran beside it."""

    deployments: dict[str, dict]  # name -> the deployment as the server registered it
    trigger_output: str
    flow_runs: list[dict]  # every flow run once both had finished


@dataclass(frozen=True)
class FeedbackLoop:
    """`replenish run` on the servers (beside the deployed training), then `replenish monitor` on shifted
    sales while `replenish serve` serves the training deployment that monitoring starts."""

    deployed: DeployedTraining
    jobs: dict[str, str]  # job (train, plan) -> MLflow run id, as `replenish run` left them
    monitor_output: str
    retraining_flow_run_id: str
    retraining_state: str
    serve_log: Path


def deployed_training_beside(servers: Servers, folder: Path, beside: subprocess.Popen[str]) -> DeployedTraining:
    """Deploys prefect.yaml, triggers its training deployment for a process worker to run, and waits for
    that run and for ``beside``; the deployments are deleted again before it returns."""
    overrides = servers.overrides(folder / "deployed")
    environment = {
        **os.environ,
        "PREFECT_API_URL": servers.prefect_api,
        "PWD": str(ROOT),
        "REPLENISH_CONFIG": str(settings_file(overrides, folder / "settings.yaml")),
        "PREFECT_WORKER_QUERY_SECONDS": "1",
    }  # the worker looks for runs every second, not every 10 s
    deployments: dict[str, dict] = {}
    try:
        for command in (
            ["work-pool", "create", "replenish", "--type", "process", "--overwrite"],
            ["--no-prompt", "deploy", "--all"],
        ):
            result = subprocess.run(
                [str(BIN / "prefect"), *command], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=300
            )
            assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
        deployments = {
            d["name"]: d for d in httpx.post(f"{servers.prefect_api}/deployments/filter", json={}, timeout=30).json()
        }
        worker = subprocess.Popen(
            [str(BIN / "prefect"), "worker", "start", "--pool", "replenish"],
            cwd=ROOT,
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            output = finished(replenish("trigger", "train", "--wait", *set_options(overrides)))
            finished(beside)
        finally:
            stop_process(worker)
        return DeployedTraining(deployments, output, servers.flow_runs())
    finally:
        stop_process(beside)
        # `replenish serve` (below) registers the same names; with these left in place, its runs went
        # to `python -m prefect.engine`, which looked for the flow's code at storage path None.
        for deployment in deployments.values():
            httpx.delete(f"{servers.prefect_api}/deployments/{deployment['id']}", timeout=30)


@pytest.fixture(scope="module")
def feedback_loop(servers: Servers, tmp_path_factory: pytest.TempPathFactory) -> FeedbackLoop:
    from tests.flows.test_monitoring import sales_files

    folder = tmp_path_factory.mktemp("feedback")
    before, after = sales_files(folder, shifted=True)
    overrides = [
        *servers.overrides(folder),
        "forecast.lstm.max_epochs=4",
        "forecast.lstm.context_length=28",
        "forecast.backtest_origins=2",
        "forecast.baselines=[seasonal_naive]",
        "tracking.registered_model_name=replenish-feedback",
        "tracking.experiment_name=feedback",
    ]
    # Two trainings at once on one pair of servers: the worker's, and this run's in a process of its own.
    deployed = deployed_training_beside(
        servers, folder, replenish("run", "--data", str(before), *set_options(overrides))
    )
    client = MlflowClient(servers.mlflow_uri, servers.mlflow_uri)
    experiment = client.get_experiment_by_name("feedback")
    jobs = {
        run.data.tags["job"]: run.info.run_id
        for run in client.search_runs([experiment.experiment_id])
        if run.data.tags.get("job") in {"train", "plan"}
    }

    serve_log = folder / "serve.log"
    with served(servers, overrides, serve_log):
        output = finished(replenish("monitor", "--data", str(after), *set_options(overrides)))
        assert "retraining started as flow run" in output, output
        flow_run_id = output.split("retraining started as flow run ")[1].split()[0]
        deadline = time.monotonic() + 300
        while (
            state := httpx.get(f"{servers.prefect_api}/flow_runs/{flow_run_id}", timeout=30).json()["state"]["type"]
        ) not in {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}:
            assert time.monotonic() < deadline, f"retraining still {state}"
            time.sleep(2)
    return FeedbackLoop(deployed, jobs, output, flow_run_id, state, serve_log)


def test_prefect_yaml_deploys_to_a_process_pool_whose_worker_trains_beside_another_process(
    servers: Servers, feedback_loop: FeedbackLoop
) -> None:
    """The triggered training ran in the worker while `replenish run` trained in a process of its own:
    both recorded, each in its own registered model, every flow run completed."""
    deployed = feedback_loop.deployed
    assert SERVED <= set(deployed.deployments)
    schedules = deployed.deployments["daily-planning"]["schedules"]
    assert [schedule["schedule"]["cron"] for schedule in schedules] == ["0 5 * * *"]
    assert ": Completed" in deployed.trigger_output
    train_on_demand = deployed.deployments["train-on-demand"]["id"]
    triggered = [run for run in deployed.flow_runs if run.get("deployment_id") == train_on_demand]
    assert len(triggered) == 1
    assert all(run["state"]["type"] == "COMPLETED" for run in deployed.flow_runs)

    # Each training registered version 1 of its own model from a finished run (the feedback loop's model
    # has a second version by now, from the retraining).
    client = MlflowClient(servers.mlflow_uri, servers.mlflow_uri)
    for name in ("replenish-demand-lstm", "replenish-feedback"):
        assert client.get_run(client.get_model_version(name, "1").run_id).info.status == "FINISHED"
    assert [v.version for v in client.search_model_versions("name='replenish-demand-lstm'")] == ["1"]
    assert client.get_model_version_by_alias("replenish-demand-lstm", "champion").version == "1"


def test_a_run_and_then_monitoring_retrain_through_the_served_training_deployment(
    servers: Servers, feedback_loop: FeedbackLoop
) -> None:
    """`replenish run` records in both servers; monitoring on shifted sales then starts retraining as a
    run of the training deployment that `replenish serve` serves, and the retrained model is promoted."""
    client = MlflowClient(servers.mlflow_uri, servers.mlflow_uri)
    runs = {job: client.get_run(run_id) for job, run_id in feedback_loop.jobs.items()}
    assert set(runs) == {"train", "plan"} and all(run.info.status == "FINISHED" for run in runs.values())
    assert runs["train"].info.artifact_uri.startswith("mlflow-artifacts:")
    assert client.get_model_version("replenish-feedback", "1").run_id == runs["train"].info.run_id
    flow_runs = {run["id"]: run for run in servers.flow_runs()}
    for run in runs.values():
        assert flow_runs[run.data.tags["prefect_flow_run_id"]]["state"]["type"] == "COMPLETED"
    main_runs = [run for run in flow_runs.values() if servers.flow_name(run["flow_id"]) == "replenish-main"]
    assert main_runs and all(run["state"]["type"] == "COMPLETED" for run in main_runs)

    assert "Monitoring finished: retrain" in feedback_loop.monitor_output
    assert feedback_loop.retraining_state == "COMPLETED", feedback_loop.serve_log.read_text()[-5000:]
    assert str(client.get_model_version_by_alias("replenish-feedback", "champion").version) == "2"


@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium is not installed: `make test` installs it")
def test_the_prefect_ui_shows_the_run_its_task_runs_and_rendered_artifacts(
    servers: Servers, feedback_loop: FeedbackLoop, tmp_path: Path
) -> None:
    """Headless Chromium on the Prefect UI of the server the commands reported to: the training flow run
    of `replenish run` with its task runs by name, and the markdown artifacts rendered (headings, not '#')."""
    client = MlflowClient(servers.mlflow_uri, servers.mlflow_uri)
    flow_run_ids = {
        job: client.get_run(run_id).data.tags["prefect_flow_run_id"] for job, run_id in feedback_loop.jobs.items()
    }
    ui = servers.prefect_api.removesuffix("/api")
    task_runs = httpx.post(
        f"{servers.prefect_api}/task_runs/filter",
        json={"flow_runs": {"id": {"any_": [flow_run_ids["train"]]}}, "sort": "EXPECTED_START_TIME_ASC"},
        timeout=30,
    ).json()
    first_tasks = [run["name"] for run in task_runs[:3]]  # the logs tab lists them oldest first
    expected = [f"{len(task_runs)} Task runs", "replenish-train", *first_tasks]

    dom = render(f"{ui}/runs/flow-run/{flow_run_ids['train']}", expected, tmp_path / "profile")

    assert not missing(expected, dom), visible_text(dom)[:3000]
    for key, flow_run_id, heading in (
        ("data-validation", flow_run_ids["train"], "Data validation passed"),
        ("plan-report", flow_run_ids["plan"], "Plan report"),
        ("monitoring-decision", None, "Monitoring: retrain"),
    ):
        artifacts = httpx.post(
            f"{servers.prefect_api}/artifacts/filter", json={"artifacts": {"key": {"any_": [key]}}}, timeout=30
        ).json()
        artifact = next(a for a in artifacts if flow_run_id is None or a["flow_run_id"] == flow_run_id)
        dom = render(f"{ui}/artifacts/artifact/{artifact['id']}", [heading], tmp_path / "profile")
        rendered = rf"<h1[^>]*markdown-renderer__heading[^>]*>\s*{re.escape(heading)}\s*</h1>"
        assert re.search(rendered, dom), visible_text(dom)[:3000]
