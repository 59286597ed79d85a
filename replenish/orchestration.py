"""The Prefect API a command talks to, and the bookkeeping that keeps its runs honest.

Without ``orchestration.prefect_api_url``, each command starts its own local Prefect server on the
database inside ``work_dir`` and stops it when it ends. It is the same server Prefect's temporary
("ephemeral") mode would start, but run under ``replenish.processes``' guard, so it also goes down when
the command is killed with SIGKILL: Prefect's own temporary server outlives a killed command.

Every process that runs flows tags them with ``process_tag()``; a later command marks the Running
flow runs of processes that no longer exist as Crashed, and their Running subflows with them, as it does
with MLflow runs.
"""

from __future__ import annotations

import _thread
import atexit
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from replenish.processes import is_dead, process_identity, start_guarded, stop_group
from replenish.redaction import redacted_url
from replenish.settings import Settings

PROCESS_TAG_PREFIX = "replenish-process:"
STARTUP_TIMEOUT_ENV = "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"


class ServerUnavailableError(RuntimeError):
    """A server the command needs did not start or does not answer."""


class ServerLostError(BaseException):
    """Raised in the main thread when a configured server stops answering mid-command; names the server.

    A BaseException, like KeyboardInterrupt: no task retries it, so the flow ends at once instead of
    retrying against a server that is gone (Prefect 3 runs tasks without asking its API, so a flow
    would otherwise go on, and could even publish a plan whose runs are recorded nowhere)."""


SERVER_CHECK_SECONDS = 2
SERVER_CHECK_FAILURES = 3  # consecutive failed health checks before the command gives up on a server


def configured_servers(settings: Settings) -> dict[str, str]:
    """The remote servers a command depends on, by description, with their health-check URLs."""
    servers = {}
    for name, url, health in (
        ("the MLflow tracking server", settings.mlflow_tracking_uri, "/health"),
        ("the MLflow registry server", settings.mlflow_registry_uri, "/health"),
        ("the Prefect API server", settings.orchestration.prefect_api_url or "", "/health"),
    ):
        if url.startswith(("http://", "https://")) and url.rstrip("/") + health not in servers.values():
            servers[f"{name} {redacted_url(url)}"] = url.rstrip("/") + health
    return servers


def unreachable_server(settings: Settings) -> str | None:
    """The first configured server that does not answer now, if any."""
    return next((name for name, health in configured_servers(settings).items() if not answers(health)), None)


@contextmanager
def stop_when_a_server_is_lost(settings: Settings) -> Iterator[None]:
    """Watch the configured servers while the block runs; when one fails SERVER_CHECK_FAILURES checks in
    a row, raise ServerLostError in the main thread (through SIGUSR1, which only this block handles).

    Call from the main thread."""
    servers = configured_servers(settings)
    if not servers:
        yield
        return
    lost: list[str] = []
    done = threading.Event()

    def raise_lost(_signum: int, _frame: object) -> None:
        raise ServerLostError(lost[0])

    def watch() -> None:
        failures = dict.fromkeys(servers, 0)
        while not done.wait(SERVER_CHECK_SECONDS):
            for name, health in servers.items():
                failures[name] = 0 if answers(health) else failures[name] + 1
                if failures[name] >= SERVER_CHECK_FAILURES:
                    lost.append(name)
                    _thread.interrupt_main(signal.SIGUSR1)
                    return

    previous = signal.signal(signal.SIGUSR1, raise_lost)
    watcher = threading.Thread(target=watch, name="server-watch", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        done.set()
        watcher.join(timeout=SERVER_CHECK_SECONDS + 10)
        signal.signal(signal.SIGUSR1, previous)


def process_tag() -> str:
    return PROCESS_TAG_PREFIX + process_identity()


@contextmanager
def without_process_tag() -> Iterator[None]:
    """Runs started inside go without the process tag: only the flow run that holds them needs it.

    Prefect takes a concurrency lease for every tag of every task run, one API round trip each: 0.4 s
    a task on the local server here, 3 s of a 14-s tiny ``replenish run``.  Other tags (a
    deployment's, or a tag a user limits concurrency by) stay."""
    from prefect.context import TagsContext

    kept = {tag for tag in TagsContext.get().current_tags if not tag.startswith(PROCESS_TAG_PREFIX)}
    with TagsContext(current_tags=kept):
        yield


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def answers(url: str, timeout: float = 3) -> bool:
    try:
        return httpx.get(url, timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False


@contextmanager
def prefect_api(
    settings: Settings, run_services: bool = False, meanwhile: Callable[[], object] | None = None
) -> Iterator[str]:
    """The Prefect API URL for this command, exported as PREFECT_API_URL while the block runs.

    The configured server when there is one; otherwise a local server on the work_dir database. It is
    started once per process and database (a second command in the same process, as in tests, reuses
    it), stopped when the process exits, and killed with the process if that dies first.
    ``run_services`` runs the scheduler and the other background services (for ``replenish serve``,
    whose schedules must fire); one-off flows do without them.  ``meanwhile`` runs while a local server
    starts, with PREFECT_API_URL already set: a command's imports take as long as the server's start
    (seconds each), and the two overlap on a second core."""
    if settings.orchestration.prefect_api_url:
        if meanwhile is not None:
            meanwhile()
        yield settings.orchestration.prefect_api_url
        return
    log_path = settings.work_dir / "prefect-server.log"
    server, url = _local_server(log_path, run_services)
    previous = os.environ.get("PREFECT_API_URL")
    os.environ["PREFECT_API_URL"] = url
    try:
        if meanwhile is not None:
            meanwhile()
        _wait_until_healthy(server, url, log_path, float(os.environ.get(STARTUP_TIMEOUT_ENV, "120")))
        yield url
    finally:
        if previous is None:
            os.environ.pop("PREFECT_API_URL", None)
        else:
            os.environ["PREFECT_API_URL"] = previous


_local_servers: dict[tuple[str, bool], tuple[subprocess.Popen, str]] = {}


def _local_server(log_path: Path, run_services: bool) -> tuple[subprocess.Popen, str]:
    """This process's local server on the current PREFECT_HOME database: started now, without waiting
    for it to answer, unless one is already running."""
    key = (os.environ.get("PREFECT_HOME", ""), run_services)
    if key in _local_servers:
        server, url = _local_servers[key]
        if server.poll() is None:
            return server, url
    port = _free_port()
    environment = {key: value for key, value in os.environ.items() if key != "PREFECT_API_URL"}
    environment["PREFECT_UI_ENABLED"] = "false"
    if not run_services:
        environment["PREFECT__SERVER_EPHEMERAL"] = "1"
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        "prefect.server.api.server:create_app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "error",
        "--lifespan",
        "on",
    ]
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("w") as log:
        server = start_guarded(command, environment, stdout=log, stderr=subprocess.STDOUT)
    if not _local_servers:
        atexit.register(_stop_local_servers)
    url = f"http://127.0.0.1:{port}/api"
    _local_servers[key] = (server, url)
    return server, url


def _stop_local_servers() -> None:
    _send_queued_logs_and_events()
    for server, _ in _local_servers.values():
        stop_group(server)
    _local_servers.clear()


def _send_queued_logs_and_events() -> None:
    """Prefect sends flow logs and events from background workers; let them finish before the server
    they talk to stops, or the command ends with 'Error logging to API'."""
    if "prefect" not in sys.modules:
        return
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    for worker in (APILogWorker, EventsWorker):
        worker.drain_all(timeout=10)


def _wait_until_healthy(server: subprocess.Popen, url: str, log_path: Path, timeout: float) -> None:
    """Until the local server answers; one that exits or never answers is stopped and named."""
    deadline = time.monotonic() + timeout
    try:
        while not answers(f"{url}/health", timeout=2):
            if server.poll() is not None:
                raise ServerUnavailableError(
                    f"the local Prefect server exited with status {server.returncode}; see {log_path}:\n"
                    + log_path.read_text()[-2000:]
                )
            if time.monotonic() > deadline:
                raise ServerUnavailableError(
                    f"the local Prefect server did not answer within {timeout:.0f} s; see {log_path}"
                )
            time.sleep(0.2)
    except BaseException:
        stop_group(server)
        raise


def abandon_undelivered_prefect_events() -> None:
    """Drop what Prefect's event and log workers still hold when this process's Prefect API no longer
    answers.  At exit they would try to deliver each item to the server that is gone, a failed
    connection with retries apiece: tens of seconds before a command that has already failed can end.
    Prefect 3 has no public way to abandon a worker's queue; its base class holds every worker."""
    if answers(os.environ.get("PREFECT_API_URL", "").rstrip("/") + "/health"):
        return
    from prefect._internal.concurrency.services import _QueueServiceBase

    for service in list(_QueueServiceBase._instances.values()):
        while True:
            try:
                service._queue.get_nowait()
            except queue.Empty:
                break
            service._queue.task_done()


def crash_flow_runs_of_dead_processes() -> list[str]:
    """Mark Running flow runs whose process has ended as Crashed, and the Running subflows they started;
    returns their names.

    A command killed with SIGKILL cannot report its own flow run, which would otherwise stay Running."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterState, FlowRunFilterStateType
    from prefect.client.schemas.objects import StateType
    from prefect.states import Crashed

    crashed: dict[str, str] = {}  # flow run id -> name
    with get_client(sync_client=True) as client:
        running = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.RUNNING, StateType.PENDING]))
            )
        )
        # Only the command's own, in-process runs: a deployment's run (which inherits the tags of the
        # command that triggered it) is watched by the worker or `serve` process that executes it.
        # Parents come before their subflows in the order Prefect creates them.
        for flow_run in sorted((run for run in running if run.deployment_id is None), key=lambda run: run.created):
            identities = [tag[len(PROCESS_TAG_PREFIX) :] for tag in flow_run.tags if tag.startswith(PROCESS_TAG_PREFIX)]
            if identities:
                if not is_dead(identities[0]):
                    continue
                reason = f"process {identities[0]} ended without reporting (killed)"
            elif flow_run.parent_task_run_id is None:
                continue
            elif (parent := str(client.read_task_run(flow_run.parent_task_run_id).flow_run_id)) in crashed:
                reason = f"its parent flow run {crashed[parent]} crashed"
            else:
                continue
            client.set_flow_run_state(flow_run.id, Crashed(message=reason), force=True)
            crashed[str(flow_run.id)] = flow_run.name
    return list(crashed.values())
