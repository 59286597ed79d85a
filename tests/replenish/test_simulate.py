"""`replenish simulate` on a tiny long-format set with a known demand distribution: the policies come
out in the order of cost theory requires, every order is one a supplier accepts, and the comparison
lands in MLflow (and in the next plan report)."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from scipy.stats import poisson

import replenish.simulate
from optimization.planning import explained_orders
from optimization.replenishment_lp import PlanningProblem, solve_replenishment_plan
from replenish import tracking
from replenish.cli import app
from replenish.report import SimulatedPolicies, plan_report, render_html
from replenish.settings import load_settings
from replenish.simulate import (
    BASE_STOCK,
    DEFAULT,
    ITEM_STORE_COSTS,
    PERFECT_FORESIGHT,
    POLICIES,
    SIMULATION_CHART,
    SIMULATION_TABLE,
    latest_simulation,
)
from tests.replenish.test_report import GIVEN_OUTLOOK, NO_PURCHASE_ORDERS, Tables

pytestmark = pytest.mark.slow

RATES = {"A": 12.0, "B": 6.0, "C": 2.0, "D": 0.5}  # units a day, the same in both stores
STORES = ("S1", "S2")
DAYS = 140
QUANTILES = (0.025, 0.1, 0.5, 0.8, 0.9, 0.95, 0.975)


def poisson_data(folder: Path) -> Path:
    """Stationary Poisson demand, weekly orders on Mondays, case packs of 4 and MOQs of 8; holding
    costs 1% of the unit cost a day, so that stock held, not rare stock-outs, sets the costs."""
    rng = np.random.default_rng(11)
    dates = pd.date_range("2024-01-01", periods=DAYS, freq="D")
    sales = pd.DataFrame(
        [(item, store, day, rng.poisson(rate)) for item, rate in RATES.items() for store in STORES for day in dates],
        columns=["item_id", "store_id", "date", "units"],
    ).assign(price=5.0)
    items = pd.DataFrame(
        {
            "item_id": list(RATES),
            "unit_cost": 3.0,
            "holding_cost_rate": 3.65,
            "lead_time_days": 3,
            "case_pack": 4,
            "moq": 8,
            "unit_volume": 1.0,
            "review_days": 7,
            "order_weekday": 0,
            "service_level": 0.98,
        }
    )
    folder.mkdir(parents=True)
    sales.to_csv(folder / "sales.csv", index=False)
    items.to_csv(folder / "items.csv", index=False)
    return folder


def oracle(sales: pd.DataFrame) -> replenish.simulate.Forecaster:
    """The true distribution: each series' Poisson quantiles, for the days after its history."""

    def forecast(history: pd.DataFrame) -> pd.DataFrame:
        last = history["date"].max()
        days = pd.DataFrame({"date": pd.date_range(last + pd.Timedelta(days=1), periods=28, freq="D")})
        frame = history[["item_id", "store_id"]].drop_duplicates().merge(days, how="cross")
        rate = frame["item_id"].map(RATES)
        return frame.assign(mean=rate, **{f"q{level:g}": poisson.ppf(level, rate) for level in QUANTILES})

    return forecast


def test_the_policies_cost_as_theory_says_and_land_in_mlflow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = poisson_data(tmp_path / "data")
    # 50 scenarios keep the MILP the gap is measured against to seconds.
    overrides = [
        f"work_dir={tmp_path / 'state'}",
        f"output_dir={tmp_path / 'out'}",
        "simulate.weeks=6",
        "planning.n_scenarios=50",
    ]
    monkeypatch.setattr(replenish.simulate, "lstm_training", lambda settings: oracle)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(io.StringIO()):
        assert app(
            [
                "simulate",
                "--data",
                str(data),
                "--format",
                "long",
                *[part for override in overrides for part in ("--set", override)],
            ],
            standalone_mode=False,
        ) in (0, None)

    settings = load_settings(overrides=[*overrides, f"data.path={data}", "data.format=long"])
    experiment = tracking.Experiment.open(settings)
    simulation = latest_simulation(experiment, settings.data)
    assert simulation is not None and simulation.days == 42
    cost = simulation.metrics["total_cost"]
    # Perfect foresight bounds every policy, item-store by item-store beyond the replay's noise; planning
    # on the true distribution is no worse than base stock on a seasonal-naive forecast, within it.
    replayed = experiment.run(simulation.run_id).load_table(ITEM_STORE_COSTS)
    assert cost[PERFECT_FORESIGHT] <= cost[DEFAULT]
    ahead_of_foresight = replayed[DEFAULT] - replayed[PERFECT_FORESIGHT]
    assert ahead_of_foresight.mean() > 2 * ahead_of_foresight.sem()
    behind_base_stock = replayed[DEFAULT] - replayed[BASE_STOCK]
    assert behind_base_stock.mean() < 2 * behind_base_stock.sem()
    assert (simulation.metrics["case_pack_violations"] == 0).all()
    assert simulation.metrics.loc[DEFAULT, "fill_rate"] > 0.97
    assert f"{DEFAULT}" in printed.getvalue() and "cheaper than base stock" in printed.getvalue()

    client = MlflowClient(settings.mlflow_tracking_uri)
    child = client.get_run(simulation.run_id)
    parent = client.get_run(child.data.tags["mlflow.parentRunId"])
    assert parent.data.tags["job"] == "simulate" and child.data.tags["job"] == "simulation"
    for policy in POLICIES:
        assert child.data.metrics[f"{policy}_total_cost"] == pytest.approx(cost[policy])
        assert f"{policy}_cycle_service_level_A" in child.data.metrics
    # The default repairs the LP; the MILP replayed on the first store costs about as much.
    assert child.data.tags["milp_gap_stores"] == "S1" and abs(child.data.metrics["milp_gap"]) < 0.02
    logged = {artifact.path for artifact in client.list_artifacts(child.info.run_id, "simulation")}
    assert logged == {SIMULATION_TABLE, SIMULATION_CHART, ITEM_STORE_COSTS}

    page = report_with(simulation)
    assert "The policy on recent history" in page and simulation.run_id in page
    rows = {row[0]: row[1:] for row in Tables(page).tables["policy-simulation"][1:]}
    assert rows["total cost"] == [f"{cost[policy]:,.2f}" for policy in POLICIES]
    assert any("total cost against fill rate" in image for image in re.findall(r"<img [^>]*>", page))


def report_with(simulation: SimulatedPolicies) -> str:
    start = pd.Timestamp("2024-06-03")
    problem = PlanningProblem(
        start_date=start,
        n_periods=7,
        demand=pd.DataFrame({"item_id": "A", "store_id": "S1", "period": range(7), "demand": 2.0}),
        items=pd.DataFrame(
            {
                "item_id": ["A"],
                "unit_cost": [3.0],
                "holding_cost_rate": [0.25],
                "lead_time_days": [1],
                "unit_volume": [1.0],
            }
        ),
        on_hand=pd.DataFrame({"item_id": ["A"], "store_id": ["S1"], "on_hand": [5.0]}),
        open_orders=pd.DataFrame(columns=["item_id", "store_id", "quantity", "arrival_date"]),
        capacity=pd.DataFrame(columns=["store_id", "capacity_volume"]),
    )
    plan = solve_replenishment_plan(problem)
    dates = pd.date_range(start, periods=7)
    forecast = pd.DataFrame({"item_id": "A", "store_id": "S1", "date": dates, "mean": 2.0, "q0.5": 2.0})
    history = forecast[["item_id", "store_id"]].assign(date=dates - pd.Timedelta(days=7), units=2.0)
    return render_html(
        plan_report(
            problem,
            plan,
            explained_orders(plan),
            forecast,
            history,
            None,
            GIVEN_OUTLOOK,
            NO_PURCHASE_ORDERS,
            simulation,
        ),
        "run-2",
    )


def test_a_replayed_plan_stopped_by_the_time_limit_names_its_day_and_the_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = poisson_data(tmp_path / "data")
    overrides = [
        f"work_dir={tmp_path / 'state'}",
        f"output_dir={tmp_path / 'out'}",
        "simulate.weeks=1",
        "planning.n_scenarios=20",
        "planning.solver.time_limit_seconds=1e-9",
    ]
    monkeypatch.setattr(replenish.simulate, "lstm_training", lambda settings: oracle)
    errors = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(errors):
        exit_code = app(
            ["simulate", "--data", str(data), "--format", "long", *[p for o in overrides for p in ("--set", o)]],
            standalone_mode=False,
        )
    assert exit_code == 1
    [line] = [line for line in errors.getvalue().splitlines() if line.startswith("error:")]
    assert re.match(r"error: replaying \d{4}-\d\d-\d\d: HiGHS stopped \(maxTimeLimit\)", line), line
    assert "Raise planning.solver.time_limit_seconds (now 1e-09)" in line and "Traceback" not in errors.getvalue()
