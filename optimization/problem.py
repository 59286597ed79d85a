"""What a replenishment plan is asked to do, and what it returns: the planner's public types."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import pandas as pd

from replenish.bounds import require_in_range
from replenish.frequency import DAILY, Frequency

ShortageMode = Literal["lost_sales", "backorder"]
Backend = Literal["pyomo", "highspy"]
# How orders become quantities a supplier accepts (whole case packs, zero or at least the MOQ):
# "none" leaves them continuous (an LP); "milp" makes them integer, with a repair of the LP
# relaxation when HiGHS finds no whole-order plan within its time limit; "repair" goes straight
# to the repair (see optimization.repair).
WholeOrders = Literal["none", "milp", "repair"]

# Solver noise below this is not an order anyone should place.
MIN_ORDER_QUANTITY = 1e-6

CAPACITY_UTILISATION_COLUMNS = [
    "store_id",
    "period",
    "date",
    "volume_after_arrivals",
    "capacity_volume",
    "utilisation",
    "binding",
]
EXPLANATION_COLUMNS = [
    "item_id",
    "store_id",
    "order_date",
    "quantity",
    "lead_time_periods",
    "demand_over_protection",
    "safety_stock",
    "on_hand",
    "pipeline",
    "inventory_position_after_order",
    "binding",
]
VIOLATION_COLUMNS = ["constraint", "store_id", "item_id", "period", "date", "amount"]


@dataclass(frozen=True)
class PlanningProblem:
    """Inputs of one plan: periods of `frequency` (days, weeks or months), period 0 the one `start_date` labels.

    demand: item_id, store_id, period, demand, and optionally scenario (0..S-1, equally likely):
      with a scenario column the plan is a two-stage stochastic program (orders shared, stock
      and shortages per scenario).
    items: item_id, unit_cost, holding_cost_rate (per year), lead_time_days, unit_volume, and
      optionally case_pack, moq, max_order, shortage_cost (per unit, overrides the multiplier),
      review_days and order_weekday (the order calendar, see optimization.grid.order_calendar).
    safety_stock: item_id, store_id, period, safety_stock: the least end-of-period stock the
      service-level targets require (quantile mode); enforced from the first period an order can
      reach.
    """

    start_date: pd.Timestamp
    n_periods: int
    demand: pd.DataFrame
    items: pd.DataFrame
    on_hand: pd.DataFrame
    open_orders: pd.DataFrame
    capacity: pd.DataFrame
    frequency: Frequency = DAILY
    safety_stock: pd.DataFrame | None = None

    @property
    def period_days(self) -> float:
        return self.frequency.days_per_period


@dataclass(frozen=True)
class CostSettings:
    shortage_cost_multiplier: float = 2.0  # × unit cost, per lost unit (or per backlogged unit-period)
    order_cost_per_unit: float = 0.0
    fixed_order_cost: float = 0.0  # per order line placed; above 0 the model is a MILP
    # Stock left at the horizon's end (net of backlog) is worth this share of its unit cost: it sells
    # after the horizon, so a plan re-made every day should not run stock down only because its
    # horizon ends.
    ending_stock_value_share: float = 1.0

    def __post_init__(self) -> None:
        holds = {
            "shortage_cost_multiplier": self.shortage_cost_multiplier >= 0,
            "order_cost_per_unit": self.order_cost_per_unit >= 0,
            "fixed_order_cost": self.fixed_order_cost >= 0,
            "ending_stock_value_share": 0 <= self.ending_stock_value_share <= 1,
        }
        require_in_range(self, holds, "costs", "costs at least 0, ending_stock_value_share between 0 and 1")


@dataclass(frozen=True)
class SolverSettings:
    time_limit_seconds: float = 60.0
    mip_rel_gap: float = 1e-4
    options: Mapping[str, object] = field(default_factory=dict)  # HiGHS options, passed through
    # HiGHS directly (the fast route, and the only one that passes the MILP a start), or the same
    # model built in Pyomo first.
    backend: Backend = "highspy"

    def __post_init__(self) -> None:
        holds = {"time_limit_seconds": self.time_limit_seconds > 0, "mip_rel_gap": self.mip_rel_gap >= 0}
        require_in_range(self, holds, "solver settings", "time_limit_seconds above 0, mip_rel_gap at least 0")


@dataclass(frozen=True)
class ModelOptions:
    shortage_mode: ShortageMode = "lost_sales"
    # Orders a supplier accepts (whole case packs, zero or at least the MOQ): "repair" rounds the LP
    # relaxation's orders and gives back what rounding took from capacity and budget (seconds a store);
    # "milp" then solves the MILP from that plan within the time limit and keeps the cheaper (minutes a
    # store on 200 scenarios; see README for the measured gap); "none" leaves them fractional.
    whole_orders: WholeOrders = "repair"
    max_order_quantity: float | None = None  # per order line, on top of any items.max_order
    budget_per_period: float | None = None  # purchase spend per period, over all stores
    # Soft mode: capacity, budget and stock targets may be broken at this cost per unit
    # (volume, money or stock) so that a plan always comes back.
    soft_constraints: bool = False
    violation_penalty: float = 1e4
    # Split the plan into one model per store when nothing but store constraints couples items.
    decompose_by_location: bool = False
    workers: int = 1  # processes solving the per-store models at once
    # A store's item-stores are solved in blocks of at most this many item-store × scenario × period
    # cells, with capacity checked on their plans together (optimization.decomposition); None: each
    # store as one model.  One model's solve time grows faster than its item count: a block's does not.
    block_cells: int | None = 30_000

    def __post_init__(self) -> None:
        holds = {
            "max_order_quantity": self.max_order_quantity is None or self.max_order_quantity >= 0,
            "budget_per_period": self.budget_per_period is None or self.budget_per_period >= 0,
            "violation_penalty": self.violation_penalty > 0,
            "workers": self.workers >= 1,
            "block_cells": self.block_cells is None or self.block_cells >= 1,
        }
        require_in_range(
            self,
            holds,
            "planning model options",
            "limits at least 0, violation_penalty above 0, workers and block_cells at least 1",
        )


@dataclass(frozen=True)
class PlanResult:
    orders: pd.DataFrame
    inventory: pd.DataFrame
    objective: float
    cost_breakdown: dict[str, float]
    solver_status: str
    solve_seconds: float
    expected_fill_rate: float
    # One row per capacitated store and period: CAPACITY_UTILISATION_COLUMNS.
    capacity_utilisation: pd.DataFrame
    # One row per order: EXPLANATION_COLUMNS.
    explanations: pd.DataFrame
    # Soft mode only (empty otherwise): every broken constraint, VIOLATION_COLUMNS.
    violations: pd.DataFrame
    # Inputs to arrays to the solver's model; with decomposition, both times sum the parts.
    build_seconds: float


class PlanInfeasibleError(ValueError):
    """No plan satisfies every hard constraint; the message names every constraint at fault.

    reasons: one per constraint (or store) at fault, so that the reasons of plans solved apart (one
    per store) can be reported together; hint: what the caller can do about it."""

    def __init__(self, reasons: Sequence[str], hint: str = "") -> None:
        self.reasons = list(reasons)
        self.hint = hint
        super().__init__("no feasible plan: " + "; ".join(self.reasons) + (f". {hint}" if hint else ""))

    def __reduce__(self) -> tuple[type[PlanInfeasibleError], tuple[list[str], str]]:
        # Parts solved in worker processes send their errors back pickled.
        return (PlanInfeasibleError, (self.reasons, self.hint))


class SolverLimitError(RuntimeError):
    """HiGHS reached its time limit (most often on a loaded machine) before it had any plan; the
    message names the stores, the model's size and the setting to raise."""


def rounded(amount: float) -> str:
    """Units, volume or money as a person reads them: whole above 100, three figures below."""
    return f"{amount:,.0f}" if abs(amount) >= 100 else f"{amount:,.3g}"
