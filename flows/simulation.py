"""Prove the planning policy on the user's own history: replay the last weeks under it and its rivals."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from prefect import flow

from flows.common import checked_input, tracked_run
from replenish.settings import load_settings
from replenish.simulate import PolicySimulation
from tasks.simulation import log_simulation, simulate_planning_policies


@dataclass(frozen=True)
class SimulationSummary:
    mlflow_run_id: str
    simulation_run_id: str  # the child run holding the comparison
    simulation: PolicySimulation


@flow(name="replenish-simulate", log_prints=True)
def simulation_flow(config_file: str | None = None, overrides: list[str] | None = None) -> SimulationSummary:
    settings = load_settings(Path(config_file) if config_file else None, overrides or [])
    with tracked_run(settings, "simulate") as (raw, tracker):
        tables = checked_input(settings, raw, tracker).tables
        simulation = simulate_planning_policies(tables, settings)
        child = log_simulation(settings.data, tracker, simulation)
    return SimulationSummary(tracker.run_id, child, simulation)
