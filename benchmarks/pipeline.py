"""Wall time per stage and peak memory of the main job on the default (synthetic) data.

    python benchmarks/pipeline.py [--out FILE] [--set key=value ...]

Stage times are the task-run times Prefect recorded for the flow run; a stage's peak RSS is the
process's largest resident memory sampled while one of its task runs ran. Prints a table and writes
``{"stages": {"<stage>": {"seconds": s, "peak_rss_mb": m}}, "total_seconds": s, "peak_rss_mb": m, ...}``.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import psutil

RECORDER_WAIT_SECONDS = 120
PAGE = 200


class MemorySampler(threading.Thread):
    """This process's resident memory every ``interval`` seconds, with the time it was read."""

    def __init__(self, interval: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.interval = interval
        self.samples: list[tuple[float, float]] = []  # (epoch seconds, MB)
        self._stopped = threading.Event()
        self._process = psutil.Process()

    def run(self) -> None:
        while not self._stopped.is_set():
            self.samples.append((time.time(), self._process.memory_info().rss / 2**20))
            self._stopped.wait(self.interval)

    def stop(self) -> None:
        self._stopped.set()
        self.join(timeout=5)

    def peak_between(self, start: datetime, end: datetime) -> float:
        """The largest sample taken while the stage ran, or the last one before it began: a stage shorter
        than the interval has no sample of its own, and its memory is at least what it started with."""
        before = [mb for at, mb in self.samples if at < start.timestamp()][-1:]
        inside = [mb for at, mb in self.samples if start.timestamp() <= at <= end.timestamp()]
        return max(before + inside, default=0.0)


def read_all_task_runs(client: Any, flow_runs: Any) -> list[Any]:
    """Every task run of the flow runs, page by page: the API answers at most a page at a time."""
    task_runs: list[Any] = []
    while page := client.read_task_runs(flow_run_filter=flow_runs, limit=PAGE, offset=len(task_runs)):
        task_runs += page
    return task_runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, help="write the JSON result here")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="settings override key=value")
    args = parser.parse_args()

    from replenish.runtime import configure_environment
    from replenish.settings import load_settings

    work = Path(tempfile.mkdtemp(prefix="replenish-bench-"))
    overrides = [f"work_dir={work / 'state'}", f"output_dir={work / 'output'}", *args.overrides]
    configure_environment(load_settings(overrides=overrides))

    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterParentFlowRunId

    from flows.main import main_flow

    memory = MemorySampler()
    memory.start()
    started = time.perf_counter()
    state = main_flow(overrides=overrides, return_state=True)
    total_seconds = time.perf_counter() - started
    memory.stop()
    state.result()  # raise if the flow failed

    main_run_id = state.state_details.flow_run_id
    with get_client(sync_client=True) as client:
        # The main flow's stages run inside its training and planning subflows.
        subflows = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[main_run_id]))
        )
        flow_run_ids = [main_run_id, *(run.id for run in subflows)]
        # Prefect records task-run states from events, after the flow has returned: on a loaded machine
        # some runs still read as running, with no time, until the recorder catches up.
        deadline = time.monotonic() + RECORDER_WAIT_SECONDS
        while True:
            task_runs = read_all_task_runs(client, FlowRunFilter(id={"any_": flow_run_ids}))
            unrecorded = [run.name for run in task_runs if not (run.state and run.state.is_final())]
            if not unrecorded:
                break
            if time.monotonic() > deadline:
                raise SystemExit(f"Prefect had not recorded the end of {unrecorded} {RECORDER_WAIT_SECONDS} s on")
            time.sleep(0.5)
    # Same-named task runs (one LP per store) add up; the replenish-* rows are whole subflows.
    stages: dict[str, dict[str, float]] = {}
    for run in sorted(task_runs, key=lambda run: run.start_time or run.expected_start_time):
        stage = stages.setdefault(run.name.rsplit("-", 1)[0], {"seconds": 0.0, "peak_rss_mb": 0.0})
        stage["seconds"] = round(stage["seconds"] + run.total_run_time.total_seconds(), 3)
        if run.start_time and run.end_time:
            stage["peak_rss_mb"] = round(
                max(stage["peak_rss_mb"], memory.peak_between(run.start_time, run.end_time)), 1
            )
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result = {
        "stages": stages,
        "total_seconds": round(total_seconds, 3),
        "peak_rss_mb": round(peak_rss_mb, 1),
        "overrides": args.overrides,
        "python": sys.version.split()[0],
    }

    print(f"{'stage':<28}{'seconds':>10}{'peak RSS MB':>13}")
    for stage, timing in stages.items():
        print(f"{stage:<28}{timing['seconds']:>10.2f}{timing['peak_rss_mb']:>13.0f}")
    print(f"{'total (flow call)':<28}{total_seconds:>10.2f}")
    print(f"peak RSS {peak_rss_mb:.0f} MB (the flow's process; Prefect's temporary server runs apart)")
    if args.out:
        from replenish.io import write_json_atomically

        write_json_atomically(args.out, result)


if __name__ == "__main__":
    main()
