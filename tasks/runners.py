"""The task runner for per-partition work, chosen in settings, not in code."""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Self

from prefect.context import FlowRunContext
from prefect.futures import PrefectFuture, PrefectFutureList
from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner
from prefect.tasks import Task
from prefect_dask import DaskTaskRunner

from replenish.settings import OrchestrationSettings, load_settings


def task_runner(orchestration: OrchestrationSettings) -> TaskRunner[Any]:
    """One task at a time beside the flow, or Dask: worker processes, not threads, since Pyomo captures
    solver output through process-wide streams and the LP build is Python that holds the GIL."""
    if orchestration.task_runner != "dask":
        return ThreadPoolTaskRunner(max_workers=1)
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


class ConfiguredTaskRunner(TaskRunner[PrefectFuture[Any]]):
    """The flows' task runner: the one ``orchestration.task_runner`` names in the flow run's own settings
    (its ``config_file`` and ``overrides`` parameters over the environment and the defaults), started
    when the flow first submits a task.  Prefect enters a flow's runner before the flow reads its
    settings, so a flow started by a command, by `replenish serve`, by a `prefect deploy` worker or as
    a subflow maps its tasks where its settings say only if the choice waits until then."""

    def __init__(self) -> None:
        super().__init__()
        self._chosen: TaskRunner[Any] | None = None
        self._stack = ExitStack()

    def duplicate(self) -> Self:
        return type(self)()

    def submit(  # type: ignore[override]  # one signature for Prefect's overloads
        self,
        task: Task[Any, Any],
        parameters: dict[str, Any],
        wait_for: Iterable[PrefectFuture[Any]] | None = None,
        dependencies: dict[str, Any] | None = None,
    ) -> PrefectFuture[Any]:
        return self._runner().submit(task, parameters, wait_for, dependencies)

    def map(  # type: ignore[override]
        self,
        task: Task[Any, Any],
        parameters: dict[str, Any],
        wait_for: Iterable[PrefectFuture[Any]] | None = None,
    ) -> PrefectFutureList[PrefectFuture[Any]]:
        return self._runner().map(task, parameters, wait_for)

    def _runner(self) -> TaskRunner[Any]:
        if self._chosen is None:
            context = FlowRunContext.get()
            parameters = context.parameters if context is not None else {}
            config_file = parameters.get("config_file")
            settings = load_settings(Path(config_file) if config_file else None, parameters.get("overrides") or [])
            self._chosen = self._stack.enter_context(task_runner(settings.orchestration))
        return self._chosen

    def __exit__(self, *exc_info: Any) -> None:
        self._stack.__exit__(*exc_info)
        super().__exit__(*exc_info)
