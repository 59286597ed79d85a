"""deploy/: the compose stack binds to loopback and keeps secrets out of the repo."""

from __future__ import annotations

import re

import yaml

from flows.deployments import replenish_deployments
from flows.schedules import DAILY_PLANNING_CRON, SHORT_NAMES, WEEKLY_MONITORING_CRON
from tests.conftest import REPOSITORY

DEPLOY = REPOSITORY / "deploy"


def test_compose_ports_are_loopback_only_and_secrets_come_from_the_env_file() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    assert {"postgres", "minio", "mlflow", "prefect-server", "worker"} <= set(compose["services"])
    for name, service in compose["services"].items():
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), (name, port)
    text = (DEPLOY / "compose.yaml").read_text()
    assert not re.search(r"(PASSWORD|SECRET|AUTH_STRING)\w*:\s*[^\s$]", text)
    template = (DEPLOY / "env.template").read_text()
    for variable in set(re.findall(r"\$\{(\w+)\}", text)):
        assert f"{variable}=" in template, variable
    assert "--app-name basic-auth" in text and "PREFECT_SERVER_API_AUTH_STRING" in text


def test_the_prefect_worker_sends_per_partition_tasks_to_the_stacks_dask_scheduler() -> None:
    services = yaml.safe_load((DEPLOY / "compose.yaml").read_text())["services"]
    scheduler_port = re.search(r"--port (\d+)", services["dask-scheduler"]["command"]).group(1)
    address = f"tcp://dask-scheduler:{scheduler_port}"
    assert services["dask-worker"]["command"].startswith(f"dask worker {address}")
    settings = services["worker"]["environment"]
    assert settings["REPLENISH_ORCHESTRATION__TASK_RUNNER"] == "dask"
    assert settings["REPLENISH_ORCHESTRATION__DASK_ADDRESS"] == address
    # The Dask workers unpickle the project's tasks, so they run the image the Prefect worker runs.
    assert services["dask-worker"]["image"] == services["worker"]["image"]


def test_deployments_have_their_schedules() -> None:
    deployments = {d.name: d for d in replenish_deployments(None, ["forecast.lstm.max_epochs=3"])}
    assert set(deployments) == {name.split("/")[1] for name in SHORT_NAMES.values()}
    crons = {name: [s.schedule.cron for s in d.schedules] for name, d in deployments.items()}
    assert crons["daily-planning"] == [DAILY_PLANNING_CRON]
    assert crons["weekly-monitoring"] == [WEEKLY_MONITORING_CRON]
    assert crons["train-on-demand"] == []
    assert deployments["train-on-demand"].parameters == {
        "config_file": None,
        "overrides": ["forecast.lstm.max_epochs=3"],
    }


def test_prefect_yaml_declares_what_replenish_serve_serves() -> None:
    """`prefect deploy --all` and `replenish serve` offer the same deployments, flows and schedules."""
    declared = {d["name"]: d for d in yaml.safe_load((DEPLOY.parent / "prefect.yaml").read_text())["deployments"]}
    served = {d.name: d for d in replenish_deployments(None, [])}

    assert set(declared) == set(served)
    for name, deployment in served.items():
        path, function = declared[name]["entrypoint"].split(":")
        module = path.removesuffix(".py").replace("/", ".")
        assert f"{deployment.flow_name}/{name}" in SHORT_NAMES.values()
        assert getattr(__import__(module, fromlist=[function]), function).name == deployment.flow_name
        crons = [schedule["cron"] for schedule in declared[name].get("schedules", [])]
        assert crons == [schedule.schedule.cron for schedule in deployment.schedules]
        assert declared[name]["work_pool"]["name"] == "replenish"
