"""The plan report: one self-contained HTML page per planning run, for whoever approves the orders.

It is built from what the run already has (the planning problem, the solved plan, the explained
orders, the purchase orders, the plan's outlook on sampled demand, the forecast, the sales history
and the data set's latest policy simulation) and inlines every figure as a base64 PNG, with no
external script or style sheet, so it opens offline: from the output folder, an e-mail or MLflow.
A plan made in soft mode leads with the constraints it broke.

Beside it, the Markdown the Prefect UI shows for a planning run (report_markdown), a policy simulation
(simulation_markdown), a training run's registration (registration_markdown) and a monitoring run
(monitoring_markdown).
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from models.forecast_contract import NAIVE_FALLBACK
from models.forecast_frame import MEAN
from optimization.formulation import order_slot_mask
from optimization.grid import prepare_grid
from optimization.planning import KPI_SEED_OFFSET, PlanOutlook
from optimization.problem import PlanningProblem, PlanResult, rounded
from optimization.service_levels import ABC_CLASSES
from replenish.frequency import Frequency
from replenish.plots import fan_chart_figure, plt  # pyplot, once plots has chosen the Agg backend

if TYPE_CHECKING:
    from models.evaluation import ForecastScores
    from models.monitoring import MonitoringReport
    from replenish.simulate import PolicySimulation
    from replenish.tracking import PromotionDecision

TOP_ORDERS = 20
CHARTED_SERIES = 4
ITEM_STORE = ["item_id", "store_id"]
PURCHASE_ORDERS_SHOWN = 50
CAPACITY_USE_COLUMNS = ["store_id", "capacity_volume", "peak_share", "mean_share", "binding_periods"]
BUDGET_USE_COLUMNS = ["period", "date", "spend", "budget", "share"]
BROKEN_COLUMNS = ["constraint", "where", "periods", "first_date", "worst", "summary"]
SERVICE_CLASS_COLUMNS = ["abc_class", "items", "target", "penalty_level", "planned_level", "follows"]
# The policies a simulation compares, as the report names them.
POLICY_NAMES = {
    "default": "default policy (this plan's)",
    "base_stock_snaive": "base stock on seasonal naive",
    "perfect_foresight": "perfect foresight",
}


@dataclass(frozen=True)
class SimulatedPolicies:
    """The data set's latest policy simulation (see replenish.simulate), as MLflow recorded it."""

    run_id: str
    start: str  # first replayed day
    days: int
    metrics: pd.DataFrame  # one row per policy, indexed by policy name


@dataclass(frozen=True)
class PlanReport:
    start_date: pd.Timestamp
    n_periods: int
    frequency: Frequency
    solver_status: str
    planned_cost: float
    cost_breakdown: dict[str, float]
    expected_fill_rate: float
    orders: int
    units: float
    order_value: float
    capacity_use: pd.DataFrame  # CAPACITY_USE_COLUMNS, one row per capacitated store
    budget_use: pd.DataFrame  # BUDGET_USE_COLUMNS, one row per order period; empty without a budget
    top_orders: pd.DataFrame  # the explained orders of the highest value, with their value
    forecast_chart: bytes | None  # PNG; None when there is nothing to chart
    inventory_chart: bytes | None
    utilisation_chart: bytes | None
    outlook: PlanOutlook
    broken: pd.DataFrame  # BROKEN_COLUMNS, one row per broken constraint and place (soft mode)
    service_levels: pd.DataFrame  # SERVICE_CLASS_COLUMNS, one row per ABC class planned
    purchase_orders: pd.DataFrame  # due on the first planned day (optimization.planning.PURCHASE_ORDER_COLUMNS)
    simulation: SimulatedPolicies | None
    simulation_chart: bytes | None
    naive_fallback_series: int = 0  # item-stores planned on seasonal naive: the champion's forecast lacked them


def plan_report(
    problem: PlanningProblem,
    plan: PlanResult,
    explained: pd.DataFrame,
    forecast: pd.DataFrame,
    history: pd.DataFrame,
    budget_per_period: float | None,
    outlook: PlanOutlook,
    purchase_orders: pd.DataFrame,
    simulation: SimulatedPolicies | None = None,
) -> PlanReport:
    """``explained`` is the published order_plan_explained frame; ``forecast`` has item_id,
    store_id, date, q<level> columns and mean; ``history`` has item_id, store_id, date, units."""
    valued = valued_orders(explained, problem.items)
    horizon = forecast_over_horizon(forecast, problem)
    charted = charted_item_stores(valued, horizon, CHARTED_SERIES)
    budget = budget_use(problem, valued, budget_per_period)
    forecast_chart = inventory_chart = utilisation_chart = None
    if len(charted):
        forecast_chart = _png(
            fan_chart_figure(
                _of(history, charted),
                None,
                _of(horizon, charted),
                n_series=len(charted),
                title="Forecast of the item-stores the plan spends most on",
            )
        )
        inventory_chart = _png(
            inventory_figure(_of(plan.inventory, charted), problem.safety_stock, _of(valued, charted), charted)
        )
    if len(plan.capacity_utilisation) or len(budget):
        utilisation_chart = _png(utilisation_figure(plan.capacity_utilisation, budget))
    return PlanReport(
        start_date=pd.Timestamp(problem.start_date).normalize(),
        n_periods=problem.n_periods,
        frequency=problem.frequency,
        solver_status=plan.solver_status,
        planned_cost=plan.objective,
        cost_breakdown=dict(plan.cost_breakdown),
        expected_fill_rate=plan.expected_fill_rate,
        orders=len(valued),
        units=float(valued["quantity"].sum()),
        order_value=float(valued["value"].sum()),
        capacity_use=capacity_use(plan.capacity_utilisation),
        budget_use=budget,
        top_orders=valued.head(TOP_ORDERS),
        forecast_chart=forecast_chart,
        inventory_chart=inventory_chart,
        utilisation_chart=utilisation_chart,
        outlook=outlook,
        broken=summarised_violations(plan.violations),
        service_levels=service_classes(problem.items),
        purchase_orders=purchase_orders,
        simulation=simulation,
        simulation_chart=_png(policy_chart(simulation.metrics)) if simulation is not None else None,
        naive_fallback_series=naive_fallback_series(horizon),
    )


def summarised_violations(violations: pd.DataFrame) -> pd.DataFrame:
    """One row per broken constraint and place (a store's capacity, a period's budget, an
    item-store's target), the largest breach first, with a one-line summary."""
    if violations.empty:
        return pd.DataFrame(columns=BROKEN_COLUMNS)
    where = np.select(
        [violations["constraint"] == "store_capacity", violations["constraint"] == "stock_target"],
        [
            "store " + violations["store_id"].astype(str),
            "item " + violations["item_id"].astype(str) + " at store " + violations["store_id"].astype(str),
        ],
        "all stores",
    )
    grouped = violations.assign(where=where).groupby(["constraint", "where"], sort=False)
    broken = grouped.agg(periods=("period", "size"), first_date=("date", "min"), worst=("amount", "max")).reset_index()
    units = broken["constraint"].map({"store_capacity": "volume", "budget": "money", "stock_target": "units"})
    broken["summary"] = [
        f"{constraint.replace('_', ' ')} broken at {place} in {periods} period(s) from {day(first)}, "
        f"by up to {rounded(worst)} {unit}"
        for constraint, place, periods, first, worst, unit in zip(
            broken["constraint"],
            broken["where"],
            broken["periods"],
            broken["first_date"],
            broken["worst"],
            units,
            strict=False,
        )
    ]
    return broken.sort_values("worst", ascending=False, ignore_index=True)[BROKEN_COLUMNS]


def service_classes(items: pd.DataFrame) -> pd.DataFrame:
    """Per ABC class: its items, their mean target, the mean level their shortage penalty implies,
    the mean level planned, and which of the two the plan follows (the higher)."""
    if "abc_class" not in items:
        return pd.DataFrame(columns=SERVICE_CLASS_COLUMNS)
    by_class = items.assign(by_target=items["service_level"] >= items["penalty_level"]).groupby("abc_class")
    table = (
        by_class.agg(
            items=("item_id", "size"),
            target=("service_level", "mean"),
            penalty_level=("penalty_level", "mean"),
            planned_level=("planned_level", "mean"),
            by_target=("by_target", "sum"),
        )
        .reindex(ABC_CLASSES)
        .dropna(subset=["items"])
    )
    table["follows"] = [
        "the service-level target"
        if by_target == count
        else "the shortage penalty"
        if by_target == 0
        else f"the target for {by_target:.0f} item(s), the penalty for {count - by_target:.0f}"
        for by_target, count in zip(table["by_target"], table["items"], strict=False)
    ]
    return table.rename_axis("abc_class").reset_index()[SERVICE_CLASS_COLUMNS]


def naive_fallback_series(forecast: pd.DataFrame) -> int:
    """Item-stores with at least one planned day from the seasonal naive fallback (see models.forecast_contract)."""
    if NAIVE_FALLBACK not in forecast:
        return 0
    return len(forecast.loc[forecast[NAIVE_FALLBACK].astype(bool), ITEM_STORE].drop_duplicates())


def valued_orders(explained: pd.DataFrame, items: pd.DataFrame) -> pd.DataFrame:
    """The explained orders with their purchase value, the dearest first."""
    unit_cost = items.set_index("item_id")["unit_cost"]
    valued = explained.assign(value=explained["quantity"] * explained["item_id"].map(unit_cost).astype(float))
    return valued.sort_values("value", ascending=False, kind="stable", ignore_index=True)


def forecast_over_horizon(forecast: pd.DataFrame, problem: PlanningProblem) -> pd.DataFrame:
    """The forecast days the plan covers."""
    start = pd.Timestamp(problem.start_date).normalize()
    end = problem.frequency.shift(start, problem.n_periods)
    return forecast[(forecast["date"] >= start) & (forecast["date"] < end)]


def charted_item_stores(valued: pd.DataFrame, forecast: pd.DataFrame, n: int) -> pd.MultiIndex:
    """The item-stores the plan spends most on; those with the most forecast demand fill up the rest."""
    ranking = pd.DataFrame(
        {
            "value": valued.groupby(ITEM_STORE)["value"].sum(),
            "demand": forecast.groupby(ITEM_STORE)[MEAN].sum(),
        }
    ).fillna(0.0)
    return ranking.sort_values(["value", "demand"], ascending=False, kind="stable").head(n).index


def capacity_use(utilisation: pd.DataFrame) -> pd.DataFrame:
    """Per capacitated store: the peak and mean share of capacity filled right after deliveries."""
    if utilisation.empty:
        return pd.DataFrame(columns=CAPACITY_USE_COLUMNS)
    by_store = utilisation.groupby("store_id", sort=True)
    return pd.DataFrame(
        {
            "capacity_volume": by_store["capacity_volume"].first(),
            "peak_share": by_store["utilisation"].max(),
            "mean_share": by_store["utilisation"].mean(),
            "binding_periods": by_store["binding"].sum().astype(int),
        }
    ).reset_index()[CAPACITY_USE_COLUMNS]


def budget_use(problem: PlanningProblem, valued: pd.DataFrame, budget_per_period: float | None) -> pd.DataFrame:
    """Purchase spend against the budget in the periods the model budgets: the order days on which
    some order can still land within the horizon."""
    if budget_per_period is None:
        return pd.DataFrame(columns=BUDGET_USE_COLUMNS)
    periods = np.flatnonzero(order_slot_mask(prepare_grid(problem)).any(axis=0))
    dates = problem.frequency.dates_from(problem.start_date, periods)
    spend = valued.groupby("order_date")["value"].sum().reindex(dates, fill_value=0.0).to_numpy(dtype=float)
    budget = np.full(len(periods), float(budget_per_period))
    return pd.DataFrame(
        {
            "period": periods,
            "date": dates,
            "spend": spend,
            "budget": budget,
            # A zero budget has no share to speak of.
            "share": np.divide(spend, budget, out=np.full_like(spend, np.nan), where=budget > 0),
        }
    )


def inventory_figure(
    inventory: pd.DataFrame, safety_stock: pd.DataFrame | None, valued: pd.DataFrame, keys: pd.MultiIndex
) -> Figure:
    """Projected stock per item-store against its safety stock: the target the plan had to keep
    (quantile mode) and the one each order implies (its position less demand until the next order)."""
    figure, axes = plt.subplots(len(keys), 1, figsize=(10, 2.4 * len(keys)), squeeze=False, sharex=True)
    for axis, (item_id, store_id) in zip(axes[:, 0], keys, strict=False):

        def pick(frame: pd.DataFrame, item_id: str = item_id, store_id: str = store_id) -> pd.DataFrame:
            return frame[(frame["item_id"] == item_id) & (frame["store_id"] == store_id)]

        stock = pick(inventory).sort_values("period")
        axis.plot(
            stock["date"], stock["on_hand_after_arrivals"], color="tab:gray", linewidth=1, label="after deliveries"
        )
        axis.plot(stock["date"], stock["on_hand_end"], color="tab:blue", label="end of day")
        if safety_stock is not None:
            target = stock[["period", "date"]].merge(pick(safety_stock), on="period")
            axis.step(
                target["date"],
                target["safety_stock"],
                where="post",
                color="tab:red",
                linestyle="--",
                label="safety stock target",
            )
        orders = pick(valued)
        axis.scatter(
            orders["arrival_date"],
            orders["safety_stock"],
            facecolors="none",
            edgecolors="black",
            label="safety stock an order leaves for when the next one lands",
        )
        axis.set_title(f"{item_id} @ {store_id}", fontsize=9)
        axis.set_ylabel("units")
    axes[0, 0].legend(loc="upper left", fontsize=7, ncol=4)
    figure.tight_layout()
    return figure


def utilisation_figure(capacity_utilisation: pd.DataFrame, budget: pd.DataFrame) -> Figure:
    """Share of each store's capacity filled per period, and of the budget spent per order period."""
    panels = [panel for panel, frame in (("capacity", capacity_utilisation), ("budget", budget)) if len(frame)]
    figure, axes = plt.subplots(len(panels), 1, figsize=(10, 2.8 * len(panels)), squeeze=False, sharex=True)
    for axis, panel in zip(axes[:, 0], panels, strict=False):
        if panel == "capacity":
            for store_id, periods in capacity_utilisation.groupby("store_id", sort=True):
                axis.plot(periods["date"], periods["utilisation"], marker=".", label=str(store_id))
            axis.set_title("Capacity: share of each store's volume filled after deliveries", fontsize=9)
        else:
            axis.bar(budget["date"], budget["share"], color="tab:orange", label="spend")
            axis.set_title("Budget: share of the period's budget spent on orders", fontsize=9)
        axis.axhline(1.0, color="tab:red", linestyle="--", linewidth=1, label="limit")
        axis.yaxis.set_major_formatter(lambda value, _: f"{value:.0%}")
        axis.legend(loc="upper left", fontsize=7, ncol=6)
    figure.tight_layout()
    return figure


def policy_chart(metrics: pd.DataFrame) -> Figure:
    """Total cost against fill rate of the policies a simulation compared: lower right is better."""
    figure, axis = plt.subplots(figsize=(7, 4))
    for name, label in POLICY_NAMES.items():
        if name in metrics.index:
            cost, fill = float(metrics.loc[name, "total_cost"]), float(metrics.loc[name, "fill_rate"])
            axis.scatter([cost], [fill], s=60, label=label)
            axis.annotate(label, (cost, fill), textcoords="offset points", xytext=(6, 4), fontsize=8)
    axis.set_xlabel("total cost over the replay (holding + shortage + ordering)")
    axis.set_ylabel("fill rate")
    axis.yaxis.set_major_formatter(lambda value, _: f"{value:.0%}")
    axis.set_title("Policies replayed on recent history: cost against fill rate", fontsize=9)
    axis.margins(0.2)
    figure.tight_layout()
    return figure


def _of(frame: pd.DataFrame, keys: pd.MultiIndex) -> pd.DataFrame:
    """The rows of these item-stores; matching items first keeps a long sales history cheap to filter."""
    candidates = frame[frame["item_id"].isin(keys.get_level_values("item_id"))]
    return candidates[pd.MultiIndex.from_frame(candidates[ITEM_STORE]).isin(keys)]


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90)
    # pyplot keeps every figure it made alive until closed; a long-lived worker would leak them.
    plt.close(figure)
    return buffer.getvalue()


# --- HTML --------------------------------------------------------------------------------------


def money(value: float) -> str:
    return f"{value:,.2f}"


def quantity(value: float) -> str:
    return f"{value:,.1f}"


def share(value: float) -> str:
    return "n/a" if pd.isna(value) else f"{value:.1%}"


def day(value: pd.Timestamp) -> str:
    return f"{pd.Timestamp(value):%Y-%m-%d}"


TOP_ORDER_COLUMNS: dict[str, tuple[str, Callable[[object], str]]] = {
    "item_id": ("item", str),
    "store_id": ("store", str),
    "order_date": ("order date", day),
    "arrival_date": ("arrival", day),
    "quantity": ("quantity", quantity),
    "value": ("value", money),
    "lead_time_periods": ("lead time (periods)", str),
    "demand_over_protection": ("demand over lead time + review", quantity),
    "safety_stock": ("safety stock", quantity),
    "on_hand": ("on hand", quantity),
    "pipeline": ("pipeline", quantity),
    "inventory_position_after_order": ("position after order", quantity),
    "binding": ("binding constraints", str),
}
CAPACITY_COLUMNS: dict[str, tuple[str, Callable[[object], str]]] = {
    "store_id": ("store", str),
    "capacity_volume": ("capacity (volume)", quantity),
    "peak_share": ("peak use", share),
    "mean_share": ("mean use", share),
    "binding_periods": ("periods at or over capacity", str),
}
BUDGET_COLUMNS: dict[str, tuple[str, Callable[[object], str]]] = {
    "date": ("order date", day),
    "spend": ("spend", money),
    "budget": ("budget", money),
    "share": ("use", share),
}
BROKEN_TABLE_COLUMNS: dict[str, tuple[str, Callable[[object], str]]] = {
    "constraint": ("constraint", lambda name: str(name).replace("_", " ")),
    "where": ("where", str),
    "periods": ("periods", str),
    "first_date": ("from", day),
    "worst": ("broken by up to", rounded),
}
SERVICE_LEVEL_TABLE_COLUMNS: dict[str, tuple[str, Callable[[object], str]]] = {
    "abc_class": ("class", str),
    "items": ("items", lambda count: f"{count:,.0f}"),
    "target": ("service-level target", share),
    "penalty_level": ("level the shortage penalty implies", share),
    "planned_level": ("level planned", share),
    "follows": ("the plan follows", str),
}
PURCHASE_ORDER_TABLE_COLUMNS: dict[str, tuple[str, Callable[[object], str]]] = {
    "supplier_id": ("supplier", str),
    "item_id": ("item", str),
    "store_id": ("store", str),
    "quantity": ("units", quantity),
    "case_packs": ("case packs", quantity),
    "cost": ("cost", money),
    "arrival_date": ("arrival", day),
    "safety_stock": ("safety stock", quantity),
    "service_level": ("service level", share),
}
SIMULATION_METRICS: dict[str, tuple[str, Callable[[object], str]]] = {
    "total_cost": ("total cost", money),
    "holding_cost": ("holding", money),
    "shortage_cost": ("shortage", money),
    "ordering_cost": ("ordering", money),
    "fill_rate": ("fill rate", share),
    "cycle_service_level": ("cycle service level", share),
    **{
        f"cycle_service_level_{abc_class}": (f"cycle service level, class {abc_class}", share)
        for abc_class in ABC_CLASSES
    },
    "stockout_days": ("stock-out item-store days", lambda value: f"{value:,.0f}"),
    "turns": ("turns a year", lambda value: f"{value:,.1f}"),
    "case_pack_violations": ("orders breaking case pack or MOQ", lambda value: f"{value:,.0f}"),
}

PAGE = Template("""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>$title</title>
<style>
body { font-family: sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th { background: #f2f2f2; }
td:first-child, th:first-child { text-align: left; }
img { max-width: 100%; }
.note { color: #666; font-size: 0.9em; }
.broken { border: 2px solid #c00; padding: 0 1em; margin-bottom: 1.5em; }
.broken h2 { color: #c00; }
tr.part th { padding-left: 2em; font-weight: normal; }
</style>
</head>
<body>
<h1>$title</h1>
<p class="note">$subtitle</p>
$broken
<h2>Key figures</h2>
$kpis
<p class="note">$outlook_note</p>
<h2>Purchase orders due $first_day</h2>
$purchase_orders
<h2>Service levels</h2>
<p class="note">Each item's target is the item master's service_level, else its ABC class's (by revenue over
the last quarter). The shortage penalty implies a level of its own: (penalty - unit cost) / (penalty - unit cost
+ holding cost over the review period). The plan follows the higher of the two.</p>
$service_levels
<h3>Capacity use per store</h3>
$capacity
$budget
<h2>The policy on recent history</h2>
$simulation
<h2>Top $top_count orders by value</h2>
<p class="note">Each order covers the demand over its lead time plus its review period (the days to the item's
next order day); the safety stock is what its inventory position (on hand, pipeline and the order) leaves above
that demand.</p>
$top_orders
<h2>Forecast for the top item-stores</h2>
$forecast_chart
<h2>Projected inventory against safety stock</h2>
$inventory_chart
<h2>Constraint utilisation</h2>
$utilisation_chart
</body>
</html>
""")


def render_html(report: PlanReport, run_id: str) -> str:
    end = report.frequency.shift(report.start_date, report.n_periods - 1)
    shown_orders = report.purchase_orders.sort_values("cost", ascending=False).head(PURCHASE_ORDERS_SHOWN)
    more = len(report.purchase_orders) - len(shown_orders)
    return PAGE.substitute(
        title=html.escape(
            f"Replenishment plan {day(report.start_date)} to {day(end)}"
            + (" (soft mode: constraints broken)" if len(report.broken) else "")
        ),
        subtitle=html.escape(f"MLflow run {run_id}; {report.n_periods} {report.frequency.name}s"),
        broken=_broken_section(report.broken),
        kpis=_kpi_table(report),
        outlook_note=html.escape(
            f"Expected fill rate, cost and stock-out risk follow this plan's orders through "
            f"{report.outlook.demand_paths:,} demand paths sampled from the forecast quantiles, drawn apart from "
            f"the scenarios the plan was made on (seed offset {KPI_SEED_OFFSET:,}): out of sample for the plan. "
            "The expected cost is holding, lost sales and ordering over the horizon; the planned cost also counts "
            "purchases, less the value of the stock left at the end. Stock-out risk is the chance that an "
            "item-store runs short on a given planned day."
        ),
        first_day=day(report.start_date),
        purchase_orders=_table(
            "purchase-orders",
            shown_orders,
            PURCHASE_ORDER_TABLE_COLUMNS,
            f"No order is due on {day(report.start_date)}: no item has an order day then, or none needs stock.",
        )
        + (f'<p class="note">and {more:,} more in purchase_orders.csv</p>' if more > 0 else ""),
        service_levels=_table(
            "service-levels",
            report.service_levels,
            SERVICE_LEVEL_TABLE_COLUMNS,
            "No service-level targets: the plan was made without item classes.",
        ),
        capacity=_table("capacity-use", report.capacity_use, CAPACITY_COLUMNS, "No store has a capacity."),
        budget=("<h3>Budget use per order period</h3>\n" + _table("budget-use", report.budget_use, BUDGET_COLUMNS, ""))
        if len(report.budget_use)
        else "",
        simulation=_simulation_section(report),
        top_count=str(len(report.top_orders)),
        top_orders=_table("top-orders", report.top_orders, TOP_ORDER_COLUMNS, "The plan places no orders."),
        forecast_chart=_image(report.forecast_chart, "forecast fan charts"),
        inventory_chart=_image(report.inventory_chart, "projected inventory against safety stock"),
        utilisation_chart=_image(report.utilisation_chart, "capacity and budget utilisation"),
    )


def _broken_section(broken: pd.DataFrame) -> str:
    if broken.empty:
        return ""
    return "\n".join(
        [
            '<div class="broken">',
            f"<h2>{len(broken):,} constraint(s) broken</h2>",
            "<p>Planned in soft mode: these constraints could not all be met, so they were broken at a price "
            "(planning.model.violation_penalty per unit). Every breach is listed in constraint_violations.csv.</p>",
            _table("broken-constraints", broken, BROKEN_TABLE_COLUMNS, ""),
            "</div>",
        ]
    )


def _simulation_section(report: PlanReport) -> str:
    simulation = report.simulation
    if simulation is None:
        return (
            '<p class="note">No simulation of this data set yet. <code>replenish simulate</code> replays the '
            "last weeks of your history with this planning policy, base stock and perfect foresight.</p>"
        )
    shown = [name for name in POLICY_NAMES if name in simulation.metrics.index]
    rows = [
        f"<tr><th>{html.escape(label)}</th>"
        + "".join(f"<td>{html.escape(formatted(simulation.metrics.loc[name, metric]))}</td>" for name in shown)
        + "</tr>"
        for metric, (label, formatted) in SIMULATION_METRICS.items()
        if metric in simulation.metrics
    ]
    header = "<tr><th>metric</th>" + "".join(f"<th>{html.escape(POLICY_NAMES[name])}</th>" for name in shown) + "</tr>"
    return "\n".join(
        [
            f'<p class="note">MLflow run {html.escape(simulation.run_id)}: {simulation.days} days from '
            f"{html.escape(simulation.start)} replayed with actual demand, re-planned on every order day with the "
            "settings of its time.</p>",
            '<table id="policy-simulation">',
            header,
            *rows,
            "</table>",
            _image(report.simulation_chart, "total cost against fill rate of the simulated policies"),
        ]
    )


def _kpi_table(report: PlanReport) -> str:
    outlook, due = report.outlook, report.purchase_orders
    rows = [
        *(
            (
                (
                    "Constraints broken",
                    f"{len(report.broken):,}: "
                    + report.broken["summary"].iloc[0]
                    + ("; ..." if len(report.broken) > 1 else ""),
                    "",
                ),
            )
            if len(report.broken)
            else ()
        ),
        (
            "Purchase orders due",
            f"{len(due):,} lines, {quantity(due['quantity'].sum())} units, cost {money(due['cost'].sum())}",
            "",
        ),
        ("Planned cost", money(report.planned_cost), ""),
        *((part.replace("_", " "), money(value), "part") for part, value in report.cost_breakdown.items()),
        ("Expected fill rate", share(outlook.expected_fill_rate), ""),
        ("Expected cost", money(outlook.expected_cost), ""),
        ("Stock-out risk", f"{share(outlook.stockout_risk)} per item-store and day", ""),
        ("Orders", f"{report.orders:,} lines, {quantity(report.units)} units, value {money(report.order_value)}", ""),
        *((("Budget use", _budget_summary(report.budget_use), ""),) if len(report.budget_use) else ()),
        *(
            (
                (
                    "Forecast fallback",
                    f"{report.naive_fallback_series:,} item-store(s) planned on a seasonal naive "
                    "forecast: the champion's forecast lacked them",
                    "",
                ),
            )
            if report.naive_fallback_series
            else ()
        ),
        ("Solver status", report.solver_status, ""),
    ]
    return "\n".join(
        [
            '<table id="kpis">',
            *(
                f'<tr class="{css_class}"><th>{html.escape(label)}</th><td>{html.escape(value)}</td></tr>'
                for label, value, css_class in rows
            ),
            "</table>",
        ]
    )


def _budget_summary(budget_use: pd.DataFrame) -> str:
    shares = budget_use["share"]
    return (
        f"peak {share(shares.max())}, mean {share(shares.mean())} of "
        f"{money(budget_use['budget'].iloc[0])} per order period"
    )


def _table(
    table_id: str, frame: pd.DataFrame, columns: dict[str, tuple[str, Callable[[object], str]]], when_empty: str
) -> str:
    if frame.empty:
        return f'<p class="note">{html.escape(when_empty)}</p>'
    shown = [column for column in columns if column in frame.columns]
    header = "".join(f"<th>{html.escape(columns[column][0])}</th>" for column in shown)
    rows = [
        "<tr>" + "".join(f"<td>{html.escape(columns[column][1](row[column]))}</td>" for column in shown) + "</tr>"
        for row in frame[shown].to_dict("records")
    ]
    return "\n".join([f'<table id="{table_id}">', f"<tr>{header}</tr>", *rows, "</table>"])


def _image(png: bytes | None, description: str) -> str:
    if png is None:
        return '<p class="note">Nothing to chart.</p>'
    return f'<img src="data:image/png;base64,{base64.b64encode(png).decode("ascii")}" alt="{html.escape(description)}">'


def report_markdown(report: PlanReport, path: Path, mlflow_run: str, artifact_file: str) -> str:
    """What the Prefect UI shows for the report: its headline figures and where to open it (`mlflow_run`
    links the MLflow run that holds it; the published file is on the disk of the machine that ran the flow)."""
    broken = (
        [
            f"**{len(report.broken):,} constraint(s) broken (soft mode)**: "
            + "; ".join(report.broken["summary"].head(3)),
            "",
        ]
        if len(report.broken)
        else []
    )
    due = report.purchase_orders
    return "\n".join(
        [
            "# Plan report",
            *broken,
            f"{len(due):,} purchase orders due {day(report.start_date)} (cost {money(due['cost'].sum())}); "
            f"planned cost {money(report.planned_cost)}, expected fill rate {share(report.outlook.expected_fill_rate)} "
            f"on {report.outlook.demand_paths:,} sampled demand paths.",
            "",
            f"- {mlflow_run}, artifact `{artifact_file}`",
            f"- published as `{path}`",
        ]
    )


def simulation_markdown(simulation: PolicySimulation, mlflow_run: str) -> str:
    """What the Prefect UI shows for a policy simulation; `mlflow_run` links its MLflow run."""
    metrics = simulation.metrics
    shown = [name for name in POLICY_NAMES if name in metrics.index]
    lines = [
        "# Policy simulation",
        f"{simulation.days} days from {day(simulation.start)}, {simulation.item_stores:,} item-stores; {mlflow_run}.",
        "",
        "| metric | " + " | ".join(POLICY_NAMES[name] for name in shown) + " |",
        "|---|" + "---|" * len(shown),
        *(
            f"| {label} | " + " | ".join(formatted(metrics.loc[name, metric]) for name in shown) + " |"
            for metric, (label, formatted) in SIMULATION_METRICS.items()
            if metric in metrics
        ),
        "",
        f"The default policy costs {share(simulation.cost_reduction())} less than base stock and closes "
        f"{share(simulation.gap_closed())} of the gap to perfect foresight. On store(s) "
        f"{', '.join(simulation.milp_gap_stores)}, the repair of the LP relaxation costs {share(simulation.milp_gap)} "
        "more than the MILP.",
    ]
    return "\n".join(lines)


def registration_markdown(
    backtest_scores: ForecastScores,
    holdout_metrics: dict[str, float],
    kind: str,
    version: str,
    decision: PromotionDecision,
    mlflow_run: str,
) -> str:
    """What the Prefect UI shows for a training run: the backtest per model, the candidates on the holdout,
    and the version registered and whether it became champion."""
    table = backtest_scores.table().dropna(axis=1, how="all")
    header = "| model | " + " | ".join(table.columns) + " |"
    return "\n".join(
        [
            f"# Registered: {kind}, version {version} "
            f"({'promoted to champion' if decision.promote else 'not promoted'})",
            f"{decision.reason}. {mlflow_run}.",
            "",
            "Holdout scores of the candidates: "
            + ", ".join(f"`{name}` {value:.4f}" for name, value in holdout_metrics.items()),
            "",
            "Backtest, over all its origins:",
            "",
            header,
            "|---|" + "---|" * len(table.columns),
            *(
                f"| {model} | " + " | ".join("" if pd.isna(value) else f"{value:.4f}" for value in row) + " |"
                for model, row in table.iterrows()
            ),
        ]
    )


def monitoring_markdown(report: MonitoringReport, mlflow_run: str) -> str:
    """What the Prefect UI shows for a monitoring run: the decision, why, and the measures it rests on."""
    verdict = "retrain" if report.decision.retrain else "keep the champion"
    lines = [f"# Monitoring: {verdict}", f"Champion version: {report.model_version or 'none'}; {mlflow_run}.", ""]
    lines += [f"- {reason}" for reason in report.decision.reasons]
    if report.performance:
        lines += ["", "| measure | value |", "|---|---|"]
        lines += [f"| {name} | {value:.4f} |" for name, value in {**report.performance, **report.drift}.items()]
    return "\n".join(lines)
