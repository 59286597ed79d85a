"""Process environment for the embedded default: Prefect, MLflow, Great Expectations and matplotlib
keep their state inside ``work_dir`` and never phone home.

This must run before Prefect is imported, because Prefect reads its settings at import time.
"""

from __future__ import annotations

import os

from replenish.settings import Settings


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
    }
    for name, value in quiet_defaults.items():
        os.environ.setdefault(name, value)
    if settings.orchestration.prefect_api_url:
        os.environ["PREFECT_API_URL"] = settings.orchestration.prefect_api_url
