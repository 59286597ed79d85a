"""Real servers on 127.0.0.1 for integration tests: PostgreSQL databases, a Prefect server, an MLflow server."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

POSTGRES = {"host": "127.0.0.1", "port": 5432, "user": "postgres", "dbname": "postgres"}
BIN = Path(sys.executable).parent


def postgres_unreachable_reason() -> str | None:
    try:
        import psycopg2

        psycopg2.connect(connect_timeout=3, **POSTGRES).close()
    except Exception as error:  # noqa: BLE001 - any failure means the same: no database to test against
        return f"PostgreSQL is not reachable at 127.0.0.1:5432 ({error.__class__.__name__}: {error})"
    return None


@contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh database, dropped afterwards; yields its name."""
    import psycopg2

    name = f"replenish_test_{uuid.uuid4().hex[:10]}"
    admin = psycopg2.connect(**POSTGRES)
    admin.autocommit = True
    admin.cursor().execute(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        admin.cursor().execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def stop_process(process: subprocess.Popen, grace_seconds: float = 30) -> str:
    """Stop a process started with ``start_new_session=True`` as a service manager does: SIGTERM to it,
    then SIGKILL to its whole group when it has not ended within ``grace_seconds``. Returns what it
    wrote to a pipe, if anything. Never blocks for long: every wait has a timeout."""
    if process.poll() is not None:
        _kill_group(process.pid)  # whatever it left behind in its group
        return ""
    try:
        process.send_signal(signal.SIGTERM)
    except ProcessLookupError:
        pass
    try:
        output, _ = process.communicate(timeout=grace_seconds)
    except subprocess.TimeoutExpired:
        _kill_group(process.pid)
        output, _ = process.communicate(timeout=10)
    _kill_group(process.pid)  # whatever it left behind in its group
    return output or ""


def _kill_group(group: int) -> None:
    try:
        os.killpg(group, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


@contextmanager
def server_process(
    command: list[str], env: dict[str, str], health_url: str, log: Path, timeout_s: float = 120
) -> Iterator[float]:
    """Start one server as its own process group; yield the seconds it took to answer its health check."""
    started = time.perf_counter()
    with log.open("w") as log_stream:
        process = subprocess.Popen(
            command, env={**os.environ, **env}, stdout=log_stream, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"{command[0]} exited with {process.returncode}:\n{log.read_text()[-3000:]}")
            try:
                if httpx.get(health_url, timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.perf_counter() - started > timeout_s:
                raise RuntimeError(f"{command[0]} not healthy after {timeout_s} s:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)
        yield time.perf_counter() - started
    finally:
        stop_process(process)


@contextmanager
def prefect_server(database: str, home: Path) -> Iterator[tuple[str, float]]:
    port = free_port()
    env = {
        "PREFECT_HOME": str(home),
        "PREFECT_API_DATABASE_CONNECTION_URL": f"postgresql+asyncpg://postgres@127.0.0.1:5432/{database}",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        # The UI, for the browser test; on a port of its own, its pages must be told where the API is.
        "PREFECT_UI_ENABLED": "true",
        "PREFECT_UI_API_URL": f"http://127.0.0.1:{port}/api",
        "PREFECT_API_URL": "",
    }
    command = [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)]
    with server_process(command, env, f"http://127.0.0.1:{port}/api/health", home / "prefect-server.log") as seconds:
        yield f"http://127.0.0.1:{port}/api", seconds


@contextmanager
def mlflow_server(database: str, artifacts: Path) -> Iterator[tuple[str, float]]:
    port = free_port()
    env = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", "MLFLOW_DISABLE_TELEMETRY": "true"}
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
        f"postgresql+psycopg2://postgres@127.0.0.1:5432/{database}",
        "--artifacts-destination",
        str(artifacts),
    ]
    with server_process(
        command, env, f"http://127.0.0.1:{port}/health", artifacts.parent / "mlflow-server.log"
    ) as seconds:
        yield f"http://127.0.0.1:{port}", seconds
