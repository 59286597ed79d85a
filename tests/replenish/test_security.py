"""Security defaults: servers listen on loopback unless told otherwise, and no credential reaches MLflow."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import prefect
import pytest
import typer
from mlflow import MlflowClient

from replenish import orchestration, tracking
from replenish.cli import app
from replenish.settings import load_settings

SECRET = "s3cret"


def _option_default(command_name: str, option: str) -> Any:
    command = typer.main.get_command(app).commands[command_name]
    [parameter] = [parameter for parameter in command.params if f"--{option}" in parameter.opts]
    return parameter.default


def test_ui_binds_to_loopback_unless_told_otherwise() -> None:
    assert _option_default("ui", "host") == "127.0.0.1"


def test_serve_starts_its_local_prefect_server_on_loopback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`replenish serve` without a configured server runs a local one; the command line fixes its interface."""

    class Started(Exception):
        pass

    commands: list[list[str]] = []

    def record_instead_of_starting(command: list[str], *_args: Any, **_kwargs: Any) -> None:
        commands.append(command)
        raise Started

    monkeypatch.setattr(orchestration, "start_guarded", record_instead_of_starting)
    settings = load_settings(overrides=[f"work_dir={tmp_path}", f"output_dir={tmp_path / 'out'}"])
    settings.work_dir.mkdir(parents=True, exist_ok=True)

    with pytest.raises(Started), orchestration.prefect_api(settings, run_services=True):
        pass

    [command] = commands
    assert command[command.index("--host") + 1] == "127.0.0.1"


def test_serve_opens_no_webserver_of_its_own(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Prefect's serve() can start a runner webserver and a metrics endpoint: both are off unless asked for,
    and `replenish serve` does not ask. Were the webserver switched on, it would bind to localhost."""
    from prefect.settings import (
        PREFECT_CLIENT_METRICS_ENABLED,
        PREFECT_RUNNER_SERVER_ENABLE,
        PREFECT_RUNNER_SERVER_HOST,
    )

    served: list[dict[str, Any]] = []
    monkeypatch.setattr(prefect, "serve", lambda *deployments, **options: served.append(options))
    environment = dict(os.environ)  # the command exports its settings into the process environment
    try:
        app(
            [
                "serve",
                "--set",
                f"work_dir={tmp_path}",
                "--set",
                f"output_dir={tmp_path / 'out'}",
                "--set",
                "orchestration.prefect_api_url=http://127.0.0.1:9/api",
            ],
            standalone_mode=False,
        )
    finally:
        os.environ.clear()
        os.environ.update(environment)

    assert served == [{}]
    assert not PREFECT_RUNNER_SERVER_ENABLE.value()
    assert not PREFECT_CLIENT_METRICS_ENABLED.value()
    assert PREFECT_RUNNER_SERVER_HOST.value() in {"localhost", "127.0.0.1"}


@pytest.mark.parametrize(
    ("name", "value", "logged"),
    [
        (
            "tracking.tracking_uri",
            "postgresql://replenish:s3cret@db:5432/mlflow",
            "postgresql://replenish:***@db:5432/mlflow",
        ),
        (
            "orchestration.prefect_api_url",
            "https://admin:s3cret@prefect.example.com/api",
            "https://admin:***@prefect.example.com/api",
        ),
        ("orchestration.dask_address", "tls://scheduler:s3:cr@t@10.0.0.5:8786", "tls://scheduler:***@10.0.0.5:8786"),
        # pydantic's Path folds "//" into "/".
        ("data.path", "s3:/etl:s3cret@bucket/sales.parquet", "s3:/etl:***@bucket/sales.parquet"),
        (
            "data.path",
            "https://host/sales.csv?version=2&access_token=s3cret",
            "https://host/sales.csv?version=2&access_token=***",
        ),
        (
            "tracking.tracking_uri",
            "postgresql://db/mlflow?sslmode=require&password=s3cret",
            "postgresql://db/mlflow?sslmode=require&password=***",
        ),
        ("orchestration.api_key", "pnu_s3cret", "***"),
        ("deploy.auth_string", "admin:s3cret", "***"),
        ("tracking.tracking_uri", "http://mlflow:5000", "http://mlflow:5000"),
        ("tracking.tracking_uri", "http://reader@mlflow:5000", "http://reader@mlflow:5000"),
        ("work_dir", "/srv/replenish/.replenish", "/srv/replenish/.replenish"),
        ("replenish.process", "worker-1:4242:1714000000.00", "worker-1:4242:1714000000.00"),
        ("forecast.quantiles", "[0.1, 0.5, 0.9]", "[0.1, 0.5, 0.9]"),
    ],
)
def test_redacted_masks_passwords_and_secret_settings_only(name: str, value: str, logged: str) -> None:
    assert tracking.redacted(name, value) == logged


def test_a_run_logs_no_credential_from_settings_or_tags(tmp_path: Path) -> None:
    """The settings name servers that start_run never dials, so their URIs can carry a password here."""
    settings = load_settings(
        overrides=[
            f"work_dir={tmp_path}",
            f"output_dir={tmp_path / 'out'}",
            f"orchestration.prefect_api_url=http://replenish:{SECRET}@127.0.0.1:1/api",
            f"orchestration.dask_address=tcp://replenish:{SECRET}@127.0.0.1:8786",
            "data.format=long",
            f"data.path=https://etl:{SECRET}@files.example.com/sales.csv",
        ]
    )

    tracker = tracking.start_run(
        settings, "secrets", {"data_source": f"https://etl:{SECRET}@files.example.com/sales.csv"}
    )

    run = MlflowClient(settings.mlflow_tracking_uri).get_run(tracker.run_id)
    logged = {**run.data.params, **run.data.tags}
    assert run.data.params["orchestration.prefect_api_url"] == "http://replenish:***@127.0.0.1:1/api"
    assert run.data.tags["data_source"] == "https://etl:***@files.example.com/sales.csv"
    assert [key for key, value in logged.items() if SECRET in value] == []
