"""Per-store planning on a local Dask cluster is a setting: the same plan as the sequential run."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from replenish.settings import load_settings
from tests.conftest import TINY_RUN, invoke_cli, run_cli, set_options

pytestmark = pytest.mark.slow


def test_dask_task_runner_plans_the_same_orders(tmp_path: Path) -> None:
    base = [f"work_dir={tmp_path / 'state'}", *TINY_RUN]
    sequential = [*base, f"output_dir={tmp_path / 'sequential'}"]
    dask = [*base, f"output_dir={tmp_path / 'dask'}", "orchestration.task_runner=dask", "orchestration.max_workers=2"]

    # Training and the sequential plan in this process; the Dask plan as a user runs it, whose log
    # names the task runner.
    for command in ("train", "plan"):
        exit_code, _, stderr = invoke_cli(command, *set_options(sequential))
        assert exit_code == 0, stderr[-3000:]
    planned = run_cli("plan", *set_options(dask))
    assert planned.returncode == 0, planned.stderr[-3000:]

    assert "DaskTaskRunner" in planned.stderr or "dask" in planned.stderr.lower()
    plans = [pd.read_csv(load_settings(overrides=o).plan_path).sort_values(["item_id", "store_id", "order_date"])
             .reset_index(drop=True) for o in (sequential, dask)]
    assert len(plans[0]) > 0
    assert set(plans[0]["store_id"]) == {"STORE_1", "STORE_2"}
    pd.testing.assert_frame_equal(plans[0], plans[1])
