"""One MLflow run per flow: started with the data's lineage, ended FINISHED or FAILED.

Apart from tasks.tracking, whose model logging imports torch and Lightning: a flow that only
validates data starts its run without them."""

from __future__ import annotations

import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from replenish import tracking
from replenish.data.tables import RawTables
from replenish.settings import Settings
from replenish.tracking import RunTracker, dataset_name

# Few and short: the MLflow client retries each call itself (bounded in replenish.runtime).
MLFLOW_RETRIES = {"retries": 2, "retry_delay_seconds": [2, 10]}


@task(name="start-tracking-run", cache_policy=NO_CACHE, **MLFLOW_RETRIES)
def start_tracking_run(settings: Settings, raw: RawTables, job: str) -> RunTracker:
    """The flow's run, with every setting (redacted) as its parameters and the sales as its input dataset;
    first, the runs of commands that died are ended as FAILED."""
    dataset = dataset_name(settings.data)
    run_name = f"{job}-{dataset}-{pd.Timestamp.now():%Y%m%d-%H%M%S}"
    data_hash = tracking.data_fingerprint(raw.sales)
    tags = {
        "job": job,
        "dataset": dataset,
        "prefect_flow_run_name": flow_run.get_name() or "local",
        "data_source": raw.sources.get("sales", "unknown"),
        "data_format": settings.data.format,
        "data_hash": data_hash,
        "git_commit": tracking.git_commit(),
        "prefect_flow_run_id": str(flow_run.get_id() or "none"),
    }
    experiment = tracking.Experiment.open(settings)
    experiment.fail_runs_of_dead_processes()
    tracker = experiment.start_run(run_name, tags, settings.model_dump(mode="json"))
    tracker.log_dataset(dataset, raw.sources.get("sales", "unknown"), data_hash, len(raw.sales), job)
    return tracker


@task(name="finish-tracking-run", cache_policy=NO_CACHE, **MLFLOW_RETRIES)
def finish_tracking_run(tracker: RunTracker, status: str) -> None:
    tracker.end(status)
