"""Faults injected into a real `replenish run`: a server that goes away mid-flow ends the command
within minutes with one line naming the server, publishes nothing, and the store recovers."""

from __future__ import annotations

import hashlib
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pandas as pd
import pytest

from replenish import tracking
from replenish.publishing import publish_unit
from replenish.settings import load_settings
from tests.conftest import TINY_RUN, set_options
from tests.servers import free_port, server_process, stop_process

pytestmark = pytest.mark.slow
REPLENISH = str(Path(sys.executable).parent / "replenish")
BIN = Path(sys.executable).parent
FAIL_WITHIN_SECONDS = 180


def mlflow_server(root: Path, port: int) -> AbstractContextManager[float]:
    command = [
        str(BIN / "mlflow"),
        "server",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
        "--backend-store-uri",
        f"sqlite:///{root / 'mlflow-server.db'}",
        "--artifacts-destination",
        str(root / "mlflow-artifacts"),
    ]
    environment = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", "MLFLOW_DISABLE_TELEMETRY": "true"}
    return server_process(command, environment, f"http://127.0.0.1:{port}/health", root / "mlflow-server.log")


def prefect_server(root: Path, port: int) -> AbstractContextManager[float]:
    # On the tests' shared Prefect database (tests/conftest.py), which earlier tests have already created:
    # a fresh one spends 20-40 s on migrations.
    command = [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)]
    environment = {"PREFECT_UI_ENABLED": "false", "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_API_URL": ""}
    return server_process(command, environment, f"http://127.0.0.1:{port}/api/health", root / "prefect-server.log")


def previous_plan(output_dir: Path) -> dict[str, str]:
    """A plan already published, as a day earlier; returns the sha256 of every file users read."""
    plan = pd.DataFrame({"item_id": ["A"], "store_id": ["S"], "order_date": ["2024-01-01"], "quantity": [6]})
    publish_unit(
        output_dir, {"order_plan.csv": plan, "plan_demand.csv": plan}, "previous", datetime(2024, 1, 1, tzinfo=UTC)
    )
    return published(output_dir)


def published(output_dir: Path) -> dict[str, str]:
    return {
        path.name: hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(output_dir.iterdir())
        if path.is_file()
    }


def interrupted_run(
    tmp_path: Path,
    server: Callable[[], AbstractContextManager[float]],
    overrides: list[str],
    running: Callable[[], bool],
) -> tuple[subprocess.CompletedProcess[str], float]:
    """`replenish run` with ``server`` stopped (SIGTERM, then SIGKILL by group) once ``running()``; returns the
    finished command and the seconds it took to fail after the server went away."""
    with server():
        process = subprocess.Popen(
            [REPLENISH, "run", *set_options(overrides)],
            cwd=tmp_path,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + 300
            while not running():
                assert process.poll() is None, process.communicate(timeout=10)[1][-3000:]
                assert time.monotonic() < deadline, "the run never started"
                time.sleep(0.5)
        except BaseException:
            stop_process(process)
            raise
    stopped = time.monotonic()
    try:
        stdout, stderr = process.communicate(timeout=FAIL_WITHIN_SECONDS + 60)
    finally:
        stop_process(process)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr), time.monotonic() - stopped


def assert_failed_cleanly(result: subprocess.CompletedProcess[str], seconds: float, server: str) -> None:
    assert result.returncode == 1, result.stderr[-3000:]
    assert seconds < FAIL_WITHIN_SECONDS
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith(f"error: {server}") and "does not answer; nothing was published" in last_line, (
        result.stderr[-3000:]
    )


def test_mlflow_server_gone_mid_run(tmp_path: Path) -> None:
    port = free_port()
    tracking_uri = f"http://127.0.0.1:{port}"
    overrides = [
        f"work_dir={tmp_path / 'state'}",
        f"output_dir={tmp_path / 'output'}",
        f"tracking.tracking_uri={tracking_uri}",
        *TINY_RUN,
    ]
    before = previous_plan(tmp_path / "output")

    def training_run_started() -> bool:
        try:
            experiments = httpx.get(
                f"{tracking_uri}/api/2.0/mlflow/experiments/search?max_results=10", timeout=5
            ).json()
            ids = [experiment["experiment_id"] for experiment in experiments.get("experiments", [])]
            runs = httpx.post(
                f"{tracking_uri}/api/2.0/mlflow/runs/search",
                timeout=5,
                json={"experiment_ids": ids, "filter": "attributes.status = 'RUNNING'"},
            ).json()
        except httpx.HTTPError:
            return False
        return bool(runs.get("runs"))

    result, seconds = interrupted_run(tmp_path, lambda: mlflow_server(tmp_path, port), overrides, training_run_started)

    assert_failed_cleanly(result, seconds, f"the MLflow tracking server {tracking_uri}")
    assert published(tmp_path / "output") == before  # the previous plan, byte for byte
    with mlflow_server(
        tmp_path, port
    ):  # the server is back: what the next run does first works and closes the lost run
        settings = load_settings(overrides=overrides)
        assert tracking.Experiment.open(settings).fail_runs_of_dead_processes()
        tracking.start_run(settings, "after the outage", {}).end("FINISHED")
    with sqlite3.connect(tmp_path / "mlflow-server.db") as database:
        statuses = [status for (status,) in database.execute("select status from runs")]
    assert "RUNNING" not in statuses and "FAILED" in statuses, statuses


def test_prefect_server_gone_mid_run(tmp_path: Path) -> None:
    port = free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    overrides = [
        f"work_dir={tmp_path / 'state'}",
        f"output_dir={tmp_path / 'output'}",
        f"orchestration.prefect_api_url={api_url}",
        *TINY_RUN,
    ]
    before = previous_plan(tmp_path / "output")
    mlflow_db = tmp_path / "state" / "mlflow.db"

    def training_run_started() -> bool:
        if not mlflow_db.exists():
            return False
        try:
            with sqlite3.connect(f"file:{mlflow_db}?mode=ro", uri=True, timeout=5) as database:
                return bool(database.execute("select 1 from runs where status = 'RUNNING'").fetchall())
        except sqlite3.OperationalError:
            return False

    result, seconds = interrupted_run(tmp_path, lambda: prefect_server(tmp_path, port), overrides, training_run_started)

    assert_failed_cleanly(result, seconds, f"the Prefect API server {api_url}")
    assert published(tmp_path / "output") == before
    with sqlite3.connect(mlflow_db) as database:
        statuses = [status for (status,) in database.execute("select status from runs")]
    assert "RUNNING" not in statuses and "FAILED" in statuses, statuses
