"""Replay the user's history under the planning policy and its rivals, and record the comparison."""

from __future__ import annotations

import pandas as pd
from prefect import task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from replenish.data.tables import RawTables
from replenish.report import policy_chart, simulation_markdown
from replenish.settings import DataSettings, Settings
from replenish.simulate import (
    ITEM_STORE_COSTS,
    SIMULATION_CHART,
    SIMULATION_JOB,
    SIMULATION_TABLE,
    PolicySimulation,
    simulate_policies,
)
from replenish.tracking import RunTracker, dataset_name
from tasks.runs import MLFLOW_RETRIES


@task(name="simulate-policies", cache_policy=NO_CACHE)
def simulate_planning_policies(raw: RawTables, settings: Settings) -> PolicySimulation:
    return simulate_policies(raw, settings)


@task(name="log-simulation", cache_policy=NO_CACHE, **MLFLOW_RETRIES)
def log_simulation(data: DataSettings, tracker: RunTracker, simulation: PolicySimulation) -> str:
    """A child run of the tracker's with every policy's scores, the table and the cost-versus-fill
    chart the plan report shows, each item-store's cost per policy; and the Prefect artifact
    `policy-simulation`.  Returns the child run's id."""
    child = tracker.start_child(
        f"{SIMULATION_JOB}-{dataset_name(data)}",
        {
            "job": SIMULATION_JOB,
            "dataset": dataset_name(data),
            "simulation_start": f"{simulation.start:%Y-%m-%d}",
            "simulation_days": str(simulation.days),
            "milp_gap_stores": ",".join(simulation.milp_gap_stores),
        },
    )
    table = simulation.metrics.rename_axis("policy").reset_index()
    child.log_metrics(
        {
            **{
                f"{row['policy']}_{metric}": row[metric]
                for _, row in table.iterrows()
                for metric in simulation.metrics.columns
                if pd.notna(row[metric])
            },
            "milp_gap": simulation.milp_gap,
            "cost_reduction_vs_base_stock": simulation.cost_reduction(),
            "gap_closed_to_perfect_foresight": simulation.gap_closed(),
        },
    )
    child.log_table(table, SIMULATION_TABLE)
    child.log_table(simulation.item_store_costs, ITEM_STORE_COSTS)
    child.log_figure(policy_chart(simulation.metrics), SIMULATION_CHART)
    child.end("FINISHED")
    create_markdown_artifact(
        key="policy-simulation",
        description="The planning policy replayed on recent history",
        markdown=simulation_markdown(simulation, child.link),
    )
    return child.run_id
