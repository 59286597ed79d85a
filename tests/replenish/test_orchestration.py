"""What a command leaves behind when it is killed: no server, no run that stays RUNNING, no held store."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from replenish import tracking
from replenish.orchestration import configured_servers, crash_flow_runs_of_dead_processes, unreachable_server
from replenish.runtime import StoreBusyError, exclusive_store
from replenish.settings import load_settings
from tests.conftest import TINY_RUN, run_cli, set_options
from tests.servers import stop_process

REPLENISH = str(Path(sys.executable).parent / "replenish")


def _rows(database: Path, query: str) -> list[tuple]:
    if not database.exists():
        return []
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5) as connection:
        try:
            return connection.execute(query).fetchall()
        except sqlite3.OperationalError:  # tables not created yet, or the store is busy
            return []


def uvicorn_servers_under(pid: int) -> list[psutil.Process]:
    servers = []
    for child in psutil.Process(pid).children(recursive=True):
        try:
            if "uvicorn" in " ".join(child.cmdline()):
                servers.append(child)
        except (psutil.ZombieProcess, psutil.NoSuchProcess):
            continue
    return servers


def _wait_for(condition, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


@pytest.mark.slow
def test_a_killed_command_leaves_no_server_and_its_runs_are_closed_by_the_next(tmp_path: Path) -> None:
    work_dir = tmp_path / "state"
    options = set_options([f"work_dir={work_dir}", f"output_dir={tmp_path / 'output'}", *TINY_RUN])
    # A fit that outlasts the checks below, so that the kill lands mid-run (a tiny one ends in seconds).
    long_fit = set_options(["forecast.lstm.max_epochs=1000", "forecast.lstm.early_stopping_patience=1000"])
    # The tests share one PREFECT_HOME (tests/conftest.py), which the commands inherit.
    mlflow_db, prefect_db = work_dir / "mlflow.db", Path(os.environ["PREFECT_HOME"]) / "prefect.db"
    training = subprocess.Popen(
        [REPLENISH, "train", *options, *long_fit],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        _wait_for(
            lambda: _rows(mlflow_db, "select run_uuid from runs where status = 'RUNNING'"),
            240,
            "the training run to start",
        )
        servers = uvicorn_servers_under(training.pid)
        assert servers, "the command runs its own local Prefect server"

        # A second command on the same store refuses at once instead of ending in 'database is locked'.
        started = time.monotonic()
        second = run_cli("validate", *options, cwd=tmp_path)
        assert second.returncode == 1
        assert f"another replenish command (pid {training.pid}) holds the store in {work_dir}" in second.stderr
        assert "Traceback" not in second.stderr
        assert time.monotonic() - started < 30

        assert training.poll() is None, "the training command ended before it could be killed mid-run"
        training.kill()
        training.wait(timeout=10)
        gone, alive = psutil.wait_procs(servers, timeout=15)
        assert not alive, f"the Prefect server outlived the killed command: {[p.pid for p in alive]}"
    finally:
        stop_process(training)

    ((killed_run,),) = [_rows(mlflow_db, "select run_uuid from runs where status = 'RUNNING'")]
    # What the next command does first (start_tracking_run, and _run_flow in replenish/cli.py):
    settings = load_settings(overrides=[f"work_dir={work_dir}", f"output_dir={tmp_path / 'output'}", *TINY_RUN])
    assert tracking.Experiment.open(settings).fail_runs_of_dead_processes() == [killed_run[0]]
    crash_flow_runs_of_dead_processes()

    assert _rows(mlflow_db, f"select status from runs where run_uuid = '{killed_run[0]}'") == [("FAILED",)]
    killed_flow_runs = [
        state
        for state, tags in _rows(prefect_db, "select state_type, tags from flow_run")
        if f":{training.pid}:" in tags
    ]
    assert killed_flow_runs == ["CRASHED"]


@pytest.mark.slow
def test_serve_leaves_no_server_when_killed(tmp_path: Path) -> None:
    options = set_options([f"work_dir={tmp_path / 'state'}", f"output_dir={tmp_path / 'output'}"])
    serving = subprocess.Popen(
        [REPLENISH, "serve", *options],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    try:
        first_line = serving.stdout.readline()  # printed once the local server answers
        assert first_line.startswith("Prefect API: http://127.0.0.1:"), first_line
        port = int(first_line.split(":")[-1].split("/")[0])
        servers = uvicorn_servers_under(serving.pid)

        serving.kill()
        serving.wait(timeout=10)

        gone, alive = psutil.wait_procs(servers, timeout=15)
        assert servers and not alive
        assert not any(
            connection.laddr.port == port
            for connection in psutil.net_connections("tcp")
            if connection.status == psutil.CONN_LISTEN
        )
    finally:
        stop_process(serving)


def test_configured_servers_are_named_without_their_passwords() -> None:
    settings = load_settings(
        overrides=[
            "tracking.tracking_uri=https://ann:s3cret@mlflow.example:5000",
            "orchestration.prefect_api_url=http://127.0.0.1:1/api",
        ]
    )

    servers = configured_servers(settings)

    assert servers == {
        "the MLflow tracking server https://ann:***@mlflow.example:5000": "https://ann:s3cret@mlflow.example:5000/health",
        "the Prefect API server http://127.0.0.1:1/api": "http://127.0.0.1:1/api/health",
    }
    assert unreachable_server(settings) is not None  # nothing listens on port 1


def test_embedded_stores_have_no_servers_to_watch(tmp_path: Path) -> None:
    settings = load_settings(overrides=[f"work_dir={tmp_path}"])
    assert configured_servers(settings) == {} and unreachable_server(settings) is None


def test_a_second_command_on_the_store_fails_at_once(tmp_path: Path) -> None:
    settings = load_settings(overrides=[f"work_dir={tmp_path}"])
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from replenish.runtime import exclusive_store; "
            "from replenish.settings import load_settings; "
            f"s = load_settings(overrides=['work_dir={tmp_path}']); "
            "cm = exclusive_store(s); cm.__enter__(); print('held', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(StoreBusyError, match=f"another replenish command \\(pid {holder.pid}\\) holds the store"):
            with exclusive_store(settings):
                pass
        holder.kill()  # SIGKILL: the kernel drops its lock
        holder.wait(timeout=10)
        with exclusive_store(settings):
            pass
    finally:
        stop_process(holder)
