"""A real Prefect server and a real MLflow tracking server, both on PostgreSQL, for the integration tests
(tests/system/test_servers.py; the `servers` fixture in tests/conftest.py starts them)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import TINY_RUN
from tests.servers import mlflow_server, postgres_database, postgres_unreachable_reason, prefect_server, stop_process

INTEGRATION = [
    pytest.mark.slow,
    pytest.mark.skipif(postgres_unreachable_reason() is not None, reason=str(postgres_unreachable_reason())),
]
BIN = Path(sys.executable).parent
REPLENISH = str(BIN / "replenish")


@dataclass(frozen=True)
class Servers:
    prefect_api: str
    mlflow_uri: str
    start_seconds: dict[str, float]

    def overrides(self, workspace: Path) -> list[str]:
        return [
            f"work_dir={workspace / 'state'}",
            f"output_dir={workspace / 'output'}",
            *TINY_RUN,
            f"tracking.tracking_uri={self.mlflow_uri}",
            f"orchestration.prefect_api_url={self.prefect_api}",
        ]

    def flow_runs(self) -> list[dict]:
        return httpx.post(f"{self.prefect_api}/flow_runs/filter", json={"limit": 200}, timeout=30).json()

    def flow_name(self, flow_id: str) -> str:
        return httpx.get(f"{self.prefect_api}/flows/{flow_id}", timeout=30).json()["name"]


@contextmanager
def running_servers(root: Path) -> Iterator[Servers]:
    """Both servers, each on a new PostgreSQL database, until the block ends (the `servers` fixture)."""
    with (
        postgres_database() as prefect_db,
        postgres_database() as mlflow_db,
        prefect_server(prefect_db, root) as (prefect_api, prefect_seconds),
        mlflow_server(mlflow_db, root / "mlflow-artifacts") as (mlflow_uri, mlflow_seconds),
    ):
        print(f"\nserver start: Prefect {prefect_seconds:.1f} s, MLflow {mlflow_seconds:.1f} s")
        yield Servers(prefect_api, mlflow_uri, {"prefect": prefect_seconds, "mlflow": mlflow_seconds})


def replenish(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [REPLENISH, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )


def finished(process: subprocess.Popen[str]) -> str:
    try:
        stdout, stderr = process.communicate(timeout=600)
    finally:
        stop_process(process)
    assert process.returncode == 0, stderr[-3000:]
    return stdout
