"""The flows against a real Prefect server and a real MLflow tracking server, both on PostgreSQL."""

from __future__ import annotations

from pathlib import Path

from mlflow import MlflowClient

from tests.conftest import set_options
from tests.integration import INTEGRATION, Servers, finished, replenish

pytestmark = INTEGRATION


def test_main_flow_runs_through_both_servers(servers: Servers, tmp_path: Path) -> None:
    finished(replenish("run", *set_options(servers.overrides(tmp_path))))

    client = MlflowClient(servers.mlflow_uri, servers.mlflow_uri)
    experiment = client.get_experiment_by_name("replenish")
    runs = [run for run in client.search_runs([experiment.experiment_id]) if run.data.tags.get("job") in {"train", "plan"}]
    jobs = {run.data.tags["job"]: run for run in runs}
    assert set(jobs) == {"train", "plan"} and all(run.info.status == "FINISHED" for run in runs)
    assert jobs["train"].info.artifact_uri.startswith("mlflow-artifacts:")
    champion = client.get_model_version_by_alias("replenish-demand-lstm", "champion")
    assert champion.run_id == jobs["train"].info.run_id

    flow_runs = {servers.flow_name(run["flow_id"]): run for run in servers.flow_runs()}
    for name in ["replenish-main", "replenish-train", "replenish-plan"]:
        assert flow_runs[name]["state"]["type"] == "COMPLETED", name
    prefect_ids = {run["id"] for run in flow_runs.values()}
    assert jobs["train"].data.tags["prefect_flow_run_id"] in prefect_ids


def test_two_concurrent_training_runs_lose_nothing(servers: Servers, tmp_path: Path) -> None:
    client = MlflowClient(servers.mlflow_uri, servers.mlflow_uri)
    versions_before = len(client.search_model_versions("name='replenish-demand-lstm'"))
    runs_before = len(servers.flow_runs())

    first = replenish("train", *set_options([*servers.overrides(tmp_path / "a"), "data.synthetic.seed=1"]))
    second = replenish("train", *set_options([*servers.overrides(tmp_path / "b"), "data.synthetic.seed=2"]))
    finished(first), finished(second)

    versions = client.search_model_versions("name='replenish-demand-lstm'")
    assert len(versions) == versions_before + 2
    assert sorted(int(v.version) for v in versions) == list(range(1, len(versions) + 1))
    champion = client.get_model_version_by_alias("replenish-demand-lstm", "champion")
    assert client.get_run(champion.run_id).info.status == "FINISHED"
    flow_runs = servers.flow_runs()
    assert len(flow_runs) == runs_before + 2
    assert all(run["state"]["type"] == "COMPLETED" for run in flow_runs)
