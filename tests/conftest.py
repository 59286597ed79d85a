"""Test-wide environment: Prefect, MLflow, GX and matplotlib keep their state in a throwaway folder.

Set before any test module imports Prefect, which reads its settings at import time.
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.integration import Servers

_SESSION_HOME = Path(tempfile.mkdtemp(prefix="replenish-tests-"))
os.environ.update(
    {
        "PREFECT_HOME": str(_SESSION_HOME / "prefect"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "GX_ANALYTICS_ENABLED": "false",
        "MPLCONFIGDIR": str(_SESSION_HOME / "matplotlib"),
        "MPLBACKEND": "Agg",
    }
)
for name in [name for name in os.environ if name.startswith("REPLENISH_") and name != "REPLENISH_M5_PATH"]:
    del os.environ[name]

REPOSITORY = Path(__file__).resolve().parents[1]
BAD_INPUT_CORPUS = REPOSITORY / "tests" / "data" / "bad"

# Small enough to train in seconds on 2 cores, big enough for every stage to do real work.
TINY_RUN = [
    "data.synthetic.n_items=10",
    "data.synthetic.n_stores=2",
    "data.synthetic.n_days=200",
    "forecast.lstm.max_epochs=2",
    "forecast.lstm.context_length=28",
    "forecast.lstm.hidden_size=16",
    "forecast.backtest_origins=2",
    "forecast.baselines=[seasonal_naive]",
    # Fewer demand paths than a real plan needs (see PlanningConfig), enough for a plan with safety
    # stock: the scenario LP's size, and so the tests' planning time, grows with them.
    "planning.n_scenarios=50",
    "planning.kpi_demand_paths=100",
]


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run the installed ``replenish`` command the way a user does, in its own process."""
    command = Path(sys.executable).parent / "replenish"
    return subprocess.run([str(command), *args], capture_output=True, text=True, cwd=cwd, timeout=600)


def invoke_cli(*args: str) -> tuple[int, str, str]:
    """The CLI in this process: exit code, stdout and stderr.  Its flows use this process's local
    Prefect server, started once: a new command spends seconds importing and starting one."""
    from replenish.cli import app

    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        exit_code = app(list(args), standalone_mode=False)
    return exit_code or 0, stdout.getvalue(), stderr.getvalue()


def set_options(overrides: list[str]) -> list[str]:
    return [part for override in overrides for part in ("--set", override)]


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    return tmp_path


@pytest.fixture
def tiny_overrides(workspace: Path) -> list[str]:
    return [f"work_dir={workspace / 'state'}", f"output_dir={workspace / 'output'}", *TINY_RUN]


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    """A Prefect and an MLflow server on PostgreSQL for a test module (tests/integration.py)."""
    from tests.integration import running_servers

    with running_servers(tmp_path_factory.mktemp("servers")) as pair:
        yield pair


# The longest test files, longest first (seconds with three workers on 2 cores), as paths under tests/.
# pytest-xdist hands out whole files in collection order, so these go first; a long file handed out last
# keeps one worker busy alone.
LONGEST_FILES = (
    "system/test_servers.py",  # 330
    "benchmarks/test_scale.py",  # 96, one test
    "system/test_faults.py",  # 150
    "flows/test_monitoring.py",  # 130
    "flows/test_bad_input_corpus.py",  # 125
    "flows/test_dask.py",  # 120
    "flows/test_main.py",  # 110
    "flows/test_frequencies.py",  # 85
    "replenish/test_orchestration.py",  # 75
    "replenish/test_cli_commands.py",  # 70
    "flows/test_caching.py",  # 45
    "models/lstm/test_ddp.py",  # 36
    "expectations/test_validation_fuzz.py",  # 35
)
TESTS = REPOSITORY / "tests"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if moved := [name for name in LONGEST_FILES if not (TESTS / name).exists()]:
        raise pytest.UsageError(f"conftest.LONGEST_FILES names files that are not there: {moved}")
    rank = {name: position for position, name in enumerate(LONGEST_FILES)}
    items.sort(key=lambda item: rank.get(item.path.relative_to(TESTS).as_posix(), len(rank)))


def pytest_unconfigure(config: pytest.Config) -> None:
    """Stop Prefect's temporary server (flows run in-process start one) while pytest's output is still
    open: at interpreter exit its goodbye line would meet a closed stream and print a traceback."""
    server_module = sys.modules.get("prefect.server.api.server")
    if server_module is not None:
        for server in list(server_module.SubprocessASGIServer._instances.values()):
            server.stop()
