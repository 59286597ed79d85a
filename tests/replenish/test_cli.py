"""The ``replenish`` command as a user runs it: help, and short, traceback-free errors that write nothing.

Every command runs once, in its own process, all at the same time (module fixture): the two missing-file
runs start Prefect's temporary server and import the whole stack, which costs ~10-20 s each.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import run_cli, set_options


@dataclass(frozen=True)
class Case:
    args: tuple[str, ...]
    work_dir: Path | None = None
    output_dir: Path | None = None
    missing: Path | None = None


@dataclass(frozen=True)
class Outcome:
    case: Case
    result: subprocess.CompletedProcess[str]

    @property
    def output(self) -> str:
        return self.result.stdout + self.result.stderr


def _failing_case(root: Path, name: str, *args: str, missing: Path | None = None) -> Case:
    work_dir, output_dir = root / name / "state", root / name / "output"
    options = set_options([f"work_dir={work_dir}", f"output_dir={output_dir}"])
    return Case(args=("run", *args, *options), work_dir=work_dir, output_dir=output_dir, missing=missing)


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Outcome]]:
    root = tmp_path_factory.mktemp("cli")
    missing = root / "no-such-dir" / "sales.csv"
    cases = {
        "help": Case(args=("--help",)),
        "run_help": Case(args=("run", "--help")),
        "no_args": Case(args=()),
        "bad_settings": _failing_case(root, "bad_settings", "--set", "forecast.quantiles=[0.2,0.8]"),
        "missing_data": _failing_case(root, "missing_data", "--data", str(missing), missing=missing),
        "missing_data_debug": _failing_case(
            root, "missing_data_debug", "--debug", "--data", str(missing), missing=missing
        ),
    }
    # Without PREFECT_HOME the CLI keeps Prefect's database inside each run's own work_dir (as for a real
    # user), so the concurrent runs never share (or migrate) one SQLite file.
    saved = os.environ.pop("PREFECT_HOME", None)
    try:
        with ThreadPoolExecutor(max_workers=len(cases)) as pool:
            futures = {name: pool.submit(run_cli, *case.args, cwd=root) for name, case in cases.items()}
            results = {name: Outcome(cases[name], future.result()) for name, future in futures.items()}
    finally:
        if saved is not None:
            os.environ["PREFECT_HOME"] = saved
    yield results


def _flat(text: str) -> str:
    """Help text without Rich's box drawing and line wrapping."""
    return " ".join(re.sub(r"[│╭╮╰╯─]", " ", text).split())


def _files_under(folder: Path) -> list[Path]:
    return [path for path in folder.rglob("*") if path.is_file()] if folder.exists() else []


# --- help ----------------------------------------------------------------------------------------------


def test_help_exits_0_and_lists_the_run_command(outcomes: dict[str, Outcome]) -> None:
    result = outcomes["help"].result

    assert result.returncode == 0, result.stderr
    text = _flat(result.stdout)
    assert "Usage: replenish" in text
    assert "run Run the whole job once" in text
    assert "Traceback" not in result.stdout + result.stderr


def test_help_shows_an_example(outcomes: dict[str, Outcome]) -> None:
    assert "replenish run --" in _flat(outcomes["help"].result.stdout)


def test_no_arguments_shows_help(outcomes: dict[str, Outcome]) -> None:
    result = outcomes["no_args"].result

    assert result.returncode in (0, 2)  # Click's "no arguments: show help" exit status
    assert "Usage: replenish" in _flat(result.stdout + result.stderr)
    assert "Traceback" not in result.stdout + result.stderr


def test_run_help_exits_0_and_shows_an_example(outcomes: dict[str, Outcome]) -> None:
    result = outcomes["run_help"].result

    assert result.returncode == 0, result.stderr
    text = _flat(result.stdout)
    assert "Usage: replenish run" in text
    assert "Example: replenish run --set forecast.lstm.max_epochs=3" in text
    for option in ("--config", "--set", "--data", "--format", "--debug"):
        assert option in text


# --- errors --------------------------------------------------------------------------------------------


def test_invalid_setting_is_a_short_error_without_traceback(outcomes: dict[str, Outcome]) -> None:
    outcome = outcomes["bad_settings"]
    result = outcome.result

    assert result.returncode == 1
    assert "Traceback" not in outcome.output
    stderr = result.stderr.strip()
    assert stderr.startswith("error: invalid settings")
    assert "forecast.quantiles" in stderr
    assert "must include 0.5" in stderr
    assert len(stderr.splitlines()) <= 6, stderr
    assert result.stdout.strip() == ""


def test_invalid_setting_writes_nothing(outcomes: dict[str, Outcome]) -> None:
    case = outcomes["bad_settings"].case

    # Settings fail before any folder is made.
    assert not case.output_dir.exists()
    assert not case.work_dir.exists()


def test_missing_data_file_is_named_without_traceback(outcomes: dict[str, Outcome]) -> None:
    outcome = outcomes["missing_data"]
    result = outcome.result

    assert result.returncode == 1, outcome.output[-3000:]
    assert "Traceback" not in outcome.output
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert error_lines == [f"error: data path {outcome.case.missing} does not exist"]


def test_missing_data_file_writes_no_output(outcomes: dict[str, Outcome]) -> None:
    case = outcomes["missing_data"].case

    assert _files_under(case.output_dir) == []
    assert not case.missing.parent.exists()


def test_debug_shows_the_traceback(outcomes: dict[str, Outcome]) -> None:
    outcome = outcomes["missing_data_debug"]
    result = outcome.result

    assert result.returncode == 1, outcome.output[-3000:]
    assert "Traceback (most recent call last)" in result.stderr
    assert f"FileNotFoundError: data path {outcome.case.missing} does not exist" in result.stderr
    assert _files_under(outcome.case.output_dir) == []
