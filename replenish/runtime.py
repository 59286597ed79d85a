"""Process environment for the embedded default: Prefect, MLflow, Great Expectations and matplotlib
keep their state inside ``work_dir`` and never phone home.

This must run before Prefect is imported, because Prefect reads its settings at import time.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager

from replenish.settings import Settings

# A tracking server that went away fails a run within about a minute instead of 24: one REST call
# otherwise retries for about 4 minutes (urllib3 backoff up to 120 s), and task retries stack on that.
MLFLOW_CLIENT_BOUNDS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "0",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "15",
}
LOCK_FILE = "replenish.lock"


class StoreBusyError(RuntimeError):
    """Another command is using the embedded stores in the same work_dir."""


def configure_environment(settings: Settings) -> None:
    settings.work_dir.mkdir(parents=True, exist_ok=True)
    settings.output_dir.mkdir(parents=True, exist_ok=True)
    quiet_defaults = {
        "PREFECT_HOME": str(settings.prefect_home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        # A fresh local database migrates for 19-39 s here, past Prefect's 20 s default.
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "GX_ANALYTICS_ENABLED": "false",
        "MPLCONFIGDIR": str(settings.work_dir / "matplotlib"),
        "MPLBACKEND": "Agg",
        **MLFLOW_CLIENT_BOUNDS,
        # Prefect's client retries each call 5 times by default, with backoff: a minute per call to a
        # server that is gone, before the watchdog in replenish.orchestration even matters.
        "PREFECT_CLIENT_MAX_RETRIES": "2",
    }
    for name, value in quiet_defaults.items():
        os.environ.setdefault(name, value)
    if settings.orchestration.prefect_api_url:
        os.environ["PREFECT_API_URL"] = settings.orchestration.prefect_api_url


def uses_embedded_stores(settings: Settings) -> bool:
    """Whether the MLflow store or the Prefect database is a SQLite file inside work_dir."""
    return settings.mlflow_tracking_uri.startswith("sqlite:") or not settings.orchestration.prefect_api_url


@contextmanager
def exclusive_store(settings: Settings) -> Iterator[None]:
    """Hold work_dir for one command at a time while it uses the embedded SQLite stores.

    Two commands writing one SQLite store end in 'database is locked'; the second fails at once
    instead. The lock is an flock, so the kernel releases it when its holder dies, even by SIGKILL."""
    if not uses_embedded_stores(settings):
        yield
        return
    settings.work_dir.mkdir(parents=True, exist_ok=True)
    path = settings.work_dir / LOCK_FILE
    with open(path, "a+", encoding="utf-8") as lock:
        try:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            holder = lock.read().strip() or "unknown"
            raise StoreBusyError(
                f"another replenish command (pid {holder}) holds the store in {settings.work_dir}; "
                "wait for it to finish, or point work_dir (or tracking and orchestration) elsewhere"
            ) from None
        lock.seek(0)
        lock.truncate()
        lock.write(str(os.getpid()))
        lock.flush()
        try:
            yield
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)
