"""Wall time per stage and peak memory of the main job on the default (synthetic) data.

    python benchmarks/pipeline.py [--out FILE] [--set key=value ...]

Stage times are the task-run times Prefect recorded for the flow run. Prints a table and writes
``{"stages": {"<stage>": {"seconds": s}}, "total_seconds": s, "peak_rss_mb": m, ...}``.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path


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

    started = time.perf_counter()
    state = main_flow(overrides=overrides, return_state=True)
    total_seconds = time.perf_counter() - started
    state.result()  # raise if the flow failed

    main_run_id = state.state_details.flow_run_id
    with get_client(sync_client=True) as client:
        # The main flow's stages run inside its training and planning subflows.
        subflows = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[main_run_id]))
        )
        task_runs = [
            task_run
            for flow_run_id in [main_run_id, *(run.id for run in subflows)]
            for task_run in client.read_task_runs(flow_run_filter=FlowRunFilter(id={"any_": [flow_run_id]}))
        ]
    # Same-named task runs (one LP per store) add up; the replenish-* rows are whole subflows.
    stages: dict[str, dict[str, float]] = {}
    for run in sorted(task_runs, key=lambda run: run.start_time or run.expected_start_time):
        stage = stages.setdefault(run.name.rsplit("-", 1)[0], {"seconds": 0.0})
        stage["seconds"] = round(stage["seconds"] + run.total_run_time.total_seconds(), 3)
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result = {
        "stages": stages,
        "total_seconds": round(total_seconds, 3),
        "peak_rss_mb": round(peak_rss_mb, 1),
        "overrides": args.overrides,
        "python": sys.version.split()[0],
    }

    print(f"{'stage':<28}{'seconds':>10}")
    for stage, timing in stages.items():
        print(f"{stage:<28}{timing['seconds']:>10.2f}")
    print(f"{'total (flow call)':<28}{total_seconds:>10.2f}")
    print(f"peak RSS {peak_rss_mb:.0f} MB (the flow's process; Prefect's temporary server runs apart)")
    if args.out:
        from replenish.io import write_json_atomically

        write_json_atomically(args.out, result)


if __name__ == "__main__":
    main()
