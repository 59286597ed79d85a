"""What a planning run publishes: the files of a plan (plan_files), the tables and metrics it logs
(plan_tables, plan_metrics), and what the run reports of it (PublishedPlan).  replenish/publishing.py
writes them as one unit."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pandas as pd

from optimization.config import PlanningConfig
from optimization.planning import PlanOutlook, explained_orders, planned_orders, purchase_orders
from optimization.problem import PlanningProblem, PlanResult
from replenish.io import Content
from replenish.publishing import (
    DEMAND_FILE,
    EXPLAINED_FILE,
    INVENTORY_FILE,
    PLAN_FILE,
    PLANS_FOLDER,
    PURCHASE_ORDERS_FILE,
    REPORT_FILE,
    VIOLATIONS_FILE,
    plan_folder_name,
)
from replenish.report import PlanReport, render_html, summarised_violations


@dataclass(frozen=True)
class PublishedPlan:
    purchase_orders_path: Path  # the orders due on the first planned day
    plan_path: Path  # the projected plan over the horizon
    demand_path: Path
    explained_path: Path
    report_path: Path
    violations_path: Path | None  # soft mode only
    folder: Path  # output/plans/<created>-<run id>: the paths above read it through output/current
    first_day: pd.Timestamp
    due_orders: int  # purchase orders due on the first day
    due_units: float
    due_cost: float
    orders: int  # over the horizon
    units: float
    planned_cost: float
    outlook: PlanOutlook
    solver_status: str
    broken_constraints: list[str]  # soft mode: each broken constraint in a line, the worst first

    def key_figures(self) -> list[dict[str, str]]:
        """The plan's headline figures, one row each, for the Prefect UI's table artifact."""
        outlook = self.outlook
        figures = {
            f"purchase orders due {self.first_day:%Y-%m-%d}": f"{self.due_orders:,}",
            "units due": f"{self.due_units:,.0f}",
            "purchase cost due": f"{self.due_cost:,.2f}",
            "orders over the horizon": f"{self.orders:,}",
            "planned cost": f"{self.planned_cost:,.2f}",
            "expected fill rate": f"{outlook.expected_fill_rate:.1%}",
            "expected cost": f"{outlook.expected_cost:,.2f}",
            "stock-out risk per item-store and day": f"{outlook.stockout_risk:.1%}",
            "broken constraints (soft mode)": f"{len(self.broken_constraints):,}",
            "solver status": self.solver_status,
        }
        return [{"figure": name, "value": value} for name, value in figures.items()]

    def summary_lines(self) -> list[str]:
        """The plan as the command line reports it; broken constraints (soft mode) first."""
        broken = []
        if self.broken_constraints:
            shown = "; ".join(self.broken_constraints[:3]) + ("; ..." if len(self.broken_constraints) > 3 else "")
            broken = [
                f"  BROKEN     {len(self.broken_constraints)} constraint(s), planned in soft mode: {shown} "
                f"(all in {self.violations_path})"
            ]
        outlook = self.outlook
        return [
            *broken,
            f"  orders     {self.due_orders} purchase order(s) due {self.first_day:%Y-%m-%d}: "
            f"{self.due_units:,.0f} units,"
            f" cost {self.due_cost:,.2f}",
            f"  plan       {self.orders} orders over the horizon, {self.units:,.0f} units, planned cost "
            f"{self.planned_cost:,.2f} (solver: {self.solver_status})",
            f"  outlook    expected fill rate {outlook.expected_fill_rate:.1%}, "
            f"expected cost {outlook.expected_cost:,.2f},"
            f" stock-out risk {outlook.stockout_risk:.1%} per item-store and day ({outlook.demand_paths} sampled demand"
            " paths)",
            f"  written    {self.purchase_orders_path} (projected plan: {self.plan_path}, explained: "
            f"{self.explained_path.name})",
        ]


def published_plan(
    planning: PlanningConfig,
    output_dir: Path,
    run_id: str,
    created: datetime,
    problem: PlanningProblem,
    plan: PlanResult,
    report: PlanReport,
) -> PublishedPlan:
    """Where the plan of run ``run_id``, created at ``created``, is published in ``output_dir``, and its figures."""
    orders, due = planned_orders(plan), purchase_orders(problem, plan)
    return PublishedPlan(
        output_dir / PURCHASE_ORDERS_FILE,
        output_dir / PLAN_FILE,
        output_dir / DEMAND_FILE,
        output_dir / EXPLAINED_FILE,
        output_dir / REPORT_FILE,
        output_dir / VIOLATIONS_FILE if planning.model.soft_constraints else None,
        output_dir / PLANS_FOLDER / plan_folder_name(run_id, created),
        pd.Timestamp(problem.start_date),
        len(due),
        float(due["quantity"].sum()),
        float(due["cost"].sum()),
        len(orders),
        float(orders["quantity"].sum()),
        plan.objective,
        report.outlook,
        plan.solver_status,
        summarised_violations(plan.violations)["summary"].tolist(),
    )


def plan_files(
    planning: PlanningConfig, run_id: str, problem: PlanningProblem, plan: PlanResult, report: PlanReport
) -> dict[str, Content]:
    """The files published together as one plan, by their names in the output folder."""
    dated = problem.demand.assign(date=problem.start_date + pd.to_timedelta(problem.demand["period"], unit="D"))
    # The expected demand: in scenario mode the mean of the scenarios the plan was made on.
    demand = dated.groupby(["item_id", "store_id", "date"], as_index=False, sort=True)["demand"].mean()
    return {
        PURCHASE_ORDERS_FILE: purchase_orders(problem, plan),
        PLAN_FILE: planned_orders(plan),
        EXPLAINED_FILE: explained_orders(plan),
        DEMAND_FILE: demand[["item_id", "store_id", "date", "demand"]],
        REPORT_FILE: render_html(report, run_id),
        # Soft mode always says what it broke, if only that it broke nothing.
        **({VIOLATIONS_FILE: plan.violations} if planning.model.soft_constraints else {}),
    }


def plan_tables(planning: PlanningConfig, problem: PlanningProblem, plan: PlanResult) -> dict[str, pd.DataFrame]:
    """The plan's tables as a planning run logs them, by file name: the published ones and the projected inventory."""
    return {
        PURCHASE_ORDERS_FILE: purchase_orders(problem, plan),
        PLAN_FILE: planned_orders(plan),
        EXPLAINED_FILE: explained_orders(plan),
        INVENTORY_FILE: plan.inventory,
        **({VIOLATIONS_FILE: plan.violations} if planning.model.soft_constraints else {}),
    }


def plan_metrics(published: PublishedPlan, plan: PlanResult) -> dict[str, float]:
    """The plan's metrics, as a planning run logs them."""
    return {
        "plan_purchase_orders": published.due_orders,
        "plan_purchase_cost": published.due_cost,
        "plan_orders": published.orders,
        "plan_units": published.units,
        "plan_cost": plan.objective,
        "plan_expected_fill_rate": published.outlook.expected_fill_rate,
        "plan_expected_cost": published.outlook.expected_cost,
        "plan_stockout_risk": published.outlook.stockout_risk,
        "plan_broken_constraints": len(plan.violations),
        "plan_solve_seconds": plan.solve_seconds,
        **{f"plan_cost_{part}": value for part, value in plan.cost_breakdown.items()},
    }
