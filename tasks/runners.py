"""The task runner for per-partition work, chosen in settings, not in code."""

from __future__ import annotations

from prefect_dask import DaskTaskRunner

from replenish.settings import OrchestrationSettings


def dask_task_runner(orchestration: OrchestrationSettings) -> DaskTaskRunner:
    """Worker processes, not threads: Pyomo captures solver output through process-wide streams,
    and the LP build is Python that holds the GIL."""
    if orchestration.dask_address:
        return DaskTaskRunner(address=orchestration.dask_address)
    return DaskTaskRunner(
        cluster_kwargs={
            "n_workers": orchestration.max_workers,
            "threads_per_worker": 1,
            "processes": True,
            "dashboard_address": None,
        }
    )
