"""The plan report of a plan really solved by HiGHS: its figures, its top orders, its inlined charts."""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, replace
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest

from models.evaluation import ForecastScores
from models.forecast_contract import NAIVE_FALLBACK
from models.monitoring import MonitoringReport, RetrainingDecision
from optimization.config import PlanningConfig
from optimization.planning import (
    PURCHASE_ORDER_COLUMNS,
    PlanOutlook,
    explained_orders,
    plan_outlook,
    planning_problem,
    purchase_orders,
    solve_plan,
)
from optimization.problem import ModelOptions
from optimization.replenishment_lp import PlanningProblem, PlanResult, solve_replenishment_plan
from replenish.data.synthetic import SyntheticConfig, generate_synthetic
from replenish.data.tables import MasterDefaults, RetailData, complete_tables
from replenish.report import TOP_ORDERS, monitoring_markdown, plan_report, registration_markdown, render_html
from replenish.tracking import PromotionDecision

HORIZON_DAYS = 14
# Binds on the first day, when every item wants an order, and leaves the rest of the horizon free.
BUDGET_PER_PERIOD = 130.0
NORMAL_QUANTILES = {0.025: -1.96, 0.1: -1.2816, 0.5: 0.0, 0.8: 0.8416, 0.9: 1.2816, 0.95: 1.645, 0.975: 1.96}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class Tables(HTMLParser):
    """Every <table id=...> as rows of cell texts, and the src of every <img>."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.images: list[str] = []
        self._table: list[list[str]] | None = None
        self._cell: list[str] | None = None
        self.feed(page)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self._table = self.tables.setdefault(dict(attrs)["id"], [])
        elif tag == "tr" and self._table is not None:
            self._table.append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "img":
            self.images.append(dict(attrs)["src"])

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self._table = None
        elif tag in ("td", "th") and self._cell is not None and self._table is not None:
            self._table[-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def synthetic_data() -> RetailData:
    """Items ordered every day, so that the plan has more orders than the report lists."""
    data = complete_tables(
        generate_synthetic(SyntheticConfig(n_items=6, n_stores=2, n_days=120, seed=3)), MasterDefaults()
    )
    return replace(data, items=data.items.assign(review_days=1))


def normal_forecast(data: RetailData) -> pd.DataFrame:
    """Recent mean demand with normal quantile bands, in the forecaster's columns."""
    recent = data.sales[data.sales["date"] > data.snapshot_date - pd.Timedelta(days=28)]
    means = recent.groupby(["item_id", "store_id"])["units"].mean().rename("mean").reset_index()
    dates = pd.date_range(data.snapshot_date + pd.Timedelta(days=1), periods=HORIZON_DAYS, freq="D")
    forecast = means.merge(pd.DataFrame({"date": dates}), how="cross")
    spread = np.sqrt(forecast["mean"] + 1.0)
    return forecast.assign(
        **{f"q{level}": (forecast["mean"] + z * spread).clip(lower=0.0) for level, z in NORMAL_QUANTILES.items()}
    )


@dataclass(frozen=True)
class Reported:
    data: RetailData
    plan: PlanResult
    outlook: PlanOutlook
    page: str


# For hand-made plans without a forecast to sample: the figures the report must show as they are.
GIVEN_OUTLOOK = PlanOutlook(expected_fill_rate=0.9, expected_cost=123.0, stockout_risk=0.05, demand_paths=10)
NO_PURCHASE_ORDERS = pd.DataFrame(columns=PURCHASE_ORDER_COLUMNS)


@pytest.fixture(scope="module")
def budgeted_plan() -> Reported:
    """Quantile mode (safety stock targets) under a budget, solved as the planning flow solves it."""
    data = synthetic_data()
    forecast = normal_forecast(data)
    planning = PlanningConfig(
        horizon=HORIZON_DAYS, uncertainty_mode="quantile", model=ModelOptions(budget_per_period=BUDGET_PER_PERIOD)
    )
    problem = planning_problem(data, forecast, planning)
    plan = solve_plan(problem, planning)
    outlook = plan_outlook(problem, plan, forecast, planning)
    report = plan_report(
        problem,
        plan,
        explained_orders(plan),
        forecast,
        data.sales,
        planning.model.budget_per_period,
        outlook,
        purchase_orders(problem, plan),
    )
    return Reported(data, plan, outlook, render_html(report, "run-123"))


def test_report_states_the_planned_cost_fill_rate_and_its_breakdown(budgeted_plan: Reported) -> None:
    plan, outlook, page = budgeted_plan.plan, budgeted_plan.outlook, budgeted_plan.page
    kpis = dict(map(tuple, Tables(page).tables["kpis"]))
    assert plan.solver_status == "optimal"
    assert kpis["Planned cost"] == f"{plan.objective:,.2f}"
    # On demand paths sampled apart from the plan's own: not the plan's in-sample fill rate.
    assert kpis["Expected fill rate"] == f"{outlook.expected_fill_rate:.1%}"
    assert 0.0 < outlook.expected_fill_rate <= 1.0 and outlook.demand_paths == PlanningConfig().kpi_demand_paths
    assert kpis["Expected cost"] == f"{outlook.expected_cost:,.2f}"
    assert kpis["Stock-out risk"].startswith(f"{outlook.stockout_risk:.1%}")
    assert "sampled from the forecast quantiles" in page
    for part, value in plan.cost_breakdown.items():
        assert kpis[part.replace("_", " ")] == f"{value:,.2f}"
    assert kpis["Orders"].startswith(f"{len(plan.orders):,} lines, {plan.orders['quantity'].sum():,.1f} units")
    assert "run-123" in page


def test_report_shows_each_stores_peak_and_mean_capacity_use(budgeted_plan: Reported) -> None:
    plan, page = budgeted_plan.plan, budgeted_plan.page
    header, *rows = Tables(page).tables["capacity-use"]
    assert header == ["store", "capacity (volume)", "peak use", "mean use", "periods at or over capacity"]
    shares = plan.capacity_utilisation.groupby("store_id")["utilisation"]
    assert [row[0] for row in rows] == sorted(plan.capacity_utilisation["store_id"].unique())
    for store_id, _, peak, mean, _ in rows:
        assert peak == f"{shares.max()[store_id]:.1%}"
        assert mean == f"{shares.mean()[store_id]:.1%}"


def test_report_shows_the_budget_spent_per_order_period(budgeted_plan: Reported) -> None:
    data, plan, page = budgeted_plan.data, budgeted_plan.plan, budgeted_plan.page
    tables = Tables(page).tables
    spend = (
        (plan.orders["quantity"] * plan.orders["item_id"].map(data.items.set_index("item_id")["unit_cost"]))
        .groupby(plan.orders["order_date"])
        .sum()
    )
    # The budget binds: what is left of it buys no further case pack of what was ordered.
    assert BUDGET_PER_PERIOD - 12 * data.items["unit_cost"].max() <= spend.max() <= BUDGET_PER_PERIOD + 1e-6
    shown = {row[0]: row for row in tables["budget-use"][1:]}
    for date, spent in spend.items():
        assert shown[f"{date:%Y-%m-%d}"][1:] == [
            f"{spent:,.2f}",
            f"{BUDGET_PER_PERIOD:,.2f}",
            f"{spent / BUDGET_PER_PERIOD:.1%}",
        ]
    assert dict(map(tuple, tables["kpis"]))["Budget use"].startswith(
        f"peak {spend.max() / BUDGET_PER_PERIOD:.1%}, mean "
    )


def test_report_lists_the_dearest_orders_with_their_explanations(budgeted_plan: Reported) -> None:
    data, plan, page = budgeted_plan.data, budgeted_plan.plan, budgeted_plan.page
    unit_cost = data.items.set_index("item_id")["unit_cost"]
    explained = explained_orders(plan)
    explained = explained.assign(value=explained["quantity"] * explained["item_id"].map(unit_cost))
    assert len(explained) > TOP_ORDERS

    def shown(order: pd.Series) -> list[str]:
        return [
            order["item_id"],
            order["store_id"],
            f"{order['order_date']:%Y-%m-%d}",
            f"{order['arrival_date']:%Y-%m-%d}",
            f"{order['quantity']:,.1f}",
            f"{order['value']:,.2f}",
            str(order["lead_time_periods"]),
            f"{order['demand_over_protection']:,.1f}",
            f"{order['safety_stock']:,.1f}",
            f"{order['on_hand']:,.1f}",
            f"{order['pipeline']:,.1f}",
            f"{order['inventory_position_after_order']:,.1f}",
            order["binding"],
        ]

    header, *rows = Tables(page).tables["top-orders"]
    assert header[-6:] == [
        "demand over lead time + review",
        "safety stock",
        "on hand",
        "pipeline",
        "position after order",
        "binding constraints",
    ]
    assert len(rows) == TOP_ORDERS and f"Top {TOP_ORDERS} orders by value" in page
    every_order = [shown(order) for _, order in explained.iterrows()]
    assert all(row in every_order for row in rows)
    values = [explained.loc[every_order.index(row), "value"] for row in rows]
    assert values == sorted(values, reverse=True)
    assert values[0] == pytest.approx(explained["value"].max())
    left_out = explained.drop(index=[every_order.index(row) for row in rows])
    assert values[-1] >= left_out["value"].max() - 1e-9
    # The first day's orders exhaust the budget: their explanation says so.
    assert any("budget" in row[-1].split(",") for row in rows)


def test_report_is_self_contained_with_inlined_png_charts(budgeted_plan: Reported) -> None:
    page = budgeted_plan.page
    images = Tables(page).images
    assert page.count('<img src="data:image/png;base64,') == len(images) == 3
    for source in images:
        assert base64.b64decode(source.removeprefix("data:image/png;base64,"), validate=True).startswith(PNG_SIGNATURE)
    assert not re.search(r"https?://", page)
    assert "<script" not in page and "<link" not in page


def test_a_plan_without_orders_capacity_or_budget_says_so() -> None:
    start = pd.Timestamp("2024-03-01")
    problem = PlanningProblem(
        start_date=start,
        n_periods=7,
        demand=pd.DataFrame({"item_id": "A", "store_id": "S1", "period": range(7), "demand": 2.0}),
        items=pd.DataFrame(
            {
                "item_id": ["A"],
                "unit_cost": [10.0],
                "holding_cost_rate": [0.365],
                "lead_time_days": [1],
                "unit_volume": [1.0],
            }
        ),
        on_hand=pd.DataFrame({"item_id": ["A"], "store_id": ["S1"], "on_hand": [100.0]}),
        open_orders=pd.DataFrame(columns=["item_id", "store_id", "quantity", "arrival_date"]),
        capacity=pd.DataFrame(columns=["store_id", "capacity_volume"]),
    )
    plan = solve_replenishment_plan(problem)
    dates = pd.date_range(start, periods=7, freq="D")
    forecast = pd.DataFrame({"item_id": "A", "store_id": "S1", "date": dates, "mean": 2.0, "q0.5": 2.0})
    history = pd.DataFrame({"item_id": "A", "store_id": "S1", "date": dates - pd.Timedelta(days=7), "units": 2.0})
    page = render_html(
        plan_report(problem, plan, explained_orders(plan), forecast, history, None, GIVEN_OUTLOOK, NO_PURCHASE_ORDERS),
        "run-0",
    )

    tables = Tables(page)
    assert plan.orders.empty
    assert "The plan places no orders." in page and "No store has a capacity." in page
    assert "Budget use" not in page and "budget-use" not in tables.tables
    assert dict(map(tuple, tables.tables["kpis"]))["Expected fill rate"] == "90.0%"
    assert "No order is due on 2024-03-01" in page
    # The forecast and the stock still have something to show; utilisation does not.
    assert len(tables.images) == 2 and "Nothing to chart." in page


def test_the_report_says_how_many_item_stores_were_planned_on_the_naive_fallback() -> None:
    start = pd.Timestamp("2024-03-01")
    problem = PlanningProblem(
        start_date=start,
        n_periods=7,
        demand=pd.DataFrame(
            {"item_id": "A", "store_id": ["S1"] * 7 + ["S2"] * 7, "period": list(range(7)) * 2, "demand": 2.0}
        ),
        items=pd.DataFrame(
            {
                "item_id": ["A"],
                "unit_cost": [10.0],
                "holding_cost_rate": [0.365],
                "lead_time_days": [1],
                "unit_volume": [1.0],
            }
        ),
        on_hand=pd.DataFrame({"item_id": ["A", "A"], "store_id": ["S1", "S2"], "on_hand": [100.0, 100.0]}),
        open_orders=pd.DataFrame(columns=["item_id", "store_id", "quantity", "arrival_date"]),
        capacity=pd.DataFrame(columns=["store_id", "capacity_volume"]),
    )
    plan = solve_replenishment_plan(problem)
    dates = pd.date_range(start, periods=7, freq="D")
    forecast = pd.DataFrame(
        {
            "item_id": "A",
            "store_id": ["S1"] * 7 + ["S2"] * 7,
            "date": dates.append(dates),
            "mean": 2.0,
            "q0.5": 2.0,
            NAIVE_FALLBACK: [False] * 7 + [False] * 3 + [True] * 4,
        }
    )
    history = pd.DataFrame({"item_id": "A", "store_id": "S1", "date": dates - pd.Timedelta(days=7), "units": 2.0})

    report = plan_report(
        problem, plan, explained_orders(plan), forecast, history, None, GIVEN_OUTLOOK, NO_PURCHASE_ORDERS
    )
    without = plan_report(
        problem,
        plan,
        explained_orders(plan),
        forecast.drop(columns=NAIVE_FALLBACK),
        history,
        None,
        GIVEN_OUTLOOK,
        NO_PURCHASE_ORDERS,
    )

    kpis = dict(map(tuple, Tables(render_html(report, "run-0")).tables["kpis"]))
    assert report.naive_fallback_series == 1
    assert kpis["Forecast fallback"].startswith("1 item-store(s) planned on a seasonal naive forecast")
    assert "Forecast fallback" not in render_html(without, "run-0")


def test_the_registration_and_monitoring_markdown_say_what_was_decided_and_on_what() -> None:
    scores = ForecastScores({"lstm_rmsse": 0.81234, "seasonal_naive_rmsse": 1.0}, pd.DataFrame())
    decision = PromotionDecision(True, "holdout_rmsse 0.7000 beats champion's 0.8000")
    registration = registration_markdown(scores, {"holdout_pyfunc_lstm_rmsse": 0.7}, "lstm", "3", decision, "run")
    assert registration.startswith("# Registered: lstm, version 3 (promoted to champion)\n")
    assert "`holdout_pyfunc_lstm_rmsse` 0.7000" in registration and "| lstm | 0.8123 |" in registration

    kept = RetrainingDecision(False, ["recent RMSSE 0.800 within limits"])
    monitoring = monitoring_markdown(MonitoringReport("3", 0.7, {"rmsse": 0.8}, {"psi_units": 0.1}, kept), "run")
    assert monitoring.startswith("# Monitoring: keep the champion\nChampion version: 3; run.")
    assert "- recent RMSSE 0.800 within limits" in monitoring and monitoring.endswith("| psi_units | 0.1000 |")
