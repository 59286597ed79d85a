"""What a plan is asked for: the planning layer's own configuration.  The settings embed it as
``planning`` (replenish/settings.py), and every planning step takes it as it is."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from models.forecast_contract import MissingForecast
from optimization.problem import CostSettings, ModelOptions, SolverSettings
from optimization.service_levels import ServiceLevels
from replenish.bounds import require_in_range

# How forecast uncertainty enters the plan: "scenario" plans against n_scenarios demand paths
# sampled from the forecast quantiles (two-stage SAA); "quantile" plans the demand_quantile
# forecast plus safety-stock targets for each item's service level; "point" plans the
# demand_quantile forecast alone.
UncertaintyMode = Literal["point", "quantile", "scenario"]


@dataclass(frozen=True)
class PlanningConfig:
    horizon: int | None = None  # periods planned; None: the forecast's horizon
    demand_quantile: float = 0.5
    uncertainty_mode: UncertaintyMode = "scenario"
    # Cycle service-level targets: the item master's service_level, else by ABC class of revenue.
    # The plan follows the higher of an item's target and the level its shortage penalty implies
    # (see optimization.service_levels).
    service_levels: ServiceLevels = field(default_factory=ServiceLevels)
    # Enough paths to resolve the critical fractile the default penalty implies (about 0.995: a
    # plan on N paths cannot tell levels above 1 - 1/N apart).
    n_scenarios: int = 200
    scenario_seed: int = 0
    # How demand paths are drawn from the forecast: how strongly neighbouring days move together
    # (their forecast errors share a misjudged level), and the factor the quantiles' distances from
    # the median are widened by (a forecaster may cover less than it says). None: calibrated for
    # every plan on what sold after the forecast made one horizon earlier; a number fixes it.
    scenario_period_correlation: float | None = None
    scenario_spread: float | None = None
    # The plan's expected fill rate, cost and stock-out risk come from this many demand paths
    # sampled from the forecast, apart from the ones the plan was made on.
    kpi_demand_paths: int = 500
    # The optimizer's own types (optimization/problem.py): costs, the model's rules, the solver.
    costs: CostSettings = field(default_factory=CostSettings)
    model: ModelOptions = field(default_factory=ModelOptions)
    solver: SolverSettings = field(default_factory=SolverSettings)
    # An item-store or planned day the champion's forecast lacks: "refuse" to plan, or plan it on
    # a seasonal naive forecast (reported, and counted in the metric plan_series_naive_fallback).
    missing_forecast: MissingForecast = "refuse"

    def __post_init__(self) -> None:
        correlation, spread = self.scenario_period_correlation, self.scenario_spread
        holds = {
            "horizon": self.horizon is None or self.horizon >= 1,
            "demand_quantile": 0 < self.demand_quantile < 1,
            "n_scenarios": self.n_scenarios >= 1,
            "scenario_period_correlation": correlation is None or 0 <= correlation < 1,
            "scenario_spread": spread is None or spread > 0,
            "kpi_demand_paths": self.kpi_demand_paths >= 10,
        }
        require_in_range(
            self,
            holds,
            "planning settings",
            "horizon at least 1, demand_quantile strictly between 0 and 1, n_scenarios at least 1, "
            "scenario_period_correlation in [0, 1), scenario_spread above 0, kpi_demand_paths at least 10",
        )
