"""The scale benchmark's code path at its smallest size: a smoke test, not a timing."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPOSITORY

pytestmark = pytest.mark.slow

# The benchmark's smallest size with a small network, one baseline and few demand paths: every stage
# of `replenish run` runs, in a fraction of the default's time.
SMOKE = [
    "forecast.lstm.max_epochs=1",
    "forecast.lstm.windows_per_epoch=2000",
    "forecast.lstm.context_length=28",
    "forecast.lstm.hidden_size=16",
    "forecast.backtest_origins=2",
    "forecast.baselines=[seasonal_naive]",
    "planning.n_scenarios=20",
    "planning.kpi_demand_paths=50",
]


def test_the_scale_benchmark_runs_replenish_on_200_series_and_reports_each_stage(tmp_path: Path) -> None:
    out = tmp_path / "scale.json"
    command = [sys.executable, "benchmarks/scale.py", "--series", "200", "--days", "400", "--out", str(out)]
    command += [argument for override in SMOKE for argument in ("--set", override)]
    process = subprocess.Popen(
        command, cwd=REPOSITORY, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    try:
        output, _ = process.communicate(timeout=540)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
    assert process.returncode == 0, output[-3000:]

    result = json.loads(out.read_text())
    (run,) = result["runs"]
    assert run["series"] == 200 and run["total_seconds"] > 0 and run["peak_rss_mb"] > 0
    for stage in ("load-data", "build-features", "train-forecaster", "backtest-forecasters", "optimize-orders"):
        assert run["stages"][stage] > 0, stage
        assert run["stage_peak_rss_mb"][stage] > 0, stage
    assert result["growth_exponents"] == {}  # one size: nothing to fit a slope to
    assert "train-forecaster" in output and "peak RSS MB" in output


def test_growth_exponents_are_log_log_slopes_from_the_first_size_up() -> None:
    spec = importlib.util.spec_from_file_location("scale", REPOSITORY / "benchmarks" / "scale.py")
    scale = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(scale)
    runs = [
        {"series": n, "total_seconds": 2.0 * n, "stages": {"linear": 0.5 * n, "quadratic": n**2 / 1e3}}
        for n in (1000, 3000, 30000)
    ]
    runs[0]["stages"]["linear"] = 99.0  # below --from-series: not part of the slope
    exponents = scale.growth_exponents(runs, from_series=3000)
    assert exponents == pytest.approx({"linear": 1.0, "quadratic": 2.0, "total": 1.0})
