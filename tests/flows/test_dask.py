"""Per-store planning on a Dask cluster is a setting: the same plan as the sequential run, and the
cluster's scheduler saw the per-store tasks."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from distributed import LocalCluster
from distributed.diagnostics.plugin import SchedulerPlugin

from replenish.settings import load_settings
from tests.conftest import TINY_RUN, invoke_cli, set_options

pytestmark = pytest.mark.slow


class FinishedTasks(SchedulerPlugin):
    """The keys of the tasks the scheduler saw finish (reach memory)."""

    def __init__(self) -> None:
        self.keys: list[str] = []

    def transition(self, key: str, start: str, finish: str, *args: object, **kwargs: object) -> None:
        if finish == "memory":
            self.keys.append(str(key))


def test_dask_task_runner_plans_the_same_orders(tmp_path: Path) -> None:
    base = [f"work_dir={tmp_path / 'state'}", *TINY_RUN]
    sequential = [*base, f"output_dir={tmp_path / 'sequential'}"]
    for command in ("train", "plan"):
        exit_code, _, stderr = invoke_cli(command, *set_options(sequential))
        assert exit_code == 0, stderr[-3000:]

    # A cluster of its own, as a user's would be; worker processes, as the runner's own local cluster has.
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        finished = FinishedTasks()
        cluster.scheduler.add_plugin(finished)
        dask = [
            *base,
            f"output_dir={tmp_path / 'dask'}",
            "orchestration.task_runner=dask",
            f"orchestration.dask_address={cluster.scheduler_address}",
        ]
        exit_code, _, stderr = invoke_cli("plan", *set_options(dask))
        assert exit_code == 0, stderr[-3000:]

    # One per-store optimisation per store ran on the cluster.
    assert sum(key.startswith("optimize_orders-") for key in finished.keys) == 2, finished.keys
    plans = [
        pd.read_csv(load_settings(overrides=o).plan_path)
        .sort_values(["item_id", "store_id", "order_date"])
        .reset_index(drop=True)
        for o in (sequential, dask)
    ]
    assert len(plans[0]) > 0
    assert set(plans[0]["store_id"]) == {"STORE_1", "STORE_2"}
    pd.testing.assert_frame_equal(plans[0], plans[1])
