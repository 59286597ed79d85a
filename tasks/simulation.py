"""Replay the user's history under the planning policy and its rivals, and record the comparison."""

from __future__ import annotations

import pandas as pd
from prefect import task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from replenish import tracking
from replenish.data.tables import RawTables
from replenish.report import SimulatedPolicies, policy_chart, simulation_markdown
from replenish.settings import Settings
from replenish.simulate import PolicySimulation, simulate_policies
from tasks.runs import MLFLOW_RETRIES, dataset_name

SIMULATION_JOB = "simulation"
SIMULATION_TABLE = "simulation/policies.csv"
ITEM_STORE_COSTS = "simulation/item_store_costs.csv"
SIMULATION_CHART = "simulation/cost_vs_fill_rate.png"


@task(name="simulate-policies", cache_policy=NO_CACHE)
def simulate_planning_policies(raw: RawTables, settings: Settings) -> PolicySimulation:
    return simulate_policies(raw, settings)


@task(name="log-simulation", cache_policy=NO_CACHE, **MLFLOW_RETRIES)
def log_simulation(settings: Settings, parent_run_id: str, simulation: PolicySimulation) -> str:
    """A child run of `parent_run_id` with every policy's scores, the table and the cost-versus-fill
    chart the plan report shows, each item-store's cost per policy; and the Prefect artifact
    `policy-simulation`."""
    child = tracking.start_child_run(
        settings,
        parent_run_id,
        f"{SIMULATION_JOB}-{dataset_name(settings)}",
        {
            "job": SIMULATION_JOB,
            "dataset": dataset_name(settings),
            "simulation_start": f"{simulation.start:%Y-%m-%d}",
            "simulation_days": str(simulation.days),
            "milp_gap_stores": ",".join(simulation.milp_gap_stores),
        },
    )
    table = simulation.metrics.rename_axis("policy").reset_index()
    tracking.log_metrics(
        settings,
        child,
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
    tracking.log_table(settings, child, table, SIMULATION_TABLE)
    tracking.log_table(settings, child, simulation.item_store_costs, ITEM_STORE_COSTS)
    tracking.log_figure(settings, child, policy_chart(simulation.metrics), SIMULATION_CHART)
    tracking.end_run(settings, child, "FINISHED")
    create_markdown_artifact(
        key="policy-simulation",
        description="The planning policy replayed on recent history",
        markdown=simulation_markdown(simulation, tracking.run_link(settings, child)),
    )
    return child


def latest_simulation(settings: Settings) -> SimulatedPolicies | None:
    """This data set's latest policy simulation; None before the first."""
    run = tracking.latest_run(settings, {"job": SIMULATION_JOB, "dataset": dataset_name(settings)})
    if run is None:
        return None
    return SimulatedPolicies(
        run.info.run_id,
        run.data.tags["simulation_start"],
        int(run.data.tags["simulation_days"]),
        tracking.load_table(settings, run.info.run_id, SIMULATION_TABLE).set_index("policy"),
    )
