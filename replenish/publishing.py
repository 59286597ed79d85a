"""Publish a plan's files as one unit (each file written as replenish.io writes files).

A plan is several files (the orders, their explanations, the demand, the report) that only make
sense together. Each plan is written into its own folder, ``plans/<created>-<run id>/``, built
under a hidden temporary name and renamed into place once complete, with a ``manifest.json``
written last. The symlink ``current`` then points at it, and every stable name a user reads
(``order_plan.csv``, ...) is a symlink through ``current``; so one atomic rename of ``current``
switches every file at once, and a publish killed at any point leaves the old plan or the new one.

What a planning run publishes is defined here too: the files of a plan (plan_files), the tables and
metrics it logs (plan_tables, plan_metrics), and what the run reports of it (PublishedPlan).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from optimization.config import PlanningConfig
from optimization.planning import PlanOutlook, explained_orders, planned_orders, purchase_orders
from optimization.problem import PlanningProblem, PlanResult
from replenish.io import TEMPORARY_NAME, Content, encoded, temporary_name, write_new_file
from replenish.report import PlanReport, render_html, summarised_violations

PLANS_FOLDER = "plans"
PLAN_FILE = "order_plan.csv"  # the projected plan over the horizon (settings.plan_path)
PURCHASE_ORDERS_FILE = "purchase_orders.csv"
VIOLATIONS_FILE = "constraint_violations.csv"
EXPLAINED_FILE = "order_plan_explained.csv"
DEMAND_FILE = "plan_demand.csv"
REPORT_FILE = "plan_report.html"
INVENTORY_FILE = "projected_inventory.csv"  # logged with the plan's tables, not published
CURRENT_LINK = "current"
MANIFEST = "manifest.json"
KEEP_PLANS = 10  # plan folders kept, the current one included: enough to compare or roll back by hand


class PublishError(OSError):
    """The plan could not be written; the previously published plan is unchanged."""


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


def publish_unit(
    output_dir: Path, files: Mapping[str, Content], run_id: str, created: datetime, keep: int = KEEP_PLANS
) -> Path:
    """Publish ``files`` (by name) as one plan and make it current; return its folder.

    Idempotent: a retry with the same run id and creation time reuses the folder it completed.
    On failure (disk full, no permission) raises PublishError, leaving the current plan as it was."""
    plans = output_dir / PLANS_FOLDER
    folder = plans / plan_folder_name(run_id, created)
    try:
        plans.mkdir(parents=True, exist_ok=True)
        remove_leftovers(output_dir)
        if not folder.exists():  # it exists only complete: it is renamed into place once built
            _build_folder(folder, files, run_id, created)
        # New names link through `current` before the switch, so they appear with the rest of the plan.
        for name in files:
            _link(output_dir / name, f"{CURRENT_LINK}/{name}")
        _link(output_dir / CURRENT_LINK, f"{PLANS_FOLDER}/{folder.name}")
        _sync_folder(output_dir)
    except OSError as error:
        raise PublishError(f"could not write the plan to {output_dir}: {error.strerror or error}") from error
    prune_plans(output_dir, keep)
    return folder


def plan_folder_name(run_id: str, created: datetime) -> str:
    """Names sort in the order plans were created, which is what retention goes by."""
    return f"{created.astimezone(UTC):%Y%m%dT%H%M%S%fZ}-{run_id}"


def manifest(files: Mapping[str, bytes], rows: Mapping[str, int], run_id: str, created: datetime) -> str:
    return (
        json.dumps(
            {
                "run_id": run_id,
                "created": created.astimezone(UTC).isoformat(),
                "files": [
                    {
                        "name": name,
                        "bytes": len(data),
                        "sha256": hashlib.sha256(data).hexdigest(),
                        **({"rows": rows[name]} if name in rows else {}),
                    }
                    for name, data in files.items()
                ],
            },
            indent=2,
        )
        + "\n"
    )


def remove_leftovers(output_dir: Path) -> None:
    """Temporary files, links and half-built plan folders of publishes that were killed."""
    for path in [*output_dir.glob(".*.tmp"), *(output_dir / PLANS_FOLDER).glob(".*.tmp")]:
        match = TEMPORARY_NAME.match(path.name)
        if match is None or not _process_alive(int(match["pid"])):
            _remove(path)


def prune_plans(output_dir: Path, keep: int) -> None:
    """All but the newest ``keep`` (at least 1) plan folders; never the current one."""
    current = os.path.basename(os.readlink(output_dir / CURRENT_LINK))
    folders = sorted(path for path in (output_dir / PLANS_FOLDER).iterdir() if not path.name.startswith("."))
    for folder in folders[:-keep]:
        if folder.name != current:
            _remove(folder)


def _build_folder(folder: Path, files: Mapping[str, Content], run_id: str, created: datetime) -> None:
    staging = temporary_name(folder)
    staging.mkdir()
    try:
        contents = {name: encoded(content, Path(name).suffix) for name, content in files.items()}
        for name, data in contents.items():
            write_new_file(staging / name, data)
        rows = {name: len(content) for name, content in files.items() if isinstance(content, pd.DataFrame)}
        # Last, so a folder with a manifest holds every file it lists.
        write_new_file(staging / MANIFEST, manifest(contents, rows, run_id, created).encode("utf-8"))
        _sync_folder(staging)
        os.rename(staging, folder)
        _sync_folder(folder.parent)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _link(path: Path, target: str) -> None:
    """Point the symlink ``path`` at ``target`` in one rename, replacing whatever file was there."""
    if path.is_symlink() and os.readlink(path) == target:
        return
    temporary = temporary_name(path)
    try:
        os.symlink(target, temporary)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _sync_folder(folder: Path) -> None:
    """Renames inside ``folder`` survive a power cut once this returns."""
    handle = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by another user
        pass
    return True


def _remove(path: Path) -> None:
    # Another publish may be removing the same leftover: what is gone already is fine.
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
