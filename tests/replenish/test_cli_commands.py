"""`replenish generate-data` and `replenish ui` as a user runs them, and an example in every command's help."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
import pytest
import typer.main

from replenish.cli import _ui_line, app
from replenish.data.long_format import load_long
from replenish.data.synthetic import SyntheticConfig, generate_synthetic
from replenish.settings import load_settings
from tests.conftest import invoke_cli, run_cli, set_options
from tests.servers import stop_process

SMALL = SyntheticConfig(n_items=4, n_stores=2, n_days=120, seed=11)
SMALL_OPTIONS = ["--items", "4", "--stores", "2", "--days", "120", "--seed", "11"]
TABLES = ("sales", "items", "inventory", "open_orders", "capacity")
UI_START_SECONDS = 60


def _flat(text: str) -> str:
    """Help text without Rich's box drawing and line wrapping."""
    return " ".join(re.sub(r"[│╭╮╰╯─]", " ", text).split())


# --- help ----------------------------------------------------------------------------------------------


def test_every_command_help_shows_an_example() -> None:
    commands = sorted(typer.main.get_command(app).commands)
    assert {"run", "ui", "generate-data", "validate"} <= set(commands)

    with ThreadPoolExecutor(max_workers=2) as pool:
        results = dict(zip(commands, pool.map(lambda name: run_cli(name, "--help"), commands), strict=False))

    for name, result in results.items():
        assert result.returncode == 0, (name, result.stderr)
        assert f"Example: replenish {name}" in _flat(result.stdout), name


# --- generate-data -------------------------------------------------------------------------------------


@pytest.mark.parametrize("file_format", ["csv", "parquet"])
def test_generated_folder_reads_back_as_the_synthetic_tables(tmp_path: Path, file_format: str) -> None:
    out = tmp_path / "data"

    result = run_cli("generate-data", str(out), *SMALL_OPTIONS, "--format", file_format)

    assert result.returncode == 0, result.stderr
    assert sorted(path.name for path in out.iterdir()) == sorted(f"{table}.{file_format}" for table in TABLES)
    for table in TABLES:
        assert f"{table}.{file_format}" in result.stdout
    assert f"replenish run --data {out} --format long" in result.stdout

    expected, written = generate_synthetic(SMALL), load_long(out)
    for table in TABLES:
        frame = getattr(written, table)
        if file_format == "csv":  # CSV keeps no types: dates come back as text, 0/1 flags as int64
            for column in ("date", "arrival_date"):
                if column in frame:
                    frame[column] = pd.to_datetime(frame[column])
        pd.testing.assert_frame_equal(frame, getattr(expected, table), check_dtype=file_format == "parquet")


def test_generate_data_refuses_a_folder_holding_the_other_format(tmp_path: Path) -> None:
    out = tmp_path / "data"
    out.mkdir()
    (out / "sales.parquet").write_bytes(b"not really parquet")

    result = run_cli("generate-data", str(out), *SMALL_OPTIONS, "--format", "csv")

    assert result.returncode == 1
    assert result.stderr.startswith(f"error: {out / 'sales.parquet'} exists")
    assert "Traceback" not in result.stderr
    assert sorted(path.name for path in out.iterdir()) == ["sales.parquet"]


def test_generated_data_passes_validation(tmp_path: Path) -> None:
    out = tmp_path / "data"
    assert invoke_cli("generate-data", str(out), *SMALL_OPTIONS)[0] == 0

    options = set_options([f"work_dir={tmp_path / 'state'}", f"output_dir={tmp_path / 'output'}"])
    exit_code, stdout, stderr = invoke_cli("validate", "--data", str(out), "--format", "long", *options)

    assert exit_code == 0, (stdout + stderr)[-3000:]
    assert "validation passed" in stdout
    assert f"sales ({len(generate_synthetic(SMALL).sales)} rows)" in stdout


# --- ui ------------------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _get(url: str) -> bytes | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.read()
    except (urllib.error.URLError, OSError):
        return None


def wait_for_http(url: str, process: subprocess.Popen[str], timeout: float = UI_START_SECONDS) -> bytes:
    """The body of the first successful GET of ``url``; fails when the process ends or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = _get(url)
        if body is not None:
            return body
        if process.poll() is not None:
            pytest.fail(f"the server exited with status {process.returncode} before {url} answered")
        time.sleep(0.5)
    pytest.fail(f"{url} did not answer within {timeout:.0f} s")


@pytest.fixture
def ui_process(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], int, Path]]:
    port, work_dir = _free_port(), tmp_path / "state"
    command = [
        str(Path(sys.executable).parent / "replenish"),
        "ui",
        "--port",
        str(port),
        *set_options([f"work_dir={work_dir}", f"output_dir={tmp_path / 'output'}"]),
    ]
    process = subprocess.Popen(
        command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    try:
        yield process, port, work_dir
    finally:
        stop_process(process)


def test_ui_serves_the_configured_store_until_stopped(ui_process: tuple[subprocess.Popen[str], int, Path]) -> None:
    process, port, work_dir = ui_process
    base = f"http://127.0.0.1:{port}"

    assert wait_for_http(f"{base}/health", process) == b"OK"
    experiments = json.loads(wait_for_http(f"{base}/ajax-api/2.0/mlflow/experiments/search?max_results=10", process))
    assert [experiment["name"] for experiment in experiments["experiments"]] == ["Default"]
    assert (work_dir / "mlflow.db").is_file()  # the server opened the store inside work_dir

    output = stop_process(process)  # SIGTERM, as a service manager or `kill` stops it

    assert process.returncode == 0, output[-3000:]
    assert f"MLflow UI on sqlite:///{work_dir / 'mlflow.db'}" in output
    assert f"open       {base}" in output
    assert output.rstrip().endswith("MLflow UI stopped")
    assert "Traceback" not in output
    assert _get(f"{base}/health") is None  # the server went down with the command


def test_ui_server_dies_with_a_killed_command(ui_process: tuple[subprocess.Popen[str], int, Path]) -> None:
    process, port, _ = ui_process
    assert wait_for_http(f"http://127.0.0.1:{port}/health", process) == b"OK"

    process.kill()  # SIGKILL to replenish alone: it cannot stop its server itself
    process.wait(timeout=10)

    deadline = time.monotonic() + 15
    while not _port_free(port) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _port_free(port), f"port {port} still held after the command was killed"


def _port_free(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def test_ui_on_a_busy_port_is_a_short_error(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]

        result = run_cli(
            "ui",
            "--port",
            str(port),
            *set_options([f"work_dir={tmp_path / 'state'}", f"output_dir={tmp_path / 'output'}"]),
        )

    assert result.returncode == 1
    assert result.stderr.strip() == f"error: port {port} on 127.0.0.1 is in use; choose another with --port"


def test_flows_point_to_the_ui_command(tmp_path: Path) -> None:
    settings = load_settings(overrides=[f"work_dir={tmp_path}"])

    assert _ui_line(settings) == f"  open UI    replenish ui  (MLflow UI on sqlite:///{tmp_path / 'mlflow.db'})"
